//! Issue 4, kill test (a): the **ledger** process is SIGKILLed while a real
//! `trader-service run` (paper exchange, fast simulated time) trades.
//!
//! Proves: while the ledger is down the trader keeps trading (its outbox
//! of ledger writes grows, and those writes only come from fills); after the
//! ledger restarts on the same SQLite file the outbox drains to zero; the
//! trader stops cleanly on SIGTERM (exit 0); and the ledger then holds
//! **exactly** what the trader's own store says it delivered: every
//! position (`open_key`) once, every close once, every other event once, no
//! duplicate journal event key, nothing pending or parked.

use std::time::{Duration, Instant};

use healgrid_proto::ledger::v1 as lpb;
use healgrid_proto::trader::v1::{self as pb, trader_service_client::TraderServiceClient};
use healgrid_tests::audit::{assert_unique, ledger_view, trader_outbox};
use healgrid_tests::process::{LedgerProcess, TraderProcess, free_port};
use tonic::transport::Channel;

const BOT: &str = "kill-ledger";
const SLOTS: u32 = 3;

async fn status(c: &mut TraderServiceClient<Channel>) -> pb::GetStatusResponse {
    c.get_status(pb::GetStatusRequest {})
        .await
        .expect("GetStatus")
        .into_inner()
}

async fn wait_for<T>(
    what: &str,
    secs: u64,
    c: &mut TraderServiceClient<Channel>,
    mut f: impl FnMut(&pb::GetStatusResponse) -> Option<T>,
) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = status(c).await;
        if let Some(t) = f(&s) {
            return t;
        }
        assert!(
            Instant::now() < end,
            "timed out after {secs}s waiting for {what}; last status: loops {} outbox {:?} positions {}",
            s.loops,
            s.outbox,
            s.positions.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn depth(s: &pb::GetStatusResponse) -> u64 {
    s.outbox.map_or(0, |o| o.depth)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_killed_mid_run_loses_and_duplicates_nothing() {
    let t0 = Instant::now();
    let stage = |what: &str| eprintln!("[{:>6.1}s] {what}", t0.elapsed().as_secs_f64());
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger_db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let store_path = dir.path().join("trader.db");
    let log = dir.path().join("trader.log");
    let port = free_port();
    let mut ledger = LedgerProcess::start_on(port, &ledger_db).await;

    let args: Vec<String> = [
        "--exchange",
        "paper",
        "--market",
        "synthetic",
        "--seed",
        "7",
        "--sim-speed",
        "1200",
        "--ledger-url",
        &ledger.endpoint,
        "--store",
        &format!("sqlite://{}", store_path.display()),
        "--bot-id",
        BOT,
        "--slots",
        "3",
        "--order-size-usd",
        "10",
        "--profit-pct",
        "0.5",
        "--shutdown-flush-sec",
        "10",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    stage("ledger up");
    let mut trader = TraderProcess::start(&args, &[], &log).await;
    stage("trader up");
    let mut c = TraderServiceClient::connect(trader.endpoint.clone())
        .await
        .expect("connect to the trader");

    // Trading, with positions acknowledged by the ledger.
    wait_for("acknowledged positions", 60, &mut c, |s| {
        (s.positions.iter().any(|p| !p.position_id.is_empty()) && depth(s) == 0).then_some(())
    })
    .await;

    stage("positions acknowledged; SIGKILL the ledger");
    ledger.sigkill();
    let killed_at = status(&mut c).await;
    // The outbox grows: every queued write comes from a fill, so trading
    // (and filling) goes on without the ledger.
    let grown = wait_for(
        "the outbox to grow while the ledger is down",
        60,
        &mut c,
        |s| (depth(s) >= 4).then(|| s.clone()),
    )
    .await;
    assert!(grown.loops > killed_at.loops, "the loop kept running");
    assert_eq!(grown.mode, pb::Mode::Running as i32, "still trading");

    stage("outbox grew; restarting the ledger");
    let ledger = LedgerProcess::start_on(port, &ledger_db).await;
    wait_for("the outbox to drain after the restart", 60, &mut c, |s| {
        (depth(s) == 0).then_some(())
    })
    .await;

    stage("outbox drained; pause and SIGTERM");
    c.pause(pb::PauseRequest {
        reason: "audit".into(),
    })
    .await
    .expect("Pause");
    wait_for("paused", 20, &mut c, |s| {
        (s.mode == pb::Mode::Paused as i32).then_some(())
    })
    .await;
    let exit = trader.sigterm(Duration::from_secs(30)).await;
    assert_eq!(
        exit,
        Some(0),
        "clean exit on SIGTERM; see {}",
        log.display()
    );

    stage("trader stopped; auditing");
    // The trader's record of what it delivered...
    let outbox = trader_outbox(&store_path).await;
    for state in ["pending", "parked"] {
        assert!(
            outbox.keys_by_state.get(state).is_none_or(|k| k.is_empty()),
            "{state} outbox entries left: {:?}",
            outbox.keys_by_state.get(state)
        );
    }
    assert!(!outbox.opened.is_empty() && !outbox.closed.is_empty());

    // ... against what the ledger holds.
    let view = ledger_view(&ledger.endpoint, BOT, SLOTS).await;
    let open_keys = view.open_keys();
    assert_unique("position open_key", &open_keys);
    assert_eq!(
        open_keys
            .iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        outbox.opened,
        "every position the trader opened is in the ledger exactly once, and nothing else"
    );
    assert_eq!(
        view.closed_keys(),
        outbox.closed,
        "every close exactly once"
    );
    let event_keys = view.event_keys();
    assert_unique("journal event_key", &event_keys);
    for k in &outbox.event_keys {
        assert!(
            event_keys.contains(k),
            "event {k} delivered by the trader is missing from the journal"
        );
    }
    assert_eq!(view.count(lpb::EventType::Created), outbox.opened.len());
    assert_eq!(view.count(lpb::EventType::Filled), outbox.closed.len());
    drop(ledger);
}
