//! A Kraken-compatible HTTP simulator: the paper exchange behind Kraken's
//! REST paths and envelope, with `API-Sign` verification, the nonce rule,
//! the REST and trading rate counters, Kraken's error strings, and fault
//! injection. Any Kraken client can drive it, which is how our own client is
//! tested end to end without internet.
//!
//! Control endpoints (unauthenticated; bind the simulator to loopback):
//! `POST /sim/faults` with a [`FaultRule`] JSON body queues a fault,
//! `POST /sim/step` advances the market by one candle, and `GET /sim/orders`
//! lists every order ever placed (`{"open": {..}, "closed": {..}}` keyed by
//! txid, Kraken's order objects), so tests can audit the book without
//! signing or paging through `ClosedOrders`.

mod faults;
mod render;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

pub use faults::{Fault, FaultQueue, FaultRule};

use super::clock::{Clock, SimClock};
use super::error::ExchangeError;
use super::kraken::limits::{RateLimiter, RateTier, cancel_penalty, rest_cost};
use super::kraken::sign::verify;
use super::kraken::wire::parse_decimal;
use super::market::{MarketError, MarketSource};
use super::paper::{Fill, PaperConfig, PaperExchange};
use super::types::{OrderKind, OrderRequest, OrderStatus};
use crate::pair::{Candle, Side};

/// How the simulator is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The one accepted API key.
    pub api_key: String,
    /// Its decoded secret.
    pub api_secret: Vec<u8>,
    /// The simulated account and pair.
    pub paper: PaperConfig,
    /// Rate-limit tier enforced (at 100 % of its maxima).
    pub tier: RateTier,
    /// Simulated seconds per real second; `None` means the market only
    /// moves via [`SimHandle::step`] / `POST /sim/step`.
    pub speed: Option<u32>,
    /// Candle length of the market source, seconds.
    pub interval_secs: i64,
    /// How long `timeout` and `lost_response` faults hold the request.
    pub hang: Duration,
    /// How long `delayed_accept` waits before processing.
    pub delayed_accept: Duration,
}

/// Request counters, for tests and demos.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Authenticated private calls per method (including rejected ones).
    pub calls: HashMap<String, u64>,
    /// Calls rejected by a rate counter.
    pub rate_limited: u64,
    /// Calls rejected for a bad nonce.
    pub bad_nonce: u64,
}

struct Inner {
    limiter: RateLimiter,
    last_nonce: u64,
    faults: FaultQueue,
    market: Option<Box<dyn MarketSource>>,
    /// Real time each order was placed, for the cancel penalty.
    placed: HashMap<String, Instant>,
    stats: SimStats,
    auto_cl_ord_id: u64,
}

struct Shared {
    cfg: SimConfig,
    exchange: PaperExchange,
    inner: Mutex<Inner>,
    epoch: Instant,
}

impl Shared {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn real_ms(&self) -> i64 {
        i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn step_market(&self) -> Result<Option<Vec<Fill>>, MarketError> {
        let next = match self.inner().market.as_mut() {
            Some(m) => m.next_candle()?,
            None => None,
        };
        Ok(next.map(|c| self.exchange.step(&c)))
    }
}

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    driver: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for a Kraken client (`KRAKEN_API_URL`).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The paper exchange behind the server, for inspection and seeding.
    #[must_use]
    pub fn exchange(&self) -> &PaperExchange {
        &self.shared.exchange
    }

    /// Queues a fault.
    pub fn inject(&self, rule: FaultRule) {
        self.shared.inner().faults.push(rule);
    }

    /// Faults not yet consumed.
    #[must_use]
    pub fn pending_faults(&self) -> u32 {
        self.shared.inner().faults.pending()
    }

    /// Advances the market source by one candle; `None` when exhausted.
    pub fn step(&self) -> Result<Option<Vec<Fill>>, MarketError> {
        self.shared.step_market()
    }

    /// Feeds an explicit candle, bypassing the market source.
    pub fn push_candle(&self, candle: &Candle) -> Vec<Fill> {
        self.shared.exchange.step(candle)
    }

