//! A Kraken-compatible HTTP simulator: the paper exchange behind Kraken's
//! REST paths and envelope, with `API-Sign` verification, the nonce rule,
//! the REST and trading rate counters, Kraken's error strings, and fault
//! injection. Any Kraken client can drive it, which is how our own client is
//! tested end to end without internet.
//!
//! Control endpoints (unauthenticated; bind the simulator to loopback):
//! `POST /sim/faults` with a [`FaultRule`] JSON body queues a fault (and
//! answers how many are pending, partial fills included),
//! `POST /sim/step` advances the market by one candle, and `GET /sim/orders`
//! lists every order ever placed (`{"open": {..}, "closed": {..}}` keyed by
//! txid, Kraken's order objects), so tests can audit the book without
//! signing or paging through `ClosedOrders`.
//!
//! Everything the simulator reports (order, trade and candle times, `Time`)
//! comes from one simulated clock, driven by the [`Timeline`]: a replay is
//! shifted to the present and runs at the configured speed, or moves only
//! when stepped. As on Kraken, an `AddOrder` whose `cl_ord_id` is already
//! used by an open order is refused with `EOrder:Duplicate order`; a closed
//! or cancelled order's id may be reused. Faults (see [`Fault`]) make
//! placement ambiguous the ways production does; a delayed acceptance is
//! processed later under the same rules, so it is refused when a copy with
//! its `cl_ord_id` is open by then.

mod faults;
mod private;
mod public;
mod render;
mod stale;
mod timeline;

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
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

pub use faults::{ANY_METHOD, FILL_METHOD, Fault, FaultQueue, FaultRule};
pub use timeline::Timeline;

