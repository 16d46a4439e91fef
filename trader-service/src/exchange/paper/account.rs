//! The paper account's configuration and the values the matching core
//! reports (executions, free/locked balances), kept apart from the matching
//! logic so backtests can use them without reading the book's internals.

use rust_decimal::Decimal;

use super::super::types::{PairInfo, UnixMillis};
use crate::pair::{FeeSchedule, Side};

/// Static configuration of a paper account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperConfig {
    /// The single pair this book trades, with its constraints.
    pub pair: PairInfo,
    /// Maker/taker fees in percent.
    pub fees: FeeSchedule,
    /// Starting base balance.
    pub initial_base: Decimal,
    /// Starting quote balance.
    pub initial_quote: Decimal,
    /// Open-order limit for the pair (Kraken starter tier: 60).
    pub max_open_orders: usize,
    /// When set, a resting order fills at most this fraction of the candle's
    /// volume per candle (rounded down to the lot), modelling partial fills.
    pub fill_participation: Option<Decimal>,
}

/// One execution produced by the book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fill {
    /// Order that executed.
    pub txid: String,
    /// Buy or sell.
    pub side: Side,
    /// Execution price (the limit price for resting orders).
    pub price: Decimal,
    /// Executed base volume.
    pub volume: Decimal,
    /// Quote cost, price × volume.
    pub cost: Decimal,
    /// Fee charged in quote.
    pub fee: Decimal,
    /// True for resting (maker) executions.
    pub maker: bool,
    /// Execution time.
    pub time: UnixMillis,
    /// True when this execution completed the order.
    pub order_closed: bool,
}

/// Free and locked amounts of both assets, for accounting checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountSnapshot {
    /// Base not committed to orders.
    pub base_free: Decimal,
    /// Base committed to resting sells.
    pub base_locked: Decimal,
    /// Quote not committed to orders.
    pub quote_free: Decimal,
    /// Quote committed to resting buys (cost plus maker fee).
    pub quote_locked: Decimal,
}
