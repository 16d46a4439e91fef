//! The paper exchange as a live venue for `trader-service run --exchange
//! paper`: the pairs it lists and the market driver task that feeds it
//! candles in simulated time.
//!
//! The paper venue lists a few pairs with Kraken's facts (precision,
//! `ordermin`, `costmin`) so a demo behaves like the real exchange; any other
//! `PAIR` is refused at start-up like Kraken refuses an unknown pair.

use std::time::Duration;

use rust_decimal::Decimal;
use tokio::task::JoinHandle;

use crate::exchange::market::MarketSource;
use crate::exchange::paper::PaperExchange;
use crate::exchange::{Clock, PairInfo, SystemClock};
use crate::pair::{Candle, PairSpec};

/// A pair the paper venue lists, with a plausible opening price for the
/// synthetic market.
#[derive(Debug, Clone)]
pub struct PaperPair {
    /// Pair facts as Kraken publishes them.
    pub info: PairInfo,
    /// Default opening price of the synthetic market.
    pub start_price: Decimal,
}

fn pair(
    symbol: &str,
    base: &str,
    price_decimals: u32,
    ordermin: Decimal,
    start_price: Decimal,
) -> PaperPair {
    PaperPair {
        info: PairInfo {
            spec: PairSpec {
                symbol: symbol.into(),
                price_decimals,
                lot_decimals: 8,
                ordermin,
                costmin: Decimal::new(5, 1),
            },
            base: base.into(),
            quote: "ZUSD".into(),
        },
        start_price,
    }
}

/// Every pair the paper venue lists.
#[must_use]
pub fn paper_pairs() -> Vec<PaperPair> {
    vec![
        pair("XDGUSD", "XXDG", 7, Decimal::from(50), Decimal::new(1, 1)),
        pair(
            "XBTUSD",
            "XXBT",
            1,
            Decimal::new(1, 4),
            Decimal::from(60_000),
        ),
        pair(
            "ETHUSD",
            "XETH",
            2,
            Decimal::new(2, 3),
            Decimal::from(3_000),
        ),
    ]
}

/// The listed pair called `symbol`, if any.
#[must_use]
pub fn find_pair(symbol: &str) -> Option<PaperPair> {
    paper_pairs()
        .into_iter()
        .find(|p| p.info.spec.symbol == symbol)
}

/// Real-time gap between two candles at `speed` simulated seconds per real
/// second (never below 1 ms, 60 s candles when the gap is unknown).
fn real_gap(prev: Option<&Candle>, next: &Candle, speed: u32) -> Duration {
    let sim_secs = prev.map_or(60, |p| (next.time - p.time).max(1));
    let ms = u64::try_from(sim_secs).unwrap_or(60) * 1000 / u64::from(speed.max(1));
    Duration::from_millis(ms.max(1))
}

/// Spawns the market driver: feeds `market` to `exchange` one candle at a
/// time, spaced by the candles' own spacing divided by `speed`, but never a
/// candle that has not closed yet by the wall clock: simulated time never
/// runs ahead of real time (the ledger refuses times far in the future), so
/// once a fast run catches up with the present it goes on in real time.
/// Stops (prices frozen) when the source is exhausted or fails. `first` is
/// the candle already fed at start-up.
pub fn spawn_driver(
    exchange: PaperExchange,
    mut market: Box<dyn MarketSource>,
    first: Candle,
    speed: u32,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut prev = first;
        loop {
            let next = match market.next_candle() {
                Ok(Some(c)) => c,
                Ok(None) => {
                    tracing::info!("market source exhausted; prices frozen");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "market source failed; prices frozen");
                    return;
                }
            };
            tokio::time::sleep(real_gap(Some(&prev), &next, speed)).await;
            let closes_ms = (next.time + (next.time - prev.time).max(1)).saturating_mul(1000);
            let ahead_ms = closes_ms - SystemClock.now_ms();
            if ahead_ms > 0 {
                tokio::time::sleep(Duration::from_millis(ahead_ms.unsigned_abs())).await;
            }
            let fills = exchange.step(&next);
            if !fills.is_empty() {
                tracing::debug!(fills = fills.len(), close = %next.close, "paper fills");
            }
            prev = next;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: the listed pairs carry Kraken's XDGUSD facts and unknown
    /// symbols are not listed.
    #[test]
    fn lists_xdgusd_with_kraken_facts() {
        let p = find_pair("XDGUSD").unwrap();
        assert_eq!(p.info.spec.ordermin, Decimal::from(50));
        assert_eq!(p.info.spec.price_decimals, 7);
        assert!(find_pair("NOPEUSD").is_none());
    }

    /// Proves: candle spacing is divided by the speed (60 s at 600x is
    /// 100 ms) and never reaches zero.
    #[test]
    fn gap_scales_with_speed() {
        let c = |time| Candle {
            time,
            open: Decimal::ONE,
            high: Decimal::ONE,
            low: Decimal::ONE,
            close: Decimal::ONE,
            volume: Decimal::ONE,
        };
        assert_eq!(
            real_gap(Some(&c(0)), &c(60), 600),
            Duration::from_millis(100)
        );
        assert_eq!(
            real_gap(Some(&c(0)), &c(60), 1_000_000),
            Duration::from_millis(1)
        );
    }
}
