//! The Prometheus listeners of the real `ledger-service` and
//! `trader-service run` processes (`--metrics-listen`): calls made over
//! gRPC and loops run against the Kraken simulator must move the counters a
//! scrape over HTTP shows, and the scrape must parse as the text format.

use std::time::{Duration, Instant};

use healgrid_metrics::Scrape;
use healgrid_proto::ledger::v1::{self as pb, ledger_service_client::LedgerServiceClient};
use healgrid_tests::http;
use healgrid_tests::process::{LedgerProcess, RunArgs, SimProcess, TraderProcess, free_port};
use prost_types::Timestamp;
use tonic::Code;

const BOT: &str = "kraken:XDGUSD:metrics";
const T0: i64 = 1_700_000_000;
const LEDGER: &str = "/healgrid.ledger.v1.LedgerService/";

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// Scrapes `addr`'s `/metrics` and parses it (the parse is the format
/// check).
async fn scrape(addr: &str) -> Scrape {
    let text = http::request(addr, "GET", "/metrics")
        .await
        .unwrap_or_else(|e| panic!("GET http://{addr}/metrics: {e}"));
    Scrape::parse(&text)
        .unwrap_or_else(|e| panic!("scrape of {addr} is not text format: {e}\n{text}"))
}

fn open(key: &str) -> pb::OpenPositionRequest {
    pb::OpenPositionRequest {
        bot_id: BOT.into(),
        slot_id: Some(0),
        trade_id: pb::TradeId::B as i32,
        slot_mode: pb::SlotMode::Sticky as i32,
        cycle: 1,
        open_key: key.into(),
        entry_price: "0.0931".into(),
        entry_cost: "9.31".into(),
        entry_fee: "0.0242".into(),
        entry_volume: "100".into(),
        entry_time: ts(T0),
        entry_regime: pb::Regime::Ranging as i32,
        entry_volatility: "0.8".into(),
        original_exit_price: "0.0940".into(),
        target_profit_pct: "1.0".into(),
        exit_txid: "OEXIT-1".into(),
        migration: false,
    }
}

fn credit(position_id: u64, key: &str, amount: &str) -> pb::JournalEventRequest {
    pb::JournalEventRequest {
        position_id,
        event_key: key.into(),
        at: ts(T0 + 60),
        event_type: pb::EventType::ChurnerProfit as i32,
        details: Some(pb::EventDetails {
            kind: Some(pb::event_details::Kind::ChurnerProfit(
                pb::ChurnerProfitDetails {
                    net_profit: amount.into(),
                    churner_cycle_id: format!("churn-{key}"),
                },
            )),
        }),
    }
}

fn debit(position_id: u64, key: &str, amount: &str) -> pb::RepricePositionRequest {
    pb::RepricePositionRequest {
        position_id,
        event_key: key.into(),
        new_price: "0.0935".into(),
        new_txid: format!("TX-{key}"),
        reason: pb::RepriceReason::Subsidy as i32,
        subsidy_consumed: amount.into(),
        at: ts(T0 + 120),
    }
}

/// Proves: the ledger counts its calls by method and status code (with a
/// latency histogram per series), the journal rows it appends (a replayed
/// write appends none) and the subsidy debits it refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_metrics_count_calls_rows_and_refused_debits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = format!("127.0.0.1:{}", free_port());
    let db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let ledger =
        LedgerProcess::start_with(free_port(), &db, &[("LEDGER_METRICS_LISTEN", &metrics)]).await;
    let mut c = LedgerServiceClient::connect(ledger.endpoint.clone())
        .await
        .expect("connect to the ledger");

    let before = scrape(&metrics).await;
    assert_eq!(
        before.value("ledger_subsidy_debits_refused_total", &[]),
        Some(0.0),
        "exposed at zero before anything happened"
    );

    let id = c
        .open_position(open("m-open"))
        .await
        .expect("open")
        .into_inner();
    let id = id.position.expect("position").position_id;
    let replay = c
        .open_position(open("m-open"))
        .await
        .expect("replayed open");
    assert!(replay.into_inner().replayed);
    c.journal_event(credit(id, "m-credit", "1.0"))
        .await
        .expect("credit");
    let refused = c
        .reprice_position(debit(id, "m-debit", "1.5"))
        .await
        .expect_err("a debit beyond the balance is refused");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let missing = c
        .get_position(pb::GetPositionRequest {
            position_id: id + 1000,
        })
        .await
        .expect_err("unknown position");
    assert_eq!(missing.code(), Code::NotFound);

    let s = scrape(&metrics).await;
    let calls = |method: &str, code: &str| {
        s.value(
            "ledger_grpc_requests_total",
            &[("method", &format!("{LEDGER}{method}")), ("code", code)],
        )
    };
    assert_eq!(calls("OpenPosition", "Ok"), Some(2.0));
    assert_eq!(calls("JournalEvent", "Ok"), Some(1.0));
    assert_eq!(calls("RepricePosition", "FailedPrecondition"), Some(1.0));
    assert_eq!(calls("GetPosition", "NotFound"), Some(1.0));
    assert_eq!(
        s.value(
            "ledger_grpc_request_duration_seconds_count",
            &[("method", &format!("{LEDGER}OpenPosition")), ("code", "Ok")],
        ),
        Some(2.0)
    );
    assert_eq!(
        s.value(
            "ledger_grpc_request_duration_seconds_bucket",
            &[
                ("method", &format!("{LEDGER}OpenPosition")),
                ("code", "Ok"),
                ("le", "+Inf")
            ],
        ),
        Some(2.0)
    );
    assert_eq!(
        s.value("ledger_journal_rows_appended_total", &[("write", "open")]),
        Some(1.0),
        "the replayed open appended no row"
    );
    assert_eq!(
        s.value("ledger_journal_rows_appended_total", &[("write", "event")]),
        Some(1.0)
    );
    assert_eq!(
        s.value("ledger_subsidy_debits_refused_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        s.types
            .get("ledger_grpc_request_duration_seconds")
            .map(String::as_str),
        Some("histogram")
    );
    let other = http::request(&metrics, "GET", "/").await;
    assert!(other.is_err(), "only /metrics is served");
}

