//! Exchange-neutral request and response types shared by the trait, both
//! implementations and the simulator.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::pair::{PairSpec, Side};

/// Unix time in milliseconds: fine enough for order and trade timestamps,
/// integral so comparisons are exact.
pub type UnixMillis = i64;

/// A pair's trading constraints plus the exchange's asset ids for its base
/// and quote, which the trader needs to read the right balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairInfo {
    /// Tick, lot and minimums.
    pub spec: PairSpec,
    /// Exchange asset id of the base asset (e.g. `XXDG`).
    pub base: String,
    /// Exchange asset id of the quote asset (e.g. `ZUSD`).
    pub quote: String,
}

/// How an order executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderKind {
    /// Rests at `price`; with `post_only` it is rejected rather than taking
    /// liquidity, which guarantees the maker fee.
    Limit {
        /// Limit price (already on the tick grid).
        price: Decimal,
        /// Reject instead of crossing the book.
        post_only: bool,
    },
    /// Fills immediately at the market with the taker fee.
    Market,
}

/// An order the trader wants placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Exchange pair symbol, e.g. `XDGUSD`.
    pub pair: String,
    /// Buy or sell.
    pub side: Side,
    /// Limit (optionally post-only) or market.
    pub kind: OrderKind,
    /// Base volume (already on the lot grid).
    pub volume: Decimal,
    /// Numeric tag grouping orders (e.g. a slot id); Kraken filters by it.
    pub userref: i32,
    /// Unique client order id: the idempotency key that makes a second
    /// placement after an ambiguous failure detectable.
    pub client_order_id: String,
}

/// Acknowledgement of a placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAck {
    /// Exchange order id.
    pub txid: String,
    /// Echo of the request's client order id.
    pub client_order_id: String,
    /// True when the order was found by reconciliation after an ambiguous
    /// failure rather than acknowledged directly.
    pub reconciled: bool,
}

/// Lifecycle state, as Kraken names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Accepted, not yet on the book.
    Pending,
    /// Resting on the book (possibly partially filled).
    Open,
    /// Fully filled.
    Closed,
    /// Cancelled (possibly after a partial fill).
    Canceled,
    /// Expired (possibly after a partial fill).
    Expired,
}

impl OrderStatus {
    /// Kraken's wire spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
        }
    }

    /// Parses Kraken's spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "open" => Self::Open,
            "closed" => Self::Closed,
            "canceled" | "cancelled" => Self::Canceled,
            "expired" => Self::Expired,
            _ => return None,
        })
    }

    /// True for states that can still fill.
    #[must_use]
    pub fn is_live(self) -> bool {
        matches!(self, Self::Pending | Self::Open)
    }
}

/// Order type as reported by the exchange; foreign orders on the account
/// (stops, trailing stops) are kept as text rather than rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderType {
    /// A limit order.
    Limit,
    /// A market order.
    Market,
    /// Any other Kraken order type, verbatim.
    Other(String),
}

/// An order's full state with execution details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInfo {
    /// Exchange order id.
    pub txid: String,
    /// Pair as the exchange spells it in the order description.
    pub pair: String,
    /// Lifecycle state.
    pub status: OrderStatus,
    /// Buy or sell.
    pub side: Side,
    /// Limit, market or other.
    pub order_type: OrderType,
    /// Limit price, if the order has one.
    pub limit_price: Option<Decimal>,
    /// True when the order carries the post-only flag.
    pub post_only: bool,
    /// Ordered base volume.
    pub volume: Decimal,
    /// Executed base volume.
    pub vol_exec: Decimal,
    /// Executed quote cost.
    pub cost: Decimal,
    /// Fee paid, in quote.
    pub fee: Decimal,
    /// Average execution price, when anything executed.
    pub avg_price: Option<Decimal>,
    /// User reference tag.
    pub userref: i32,
    /// Client order id, when the order was placed with one.
    pub cl_ord_id: Option<String>,
    /// When the order was opened.
    pub opened_at: UnixMillis,
    /// When the order closed, if it did.
    pub closed_at: Option<UnixMillis>,
    /// Exchange's reason for cancel/expiry, if any.
    pub reason: Option<String>,
}

impl OrderInfo {
    /// Base volume still to execute.
    #[must_use]
    pub fn remaining(&self) -> Decimal {
        self.volume - self.vol_exec
    }
}

/// Best prices and last trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticker {
    /// Best bid.
    pub bid: Decimal,
    /// Best ask.
    pub ask: Decimal,
    /// Last trade price.
    pub last: Decimal,
}

/// Balances per exchange asset id (e.g. `XXDG`, `ZUSD`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    /// Total balance per asset.
    pub assets: BTreeMap<String, Decimal>,
}

impl Balances {
    /// Balance of `asset`, zero when absent.
    #[must_use]
    pub fn get(&self, asset: &str) -> Decimal {
        self.assets.get(asset).copied().unwrap_or_default()
    }
}

/// One execution of one of the account's orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    /// Exchange trade id.
    pub trade_id: String,
    /// The order that executed.
    pub order_txid: String,
    /// Pair as the exchange spells it.
    pub pair: String,
    /// Buy or sell.
    pub side: Side,
    /// Execution price.
    pub price: Decimal,
    /// Executed base volume.
    pub volume: Decimal,
    /// Quote cost (price x volume).
    pub cost: Decimal,
    /// Fee paid, in quote.
    pub fee: Decimal,
    /// True when the order was the resting side.
    pub maker: bool,
    /// Execution time.
    pub time: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_knows_liveness() {
        for s in [
            OrderStatus::Pending,
            OrderStatus::Open,
            OrderStatus::Closed,
            OrderStatus::Canceled,
            OrderStatus::Expired,
        ] {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert!(OrderStatus::Open.is_live());
        assert!(!OrderStatus::Closed.is_live());
        assert_eq!(OrderStatus::parse("bogus"), None);
    }
}
