//! The dashboard in headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven over the W3C WebDriver protocol with plain
//! HTTP: the real gateway in front of real ledger and trader processes.
//! It loads the dashboard, reads the heat map and the subsidy card, sees the
//! price chart's market history among the exit levels and each
//! cleanup-queue row's slot mode, holds a cleanup-queue position through
//! the confirm dialog (with a reason) and sees the answer and the journal
//! row, pauses the trader the same way, opens a position's journal, and
//! saves screenshots at 1280x800 and at phone width under
//! `$CARGO_TARGET_DIR/gateway-screenshots/`.
//!
//! Without chromium and chromedriver on the machine it skips with a
//! notice, unless `HEALGRID_REQUIRE_BROWSER=1`, which makes it fail.

#![allow(missing_docs)]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use healgrid_tests::process::free_port;
use serde_json::{Value, json};
use support::GatewayProcess;

const BOT: &str = "paper:XDGUSD:browser";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    /// Ends the session first, so chromedriver closes the browser it
    /// started: killing chromedriver alone leaves Chromium running. A plain
    /// blocking request, since a drop (maybe during a panic) cannot await.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://");
        if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
                self.session
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(chromium: &std::path::Path, driver: &std::path::Path) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"]
        }}}});
        let deadline = Instant::now() + Duration::from_secs(30);
        let session = loop {
            if let Ok(r) = http
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .await
            {
                let v: Value = r.json().await.expect("session JSON");
                let id = v["value"]["sessionId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no session: {v}"));
                break id.to_owned();
            }
            assert!(Instant::now() < deadline, "chromedriver not up in 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Self {
            child,
            base,
            session,
            http,
        }
    }

    async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let r = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&body),
        };
        let v: Value = r
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("webdriver JSON");
        assert!(v["value"]["error"].is_null(), "{method} {path}: {v}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({"url": url})).await;
    }

    /// Waits until `css` matches an element whose text satisfies `ok`;
    /// returns that text.
    async fn text_when(&self, css: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self
                .cmd("POST", "/execute/sync", json!({
                    "script": "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                    "args": [css]
                }))
                .await;
            if let Some(t) = v.as_str()
                && ok(t)
            {
                return t.to_owned();
            }
            assert!(Instant::now() < deadline, "{css} never matched; last {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `css` matches an element whose attribute `name`
    /// satisfies `ok`; returns that attribute.
    async fn attr_when(
        &self,
        css: &str,
        name: &str,
        secs: u64,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self
                .cmd("POST", "/execute/sync", json!({
                    "script": "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
                    "args": [css, name]
                }))
                .await;
            if let Some(t) = v.as_str()
                && ok(t)
            {
                return t.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{css} [{name}] never matched; last {v}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether anything matches `css` now.
    async fn present(&self, css: &str) -> bool {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({
                "script": "return document.querySelector(arguments[0]) !== null;",
                "args": [css]
            }),
        )
        .await
        .as_bool()
        .expect("a boolean")
    }

    /// Scrolls the first match of `css` to the top of the window.
    async fn scroll_to(&self, css: &str) {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({
                "script": "document.querySelector(arguments[0]).scrollIntoView();",
                "args": [css]
            }),
        )
        .await;
    }

    /// Waits until nothing matches `css` (the page refreshes itself).
    async fn absent(&self, css: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self
                .cmd(
                    "POST",
                    "/execute/sync",
                    json!({
                        "script": "return document.querySelector(arguments[0]) === null;",
                        "args": [css]
                    }),
                )
                .await;
            if v.as_bool() == Some(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} still there after {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .cmd(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element id for {css}: {v}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.cmd("POST", &format!("/element/{e}/click"), json!({}))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.cmd("GET", "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64"))
            .expect("PNG");
        let dir = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
            .join("gateway-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("writing screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let (Some(chromium), Some(chromedriver)) = (
        find_binary(&["chromium", "chromium-browser"]),
        find_binary(&["chromedriver"]),
    ) else {
        assert!(
            std::env::var("HEALGRID_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "HEALGRID_REQUIRE_BROWSER=1 but chromium or chromedriver is missing"
        );
        eprintln!(
            "notice: browser test skipped; install Debian's chromium and chromium-driver to run it"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // Every slot's long leg is stuck within seconds: the cleanup queue has
    // rows to act on.
    let (ledger, trader) = support::start_stuck_stack(dir.path(), BOT, 4).await;
    let envs = [
        ("TRADER_URL", trader.endpoint.as_str()),
        ("LEDGER_URL", ledger.endpoint.as_str()),
    ];
    let gw = GatewayProcess::start("127.0.0.1", &envs, &dir.path().join("gw.log")).await;
    let driver = Driver::start(&chromium, &chromedriver).await;

    driver.goto(&format!("{}/", gw.base)).await;
    // The heat map fills in with real open positions (the page refreshes
    // itself; no reload here).
    let heat = driver
        .text_when("#heatmap table tfoot", 90, |t| {
            t.split_whitespace()
                .any(|w| w.parse::<u32>().is_ok_and(|n| n > 0))
        })
        .await;
    assert!(heat.contains('$'), "capital shown: {heat}");
    let subsidy = driver
        .text_when("#subsidy", 10, |t| t.contains("balance"))
        .await;
    assert!(!subsidy.contains("unavailable"), "{subsidy}");
    assert!(
        subsidy.contains("pending need $") && subsidy.contains("ETA"),
        "{subsidy}"
    );
    driver
        .text_when("#overview", 10, |t| {
            t.contains(BOT) && t.contains("running")
        })
        .await;
    driver.screenshot("dashboard-1280x800.png").await;

    // The price chart draws the trader's price history as a line (one
    // point per bar) among the exit levels, and marks the market now.
    let d = driver
        .attr_when("#chart svg.chart path.market", "d", 30, |d| {
            d.matches('L').count() >= 2
        })
        .await;
    assert!(d.starts_with('M'), "{d}");
    assert!(
        driver.present("#chart svg.chart line.exit").await,
        "exit levels drawn"
    );
    assert!(driver.present("#chart svg.chart circle.market-now").await);
    assert!(
        !driver.present("#chart-note").await,
        "the chart fell back to levels only"
    );
    driver.scroll_to("#chart").await;
    driver.screenshot("price-chart.png").await;

    // Act on a cleanup-queue row: Hold, confirm with a reason; the toast
    // shows the trader's answer, the row leaves the queue, and the
    // position's journal shows the hold with the reason.
    let row = support::queue_of(&gw.base, 1, 60).await[0].clone();
    let hold_button =
        format!("#cleanup tr[data-position='{row}'] button[data-action$='/keep-holding']");
    driver
        .text_when(&format!("#cleanup tr[data-position='{row}']"), 20, |t| {
            t.contains("Hold") && t.contains("Close") && t.contains("Breakeven")
        })
        .await;
    // The row shows its slot mode as the trader's cleanup queue reports
    // it: this stack's queue holds the slots' own long legs.
    let queue = support::get(&gw.base, "/api/v1/cleanup-queue").await.json();
    let mode = queue["positions"]
        .as_array()
        .expect("positions")
        .iter()
        .find(|p| p["position_id"] == row.as_str())
        .and_then(|p| p["slot_mode"].as_str())
        .unwrap_or_else(|| panic!("position {row} not in the queue: {queue}"))
        .to_owned();
    assert_eq!(mode, "sticky");
    driver
        .text_when(
            &format!("#cleanup tr[data-position='{row}'] td.slot-mode"),
            10,
            |t| t == mode,
        )
        .await;
    driver.scroll_to("#cleanup").await;
    driver.screenshot("cleanup-queue.png").await;
    driver.click(&hold_button).await;
    driver
        .text_when("#confirm-title", 5, |t| {
            t.contains(&format!("Keep holding position {row}"))
        })
        .await;
    driver
        .type_into("#confirm-reason", "browser test: waiting for the rebound")
        .await;
    driver.click("#confirm-ok").await;
    let toast = driver
        .text_when("#toast", 20, |t| t.contains("keep_holding"))
        .await;
    assert!(toast.contains("done") && toast.contains(&row), "{toast}");
    driver
        .absent(&format!("#cleanup tr[data-position='{row}']"), 20)
        .await;
    driver.scroll_to("#cleanup").await;
    driver.screenshot("cleanup-queue-held.png").await;
    driver
        .goto(&format!("{}/ui/positions/{row}", gw.base))
        .await;
    let journal = driver
        .text_when("#journal", 30, |t| t.contains("keep_holding"))
        .await;
    assert!(
        journal.contains("browser test: waiting for the rebound"),
        "{journal}"
    );
    driver.screenshot("position-held.png").await;
    driver.goto(&format!("{}/", gw.base)).await;

    // Pause through the confirm dialog with a reason; see the result.
    driver.click("button[data-action='/api/v1/pause']").await;
    driver
        .type_into("#confirm-reason", "browser test: checking the pause")
        .await;
    driver.click("#confirm-ok").await;
    driver
        .text_when("#toast", 10, |t| {
            t.contains("done") && t.contains("/api/v1/pause")
        })
        .await;
    driver
        .text_when("#overview", 20, |t| t.contains("paused"))
        .await;
    driver.screenshot("dashboard-paused.png").await;

    // A position's journal as a timeline.
    let id = driver
        .cmd("POST", "/execute/async", json!({
            "script": "const done = arguments[0]; fetch('/api/v1/positions?limit=1').then(r => r.json()).then(j => done(j.positions[0].position_id));",
            "args": []
        }))
        .await;
    driver.goto(&format!("{}/ui/positions/{id}", gw.base)).await;
    let journal = driver
        .text_when("#journal", 10, |t| t.contains("created"))
        .await;
    assert!(journal.contains("entry_price"), "{journal}");
    driver.screenshot("position.png").await;

    // The whole page at desktop width (heat map, slots, cleanup queue).
    driver
        .cmd(
            "POST",
            "/window/rect",
            json!({"width": 1280, "height": 2000}),
        )
        .await;
    driver.goto(&format!("{}/", gw.base)).await;
    driver
        .text_when("#heatmap", 10, |t| t.contains("write_off"))
        .await;
    driver.screenshot("dashboard-full.png").await;

    // Phone width.
    driver
        .cmd("POST", "/window/rect", json!({"width": 390, "height": 844}))
        .await;
    driver.goto(&format!("{}/", gw.base)).await;
    driver.text_when("#overview", 10, |t| t.contains(BOT)).await;
    let overflow = driver
        .cmd("POST", "/execute/sync", json!({"script": "return document.documentElement.scrollWidth - window.innerWidth;", "args": []}))
        .await;
    assert!(
        overflow.as_i64().unwrap_or(0) <= 0,
        "the page scrolls sideways at phone width by {overflow}px"
    );
    driver.screenshot("dashboard-phone.png").await;
}