/// Polls the trader's scrape until `done` holds (the market is stepped
/// meanwhile), failing with the last scrape after `secs`.
async fn scrape_until(addr: &str, secs: u64, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = scrape(addr).await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < end, "no {what} within {secs} s: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Proves: a trader on the Kraken simulator exposes its loops and their
/// durations, fills, the call budget and outbox depth, and counts exchange
/// errors by call and kind (one `AddOrder` whose answer the simulator
/// loses: an ambiguous placement, which the client never retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trader_metrics_count_loops_fills_budget_and_exchange_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimProcess::start_manual(11, &dir.path().join("sim.log")).await;
    let ledger = LedgerProcess::start(&format!(
        "sqlite://{}",
        dir.path().join("ledger.db").display()
    ))
    .await;
    let metrics = format!("127.0.0.1:{}", free_port());
    let run = RunArgs {
        bot: BOT,
        store: &dir.path().join("trader.db"),
        ledger_url: &ledger.endpoint,
        slots: 2,
    };
    let args = run.kraken(
        &sim,
        &["--poll-interval-sec", "1", "--metrics-listen", &metrics],
    );
    let log = dir.path().join("trader.log");
    let _trader = TraderProcess::start(&args, &SimProcess::CREDENTIALS, &log).await;
    scrape_until(&metrics, 30, "first loop", |s| {
        s.value("trader_loops_total", &[]).unwrap_or(0.0) >= 1.0
    })
    .await;
    http::post_json(
        &sim.addr,
        "/sim/faults",
        r#"{"method":"AddOrder","fault":"lost_response","count":1}"#,
    )
    .await
    .expect("queueing a lost AddOrder answer");

    // Step the market until entries fill.
    let end = Instant::now() + Duration::from_secs(60);
    let s = loop {
        let _ = http::request(&sim.addr, "POST", "/sim/step").await;
        let s = scrape(&metrics).await;
        if s.value("trader_fills_total", &[]).unwrap_or(0.0) >= 1.0
            && s.sum("trader_exchange_errors_total", &[]) >= 1.0
        {
            break s;
        }
        assert!(
            Instant::now() < end,
            "no fill and exchange error in 60 s: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let loops = s.value("trader_loops_total", &[]).expect("loops");
    assert!(loops >= 2.0, "{loops}");
    assert_eq!(
        s.value("trader_loop_duration_seconds_count", &[]),
        Some(loops),
        "one duration per loop"
    );
    assert_eq!(
        s.value(
            "trader_exchange_errors_total",
            &[("call", "add_order"), ("kind", "Ambiguous")]
        ),
        Some(1.0)
    );
    assert!(s.value("trader_call_budget_limit", &[]) == Some(30.0));
    assert!(s.value("trader_call_budget_used", &[]).is_some());
    assert!(s.value("trader_outbox_depth", &[]).is_some());
    assert!(
        s.value("trader_reprices_total", &[("kind", "tighten")])
            .is_some()
    );
    assert_eq!(
        s.value("trader_churner_cycles_total", &[]),
        Some(0.0),
        "no churner configured"
    );
    for (family, kind) in [
        ("trader_loops_total", "counter"),
        ("trader_loop_duration_seconds", "histogram"),
        ("trader_outbox_depth", "gauge"),
    ] {
        assert_eq!(
            s.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
}