    /// Request counters so far.
    #[must_use]
    pub fn stats(&self) -> SimStats {
        self.shared.inner().stats.clone()
    }

    /// Waits until the server stops (it runs until the process ends or
    /// [`Self::shutdown`] is called from elsewhere).
    pub async fn wait(self) {
        let _ = self.server.await;
    }

    /// Stops the server and the market driver.
    pub fn shutdown(self) {
        self.server.abort();
        if let Some(d) = self.driver {
            d.abort();
        }
    }
}

/// Binds and starts the simulator. The first candle of `market`, if any, is
/// fed immediately so the book has a price.
pub async fn start(
    cfg: SimConfig,
    market: Option<Box<dyn MarketSource>>,
    start_ms: i64,
) -> std::io::Result<SimHandle> {
    let clock = SimClock::new(start_ms);
    let exchange = PaperExchange::new(cfg.paper.clone(), clock);
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            limiter: RateLimiter::new(cfg.tier, 100),
            last_nonce: 0,
            faults: FaultQueue::default(),
            market,
            placed: HashMap::new(),
            stats: SimStats::default(),
            auto_cl_ord_id: 0,
        }),
        exchange,
        epoch: Instant::now(),
        cfg,
    });
    shared
        .step_market()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(shared.cfg.listen).await?;
    let addr = listener.local_addr()?;
    let app = router(Arc::clone(&shared));
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            warn!(error = %e, "simulator server stopped");
        }
    });
    let driver = shared.cfg.speed.filter(|s| *s > 0).map(|speed| {
        let shared = Arc::clone(&shared);
        let period_ms = u64::try_from(shared.cfg.interval_secs.max(1) * 1000).unwrap_or(60_000)
            / u64::from(speed);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(period_ms.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                match shared.step_market() {
                    Ok(Some(fills)) if !fills.is_empty() => {
                        info!(fills = fills.len(), "simulated fills");
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        info!("market source exhausted; prices frozen");
                        break;
                    }
                    Err(e) => {
                        warn!(error = %e, "market source failed; prices frozen");
                        break;
                    }
                }
            }
        })
    });
    info!(%addr, "Kraken simulator listening");
    Ok(SimHandle {
        addr,
        shared,
        server,
        driver,
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/0/public/{method}", get(public).post(public))
        .route("/0/private/{method}", post(private))
        .route("/sim/faults", post(add_fault))
        .route("/sim/step", post(step))
        .route("/sim/orders", get(all_orders))
        .with_state(shared)
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"error": [], "result": result})).into_response()
}

fn err(message: &str) -> Response {
    axum::Json(json!({"error": [message]})).into_response()
}

fn html_502() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        Html("<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"),
    )
        .into_response()
}

async fn add_fault(
    State(s): State<Arc<Shared>>,
    axum::Json(rule): axum::Json<FaultRule>,
) -> Response {
    info!(?rule, "fault queued");
    let mut inner = s.inner();
    inner.faults.push(rule);
    axum::Json(json!({"pending": inner.faults.pending()})).into_response()
}

async fn all_orders(State(s): State<Arc<Shared>>) -> Response {
    let (open, closed) = s
        .exchange
        .with_book(|b| (b.open_orders(), b.closed_orders()));
    axum::Json(json!({
        "open": render::orders(&open),
        "closed": render::orders(&closed),
    }))
    .into_response()
}

