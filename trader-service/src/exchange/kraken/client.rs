//! The Kraken REST client: signed private calls, self-pacing against the
//! rate-limit model, bounded retries for idempotent calls, and an AddOrder
//! that is sent at most once when its outcome may be ambiguous: Kraken can
//! accept an order long after answering `EService:Busy`, so only the
//! caller, which keeps the intent durably across loops and restarts, may
//! decide (after looking it up over the stale window) to place it again.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;
use tracing::{debug, info, warn};

use super::form::{add_order_params, encode_form};
use super::limits::{Backoff, RateLimiter, RateTier, cancel_penalty};
use super::nonce::NonceSource;
use super::sign::{BadSecret, decode_secret, sign};
use super::wire::{
    self, AddOrderResult, AssetPairsResult, BalanceResult, CancelResult, ClosedOrdersResult,
    OpenOrdersResult, QueryOrdersResult, TickerResult, TimeResult, TradeVolumeResult,
    TradesHistoryResult, WireError,
};
use crate::exchange::Exchange;
use crate::exchange::clock::{Clock, SystemClock};
use crate::exchange::error::ExchangeError;
use crate::exchange::types::{
    Balances, OrderAck, OrderInfo, OrderRequest, OrderStatus, PairInfo, Ticker, Trade, UnixMillis,
};
use crate::pair::{Candle, FeeSchedule};

/// Kraken's production endpoint.
pub const DEFAULT_API_URL: &str = "https://api.kraken.com";

/// Everything the client needs; see [`KrakenConfig::from_env`].
#[derive(Clone)]
pub struct KrakenConfig {
    /// Base URL without trailing slash (`KRAKEN_API_URL`), so tests can
    /// point the client at the simulator.
    pub base_url: String,
    /// API key (`KRAKEN_API_KEY`).
    pub api_key: String,
    /// Decoded API secret (`KRAKEN_API_SECRET`, base64).
    pub api_secret: Vec<u8>,
    /// Verification tier, which sets the counters' maxima and decay.
    pub tier: RateTier,
    /// Percent of each counter's maximum the client allows itself (75).
    pub limit_pct: u32,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Sends of one AddOrder when earlier sends certainly had no effect
    /// (connection refused, bad nonce, rate limited); an ambiguous send is
    /// never repeated.
    pub max_place_attempts: u32,
    /// Retries of idempotent calls on transient errors.
    pub max_retries: u32,
    /// First backoff delay after a server-side rate-limit error.
    pub backoff_base: Duration,
    /// Backoff ceiling.
    pub backoff_cap: Duration,
    /// Seed of the backoff jitter.
    pub backoff_seed: u64,
}

impl std::fmt::Debug for KrakenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KrakenConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("api_secret", &"<redacted>")
            .field("tier", &self.tier)
            .field("limit_pct", &self.limit_pct)
            .finish_non_exhaustive()
    }
}

/// Why a Kraken configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KrakenConfigError {
    /// A required environment variable is missing or empty.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// The secret is not base64.
    #[error(transparent)]
    BadSecret(#[from] BadSecret),
}

impl KrakenConfig {
    /// Starter-tier defaults for the given endpoint and credentials.
    pub fn new(base_url: &str, api_key: &str, secret_b64: &str) -> Result<Self, BadSecret> {
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            api_secret: decode_secret(secret_b64)?,
            tier: RateTier::starter(),
            limit_pct: 75,
            request_timeout: Duration::from_secs(10),
            max_place_attempts: 5,
            max_retries: 4,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            backoff_seed: 0x6b72_616b,
        })
    }

    /// Reads `KRAKEN_API_URL` (default [`DEFAULT_API_URL`]),
    /// `KRAKEN_API_KEY` and `KRAKEN_API_SECRET`.
    pub fn from_env() -> Result<Self, KrakenConfigError> {
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or(KrakenConfigError::Missing(name))
        };
        let url = var("KRAKEN_API_URL").unwrap_or_else(|_| DEFAULT_API_URL.to_owned());
        Ok(Self::new(
            &url,
            &var("KRAKEN_API_KEY")?,
            &var("KRAKEN_API_SECRET")?,
        )?)
    }
}

