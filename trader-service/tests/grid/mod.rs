//! The grid every runtime test trades: XDGUSD on the paper exchange with
//! Kraken's pair facts and fees, and seeded synthetic markets.

#![allow(dead_code, missing_docs)]

use rust_decimal_macros::dec;
use trader_service::exchange::PairInfo;
use trader_service::exchange::market::{MarketSource, SyntheticConfig, SyntheticMarket};
use trader_service::exchange::paper::PaperConfig;
use trader_service::pair::{Candle, FeeSchedule, PairSpec};

/// XDGUSD as Kraken lists it.
pub fn spec() -> PairSpec {
    PairSpec {
        symbol: "XDGUSD".into(),
        price_decimals: 7,
        lot_decimals: 8,
        ordermin: dec!(50),
        costmin: dec!(0.5),
    }
}

/// [`spec`] with Kraken's asset names.
pub fn pair() -> PairInfo {
    PairInfo {
        spec: spec(),
        base: "XXDG".into(),
        quote: "ZUSD".into(),
    }
}

/// A paper account with room for every grid the tests run, accepting at
/// most `max_open_orders` resting orders.
pub fn paper_config(max_open_orders: usize) -> PaperConfig {
    PaperConfig {
        pair: pair(),
        fees: FeeSchedule {
            maker_pct: dec!(0.25),
            taker_pct: dec!(0.40),
        },
        initial_base: dec!(100000),
        initial_quote: dec!(10000),
        max_open_orders,
        fill_participation: None,
    }
}

/// `n` one-minute candles of a seeded market moving 0.2 % per candle.
pub fn candles(n: usize, seed: u64) -> Vec<Candle> {
    market(
        n,
        SyntheticConfig {
            seed,
            sigma_per_candle: dec!(0.002),
            ..SyntheticConfig::default()
        },
    )
}

/// Like [`candles`], with shorter regimes, so ranges and trends (and with
/// them fills and stuck exits) alternate within a few hundred candles.
pub fn choppy_candles(n: usize, seed: u64) -> Vec<Candle> {
    market(
        n,
        SyntheticConfig {
            seed,
            sigma_per_candle: dec!(0.002),
            ranging_candles: (200, 600),
            trending_candles: (60, 200),
            ..SyntheticConfig::default()
        },
    )
}

fn market(n: usize, config: SyntheticConfig) -> Vec<Candle> {
    let mut m = SyntheticMarket::new(config);
    (0..n)
        .map(|_| {
            m.next_candle()
                .expect("synthetic candle")
                .expect("endless market")
        })
        .collect()
}

/// A one-minute candle opening at `time` with a volume that fills every
/// order it crosses.
pub fn candle(
    time: i64,
    open: rust_decimal::Decimal,
    high: rust_decimal::Decimal,
    low: rust_decimal::Decimal,
    close: rust_decimal::Decimal,
) -> Candle {
    Candle {
        time,
        open,
        high,
        low,
        close,
        volume: dec!(1000),
    }
}
