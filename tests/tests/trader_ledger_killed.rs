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

use healgrid_proto::trader::v1 as pb;
use healgrid_tests::audit::{assert_delivered_exactly, ledger_view, trader_outbox};
use healgrid_tests::process::{
    LedgerProcess, RunArgs, TraderProcess, free_port, status, wait_status,
};

const BOT: &str = "kill-ledger";
const SLOTS: u32 = 3;

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

    let run = RunArgs {
        bot: BOT,
        store: &store_path,
        ledger_url: &ledger.endpoint,
        slots: SLOTS,
    };
    let args = run.paper(7, &["--market", "synthetic", "--shutdown-flush-sec", "10"]);
    stage("ledger up");
    let mut trader = TraderProcess::start(&args, &[], &log).await;
    stage("trader up");
    let mut c = trader.client().await;

    // Trading, with positions acknowledged by the ledger.
    wait_status("acknowledged positions", 60, &mut c, |s| {
        (s.positions.iter().any(|p| !p.position_id.is_empty()) && depth(s) == 0).then_some(())
    })
    .await;

    stage("positions acknowledged; SIGKILL the ledger");
    ledger.sigkill();
    let killed_at = status(&mut c).await;
    // The outbox grows: every queued write comes from a fill, so trading
    // (and filling) goes on without the ledger.
    let grown = wait_status(
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
    wait_status("the outbox to drain after the restart", 60, &mut c, |s| {
        (depth(s) == 0).then_some(())
    })
    .await;

    stage("outbox drained; pause and SIGTERM");
    c.pause(pb::PauseRequest {
        reason: "audit".into(),
    })
    .await
    .expect("Pause");
    wait_status("paused", 20, &mut c, |s| {
        (s.mode == pb::Mode::Paused as i32).then_some(())
    })
    .await;
    let exit = trader.terminate(Duration::from_secs(30)).await;
    assert_eq!(
        exit,
        Some(0),
        "clean exit on SIGTERM; see {}",
        log.display()
    );

    stage("trader stopped; auditing");
    // The trader's record of what it delivered, against what the ledger
    // holds.
    let outbox = trader_outbox(&store_path).await;
    assert!(!outbox.opened.is_empty() && !outbox.closed.is_empty());
    assert_delivered_exactly(&outbox, &ledger_view(&ledger.endpoint, BOT, SLOTS).await);
    drop(ledger);
}