/// How a single HTTP exchange failed, before deciding what it means.
#[derive(Debug)]
enum CallFailure {
    /// The request never reached the server (connection refused).
    NotSent(String),
    /// The server may have processed it: timeout, 5xx, non-JSON body.
    Uncertain(String),
    /// The envelope carried errors.
    Api(Vec<String>),
    /// The result had an unexpected shape.
    Shape(String),
}

impl CallFailure {
    fn from_wire(e: WireError) -> Self {
        match e {
            WireError::NotJson(m) => Self::Uncertain(m),
            WireError::Api(v) => Self::Api(v),
            WireError::MissingResult => Self::Shape("missing result".into()),
            WireError::Shape(m) => Self::Shape(m),
        }
    }

    /// What the failure means to the caller; for AddOrder anything that may
    /// have reached the matching engine is ambiguous.
    fn into_error(self, placing: bool) -> ExchangeError {
        match self {
            Self::NotSent(message) => ExchangeError::Retryable { message },
            Self::Uncertain(message) if placing => ExchangeError::Ambiguous { message },
            Self::Uncertain(message) => ExchangeError::Retryable { message },
            Self::Api(errors) => {
                if placing && errors.iter().any(|e| e.starts_with("EService:")) {
                    ExchangeError::Ambiguous {
                        message: errors.join(", "),
                    }
                } else {
                    wire::classify(&errors)
                }
            }
            Self::Shape(message) if placing => ExchangeError::Ambiguous { message },
            Self::Shape(message) => {
                ExchangeError::invalid(format!("unexpected response: {message}"))
            }
        }
    }
}

/// Kraken spot REST client implementing [`Exchange`].
pub struct KrakenClient {
    http: reqwest::Client,
    cfg: KrakenConfig,
    nonce: NonceSource,
    /// Serialises private calls so nonces reach the server in order.
    send_lock: tokio::sync::Mutex<()>,
    limiter: Mutex<RateLimiter>,
    backoff: Mutex<Backoff>,
    /// txid -> (pair, opened at), for the cancel penalty of young orders.
    opened: Mutex<HashMap<String, (String, UnixMillis)>>,
    epoch: Instant,
}

