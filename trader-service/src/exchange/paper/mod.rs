//! The paper exchange: a deterministic in-process exchange implementing the
//! same [`Exchange`] trait as the Kraken client, so backtests, demos and
//! production share one code path.
//!
//! [`PaperBook`] is the synchronous core a backtest drives at CPU speed;
//! [`PaperExchange`] wraps it behind a lock with a caller-controlled
//! [`SimClock`] for use from async code.

mod account;
mod book;
mod txid;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

pub use account::{AccountSnapshot, Fill, PaperConfig};
pub use book::{PaperBook, SPLIT_HOLD_CANDLES};
pub use txid::{order_txid, trade_txid};

use super::Exchange;
use super::clock::{Clock, SimClock};
use super::error::ExchangeError;
use super::types::{
    Balances, OrderAck, OrderInfo, OrderRequest, PairInfo, Ticker, Trade, UnixMillis,
};
use crate::pair::{Candle, FeeSchedule};

/// How many past candles the paper exchange keeps for `ohlc` (Kraken serves
/// 720).
const HISTORY: usize = 720;

#[derive(Debug)]
struct Inner {
    book: PaperBook,
    history: VecDeque<Candle>,
}

/// Async, shareable paper exchange. Cloning shares the same book.
#[derive(Debug, Clone)]
pub struct PaperExchange {
    inner: Arc<Mutex<Inner>>,
    clock: SimClock,
}

impl PaperExchange {
    /// A paper exchange with the given account, whose "now" is `clock`.
    #[must_use]
    pub fn new(config: PaperConfig, clock: SimClock) -> Self {
        let book = PaperBook::new(config, clock.now_ms());
        Self {
            inner: Arc::new(Mutex::new(Inner {
                book,
                history: VecDeque::with_capacity(HISTORY),
            })),
            clock,
        }
    }

    /// The clock the exchange reads; advance it to move simulated time.
    #[must_use]
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the book half-updated
        // in a way later calls could not tolerate, so recover the guard.
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.book.set_now(self.clock.now_ms());
        g
    }

    /// Feeds one candle: advances the clock to the candle's end, records it
    /// for `ohlc`, and returns the executions it caused.
    pub fn step(&self, candle: &Candle) -> Vec<Fill> {
        let mut g = self.lock();
        let fills = g.book.step(candle).to_vec();
        if g.history.len() == HISTORY {
            g.history.pop_front();
        }
        g.history.push_back(*candle);
        // The candle's close: the book's time after replaying it.
        let now = g.book.now();
        drop(g);
        self.clock.set(now);
        fills
    }

    /// Candles seen so far (the last 720), only those after `since` (unix
    /// seconds) when given.
    #[must_use]
    pub fn ohlc_history(&self, since: Option<i64>) -> Vec<Candle> {
        self.lock()
            .history
            .iter()
            .filter(|c| since.is_none_or(|s| c.time > s))
            .copied()
            .collect()
    }

    /// Runs `f` with exclusive access to the book (inspection, seeding).
    pub fn with_book<R>(&self, f: impl FnOnce(&mut PaperBook) -> R) -> R {
        f(&mut self.lock().book)
    }
}

/// The paper exchange trades one pair; any other symbol is rejected the way
/// Kraken rejects an unknown pair.
fn check_pair(pair: &str, g: &Inner) -> Result<(), ExchangeError> {
    if pair == g.book.config().pair.spec.symbol {
        Ok(())
    } else {
        Err(ExchangeError::invalid("EQuery:Unknown asset pair"))
    }
}

impl Exchange for PaperExchange {
    async fn pair_info(&self, pair: &str) -> Result<PairInfo, ExchangeError> {
        let g = self.lock();
        check_pair(pair, &g)?;
        Ok(g.book.config().pair.clone())
    }

    async fn fees(&self, pair: &str) -> Result<FeeSchedule, ExchangeError> {
        let g = self.lock();
        check_pair(pair, &g)?;
        Ok(g.book.config().fees)
    }

    async fn ticker(&self, pair: &str) -> Result<Ticker, ExchangeError> {
        let g = self.lock();
        check_pair(pair, &g)?;
        g.book.ticker().ok_or_else(|| ExchangeError::Retryable {
            message: "no market data yet".into(),
        })
    }

    /// Serves the market source's own candles (the interval is whatever the
    /// source produces, normally 1 minute); `interval_min` is not resampled.
    async fn ohlc(
        &self,
        pair: &str,
        _interval_min: u32,
        since: Option<i64>,
    ) -> Result<Vec<Candle>, ExchangeError> {
        check_pair(pair, &self.lock())?;
        Ok(self.ohlc_history(since))
    }

    async fn balances(&self) -> Result<Balances, ExchangeError> {
        Ok(self.lock().book.balances())
    }

    async fn add_order(&self, req: &OrderRequest) -> Result<OrderAck, ExchangeError> {
        let txid = self.lock().book.add_order(req)?;
        Ok(OrderAck {
            txid,
            client_order_id: req.client_order_id.clone(),
            reconciled: false,
        })
    }

    async fn cancel_order(&self, txid: &str) -> Result<(), ExchangeError> {
        self.lock().book.cancel(txid)
    }

    async fn query_orders(&self, txids: &[String]) -> Result<Vec<OrderInfo>, ExchangeError> {
        let g = self.lock();
        Ok(txids.iter().filter_map(|t| g.book.order(t)).collect())
    }

    async fn open_orders(&self) -> Result<Vec<OrderInfo>, ExchangeError> {
        Ok(self.lock().book.open_orders())
    }

    /// The simulated clock every fill and order of this book is stamped on.
    async fn server_time(&self) -> Result<Option<UnixMillis>, ExchangeError> {
        Ok(Some(self.clock.now_ms()))
    }

    async fn closed_orders(&self, since: UnixMillis) -> Result<Vec<OrderInfo>, ExchangeError> {
        let mut orders = self.lock().book.closed_orders();
        orders.retain(|o| o.closed_at.unwrap_or(o.opened_at) >= since);
        Ok(orders)
    }

    async fn trades_since(&self, since: UnixMillis) -> Result<Vec<Trade>, ExchangeError> {
        Ok(self.lock().book.trades_since(since))
    }
}

/// The XDG/USD paper account of the book's tests, for the crate's other
/// unit tests.
#[cfg(test)]
pub(crate) fn test_config() -> PaperConfig {
    book::tests::config()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[tokio::test]
    async fn server_time_is_the_simulated_clock() {
        let config = PaperConfig {
            initial_quote: dec!(100),
            max_open_orders: 10,
            ..book::tests::config()
        };
        let clock = SimClock::new(1_640_995_200_000);
        let ex = PaperExchange::new(config, clock.clone());
        assert_eq!(ex.server_time().await.unwrap(), Some(1_640_995_200_000));
        clock.advance(90_000);
        assert_eq!(ex.server_time().await.unwrap(), Some(1_640_995_290_000));
    }
}
