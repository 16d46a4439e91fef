//! [`Metered`]: any [`Exchange`] with its failed calls counted by call and
//! [`ErrorKind`](super::ErrorKind) into the trader's metrics. A decorator,
//! so both exchanges are counted the same way and neither knows about
//! metrics.

use std::future::Future;
use std::sync::Arc;

use super::{
    Balances, Exchange, ExchangeError, OrderAck, OrderInfo, OrderRequest, PairInfo, Ticker, Trade,
    UnixMillis,
};
use crate::metrics::TraderMetrics;
use crate::pair::{Candle, FeeSchedule};

/// An exchange whose errors are counted.
#[derive(Debug, Clone)]
pub struct Metered<E> {
    inner: E,
    metrics: Arc<TraderMetrics>,
}

impl<E> Metered<E> {
    /// Counts the errors of `inner` into `metrics`.
    pub fn new(inner: E, metrics: Arc<TraderMetrics>) -> Self {
        Self { inner, metrics }
    }

    /// Awaits `call`, counting its error under `name`.
    async fn count<T>(
        &self,
        name: &str,
        call: impl Future<Output = Result<T, ExchangeError>>,
    ) -> Result<T, ExchangeError> {
        let result = call.await;
        if let Err(e) = &result {
            self.metrics.exchange_error(name, e.kind());
        }
        result
    }
}

impl<E: Exchange> Exchange for Metered<E> {
    fn pair_info(
        &self,
        pair: &str,
    ) -> impl Future<Output = Result<PairInfo, ExchangeError>> + Send {
        self.count("pair_info", self.inner.pair_info(pair))
    }

    fn fees(&self, pair: &str) -> impl Future<Output = Result<FeeSchedule, ExchangeError>> + Send {
        self.count("fees", self.inner.fees(pair))
    }

    fn ticker(&self, pair: &str) -> impl Future<Output = Result<Ticker, ExchangeError>> + Send {
        self.count("ticker", self.inner.ticker(pair))
    }

    fn ohlc(
        &self,
        pair: &str,
        interval_min: u32,
        since: Option<i64>,
    ) -> impl Future<Output = Result<Vec<Candle>, ExchangeError>> + Send {
        self.count("ohlc", self.inner.ohlc(pair, interval_min, since))
    }

    fn balances(&self) -> impl Future<Output = Result<Balances, ExchangeError>> + Send {
        self.count("balances", self.inner.balances())
    }

    fn add_order(
        &self,
        req: &OrderRequest,
    ) -> impl Future<Output = Result<OrderAck, ExchangeError>> + Send {
        self.count("add_order", self.inner.add_order(req))
    }

    fn cancel_order(&self, txid: &str) -> impl Future<Output = Result<(), ExchangeError>> + Send {
        self.count("cancel_order", self.inner.cancel_order(txid))
    }

    fn cancel_replace(
        &self,
        txid: &str,
        replacement: &OrderRequest,
    ) -> impl Future<Output = Result<OrderAck, ExchangeError>> + Send {
        self.count(
            "cancel_replace",
            self.inner.cancel_replace(txid, replacement),
        )
    }

    fn query_orders(
        &self,
        txids: &[String],
    ) -> impl Future<Output = Result<Vec<OrderInfo>, ExchangeError>> + Send {
        self.count("query_orders", self.inner.query_orders(txids))
    }

    fn closed_orders(
        &self,
        since: UnixMillis,
    ) -> impl Future<Output = Result<Vec<OrderInfo>, ExchangeError>> + Send {
        self.count("closed_orders", self.inner.closed_orders(since))
    }

    fn server_time(
        &self,
    ) -> impl Future<Output = Result<Option<UnixMillis>, ExchangeError>> + Send {
        self.count("server_time", self.inner.server_time())
    }

    fn open_orders(&self) -> impl Future<Output = Result<Vec<OrderInfo>, ExchangeError>> + Send {
        self.count("open_orders", self.inner.open_orders())
    }

    fn nonce_mark(&self) -> Option<u64> {
        self.inner.nonce_mark()
    }

    fn resume_nonce_after(&self, floor: u64) {
        self.inner.resume_nonce_after(floor);
    }

    fn trades_since(
        &self,
        since: UnixMillis,
    ) -> impl Future<Output = Result<Vec<Trade>, ExchangeError>> + Send {
        self.count("trades_since", self.inner.trades_since(since))
    }
}
