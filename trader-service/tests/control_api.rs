//! The trader's control API over real gRPC, against a live [`Runtime`] on
//! the paper exchange with the in-process ledger, plus the `run`
//! subcommand's behaviour as a real process (bad configuration, SIGTERM).

#![allow(missing_docs)]

mod grid;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use healgrid_proto::trader::v1 as pb;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;
use ledger_service::Ledger;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use trader_service::engine::EngineConfig;
use trader_service::exchange::SimClock;
use trader_service::exchange::paper::PaperExchange;
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};
use trader_service::runtime::{Runtime, RuntimeConfig};

const BIN: &str = env!("CARGO_BIN_EXE_trader-service");

async fn deadline_loop<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status(c: &mut TraderServiceClient<Channel>) -> pb::GetStatusResponse {
    c.get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn txids(s: &pb::GetStatusResponse) -> BTreeSet<String> {
    s.slots
        .iter()
        .flat_map(|sl| sl.orders.iter())
        .filter(|o| !o.txid.is_empty())
        .map(|o| o.txid.clone())
        .collect()
}

/// Exchange ids of the status's entry orders.
fn entry_txids(s: &pb::GetStatusResponse) -> BTreeSet<String> {
    s.slots
        .iter()
        .flat_map(|sl| sl.orders.iter())
        .filter(|o| !o.txid.is_empty() && o.order_id.contains(":en:"))
        .map(|o| o.txid.clone())
        .collect()
}

async fn reflection_lists_services(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    match resp.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn reflection_v1alpha_lists_services(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    match stream.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

/// Proves, over real gRPC against a running runtime: health is SERVING
/// (overall and for `healgrid.trader.v1.TraderService`); reflection v1 and
/// v1alpha list the trader and health services; `GetStatus` shows every
/// slot with its phase and orders and open positions with a band, decimal
/// strings and a loop timestamp; `Pause` stops placements (an exit waiting
/// to be placed stays unplaced and no order appears on the exchange while
/// fills are still processed); `Resume` places it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_over_grpc() {
    let cs = grid::candles(200_000, 21);
    let clock = SimClock::new(cs[0].time * 1000);
    let paper = PaperExchange::new(grid::paper_config(200), clock.clone());
    paper.step(&cs[0]);
    let mut engine = EngineConfig::defaults(grid::spec());
    engine.slots = 3;
    engine.order_size = trader_service::engine::OrderSize::Usd(dec!(6));
    engine.profit_pct = dec!(0.5);
    // No entry refreshes: an entry held back by the pause and then asked to
    // be cancelled is a runtime path this test is not about (see the
    // runtime's own tests).
    engine.refresh_pct = dec!(50);
    let engine = engine.validate().0;
    let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
    let ledger = LocalLedger::new(Ledger::in_memory().await.unwrap());
    let mut rt = Runtime::new(
        RuntimeConfig::new("ctl-grpc", engine),
        paper.clone(),
        ledger,
        store,
    )
    .await
    .unwrap();
    let handle = rt.handle();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(trader_service::server::serve(handle, listener, async {
        let _ = server_stopped.await;
    }));
    // The market: one candle every 2 ms of real time.
    let market = {
        let paper = paper.clone();
        tokio::spawn(async move {
            for c in &cs[1..] {
                tokio::time::sleep(Duration::from_millis(2)).await;
                paper.step(c);
            }
        })
    };
    let (stop_rt, rt_stopped) = tokio::sync::oneshot::channel::<()>();

    let body = async {
        let channel = deadline_loop("the server", 10, async || {
            tonic::transport::Endpoint::from_shared(url.clone())
                .unwrap()
                .connect()
                .await
                .ok()
        })
        .await;
        let mut health = HealthClient::new(channel.clone());
        for service in ["", "healgrid.trader.v1.TraderService"] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
        }
        for names in [
            reflection_lists_services(channel.clone()).await,
            reflection_v1alpha_lists_services(channel.clone()).await,
        ] {
            assert!(
                names.contains(&"healgrid.trader.v1.TraderService".to_string()),
                "{names:?}"
            );
            assert!(
                names.contains(&"grpc.health.v1.Health".to_string()),
                "{names:?}"
            );
            assert!(
                !names.iter().any(|n| n.starts_with("healgrid.ledger.")),
                "the trader must not offer the ledger's API: {names:?}"
            );
        }

        let mut c = TraderServiceClient::new(channel);
        let s = deadline_loop("open positions", 30, async || {
            let s = status(&mut c).await;
            (!s.positions.is_empty()).then_some(s)
        })
        .await;
        assert_eq!(s.bot_id, "ctl-grpc");
        assert_eq!(s.pair, "XDGUSD");
        assert_eq!(s.mode, pb::Mode::Running as i32);
        assert!(s.market_price.parse::<Decimal>().unwrap() > Decimal::ZERO);
        assert!(s.last_loop_at.is_some() && s.loops > 0);
        assert_eq!(s.slots.len(), 3);
        assert_eq!(
            s.slots.iter().map(|sl| sl.slot_id).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        for sl in &s.slots {
            assert_ne!(sl.phase, pb::Phase::Unspecified as i32);
            for o in &sl.orders {
                assert!(o.price.parse::<Decimal>().unwrap() > Decimal::ZERO);
                assert!(o.volume.parse::<Decimal>().unwrap() > Decimal::ZERO);
                assert_ne!(o.side, pb::Side::Unspecified as i32);
                assert_ne!(o.role, pb::OrderRole::Unspecified as i32);
            }
        }
        let exits: usize = s
            .slots
            .iter()
            .flat_map(|sl| &sl.orders)
            .filter(|o| o.role == pb::OrderRole::Exit as i32)
            .count();
        assert_eq!(exits, s.positions.len(), "one exit per open position");
        for p in &s.positions {
            assert_ne!(p.band, pb::AgeBand::Unspecified as i32);
            assert_ne!(p.trade, pb::Trade::Unspecified as i32);
            assert!(p.age_seconds >= 0);
            p.distance_pct.parse::<Decimal>().unwrap();
            p.effective_age_seconds.parse::<Decimal>().unwrap();
            p.entry_price.parse::<Decimal>().unwrap();
        }
        assert!(s.outbox.is_some() && s.budget.is_some());

        // Pause, and wait until a snapshot shows it.
        let r = c
            .pause(pb::PauseRequest {
                reason: "test".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_ne!(r.mode, pb::Mode::Unspecified as i32);
        let paused = deadline_loop("paused", 10, async || {
            let s = status(&mut c).await;
            (s.mode == pb::Mode::Paused as i32).then_some(s)
        })
        .await;
        let known = entry_txids(&paused);
        let entries_on_book = |paper: &trader_service::exchange::paper::PaperExchange| {
            paper.with_book(|b| {
                b.open_orders()
                    .into_iter()
                    .filter(|o| o.cl_ord_id.as_deref().is_some_and(|c| c.contains(":en:")))
                    .map(|o| o.txid)
                    .collect::<BTreeSet<String>>()
            })
        };
        let book_before = entries_on_book(&paper);
        // Fills go on while paused (their exits are placed): wait for an
        // entry the engine wants placed (the next cycle after an exit
        // fill) that the pause holds back.
        let (waiting, loops_then) =
            deadline_loop("an entry held back by the pause", 60, async || {
                let s = status(&mut c).await;
                assert!(
                    entry_txids(&s).is_subset(&known),
                    "no new entry while paused"
                );
                s.slots
                    .iter()
                    .flat_map(|sl| &sl.orders)
                    .find(|o| o.txid.is_empty() && o.order_id.contains(":en:"))
                    .map(|o| (o.order_id.clone(), s.loops))
            })
            .await;
        // Several more loops: still not placed, no new entry on the book.
        deadline_loop("more loops", 10, async || {
            (status(&mut c).await.loops >= loops_then + 5).then_some(())
        })
        .await;
        let s = status(&mut c).await;
        let still = s
            .slots
            .iter()
            .flat_map(|sl| &sl.orders)
            .find(|o| o.order_id == waiting)
            .expect("the held-back entry is still wanted");
        assert!(still.txid.is_empty(), "placed while paused");
        assert!(
            entries_on_book(&paper).is_subset(&book_before),
            "the exchange got a new entry while paused"
        );
        // Every exit the engine holds is on the book: paused or not, filled
        // inventory keeps its exit.
        assert!(
            s.slots
                .iter()
                .flat_map(|sl| &sl.orders)
                .filter(|o| o.order_id.contains(":ex:"))
                .all(|o| !o.txid.is_empty()),
            "an exit waited for the pause to end: {s:?}"
        );

        c.resume(pb::ResumeRequest {
            reason: "test".into(),
        })
        .await
        .unwrap();
        deadline_loop("the held-back order placed after resume", 20, async || {
            let s = status(&mut c).await;
            let placed = s.mode == pb::Mode::Running as i32
                && s.slots
                    .iter()
                    .flat_map(|sl| &sl.orders)
                    .any(|o| o.order_id == waiting && !o.txid.is_empty());
            // The order may also have filled already after placement.
            let gone = !s
                .slots
                .iter()
                .flat_map(|sl| &sl.orders)
                .any(|o| o.order_id == waiting);
            (placed || (gone && s.mode == pb::Mode::Running as i32)).then_some(())
        })
        .await;
        stop_rt.send(()).unwrap();
    };
    let run = rt.run_forever(&clock, Duration::from_millis(5), async {
        let _ = rt_stopped.await;
    });
    let (r, ()) = tokio::join!(run, body);
    r.unwrap();
    market.abort();
    stop_server.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// Runs `trader-service run` with `args`/`env` (and a clean environment)
/// and returns (exit code, stderr).
fn run_bin(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .arg("run")
        .args(["--store", "sqlite::memory:", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("running trader-service");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One bad configuration: flags, environment, the setting it must name.
type BadCase = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// Proves: each kind of bad configuration (negative size by flag and by
/// environment, zero slots, a bad ledger URL, Kraken without keys or with a
/// non-base64 secret, a pair the paper exchange does not list, zero sim
/// speed, a placement stale window of zero or over a day) ends the process with exit code 2 and one stderr line naming the
/// setting, never a panic.
#[test]
fn run_rejects_bad_configuration_naming_the_setting() {
    let cases: &[BadCase] = &[
        (&["--order-size-usd=-1"], &[], "ORDER_SIZE_USD"),
        (&[], &[("ORDER_SIZE_USD", "-5")], "ORDER_SIZE_USD"),
        (&["--slots", "0"], &[], "SLOTS"),
        (&["--ledger-url", "127.0.0.1:50051"], &[], "LEDGER_URL"),
        (
            &["--ledger-url", "http://a:50051,http://a:50051"],
            &[],
            "LEDGER_URL",
        ),
        (
            &[],
            &[("LEDGER_URL", "http://a:50051,b:50051")],
            "LEDGER_URL",
        ),
        (&["--exchange", "kraken"], &[], "KRAKEN_API_KEY"),
        (
            &["--exchange", "kraken"],
            &[("KRAKEN_API_KEY", "k")],
            "KRAKEN_API_SECRET",
        ),
        (
            &["--exchange", "kraken"],
            &[
                ("KRAKEN_API_KEY", "k"),
                ("KRAKEN_API_SECRET", "not base64!"),
            ],
            "KRAKEN_API_SECRET",
        ),
        (&["--pair", "DOGEEUR"], &[], "PAIR"),
        (&["--sim-speed", "0"], &[], "SIM_SPEED"),
        (&["--placement-stale-sec", "0"], &[], "PLACEMENT_STALE_SEC"),
        (
            &[],
            &[("PLACEMENT_STALE_SEC", "90000")],
            "PLACEMENT_STALE_SEC",
        ),
    ];
    for (args, env, name) in cases {
        let (code, stderr) = run_bin(args, env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{args:?} {env:?}: one line expected: {stderr}"
        );
        assert!(lines[0].contains(name), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Proves: `--help` lists the settings with their environment variables
/// and defaults.
#[test]
fn run_help_lists_settings_with_defaults() {
    let out = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for s in [
        "EXCHANGE",
        "KRAKEN_API_URL",
        "KRAKEN_API_KEY",
        "KRAKEN_API_SECRET",
        "LEDGER_URL",
        "BOT_ID",
        "TRADER_DATABASE_URL",
        "TRADER_LISTEN",
        "PLACEMENT_STALE_SEC",
        "SIM_SPEED",
        "ORDER_SIZE_USD",
        "POLL_INTERVAL_SEC",
        "CHURNER_ENABLED",
        "[default: http://127.0.0.1:50051]",
        "[default: 127.0.0.1:50052]",
        "[default: sqlite://healgrid-trader.db]",
    ] {
        assert!(help.contains(s), "--help lacks {s}");
    }
}

/// Proves: the real service comes up with the ledger down (it trades
/// through a ledger outage), reports itself healthy, trades (GetStatus shows
/// loops and orders), and on SIGTERM finishes and exits 0.
#[tokio::test]
async fn run_serves_status_and_exits_zero_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut child = Command::new(BIN)
        .args(["run", "--exchange", "paper", "--sim-speed", "600"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--ledger-url", "http://127.0.0.1:9", "--store", &store])
        .args(["--order-size-usd", "10", "--shutdown-flush-sec", "1"])
        .env_clear()
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let mut c = deadline_loop("the trader's control API", 30, async || {
        assert!(child.try_wait().unwrap().is_none(), "trader exited early");
        TraderServiceClient::connect(url.clone()).await.ok()
    })
    .await;
    let s = deadline_loop("orders", 30, async || {
        let s = status(&mut c).await;
        (s.loops > 2 && !txids(&s).is_empty()).then_some(s)
    })
    .await;
    assert_eq!(s.bot_id, "paper:XDGUSD:main");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let end = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        assert!(Instant::now() < end, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, Some(0));
}

/// Starts `trader-service run` on the paper exchange with `extra` flags,
/// its log (warnings and worse, on stdout) going to `log`, and returns the child and a connected client.
async fn spawn_run(
    extra: &[&str],
    log: &std::path::Path,
) -> (std::process::Child, TraderServiceClient<Channel>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args(["run", "--exchange", "paper", "--sim-speed", "600"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--ledger-url",
            "http://127.0.0.1:9",
            "--store",
            "sqlite::memory:",
        ])
        .args(["--shutdown-flush-sec", "1"])
        .args(extra)
        .env_clear()
        .env("RUST_LOG", "warn")
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let c = deadline_loop("the trader's control API", 30, async || {
        assert!(child.try_wait().unwrap().is_none(), "trader exited early");
        TraderServiceClient::connect(url.clone()).await.ok()
    })
    .await;
    (child, c)
}

/// Proves: an order size below XDGUSD's minimum is loud (start-up warning
/// with the numbers, each idle trade says why in GetStatus), and the
/// default size (unset) trades.
#[tokio::test]
async fn a_size_below_the_minimum_is_loud_and_the_default_trades() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("small.log");
    let (mut child, mut c) = spawn_run(&["--order-size-usd", "2"], &log).await;
    let s = deadline_loop("idle reasons", 30, async || {
        let s = status(&mut c).await;
        (s.loops > 2 && s.slots.iter().any(|sl| !sl.idle.is_empty())).then_some(s)
    })
    .await;
    child.kill().unwrap();
    let _ = child.wait();
    assert!(txids(&s).is_empty(), "nothing can be placed at 2 USD");
    for slot in &s.slots {
        assert_eq!(slot.idle.len(), 2, "both trades wait: {slot:?}");
        assert!(
            slot.idle.iter().all(|i| i.reason.contains("pair minimum")),
            "{slot:?}"
        );
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("NOTHING WILL TRADE"), "{logged}");
    assert!(logged.contains("ORDER_SIZE_USD=2"), "{logged}");

    let (mut child, mut c) = spawn_run(&[], &dir.path().join("default.log")).await;
    let s = deadline_loop("orders at the default size", 30, async || {
        let s = status(&mut c).await;
        (!txids(&s).is_empty()).then_some(s)
    })
    .await;
    child.kill().unwrap();
    let _ = child.wait();
    assert!(s.slots.iter().all(|sl| sl.idle.is_empty()), "{:?}", s.slots);
}
