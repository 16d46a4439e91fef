//! Starting the real `gateway` binary for the API tests, and a tiny HTTP
//! client around reqwest that returns status, headers and JSON.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use healgrid_tests::process::free_port;
use serde_json::Value;

/// A running gateway, killed when dropped.
pub struct GatewayProcess {
    child: Child,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// Its stderr (logs).
    pub log: PathBuf,
}

impl GatewayProcess {
    /// Starts the gateway listening on `host` with a clean environment plus
    /// `envs`, logging at debug level to `log`; waits for `/healthz`.
    pub async fn start(host: &str, envs: &[(&str, &str)], log: &Path) -> Self {
        let port = free_port();
        let file = std::fs::File::create(log).expect("gateway log");
        let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .env_clear()
            .env("GATEWAY_LISTEN", format!("{host}:{port}"))
            .env("RUST_LOG", "debug")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log clone"))
            .stderr(file)
            .spawn()
            .expect("spawning gateway");
        let mut g = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log: log.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = g.child.try_wait() {
                panic!(
                    "gateway exited early: {st}; log: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if let Ok(r) = client().get(format!("{}/healthz", g.base)).send().await
                && r.status().is_success()
            {
                return g;
            }
            assert!(Instant::now() < deadline, "gateway not up in 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts the error shape and returns its code.
    pub fn error_code(&self) -> String {
        let v = self.json();
        let code = v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.code in {v}"));
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "no message in {v}"
        );
        code.to_owned()
    }
}

/// reqwest is built without a default TLS provider in this workspace;
/// install ring's once (the tests speak plain HTTP, but the client insists).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn answer(r: reqwest::Response) -> Answer {
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.expect("body"),
    }
}

/// `GET base+path`.
pub async fn get(base: &str, path: &str) -> Answer {
    answer(
        client()
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("GET"),
    )
    .await
}

/// `POST base+path` with optional key, bearer token and raw body.
pub async fn post(
    base: &str,
    path: &str,
    key: Option<&str>,
    token: Option<&str>,
    body: &str,
) -> Answer {
    let mut r = client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(k) = key {
        r = r.header("idempotency-key", k);
    }
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    answer(r.send().await.expect("POST")).await
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `secs`.
pub async fn wait_for<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes a 1-minute candle CSV that makes every slot's long leg stuck: a
/// flat market at 0.1 (the grid places its entries), one candle that dips
/// to 0.09 (the buy entries fill) and then a flat 0.09 far below their sell
/// exits, for `minutes` more minutes. Flat candles (high = low = close)
/// fill nothing else. Times end two days ago, so the replay runs at the
/// trader's sim speed from the start.
pub fn stuck_market_csv(dir: &Path, minutes: usize) -> PathBuf {
    use std::fmt::Write as _;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut t = now - now.rem_euclid(60) - 2 * 86_400 - 60 * (minutes as i64 + 20);
    let mut csv = String::from("time,open,high,low,close,volume\n");
    for _ in 0..10 {
        let _ = writeln!(csv, "{t},0.1,0.1,0.1,0.1,1000000");
        t += 60;
    }
    let _ = writeln!(csv, "{t},0.1,0.1,0.09,0.09,1000000");
    for _ in 0..minutes {
        t += 60;
        let _ = writeln!(csv, "{t},0.09,0.09,0.09,0.09,1000000");
    }
    let path = dir.join("stuck-market.csv");
    std::fs::write(&path, csv).expect("writing the market CSV");
    path
}

/// A ledger and a paper trader (churner on, tiny age bands, profit 1 %)
/// replaying [`stuck_market_csv`]: within seconds each of its `slots` holds
/// one open long position in band `write_off`, in the cleanup queue.
pub async fn start_stuck_stack(
    dir: &Path,
    bot: &str,
    slots: u32,
) -> (
    healgrid_tests::process::LedgerProcess,
    healgrid_tests::process::TraderProcess,
) {
    use healgrid_tests::process::{LedgerProcess, TraderProcess};
    let ledger =
        LedgerProcess::start(&format!("sqlite://{}", dir.join("ledger.db").display())).await;
    let csv = stuck_market_csv(dir, 20_000);
    let store = format!("sqlite://{}", dir.join("trader.db").display());
    let market = format!("csv:{}", csv.display());
    let slots = slots.to_string();
    let args: Vec<String> = [
        "--exchange",
        "paper",
        "--market",
        &market,
        "--sim-speed",
        "600",
        "--ledger-url",
        &ledger.endpoint,
        "--store",
        &store,
        "--bot-id",
        bot,
        "--slots",
        &slots,
        "--order-size-usd",
        "10",
        "--profit-pct",
        "1.0",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let envs = [
        ("AGE_BAND_FRESH_SEC", "60"),
        ("AGE_BAND_AGING_SEC", "120"),
        ("AGE_BAND_STALE_SEC", "180"),
        ("AGE_BAND_STUCK_SEC", "240"),
        ("CHURNER_ENABLED", "true"),
    ];
    let trader = TraderProcess::start(&args, &envs, &dir.join("trader.log")).await;
    (ledger, trader)
}

/// Waits until the gateway's cleanup queue holds `n` positions; returns
/// their ids, oldest first.
pub async fn queue_of(base: &str, n: usize, secs: u64) -> Vec<String> {
    wait_for("the cleanup queue", secs, async || {
        let q = get(base, "/api/v1/cleanup-queue").await;
        assert_eq!(q.status, 200, "{}", q.text);
        let ids: Vec<String> = q.json()["positions"]
            .as_array()?
            .iter()
            .filter_map(|p| p["position_id"].as_str().map(str::to_owned))
            .collect();
        (ids.len() >= n).then_some(ids)
    })
    .await
}