async fn step(State(s): State<Arc<Shared>>) -> Response {
    match s.step_market() {
        Ok(Some(fills)) => {
            axum::Json(json!({"stepped": true, "fills": fills.len()})).into_response()
        }
        Ok(None) => axum::Json(json!({"stepped": false})).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn public(
    State(s): State<Arc<Shared>>,
    Path(method): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let cfg = &s.cfg.paper;
    let symbol = cfg.pair.spec.symbol.as_str();
    if let Some(p) = q.get("pair")
        && method != "Time"
        && p != symbol
    {
        return err("EQuery:Unknown asset pair");
    }
    match method.as_str() {
        "Time" => {
            let now = s.exchange.clock().now_ms() / 1000;
            ok(json!({"unixtime": now, "rfc1123": ""}))
        }
        "SystemStatus" => ok(json!({"status": "online", "timestamp": ""})),
        "AssetPairs" => ok(json!({ symbol: render::asset_pair(cfg) })),
        "Ticker" => match s.exchange.with_book(|b| b.ticker()) {
            Some(t) => {
                let p = t.last.normalize().to_string();
                ok(json!({ symbol: {
                    "a": [p, "1", "1.000"], "b": [p, "1", "1.000"], "c": [p, "0"],
                    "v": ["0", "0"], "p": [p, p], "t": [0, 0], "l": [p, p], "h": [p, p], "o": p
                }}))
            }
            None => err("EService:Unavailable"),
        },
        "OHLC" => {
            let since = q.get("since").and_then(|v| v.parse::<i64>().ok());
            let candles = s.exchange.ohlc_history(since);
            let last = candles.last().map_or(0, |c| c.time);
            let rows: Vec<Value> = candles.iter().map(render::ohlc_row).collect();
            ok(json!({ symbol: rows, "last": last }))
        }
        _ => err("EGeneral:Unknown method"),
    }
}

/// Decodes an `application/x-www-form-urlencoded` body.
fn parse_form(body: &str) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn private(
    State(s): State<Arc<Shared>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    let form = parse_form(&body);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if header("API-Key") != s.cfg.api_key {
        return err("EAPI:Invalid key");
    }
    let nonce_text = form.get("nonce").map_or("", String::as_str);
    let path = format!("/0/private/{method}");
    if !verify(
        &s.cfg.api_secret,
        &path,
        nonce_text,
        &body,
        header("API-Sign"),
    ) {
        return err("EAPI:Invalid signature");
    }
    let fault = {
        let mut inner = s.inner();
        *inner.stats.calls.entry(method.clone()).or_default() += 1;
        match nonce_text.parse::<u64>() {
            Ok(n) if n > inner.last_nonce => inner.last_nonce = n,
            _ => {
                inner.stats.bad_nonce += 1;
                return err("EAPI:Invalid nonce");
            }
        }
        inner.faults.take(&method)
    };
    if let Some(f) = fault {
        warn!(method, fault = ?f, "injecting fault");
    }
    match fault {
        None => envelope(s.handle(&method, &form)),
        Some(Fault::ServiceUnavailable) => err("EService:Unavailable"),
        Some(Fault::Http5xxHtml) => html_502(),
        Some(Fault::Timeout) => {
            tokio::time::sleep(s.cfg.hang).await;
            err("EService:Unavailable")
        }
        Some(Fault::LostResponse) => {
            let outcome = s.handle(&method, &form);
            debug!(
                method,
                ok = outcome.is_ok(),
                "processed; dropping the response"
            );
            tokio::time::sleep(s.cfg.hang).await;
            html_502()
        }
        Some(Fault::DelayedAccept) => {
            let s2 = Arc::clone(&s);
            tokio::spawn(async move {
                tokio::time::sleep(s2.cfg.delayed_accept).await;
                let outcome = s2.handle(&method, &form);
                debug!(method, ok = outcome.is_ok(), "delayed request processed");
            });
            err("EService:Busy")
        }
    }
}

fn envelope(r: Result<Value, String>) -> Response {
    match r {
        Ok(v) => ok(v),
        Err(e) => err(&e),
    }
}

fn kraken_msg(e: &ExchangeError) -> String {
    e.message().to_owned()
}

fn arg<'a>(form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, String> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("EGeneral:Invalid arguments:{name}"))
}

fn dec_arg(form: &HashMap<String, String>, name: &str) -> Result<Decimal, String> {
    parse_decimal(arg(form, name)?).ok_or_else(|| format!("EGeneral:Invalid arguments:{name}"))
}

impl Shared {
    /// Processes an authenticated private call: rate counters, then the
    /// method. Errors are Kraken error strings.
    fn handle(&self, method: &str, form: &HashMap<String, String>) -> Result<Value, String> {
        let now = self.real_ms();
        {
            let mut inner = self.inner();
            if rest_cost(method) > 0 && inner.limiter.acquire_rest(now, method).is_err() {
                inner.stats.rate_limited += 1;
                return Err("EAPI:Rate limit exceeded".into());
            }
        }
        let symbol = self.cfg.paper.pair.spec.symbol.clone();
        let userref = form.get("userref").and_then(|u| u.parse::<i32>().ok());
        match method {
            "Balance" => {
                let b = self.exchange.with_book(|b| b.balances());
                let m: serde_json::Map<String, Value> = b
                    .assets
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v.normalize().to_string())))
                    .collect();
                Ok(Value::Object(m))
            }
            "TradeVolume" => {
                let f = self.cfg.paper.fees;
                Ok(json!({
                    "currency": "ZUSD", "volume": "0",
                    "fees": { &symbol: {"fee": f.taker_pct.to_string(), "minfee": "0", "maxfee": f.taker_pct.to_string(), "nextfee": null, "nextvolume": null, "tiervolume": "0"} },
                    "fees_maker": { &symbol: {"fee": f.maker_pct.to_string(), "minfee": "0", "maxfee": f.maker_pct.to_string(), "nextfee": null, "nextvolume": null, "tiervolume": "0"} }
                }))
            }
            "AddOrder" => self.add_order(form, now),
            "CancelOrder" => self.cancel_order(form, now),
            "QueryOrders" => {
                let txids = arg(form, "txid")?;
                let orders: Vec<_> = self.exchange.with_book(|b| {
                    txids
                        .split(',')
                        .filter_map(|t| b.order(t.trim()))
                        .filter(|o| userref.is_none_or(|u| o.userref == u))
                        .collect()
                });
                Ok(render::orders(&orders))
            }
            "OpenOrders" => {
                let orders: Vec<_> = self.exchange.with_book(|b| b.open_orders());
                let orders: Vec<_> = orders
                    .into_iter()
                    .filter(|o| userref.is_none_or(|u| o.userref == u))
                    .filter(|o| {
                        form.get("cl_ord_id")
                            .is_none_or(|c| o.cl_ord_id.as_ref() == Some(c))
                    })
                    .collect();
                Ok(json!({"open": render::orders(&orders)}))
            }
            "ClosedOrders" => {
                let start = form.get("start").and_then(|v| parse_decimal(v));
                let orders: Vec<_> = self.exchange.with_book(|b| b.closed_orders());
                let orders: Vec<_> = orders
                    .into_iter()
                    .filter(|o| userref.is_none_or(|u| o.userref == u))
                    .filter(|o| {
                        start
                            .is_none_or(|s| Decimal::new(o.closed_at.unwrap_or(o.opened_at), 3) > s)
                    })
                    .take(50)
                    .collect();
                let count = orders.len();
                Ok(json!({"closed": render::orders(&orders), "count": count}))
            }
            "TradesHistory" => {
                let start_ms = form
                    .get("start")
                    .and_then(|v| parse_decimal(v))
                    .and_then(|d| {
                        rust_decimal::prelude::ToPrimitive::to_i64(&(d * Decimal::ONE_THOUSAND))
                    })
                    .unwrap_or(i64::MIN);
                let ofs = form
                    .get("ofs")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let all = self.exchange.with_book(|b| b.trades_since(start_ms));
                let count = all.len();
                let mut m = serde_json::Map::new();
                // Kraken pages newest first.
                for t in all.iter().rev().skip(ofs).take(50) {
                    m.insert(t.trade_id.clone(), render::trade(t));
                }
                Ok(json!({"trades": Value::Object(m), "count": count}))
            }
            _ => Err("EGeneral:Unknown method".into()),
        }
    }

    fn add_order(&self, form: &HashMap<String, String>, now: i64) -> Result<Value, String> {
        let pair = arg(form, "pair")?.to_owned();
        let side = match arg(form, "type")? {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            _ => return Err("EGeneral:Invalid arguments:type".into()),
        };
        let volume = dec_arg(form, "volume")?;
        let post_only = form
            .get("oflags")
            .is_some_and(|f| f.split(',').any(|x| x.trim() == "post"));
        let kind = match arg(form, "ordertype")? {
            "limit" => OrderKind::Limit {
                price: dec_arg(form, "price")?,
                post_only,
            },
            "market" => OrderKind::Market,
            _ => return Err("EGeneral:Invalid arguments:ordertype".into()),
        };
        let userref = match form.get("userref") {
            Some(u) => u
                .parse::<i32>()
                .map_err(|_| "EGeneral:Invalid arguments:userref".to_owned())?,
            None => 0,
        };
        let mut inner = self.inner();
        if inner.limiter.acquire_trading(now, &pair, 1).is_err() {
            inner.stats.rate_limited += 1;
            return Err("EOrder:Rate limit exceeded".into());
        }
        let client_order_id = match form.get("cl_ord_id").filter(|c| !c.is_empty()) {
            Some(c) => c.clone(),
            None => {
                inner.auto_cl_ord_id += 1;
                format!("sim-auto-{}", inner.auto_cl_ord_id)
            }
        };
        let req = OrderRequest {
            pair,
            side,
            kind,
            volume,
            userref,
            client_order_id,
        };
        if form
            .get("validate")
            .is_some_and(|v| v == "true" || v == "1")
        {
            return Ok(json!({"descr": {"order": describe(&req)}}));
        }
        let txid = self
            .exchange
            .with_book(|b| b.add_order(&req))
            .map_err(|e| kraken_msg(&e))?;
        inner.placed.insert(txid.clone(), Instant::now());
        info!(
            txid,
            cl_ord_id = req.client_order_id,
            "simulated order placed"
        );
        Ok(json!({"descr": {"order": describe(&req)}, "txid": [txid]}))
    }

    fn cancel_order(&self, form: &HashMap<String, String>, now: i64) -> Result<Value, String> {
        let txid = arg(form, "txid")?;
        let order = self
            .exchange
            .with_book(|b| b.order(txid))
            .filter(|o| o.status == OrderStatus::Open)
            .ok_or_else(|| "EOrder:Unknown order".to_owned())?;
        let mut inner = self.inner();
        let age = inner.placed.get(txid).map_or(i64::MAX, |t| {
            i64::try_from(t.elapsed().as_millis()).unwrap_or(i64::MAX)
        });
        let penalty = cancel_penalty(age);
        let symbol = self.cfg.paper.pair.spec.symbol.clone();
        if inner
            .limiter
            .acquire_trading(now, &symbol, penalty)
            .is_err()
        {
            inner.stats.rate_limited += 1;
            return Err("EOrder:Rate limit exceeded".into());
        }
        self.exchange
            .with_book(|b| b.cancel(&order.txid))
            .map_err(|e| kraken_msg(&e))?;
        inner.placed.remove(txid);
        Ok(json!({"count": 1}))
    }
}

fn describe(req: &OrderRequest) -> String {
    match req.kind {
        OrderKind::Limit { price, .. } => format!(
            "{} {} {} @ limit {}",
            req.side.as_str(),
            req.volume.normalize(),
            req.pair,
            price.normalize()
        ),
        OrderKind::Market => format!(
            "{} {} {} @ market",
            req.side.as_str(),
            req.volume.normalize(),
            req.pair
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_handles_escapes() {
        let f = parse_form("nonce=1&txid=A%2CB&x=a+b&bad=%zz&empty=");
        assert_eq!(f["txid"], "A,B");
        assert_eq!(f["x"], "a b");
        assert_eq!(f["bad"], "%zz");
        assert_eq!(f["empty"], "");
    }
}
