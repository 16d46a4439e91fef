//! A paper exchange with injected faults, for the runtime suites: a
//! placement or a cancel that never answers (a crash mid-call), refused
//! exits, and exits reported better than their limit.

#![allow(dead_code, missing_docs)]

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use rust_decimal_macros::dec;
use trader_service::engine::{OrderId, OrderRole};
use trader_service::exchange::paper::PaperExchange;
use trader_service::exchange::{
    Balances, Exchange, ExchangeError, OrderAck, OrderInfo, OrderKind, OrderRequest, PairInfo,
    Ticker, Trade,
};
use trader_service::pair::{Candle, FeeSchedule, Side};

/// Wraps the paper exchange; `mode` 1 = `add_order` places then never
/// answers (crash after the exchange accepted), 2 = never answers without
/// placing (crash between write-ahead commit and the call), 3 = refuses
/// every exit for lack of funds (entries go through), 4 = reports exits
/// as executed 0.2 % better than their limit (price improvement), 5 =
/// never answers a placement of an exit (a crash between the cancel and the
/// re-placement of a reprice), entries go through, 6 = refuses market orders
/// for lack of funds, 7 = places a market order, then loses the answer
/// (ambiguous: the caller must look it up, never send it again), 8 = every
/// cancel fails transiently (a reprice stays in flight across loops), 9 =
/// a cancel takes effect on the exchange, then its answer never comes (a
/// crash between the cancel and its confirmation).
#[derive(Clone)]
pub struct Faulty {
    pub inner: PaperExchange,
    pub mode: Arc<AtomicU8>,
    /// Every txid the caller asked to cancel, in order (whatever the
    /// answer): how often one order was cancelled.
    pub cancels: Arc<Mutex<Vec<String>>>,
}

impl Exchange for Faulty {
    async fn pair_info(&self, p: &str) -> Result<PairInfo, ExchangeError> {
        self.inner.pair_info(p).await
    }
    async fn fees(&self, p: &str) -> Result<FeeSchedule, ExchangeError> {
        self.inner.fees(p).await
    }
    async fn ticker(&self, p: &str) -> Result<Ticker, ExchangeError> {
        self.inner.ticker(p).await
    }
    async fn ohlc(&self, p: &str, i: u32, s: Option<i64>) -> Result<Vec<Candle>, ExchangeError> {
        self.inner.ohlc(p, i, s).await
    }
    async fn balances(&self) -> Result<Balances, ExchangeError> {
        self.inner.balances().await
    }
    async fn add_order(&self, req: &OrderRequest) -> Result<OrderAck, ExchangeError> {
        match self.mode.load(Ordering::SeqCst) {
            1 => {
                let _ = self.inner.add_order(req).await;
                std::future::pending().await
            }
            2 => std::future::pending().await,
            5 if is_exit(&req.client_order_id) => std::future::pending().await,
            6 if req.kind == OrderKind::Market => Err(ExchangeError::InsufficientFunds {
                message: "EOrder:Insufficient funds".into(),
            }),
            7 if req.kind == OrderKind::Market => {
                let _ = self.inner.add_order(req).await;
                Err(ExchangeError::Ambiguous {
                    message: "timeout after send".into(),
                })
            }
            3 if is_exit(&req.client_order_id) => Err(ExchangeError::InsufficientFunds {
                message: "EOrder:Insufficient funds".into(),
            }),
            _ => self.inner.add_order(req).await,
        }
    }
    async fn cancel_order(&self, t: &str) -> Result<(), ExchangeError> {
        self.cancels.lock().unwrap().push(t.to_owned());
        match self.mode.load(Ordering::SeqCst) {
            8 => Err(ExchangeError::Retryable {
                message: "EService:Busy".into(),
            }),
            9 => {
                let _ = self.inner.cancel_order(t).await;
                std::future::pending().await
            }
            _ => self.inner.cancel_order(t).await,
        }
    }
    async fn query_orders(&self, t: &[String]) -> Result<Vec<OrderInfo>, ExchangeError> {
        let mut infos = self.inner.query_orders(t).await?;
        if self.mode.load(Ordering::SeqCst) == 4 {
            infos.iter_mut().for_each(improve_exit);
        }
        Ok(infos)
    }
    async fn open_orders(&self) -> Result<Vec<OrderInfo>, ExchangeError> {
        self.inner.open_orders().await
    }
    async fn trades_since(&self, s: i64) -> Result<Vec<Trade>, ExchangeError> {
        self.inner.trades_since(s).await
    }
}

impl Faulty {
    /// The paper exchange in `mode` (0: no fault).
    pub fn new(inner: PaperExchange, mode: u8) -> Self {
        Self::sharing(inner, Arc::new(AtomicU8::new(mode)))
    }

    /// The paper exchange with its fault switched through `mode` (shared
    /// with the test).
    pub fn sharing(inner: PaperExchange, mode: Arc<AtomicU8>) -> Self {
        Self {
            inner,
            mode,
            cancels: Arc::default(),
        }
    }

    /// The txids asked to cancel so far, in order.
    pub fn cancelled(&self) -> Vec<String> {
        self.cancels.lock().unwrap().clone()
    }

    /// Switches the fault.
    pub fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// Whether a `cl_ord_id` names one of the engine's exits.
pub fn is_exit(cl_ord_id: &str) -> bool {
    cl_ord_id
        .parse::<OrderId>()
        .is_ok_and(|id| id.role == OrderRole::Exit)
}

/// Price improvement on an exit: a sell executed higher, a buy lower.
pub fn improve_exit(o: &mut OrderInfo) {
    if !o.cl_ord_id.as_deref().is_some_and(is_exit) {
        return;
    }
    let factor = match o.side {
        Side::Sell => dec!(1.002),
        Side::Buy => dec!(0.998),
    };
    o.cost *= factor;
    o.avg_price = o.avg_price.map(|p| p * factor);
}
