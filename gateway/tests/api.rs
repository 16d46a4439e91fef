//! The REST API through the real `gateway` binary against real
//! `ledger-service` and `trader-service run` processes (paper exchange):
//! every read route, pause/resume with idempotent retry, auth refusals,
//! bad input (never a 500), and backends that are down or hang. The
//! operator actions on positions and churners: `api_actions.rs`.

#![allow(missing_docs)]

mod support;

use healgrid_tests::process::{LedgerProcess, TraderProcess, free_port};
use serde_json::Value;
use support::{GatewayProcess, get, post, wait_for};

const BOT: &str = "paper:XDGUSD:gw";
const TOKEN: &str = "tok-5f1c9a0e-never-logged";

async fn start_stack(dir: &std::path::Path) -> (LedgerProcess, TraderProcess) {
    let ledger_db = format!("sqlite://{}", dir.join("ledger.db").display());
    let ledger = LedgerProcess::start(&ledger_db).await;
    let store = format!("sqlite://{}", dir.join("trader.db").display());
    let args: Vec<String> = [
        "--exchange",
        "paper",
        "--market",
        "synthetic",
        "--seed",
        "11",
        "--sim-speed",
        "1200",
        "--ledger-url",
        &ledger.endpoint,
        "--store",
        &store,
        "--bot-id",
        BOT,
        "--slots",
        "3",
        "--order-size-usd",
        "10",
        "--profit-pct",
        "0.5",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let trader = TraderProcess::start(&args, &[], &dir.join("trader.log")).await;
    (ledger, trader)
}

fn acknowledged_id(status: &Value) -> Option<u64> {
    status["positions"]
        .as_array()?
        .iter()
        .find_map(|p| p["position_id"].as_str()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_against_the_real_stack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, trader) = start_stack(dir.path()).await;
    let envs = [
        ("TRADER_URL", trader.endpoint.as_str()),
        ("LEDGER_URL", ledger.endpoint.as_str()),
    ];
    let gw = GatewayProcess::start("127.0.0.1", &envs, &dir.path().join("gw.log")).await;
    let base = gw.base.as_str();

    // Probes and version.
    assert_eq!(get(base, "/healthz").await.json()["status"], "ok");
    let ready = get(base, "/readyz").await;
    assert_eq!(
        (ready.status, ready.json()["ready"].as_bool()),
        (200, Some(true)),
        "{}",
        ready.text
    );
    assert_eq!(
        get(base, "/api/v1/version").await.json()["api_version"],
        "1"
    );

    // Status, until the ledger acknowledged an open position.
    let status = wait_for("an acknowledged position", 90, async || {
        let s = get(base, "/api/v1/status").await;
        assert_eq!(s.status, 200, "{}", s.text);
        let v = s.json();
        acknowledged_id(&v).map(|_| v)
    })
    .await;
    assert_eq!(status["bot_id"], BOT);
    assert_eq!(status["slots"].as_array().map(Vec::len), Some(3));
    assert_eq!(status["bands"].as_array().map(Vec::len), Some(5));
    assert!(status["market"]["price"].is_string());
    // The trader's healing section passes through (stage A by default).
    assert_eq!(status["healing"]["stage"], "A", "{status}");
    assert!(status["healing"]["regime"].is_string());
    assert!(status["healing"]["profit_target_pct"].is_string());
    let id = acknowledged_id(&status).expect("id");

    // Positions: open with bands, filters, paging, closed.
    let open = get(base, "/api/v1/positions").await;
    assert_eq!(open.status, 200, "{}", open.text);
    let open = open.json();
    assert!(open["total"].as_u64().unwrap() >= 1);
    let mine = open["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["position_id"] == id)
        .expect("listed");
    let band = mine["band"]
        .as_str()
        .expect("band from the trader")
        .to_owned();
    let slot = mine["slot_id"].as_u64().unwrap();
    let filtered = get(
        base,
        &format!("/api/v1/positions?slot={slot}&band={band}&limit=1"),
    )
    .await
    .json();
    assert!(filtered["total"].as_u64().unwrap() >= 1);
    assert_eq!(filtered["positions"].as_array().unwrap().len(), 1);
    assert!(
        filtered["positions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["slot_id"] == slot && p["band"] == band.as_str())
    );
    let closed = get(base, "/api/v1/positions?status=closed&mode=sticky").await;
    assert_eq!(closed.status, 200, "{}", closed.text);
    assert!(
        closed.json()["positions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "closed")
    );

    // One position, its journal and its exit price history.
    let detail = get(base, &format!("/api/v1/positions/{id}")).await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    let detail = detail.json();
    assert_eq!(detail["position"]["position_id"], id);
    assert_eq!(detail["journal"][0]["event_type"], "created");
    let history = get(base, &format!("/api/v1/positions/{id}/history"))
        .await
        .json();
    assert_eq!(history["exit_prices"][0]["reason"], "created");
    assert!(
        history["exit_prices"][0]["price"]
            .as_str()
            .is_some_and(|p| !p.is_empty())
    );

    // Subsidy, cleanup queue (write-off positions only), churners (off at
    // stage A), candles.
    let sub = get(base, "/api/v1/subsidy").await;
    assert_eq!(
        (sub.status, sub.json()["bot_id"].as_str()),
        (200, Some(BOT)),
        "{}",
        sub.text
    );
    // The trader's pending need beside the ledger's figures: nothing is
    // needed at stage A, so the ETA is zero, not unknown.
    let pending = &sub.json()["pending"];
    assert_eq!(pending["total"], "0", "{}", sub.text);
    assert_eq!(pending["eta_seconds"], 0, "{}", sub.text);
    assert!(pending["by_slot"].is_object(), "{}", sub.text);
    assert!(pending["churner_net_24h_usd"].is_string(), "{}", sub.text);
    let queue = get(base, "/api/v1/cleanup-queue").await;
    assert_eq!(queue.status, 200, "{}", queue.text);
    for p in queue.json()["positions"].as_array().unwrap() {
        assert!(p["actions"].is_array(), "{p}");
        assert!(p["position_id"].is_string(), "{p}");
        assert!(
            ["sticky", "churner"].contains(&p["slot_mode"].as_str().unwrap_or_default()),
            "{p}"
        );
    }
    let churners = get(base, "/api/v1/churners").await;
    assert_eq!(churners.status, 200, "{}", churners.text);
    assert_eq!(
        churners.json()["enabled"],
        false,
        "stage A: {}",
        churners.text
    );
    let candles = get(base, "/api/v1/candles?since=0").await;
    assert_eq!(candles.status, 200, "{}", candles.text);
    assert!(
        !candles.json()["candles"].as_array().unwrap().is_empty(),
        "the trader has seen prices: {}",
        candles.text
    );

    // Bad input: 400/404/405/422 with the JSON shape, never a 500.
    for (path, code) in [
        ("/api/v1/positions/abc", 400),
        ("/api/v1/positions/0", 400),
        ("/api/v1/positions/-1/history", 400),
        ("/api/v1/positions/99999999", 404),
        ("/api/v1/positions/99999999/history", 404),
        ("/api/v1/positions?limit=0", 400),
        ("/api/v1/positions?limit=abc", 400),
        ("/api/v1/positions?band=purple", 400),
        ("/api/v1/positions?colour=red", 400),
        ("/api/v1/positions?status=closed&band=fresh", 400),
        ("/api/v1/candles?since=yesterday", 400),
        ("/api/v1/nope", 404),
        ("/api/v1/pause", 405),
    ] {
        let a = get(base, path).await;
        assert_eq!(a.status, code, "{path}: {}", a.text);
        a.error_code();
    }

    // Pause: key required, retry replays, reuse for another body conflicts.
    let p = post(base, "/api/v1/pause", None, None, "{}").await;
    assert_eq!((p.status, p.error_code().as_str()), (400, "bad_request"));
    let first = post(
        base,
        "/api/v1/pause",
        Some("pause-1"),
        None,
        r#"{"reason":"api test"}"#,
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = post(
        base,
        "/api/v1/pause",
        Some("pause-1"),
        None,
        r#"{"reason":"api test"}"#,
    )
    .await;
    assert_eq!((again.status, again.json()), (200, first.json()));
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let reused = post(
        base,
        "/api/v1/pause",
        Some("pause-1"),
        None,
        r#"{"reason":"other"}"#,
    )
    .await;
    assert_eq!(
        (reused.status, reused.error_code().as_str()),
        (409, "conflict")
    );
    for (body, code) in [
        ("{not json", 400),
        (r#"{"reason":1}"#, 422),
        (r#"{"why":"x"}"#, 422),
    ] {
        let a = post(base, "/api/v1/pause", Some("pause-bad"), None, body).await;
        assert_eq!(a.status, code, "{body}: {}", a.text);
        a.error_code();
    }
    let long = format!(r#"{{"reason":"{}"}}"#, "x".repeat(501));
    assert_eq!(
        post(base, "/api/v1/pause", Some("pause-long"), None, &long)
            .await
            .status,
        422
    );
    wait_for("mode paused", 30, async || {
        (get(base, "/api/v1/status").await.json()["mode"] == "paused").then_some(())
    })
    .await;
    let resumed = post(base, "/api/v1/resume", Some("resume-1"), None, "").await;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    wait_for("mode running", 30, async || {
        (get(base, "/api/v1/status").await.json()["mode"] == "running").then_some(())
    })
    .await;

    // Operator actions reach the trader (every route in detail:
    // api_actions.rs): key and id are checked first, the trader refuses an
    // unknown position.
    for (path, key, code) in [
        (
            "/api/v1/positions/99999999/close-at-market".to_owned(),
            Some("k1"),
            404,
        ),
        (format!("/api/v1/positions/{id}/keep-holding"), None, 400),
        (
            "/api/v1/positions/x/reprice-breakeven".to_owned(),
            Some("k2"),
            400,
        ),
        ("/api/v1/churners/0/spawn".to_owned(), Some("k3"), 409),
        ("/api/v1/churners/-1/kill".to_owned(), Some("k4"), 400),
    ] {
        let a = post(base, &path, key, None, r#"{"reason":"api test"}"#).await;
        assert_eq!(a.status, code, "{path}: {}", a.text);
        a.error_code();
    }

    // Dashboard pages render the live numbers.
    let page = get(base, "/").await;
    assert_eq!(page.status, 200);
    for needle in [
        "Age heat map",
        "Subsidy health",
        "pending need $0",
        "ETA nothing needed",
        "Cleanup queue",
        BOT,
        "app.js",
    ] {
        assert!(page.text.contains(needle), "dashboard lacks {needle}");
    }
    assert!(get(base, "/ui/panels").await.text.contains("Overview"));
    let pos_page = get(base, &format!("/ui/positions/{id}")).await;
    assert!(pos_page.text.contains("Journal") && pos_page.text.contains("created"));
    assert!(
        get(base, "/assets/app.js")
            .await
            .text
            .contains("Idempotency-Key")
    );

    // Metrics by route template and status.
    let m = get(base, "/metrics").await.text;
    assert!(
        m.contains(
            r#"gateway_http_requests_total{route="/api/v1/status",method="GET",status="200"}"#
        ),
        "{m}"
    );
    assert!(
        m.contains(r#"route="/api/v1/positions/{id}",method="GET",status="404""#),
        "{m}"
    );

    // A gateway with a token: 401 without or with a wrong one; the token
    // never reaches the logs (which run at debug level).
    let with_token = [envs[0], envs[1], ("GATEWAY_TOKEN", TOKEN)];
    let gt =
        GatewayProcess::start("127.0.0.1", &with_token, &dir.path().join("gw-token.log")).await;
    for bad in [None, Some("wrong")] {
        let a = post(&gt.base, "/api/v1/pause", Some("t-1"), bad, "{}").await;
        assert_eq!((a.status, a.error_code().as_str()), (401, "unauthorized"));
    }
    let ok = post(&gt.base, "/api/v1/resume", Some("t-2"), Some(TOKEN), "{}").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        get(&gt.base, "/api/v1/status").await.status,
        200,
        "reads stay open"
    );
    let logs = gt.logs();
    assert!(logs.contains("actions require the bearer token"), "{logs}");
    assert!(!logs.contains(TOKEN), "the token leaked into the logs");

    // No token on a non-loopback address: actions refused, reads served.
    let open_addr =
        GatewayProcess::start("0.0.0.0", &envs, &dir.path().join("gw-public.log")).await;
    let a = post(&open_addr.base, "/api/v1/pause", Some("p-1"), None, "{}").await;
    assert_eq!((a.status, a.error_code().as_str()), (403, "forbidden"));
    assert!(open_addr.logs().contains("actions refused"));
    assert_eq!(get(&open_addr.base, "/api/v1/version").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_down_or_hanging_answer_503_and_504() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let envs = [
        ("TRADER_URL", nowhere.as_str()),
        ("LEDGER_URL", nowhere.as_str()),
        ("BOT_ID", BOT),
    ];
    let gw = GatewayProcess::start("127.0.0.1", &envs, &dir.path().join("gw.log")).await;
    let base = gw.base.as_str();
    assert_eq!(get(base, "/healthz").await.status, 200);
    // The container healthcheck: alive is alive, whatever the backends.
    let port = base.rsplit(':').next().expect("port");
    let check = |listen: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
            .args(["--check-health", "--listen", &listen])
            .output()
            .expect("running gateway --check-health")
    };
    assert!(check(format!("0.0.0.0:{port}")).status.success());
    let dead = check(format!("127.0.0.1:{}", free_port()));
    assert!(!dead.status.success());
    assert!(String::from_utf8_lossy(&dead.stderr).contains("gateway at 127.0.0.1:"));
    let ready = get(base, "/readyz").await;
    assert_eq!(ready.status, 503);
    assert!(
        ready.json()["trader"]
            .as_str()
            .unwrap()
            .contains("trader is unreachable")
    );
    for (path, who) in [
        ("/api/v1/status", "trader"),
        ("/api/v1/cleanup-queue", "trader"),
        ("/api/v1/subsidy", "ledger"),
        ("/api/v1/positions", "ledger"),
        ("/api/v1/positions/1", "ledger"),
    ] {
        let a = get(base, path).await;
        assert_eq!(
            (a.status, a.error_code().as_str()),
            (503, "unavailable"),
            "{path}: {}",
            a.text
        );
        assert!(
            a.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{who} is unreachable")),
            "{}",
            a.text
        );
    }
    let a = post(base, "/api/v1/pause", Some("down-1"), None, "{}").await;
    assert_eq!((a.status, a.error_code().as_str()), (503, "unavailable"));
    let page = get(base, "/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("trader unavailable") && page.text.contains("ledger unavailable"),
        "{}",
        page.text
    );

    // A backend that accepts connections and never answers: 504.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hang_url = format!("http://{}", hang.local_addr().unwrap());
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let envs = [
        ("TRADER_URL", hang_url.as_str()),
        ("LEDGER_URL", nowhere.as_str()),
        ("GATEWAY_RPC_DEADLINE_MS", "300"),
    ];
    let slow = GatewayProcess::start("127.0.0.1", &envs, &dir.path().join("gw-hang.log")).await;
    let t0 = std::time::Instant::now();
    let a = get(&slow.base, "/api/v1/status").await;
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (504, "deadline_exceeded"),
        "{}",
        a.text
    );
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(3),
        "the deadline held"
    );
}
