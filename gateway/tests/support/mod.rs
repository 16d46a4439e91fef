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