impl std::fmt::Debug for KrakenClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KrakenClient")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KrakenClient {
    /// Builds the client (rustls with the ring provider).
    pub fn new(cfg: KrakenConfig) -> Result<Self, ExchangeError> {
        // Installing twice is harmless; another component may have done it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout)
            .user_agent("healgrid-trader")
            .build()
            .map_err(|e| ExchangeError::invalid(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            nonce: NonceSource::new(),
            send_lock: tokio::sync::Mutex::new(()),
            limiter: Mutex::new(RateLimiter::new(cfg.tier, cfg.limit_pct)),
            backoff: Mutex::new(Backoff::new(
                cfg.backoff_base,
                cfg.backoff_cap,
                cfg.backoff_seed,
            )),
            opened: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            cfg,
        })
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &KrakenConfig {
        &self.cfg
    }

    fn mono_ms(&self) -> UnixMillis {
        i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    async fn pace_rest(&self, method: &str) {
        loop {
            let r = locked(&self.limiter).acquire_rest(self.mono_ms(), method);
            match r {
                Ok(()) => return,
                Err(wait) => {
                    debug!(method, wait_ms = wait.as_millis(), "pacing REST counter");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn pace_trading(&self, pair: &str, cost: u32) {
        loop {
            let r = locked(&self.limiter).acquire_trading(self.mono_ms(), pair, cost);
            match r {
                Ok(()) => return,
                Err(wait) => {
                    debug!(
                        pair,
                        cost,
                        wait_ms = wait.as_millis(),
                        "pacing trading counter"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn note_rate_limited(&self, err: &ExchangeError, pair: Option<&str>) {
        let now = self.mono_ms();
        let mut l = locked(&self.limiter);
        if err.message().contains("EOrder:Rate limit") {
            if let Some(p) = pair {
                l.saturate_trading(now, p);
            }
        } else {
            l.saturate_rest(now);
        }
    }

    fn backoff_delay(&self, attempt: u32, floor: Option<Duration>) -> Duration {
        let d = locked(&self.backoff).delay(attempt);
        floor.map_or(d, |f| d.max(f))
    }

    async fn read_body(resp: reqwest::Response) -> Result<String, CallFailure> {
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| CallFailure::Uncertain(format!("reading body: {e}")))?;
        if status.as_u16() == 429 {
            return Err(CallFailure::Api(vec!["EAPI:Rate limit exceeded".into()]));
        }
        if !status.is_success() {
            let snippet: String = body.chars().take(80).collect();
            return Err(CallFailure::Uncertain(format!("HTTP {status}: {snippet}")));
        }
        Ok(body)
    }

    fn transport(e: &reqwest::Error) -> CallFailure {
        if e.is_connect() {
            CallFailure::NotSent(format!("connect: {e}"))
        } else if e.is_timeout() {
            CallFailure::Uncertain(format!("timeout: {e}"))
        } else {
            CallFailure::Uncertain(format!("transport: {e}"))
        }
    }

    async fn public_once(
        &self,
        method: &str,
        query: &[(&str, String)],
    ) -> Result<Value, CallFailure> {
        let url = format!("{}/0/public/{method}", self.cfg.base_url);
        let resp = self
            .http
            .get(&url)
            .query(query)
            .send()
            .await
            .map_err(|e| Self::transport(&e))?;
        let body = Self::read_body(resp).await?;
        wire::parse_envelope(&body).map_err(CallFailure::from_wire)
    }

    /// One signed POST; no pacing, no retries.
    async fn private_once(
        &self,
        method: &str,
        params: &[(&str, String)],
    ) -> Result<Value, CallFailure> {
        let path = format!("/0/private/{method}");
        let url = format!("{}{path}", self.cfg.base_url);
        let _turn = self.send_lock.lock().await;
        let nonce = self.nonce.next().to_string();
        let mut form: Vec<(&str, &str)> = Vec::with_capacity(params.len() + 1);
        form.push(("nonce", &nonce));
        form.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
        let body = encode_form(&form);
        let signature = sign(&self.cfg.api_secret, &path, &nonce, &body);
        let resp = self
            .http
            .post(&url)
            .header("API-Key", &self.cfg.api_key)
            .header("API-Sign", signature)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| Self::transport(&e))?;
        let body = Self::read_body(resp).await?;
        wire::parse_envelope(&body).map_err(CallFailure::from_wire)
    }

    /// A call that may be repeated: paced, retried on transient errors and
    /// backed off on rate-limit errors.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &[(&str, String)],
        private: bool,
    ) -> Result<T, ExchangeError> {
        let mut attempt = 0;
        loop {
            if private {
                self.pace_rest(method).await;
            }
            let outcome = if private {
                self.private_once(method, params).await
            } else {
                self.public_once(method, params).await
            };
            let err = match outcome {
                Ok(v) => {
                    return serde_json::from_value(v).map_err(|e| {
                        ExchangeError::invalid(format!("unexpected {method} result: {e}"))
                    });
                }
                Err(f) => f.into_error(false),
            };
            if !err.is_retryable() || attempt >= self.cfg.max_retries {
                return Err(err);
            }
            if matches!(err, ExchangeError::RateLimited { .. }) {
                self.note_rate_limited(&err, None);
            }
            let wait = self.backoff_delay(attempt, err.retry_after());
            warn!(method, attempt, wait_ms = wait.as_millis(), error = %err, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    fn remember(&self, orders: &[OrderInfo]) {
        let mut m = locked(&self.opened);
        for o in orders {
            if o.status.is_live() {
                m.insert(o.txid.clone(), (o.pair.clone(), o.opened_at));
            } else {
                m.remove(&o.txid);
            }
        }
    }

    fn ack(&self, req: &OrderRequest, txid: String, reconciled: bool) -> OrderAck {
        locked(&self.opened).insert(txid.clone(), (req.pair.clone(), SystemClock.now_ms()));
        OrderAck {
            txid,
            client_order_id: req.client_order_id.clone(),
            reconciled,
        }
    }
}

fn first_entry<V>(
    map: std::collections::BTreeMap<String, V>,
    what: &str,
) -> Result<V, ExchangeError> {
    map.into_values()
        .next()
        .ok_or_else(|| ExchangeError::invalid(format!("{what}: empty result")))
}

impl Exchange for KrakenClient {
    async fn pair_info(&self, pair: &str) -> Result<PairInfo, ExchangeError> {
        let mut map: AssetPairsResult = self
            .call("AssetPairs", &[("pair", pair.to_owned())], false)
            .await?;
        let key = map
            .iter()
            .find(|(k, v)| *k == pair || v.altname == pair)
            .map(|(k, _)| k.clone());
        let entry = match key {
            Some(k) => map.remove(&k),
            None => map.into_values().next(),
        }
        .ok_or_else(|| ExchangeError::invalid(format!("unknown pair {pair}")))?;
        Ok(entry.into_pair_info(pair))
    }

    async fn fees(&self, pair: &str) -> Result<FeeSchedule, ExchangeError> {
        let r: TradeVolumeResult = self
            .call("TradeVolume", &[("pair", pair.to_owned())], true)
            .await?;
        let taker = first_entry(r.fees, "TradeVolume fees")?.fee.0;
        let maker = r.fees_maker.into_values().next().map_or(taker, |f| f.fee.0);
        Ok(FeeSchedule {
            maker_pct: maker,
            taker_pct: taker,
        })
    }

    async fn ticker(&self, pair: &str) -> Result<Ticker, ExchangeError> {
        let r: TickerResult = self
            .call("Ticker", &[("pair", pair.to_owned())], false)
            .await?;
        first_entry(r, "Ticker")?
            .to_ticker()
            .map_err(|e| ExchangeError::invalid(e.to_string()))
    }

    async fn ohlc(
        &self,
        pair: &str,
        interval_min: u32,
        since: Option<i64>,
    ) -> Result<Vec<Candle>, ExchangeError> {
        let mut q = vec![
            ("pair", pair.to_owned()),
            ("interval", interval_min.to_string()),
        ];
        if let Some(s) = since {
            q.push(("since", s.to_string()));
        }
        let v: Value = self.call("OHLC", &q, false).await?;
        let candles = wire::parse_ohlc(&v).map_err(|e| ExchangeError::invalid(e.to_string()))?;
        Ok(candles
            .into_iter()
            .filter(|c| since.is_none_or(|s| c.time > s))
            .collect())
    }

    async fn balances(&self) -> Result<Balances, ExchangeError> {
        let r: BalanceResult = self.call("Balance", &[], true).await?;
        Ok(Balances {
            assets: r.into_iter().map(|(k, v)| (k, v.0)).collect(),
        })
    }

    async fn add_order(&self, req: &OrderRequest) -> Result<OrderAck, ExchangeError> {
        let params = add_order_params(req);
        let mut last_err = ExchangeError::Ambiguous {
            message: "no placement attempted".into(),
        };
        for attempt in 0..self.cfg.max_place_attempts.max(1) {
            self.pace_trading(&req.pair, 1).await;
            let err = match self.private_once("AddOrder", &params).await {
                Ok(v) => {
                    let r: AddOrderResult = match serde_json::from_value(v) {
                        Ok(r) => r,
                        Err(e) => {
                            return Err(ExchangeError::Ambiguous {
                                message: format!("unreadable AddOrder result: {e}"),
                            });
                        }
                    };
                    match r.txid.and_then(|t| t.0.into_iter().next()) {
                        Some(txid) => {
                            info!(txid, cl_ord_id = req.client_order_id, "order placed");
                            return Ok(self.ack(req, txid, false));
                        }
                        None => ExchangeError::Ambiguous {
                            message: "AddOrder result without txid".into(),
                        },
                    }
                }
                Err(f) => f.into_error(true),
            };
            match &err {
                ExchangeError::Ambiguous { .. } => {
                    warn!(cl_ord_id = req.client_order_id, attempt, error = %err,
                        "AddOrder outcome unknown: not sent again; the caller resolves it by cl_ord_id");
                    return Err(err);
                }
                ExchangeError::DuplicateOrder { .. } => {
                    info!(cl_ord_id = req.client_order_id, error = %err,
                        "AddOrder refused as a duplicate: the order exists");
                    return Err(err);
                }
                ExchangeError::RateLimited { .. } => {
                    self.note_rate_limited(&err, Some(&req.pair));
                    let wait = self.backoff_delay(attempt, err.retry_after());
                    warn!(
                        attempt,
                        wait_ms = wait.as_millis(),
                        "AddOrder rate limited; backing off"
                    );
                    tokio::time::sleep(wait).await;
                }
                ExchangeError::Retryable { .. } => {
                    // Definitely not placed (connection refused, bad nonce).
                    tokio::time::sleep(self.backoff_delay(attempt, None)).await;
                }
                _ => return Err(err),
            }
            last_err = err;
        }
        Err(last_err)
    }

    async fn cancel_order(&self, txid: &str) -> Result<(), ExchangeError> {
        let known = locked(&self.opened).get(txid).cloned();
        let (pair, opened_at) = match known {
            Some(k) => k,
            None => {
                let found = self.query_orders(&[txid.to_owned()]).await?;
                let o = found
                    .into_iter()
                    .next()
                    .ok_or_else(|| ExchangeError::UnknownOrder {
                        message: format!("EOrder:Unknown order {txid}"),
                    })?;
                (o.pair, o.opened_at)
            }
        };
        let penalty = cancel_penalty(SystemClock.now_ms() - opened_at);
        self.pace_trading(&pair, penalty).await;
        let result: Result<CancelResult, _> = self
            .call("CancelOrder", &[("txid", txid.to_owned())], true)
            .await;
        match result {
            Ok(_) => {
                locked(&self.opened).remove(txid);
                Ok(())
            }
            Err(ExchangeError::UnknownOrder { message }) => {
                // A retried cancel whose first attempt succeeded also lands
                // here: what matters is whether the order ended cancelled.
                let state = self.query_orders(&[txid.to_owned()]).await?;
                locked(&self.opened).remove(txid);
                match state.first().map(|o| o.status) {
                    Some(OrderStatus::Canceled) => Ok(()),
                    _ => Err(ExchangeError::UnknownOrder { message }),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn query_orders(&self, txids: &[String]) -> Result<Vec<OrderInfo>, ExchangeError> {
        let mut out = Vec::with_capacity(txids.len());
        for chunk in txids.chunks(50) {
            let r: QueryOrdersResult = self
                .call("QueryOrders", &[("txid", chunk.join(","))], true)
                .await?;
            let orders =
                wire::orders_from_map(r).map_err(|e| ExchangeError::invalid(e.to_string()))?;
            self.remember(&orders);
            out.extend(orders);
        }
        Ok(out)
    }

    /// Kraken's public `Time`: whole seconds, so the value may trail the
    /// exchange's clock by up to a second.
    async fn server_time(&self) -> Result<Option<UnixMillis>, ExchangeError> {
        let t: TimeResult = self.call("Time", &[], false).await?;
        Ok(Some(t.unixtime.saturating_mul(1000)))
    }

    fn nonce_mark(&self) -> Option<u64> {
        Some(self.nonce.mark())
    }

    fn resume_nonce_after(&self, floor: u64) {
        self.nonce.resume_after(floor);
    }

    async fn open_orders(&self) -> Result<Vec<OrderInfo>, ExchangeError> {
        let r: OpenOrdersResult = self.call("OpenOrders", &[], true).await?;
        let orders =
            wire::orders_from_map(r.open).map_err(|e| ExchangeError::invalid(e.to_string()))?;
        self.remember(&orders);
        Ok(orders)
    }

    async fn closed_orders(&self, since: UnixMillis) -> Result<Vec<OrderInfo>, ExchangeError> {
        // `start` is exclusive and in seconds: one second earlier keeps an
        // order closed within the `since` second.
        let start = (since.div_euclid(1000) - 1).max(0).to_string();
        let mut out: Vec<OrderInfo> = Vec::new();
        let mut offset = 0usize;
        loop {
            let params = [
                ("start", start.clone()),
                ("ofs", offset.to_string()),
                ("closetime", "close".to_owned()),
            ];
            let r: ClosedOrdersResult = self.call("ClosedOrders", &params, true).await?;
            let page = r.closed.len();
            let orders = wire::orders_from_map(r.closed)
                .map_err(|e| ExchangeError::invalid(e.to_string()))?;
            out.extend(
                orders
                    .into_iter()
                    .filter(|o| o.closed_at.unwrap_or(o.opened_at) >= since),
            );
            offset += page;
            let total = r
                .count
                .and_then(|c| rust_decimal::prelude::ToPrimitive::to_usize(&c.0))
                .unwrap_or(offset);
            if page == 0 || offset >= total {
                break;
            }
        }
        out.sort_by(|a, b| a.txid.cmp(&b.txid));
        out.dedup_by(|a, b| a.txid == b.txid);
        Ok(out)
    }

    async fn trades_since(&self, since: UnixMillis) -> Result<Vec<Trade>, ExchangeError> {
        let start = (since.div_euclid(1000) - 1).max(0).to_string();
        let mut out: Vec<Trade> = Vec::new();
        let mut offset = 0usize;
        loop {
            let params = [("start", start.clone()), ("ofs", offset.to_string())];
            let r: TradesHistoryResult = self.call("TradesHistory", &params, true).await?;
            let page = r.trades.len();
            for (id, t) in r.trades {
                let trade = t
                    .into_trade(id)
                    .map_err(|e| ExchangeError::invalid(e.to_string()))?;
                if trade.time > since {
                    out.push(trade);
                }
            }
            offset += page;
            let total = r
                .count
                .and_then(|c| rust_decimal::prelude::ToPrimitive::to_usize(&c.0))
                .unwrap_or(offset);
            if page == 0 || offset >= total {
                break;
            }
        }
        out.sort_by(|a, b| {
            a.time
                .cmp(&b.time)
                .then_with(|| a.trade_id.cmp(&b.trade_id))
        });
        out.dedup_by(|a, b| a.trade_id == b.trade_id);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_classification_only_for_placement() {
        let f = || CallFailure::Api(vec!["EService:Unavailable".into()]);
        assert!(f().into_error(true).is_ambiguous());
        assert!(f().into_error(false).is_retryable());
        assert!(
            CallFailure::Uncertain("timeout".into())
                .into_error(true)
                .is_ambiguous()
        );
        assert!(
            !CallFailure::NotSent("refused".into())
                .into_error(true)
                .is_ambiguous()
        );
    }

    #[test]
    fn config_redacts_secrets() {
        let c = KrakenConfig::new("http://x/", "key", "AQEB").unwrap();
        assert_eq!(c.base_url, "http://x");
        assert!(!format!("{c:?}").contains("key\""));
    }
}
