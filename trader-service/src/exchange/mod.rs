//! The exchange layer: one async [`Exchange`] trait with two implementations
//! that share the trader's code path — the Kraken REST client for production
//! and the in-process [`paper::PaperExchange`] for backtests and demos — plus
//! market sources and a Kraken-compatible HTTP simulator so the real client
//! can be exercised end to end without internet.

pub mod clock;
pub mod error;
pub mod kraken;
pub mod market;
pub mod metered;
pub mod paper;
pub mod sim_server;
pub mod types;

use std::future::Future;

pub use clock::{Clock, SimClock, SystemClock};
pub use error::{ErrorKind, ExchangeError};
pub use types::{
    Balances, OrderAck, OrderInfo, OrderKind, OrderRequest, OrderStatus, OrderType, PairInfo,
    Ticker, Trade, UnixMillis,
};

use crate::pair::{Candle, FeeSchedule};

/// What the trader needs from an exchange, and nothing more.
///
/// Both implementations honour the same error contract ([`ExchangeError`]) so
/// the trader's retry / reconcile decisions never depend on which exchange is
/// behind the trait. Futures are `Send` so the trader can hold an
/// implementation generically inside a `tokio` task.
pub trait Exchange: Send + Sync {
    /// Pair constraints (tick, lot, `ordermin`, `costmin`) and asset names,
    /// read from the exchange at start-up rather than hard-coded.
    fn pair_info(&self, pair: &str)
    -> impl Future<Output = Result<PairInfo, ExchangeError>> + Send;

    /// The account's current maker/taker fee tier for the pair.
    fn fees(&self, pair: &str) -> impl Future<Output = Result<FeeSchedule, ExchangeError>> + Send;

    /// Best bid/ask and last trade price.
    fn ticker(&self, pair: &str) -> impl Future<Output = Result<Ticker, ExchangeError>> + Send;

    /// OHLC candles of `interval_min` minutes, optionally only those newer
    /// than `since` (unix seconds), oldest first.
    fn ohlc(
        &self,
        pair: &str,
        interval_min: u32,
        since: Option<i64>,
    ) -> impl Future<Output = Result<Vec<Candle>, ExchangeError>> + Send;

    /// Total balances per asset (free + locked in open orders, as Kraken
    /// reports them).
    fn balances(&self) -> impl Future<Output = Result<Balances, ExchangeError>> + Send;

    /// Places an order, **at most once** per call: a request that may have
    /// reached the matching engine (timeout, lost response, 5xx,
    /// `EService:*`, unreadable answer) is never sent again; the call
    /// returns [`ExchangeError::Ambiguous`] and the caller, which keeps the
    /// intent durably, resolves it by `cl_ord_id` over open *and* closed
    /// orders across the exchange's stale window before placing again
    /// (the runtime's placement rule). A refusal because the `cl_ord_id`
    /// is already open is [`ExchangeError::DuplicateOrder`]: the order
    /// exists. Only failures that certainly had no effect are retried.
    fn add_order(
        &self,
        req: &OrderRequest,
    ) -> impl Future<Output = Result<OrderAck, ExchangeError>> + Send;

    /// Cancels an open order. An order that is already closed or unknown
    /// yields [`ExchangeError::UnknownOrder`]: the caller should query it to
    /// learn whether it filled.
    fn cancel_order(&self, txid: &str) -> impl Future<Output = Result<(), ExchangeError>> + Send;

    /// Replaces an open order by cancelling it and placing `replacement`
    /// (cancel-replace). If the cancel fails (e.g. the order filled in the
    /// meantime) nothing is placed and the cancel error is returned, so a
    /// filled exit is never doubled.
    fn cancel_replace(
        &self,
        txid: &str,
        replacement: &OrderRequest,
    ) -> impl Future<Output = Result<OrderAck, ExchangeError>> + Send {
        async move {
            self.cancel_order(txid).await?;
            self.add_order(replacement).await
        }
    }

    /// Orders by txid (open or closed), with execution details. Unknown
    /// txids are simply absent from the result.
    fn query_orders(
        &self,
        txids: &[String],
    ) -> impl Future<Output = Result<Vec<OrderInfo>, ExchangeError>> + Send;

    /// The account's orders that closed (filled, cancelled, expired) at or
    /// after `since` (unix milliseconds, exchange time), with execution
    /// details and `cl_ord_id`: what lets an ambiguous placement that
    /// filled at once, or a late copy of one, be found.
    ///
    /// The default derives them from the account's trades (so it sees only
    /// orders that executed); real implementations list closed orders.
    fn closed_orders(
        &self,
        since: UnixMillis,
    ) -> impl Future<Output = Result<Vec<OrderInfo>, ExchangeError>> + Send {
        async move {
            let trades = self.trades_since(since).await?;
            let mut txids: Vec<String> = trades.into_iter().map(|t| t.order_txid).collect();
            txids.sort();
            txids.dedup();
            let orders = self.query_orders(&txids).await?;
            Ok(orders.into_iter().filter(|o| !o.status.is_live()).collect())
        }
    }

    /// The exchange's own clock (unix milliseconds), when it publishes one;
    /// `Ok(None)` when it does not. Fill, order and candle times are
    /// stamped on this clock, so the runtime measures its offset from the
    /// local clock and takes "now" (ages, bands) from it.
    fn server_time(
        &self,
    ) -> impl Future<Output = Result<Option<UnixMillis>, ExchangeError>> + Send {
        async { Ok(None) }
    }

    /// All currently open orders of the account.
    fn open_orders(&self) -> impl Future<Output = Result<Vec<OrderInfo>, ExchangeError>> + Send;

    /// The mark of the request counter that must keep increasing across
    /// processes (Kraken's nonce): at least every value issued so far and
    /// the clock's current reading. `None` when the exchange has no such
    /// counter. The runtime keeps a lease above it in its store, see
    /// [`crate::runtime::nonce_lease`].
    fn nonce_mark(&self) -> Option<u64> {
        None
    }

    /// Makes every later request counter value exceed `floor` (a lease an
    /// earlier process stored), whatever the clock says.
    fn resume_nonce_after(&self, floor: u64) {
        let _ = floor;
    }

    /// The account's own trades strictly after `since` (unix milliseconds),
    /// oldest first.
    fn trades_since(
        &self,
        since: UnixMillis,
    ) -> impl Future<Output = Result<Vec<Trade>, ExchangeError>> + Send;
}