use super::clock::{Clock, SimClock};
use super::kraken::limits::{RateLimiter, RateTier};
use super::kraken::sign::verify;
use super::market::{MarketError, MarketSource};
use super::paper::{Fill, PaperConfig, PaperExchange};
use crate::pair::Candle;

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
    /// Candle length of the market source, seconds: a candle is played
    /// once the clock reaches its open time plus this.
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
    timeline: Timeline,
    /// The next candle (already shifted), played once the clock reaches
    /// its close.
    pending: Option<Candle>,
    /// Real time each order was placed, for the cancel penalty.
    placed: HashMap<String, Instant>,
    stats: SimStats,
    auto_cl_ord_id: u64,
    /// The replies a [`Fault::StaleStatus`] replays.
    kept: stale::Kept,
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

    /// The next candle of the source, shifted into simulated time. A source
    /// that fails is dropped (prices freeze), as when it is exhausted.
    fn pull(inner: &mut Inner) -> Result<Option<Candle>, MarketError> {
        let next = match inner.market.as_mut() {
            Some(m) => m.next_candle(),
            None => return Ok(None),
        };
        match next {
            Ok(Some(c)) => Ok(Some(inner.timeline.shift(c))),
            Ok(None) => {
                info!("market source exhausted; prices frozen");
                inner.market = None;
                Ok(None)
            }
            Err(e) => {
                inner.market = None;
                Err(e)
            }
        }
    }

    /// Plays the pending candle: the book trades through it and the clock
    /// moves to its close. Holds `inner` so candles are played in order.
    fn play(&self, inner: &mut Inner) -> Result<Option<Vec<Fill>>, MarketError> {
        let Some(c) = inner.pending.take() else {
            return Ok(None);
        };
        let next = Self::pull(inner);
        let fills = self.exchange.step(&c);
        self.exchange.clock().set(inner.timeline.due_ms(&c));
        if !fills.is_empty() {
            info!(fills = fills.len(), candle = c.time, "simulated fills");
        }
        inner.pending = next?;
        Ok(Some(fills))
    }

    /// Brings the book and the clock up to simulated "now": plays every
    /// candle that has closed by then, in order, then sets the clock. Runs
    /// before every request, so replies never lag the schedule.
    fn sync(&self) {
        let real = self.real_ms();
        let mut inner = self.inner();
        let Some(target) = inner.timeline.target_ms(real) else {
            return;
        };
        while let Some(c) = inner.pending {
            if inner.timeline.due_ms(&c) > target {
                break;
            }
            if let Err(e) = self.play(&mut inner) {
                warn!(error = %e, "market source failed; prices frozen");
                break;
            }
        }
        self.exchange.clock().set(target);
    }

    /// Plays the next candle now (`POST /sim/step`), ahead of schedule when
    /// the clock is running; the running clock then carries on from there.
    fn step_market(&self) -> Result<Option<Vec<Fill>>, MarketError> {
        self.sync();
        let real = self.real_ms();
        let mut inner = self.inner();
        let played = self.play(&mut inner)?;
        let now = self.exchange.clock().now_ms();
        inner.timeline.skip_to(now, real);
        Ok(played)
    }

    /// Queues a fault: a partial fill goes to the book, any other fault to
    /// the queue of its method. Returns the faults pending.
    ///
    /// # Errors
    /// A partial fill named for a call, or a call fault named for the
    /// fills: the rule would never take effect.
    fn queue(&self, rule: FaultRule) -> Result<u32, String> {
        let for_fills = rule.method == FILL_METHOD;
        if (rule.fault == Fault::PartialFill) != for_fills {
            return Err(format!(
                "a partial_fill rule, and only it, names the method `{FILL_METHOD}` \
                 (got {:?} for `{}`)",
                rule.fault, rule.method
            ));
        }
        if for_fills {
            self.exchange.with_book(|b| b.split_next_fills(rule.count));
        } else {
            self.inner().faults.push(rule);
        }
        Ok(self.pending_faults())
    }

    fn pending_faults(&self) -> u32 {
        let splits = self.exchange.with_book(|b| b.pending_splits());
        self.inner().faults.pending() + splits
    }

    /// Processes a call and keeps an order-status reply for a later
    /// [`Fault::StaleStatus`].
    fn handle_kept(&self, method: &str, form: &HashMap<String, String>) -> Result<Value, String> {
        let outcome = self.handle(method, form);
        if let Ok(v) = &outcome {
            self.inner().kept.record(method, form, v);
        }
        outcome
    }

    /// Answers a call from an older view: the reply this very call got
    /// last time, or for `QueryOrders` the orders as last reported. When
    /// there is no older view yet the call is answered fresh and the fault
    /// stays queued.
    fn handle_stale(&self, method: &str, form: &HashMap<String, String>) -> Response {
        let kept = self.inner().kept.reply(method, form);
        if let Some(old) = kept {
            debug!(method, "replaying the previous reply");
            return ok(old);
        }
        let before = self.inner().kept.orders_asked(form);
        let fresh = self.handle_kept(method, form);
        let (reply, replaced) = match fresh {
            Ok(v) if method == "QueryOrders" => {
                let (v, n) = stale::as_before(v, &before);
                (Ok(v), n)
            }
            other => (other, 0),
        };
        if replaced == 0 {
            debug!(
                method,
                "no older view yet: answered fresh, the fault stays queued"
            );
            self.inner().faults.put_back(method, Fault::StaleStatus);
        } else {
            debug!(method, replaced, "orders reported as they were");
        }
        envelope(reply)
    }

    /// Simulated now, unix seconds.
    fn now_secs(&self) -> i64 {
        self.exchange.clock().now_ms().div_euclid(1000)
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
    ///
    /// # Errors
    /// When the rule could never take effect: a partial fill named for a
    /// call, or a call fault named for the fills.
    pub fn inject(&self, rule: FaultRule) -> Result<u32, String> {
        self.shared.queue(rule)
    }

    /// Faults not yet consumed, partial fills included.
    #[must_use]
    pub fn pending_faults(&self) -> u32 {
        self.shared.pending_faults()
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

/// Binds and starts the simulator with its clock at `start_ms` (whole
/// seconds). The source's first candle is shifted to open at that instant
/// and its open becomes the price; it is played once the clock reaches its
/// close (at once when stepped).
pub async fn start(
    cfg: SimConfig,
    market: Option<Box<dyn MarketSource>>,
    start_ms: i64,
) -> std::io::Result<SimHandle> {
    let timeline = Timeline::new(start_ms, cfg.speed, cfg.interval_secs);
    let clock = SimClock::new(timeline.start_ms());
    let exchange = PaperExchange::new(cfg.paper.clone(), clock);
    let mut inner = Inner {
        limiter: RateLimiter::new(cfg.tier, 100),
        last_nonce: 0,
        faults: FaultQueue::default(),
        market,
        timeline,
        pending: None,
        placed: HashMap::new(),
        stats: SimStats::default(),
        auto_cl_ord_id: 0,
        kept: stale::Kept::default(),
    };
    inner.pending = Shared::pull(&mut inner)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    if let Some(first) = inner.pending {
        exchange.with_book(|b| b.set_last_price(first.open));
    }
    let shared = Arc::new(Shared {
        inner: Mutex::new(inner),
        exchange,
        epoch: Instant::now(),
        cfg,
    });
    let listener = tokio::net::TcpListener::bind(shared.cfg.listen).await?;
    let addr = listener.local_addr()?;
    let app = router(Arc::clone(&shared));
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            warn!(error = %e, "simulator server stopped");
        }
    });
    // Requests sync the clock themselves; the driver keeps the book moving
    // (fills, logs) while nobody asks.
    let driver = shared.cfg.speed.filter(|s| *s > 0).map(|speed| {
        let shared = Arc::clone(&shared);
        let period_ms = (shared.cfg.interval_secs.max(1) * 1000 / i64::from(speed)).clamp(5, 1000);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(
                u64::try_from(period_ms).unwrap_or(1000),
            ));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                shared.sync();
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
    match s.queue(rule) {
        Ok(pending) => axum::Json(json!({"pending": pending})).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn all_orders(State(s): State<Arc<Shared>>) -> Response {
    let (open, closed) = s
        .exchange
        .with_book(|b| (b.open_orders(), b.closed_orders()));
    let open: Vec<_> = open.into_iter().map(private::visible).collect();
    let closed: Vec<_> = closed.into_iter().map(private::visible).collect();
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
    s.sync();
    envelope(public::handle(&s, &method, &q))
}

/// Decodes an `application/x-www-form-urlencoded` body.
/// A private call's decoded form parameters.
type Form = HashMap<String, String>;

/// A form from literal pairs, for the submodules' tests.
#[cfg(test)]
fn form_of(pairs: &[(&str, &str)]) -> Form {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse_form(body: &str) -> Form {
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
    s.sync();
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
        None => envelope(s.handle_kept(&method, &form)),
        Some(Fault::ServiceUnavailable) => err("EService:Unavailable"),
        Some(Fault::InvalidNonce) => err("EAPI:Invalid nonce"),
        Some(Fault::StaleStatus) => s.handle_stale(&method, &form),
        Some(Fault::SlowReply { ms }) => {
            let outcome = s.handle_kept(&method, &form);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            envelope(outcome)
        }
        // Queued on the book, never for a call (see `Shared::queue`).
        Some(Fault::PartialFill) => envelope(s.handle_kept(&method, &form)),
        Some(Fault::RateLimited) => err("EOrder:Rate limit exceeded"),
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
                s2.sync();
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
