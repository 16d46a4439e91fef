//! Shared set-up for the integration tests: a simulator on an ephemeral
//! loopback port and a Kraken client pointed at it.

#![allow(dead_code, missing_docs)]

use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::exchange::kraken::limits::RateTier;
use trader_service::exchange::kraken::{KrakenClient, KrakenConfig};
use trader_service::exchange::paper::PaperConfig;
use trader_service::exchange::sim_server::{self, SimConfig, SimHandle};
use trader_service::exchange::{OrderKind, OrderRequest, PairInfo};
use trader_service::pair::{Candle, FeeSchedule, PairSpec, Side};

pub const KEY: &str = "test-key";
/// base64 of 64 bytes 0..64 (any base64 secret works).
pub const SECRET: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
pub const T0: i64 = 1_700_000_040;

/// A tier fast enough for tests: generous maxima, quick decay.
pub fn fast_tier() -> RateTier {
    RateTier {
        rest_max: 20,
        rest_decay: 50_000,
        trading_max: 60,
        trading_decay: 50_000,
    }
}

pub fn paper_config() -> PaperConfig {
    PaperConfig {
        pair: PairInfo {
            spec: PairSpec {
                symbol: "XDGUSD".into(),
                price_decimals: 7,
                lot_decimals: 8,
                ordermin: dec!(50),
                costmin: dec!(0.5),
            },
            base: "XXDG".into(),
            quote: "ZUSD".into(),
        },
        fees: FeeSchedule {
            maker_pct: dec!(0.25),
            taker_pct: dec!(0.40),
        },
        initial_base: dec!(10000),
        initial_quote: dec!(1000),
        max_open_orders: 60,
        fill_participation: None,
    }
}

pub fn sim_config(tier: RateTier) -> SimConfig {
    SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: KEY.into(),
        api_secret: trader_service::exchange::kraken::sign::decode_secret(SECRET).unwrap(),
        paper: paper_config(),
        tier,
        speed: None,
        interval_secs: 60,
        hang: Duration::from_millis(600),
        delayed_accept: Duration::from_millis(150),
    }
}

pub fn candle(time: i64, o: Decimal, h: Decimal, l: Decimal, c: Decimal) -> Candle {
    Candle {
        time,
        open: o,
        high: h,
        low: l,
        close: c,
        volume: dec!(1000000),
    }
}

/// Starts a simulator with the price at 0.1.
pub async fn start_sim(cfg: SimConfig) -> SimHandle {
    let sim = sim_server::start(cfg, None, T0 * 1000).await.unwrap();
    sim.push_candle(&candle(T0, dec!(0.1), dec!(0.1), dec!(0.1), dec!(0.1)));
    sim
}

pub fn client_config(sim: &SimHandle, tier: RateTier) -> KrakenConfig {
    let mut c = KrakenConfig::new(&sim.url(), KEY, SECRET).unwrap();
    c.tier = tier;
    c.limit_pct = 100;
    c.request_timeout = Duration::from_millis(300);
    c.max_retries = 3;
    c.backoff_base = Duration::from_millis(20);
    c.backoff_cap = Duration::from_millis(200);
    c
}

pub fn client(sim: &SimHandle) -> KrakenClient {
    KrakenClient::new(client_config(sim, fast_tier())).unwrap()
}

pub fn limit(side: Side, price: Decimal, volume: Decimal, userref: i32, id: &str) -> OrderRequest {
    OrderRequest {
        pair: "XDGUSD".into(),
        side,
        kind: OrderKind::Limit {
            price,
            post_only: true,
        },
        volume,
        userref,
        client_order_id: id.into(),
    }
}

/// Strictly increasing nonces for raw private calls, shared by every test
/// in the binary.
static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn next_nonce() -> u64 {
    let micros = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap();
    let mut prev = NONCE.load(std::sync::atomic::Ordering::SeqCst);
    loop {
        let next = micros.max(prev + 1);
        match NONCE.compare_exchange(
            prev,
            next,
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
        ) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// A plain HTTP client (reqwest is built without a default TLS provider).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A public call as any HTTP client makes it: the whole envelope back.
pub async fn public_raw(base: &str, method: &str, query: &[(&str, &str)]) -> serde_json::Value {
    http()
        .get(format!("{base}/0/public/{method}"))
        .query(query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A signed private call made by hand (no retries, no reconciliation), so
/// tests see exactly what the simulator answers: the whole envelope back.
pub async fn private_raw(base: &str, method: &str, params: &[(&str, &str)]) -> serde_json::Value {
    let nonce = next_nonce().to_string();
    let mut body = format!("nonce={nonce}");
    for (k, v) in params {
        body.push('&');
        body.push_str(k);
        body.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                body.push(char::from(b));
            } else {
                body.push_str(&format!("%{b:02X}"));
            }
        }
    }
    let path = format!("/0/private/{method}");
    let secret = trader_service::exchange::kraken::sign::decode_secret(SECRET).unwrap();
    let sign = trader_service::exchange::kraken::sign::sign(&secret, &path, &nonce, &body);
    http()
        .post(format!("{base}{path}"))
        .header("API-Key", KEY)
        .header("API-Sign", sign)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The `error` array of an envelope, as strings.
pub fn errors(v: &serde_json::Value) -> Vec<String> {
    v["error"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}
