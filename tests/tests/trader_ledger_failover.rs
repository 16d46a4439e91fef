//! Issue 13: the trader balances its ledger writes over two real
//! `ledger-service` processes (one PostgreSQL schema, `LEDGER_URL` listing
//! both) and fails over when one dies.
//!
//! Proves: with replica A SIGKILLed the trader's writes go on through B
//! (delivered writes grow and the outbox drains while A is down); with A
//! restarted and B SIGKILLed they go on through A again (the backed-off
//! replica is retried); and at the end the ledger holds exactly what the
//! trader's store says it delivered: every position once, every close
//! once, every journal event once, nothing pending or parked.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use healgrid_proto::trader::v1::{self as pb, trader_service_client::TraderServiceClient};
use healgrid_tests::audit::{assert_delivered_exactly, ledger_view, trader_outbox};
use healgrid_tests::pg::TestSchema;
use healgrid_tests::process::{LedgerProcess, RunArgs, TraderProcess, free_port, status};
use tonic::transport::Channel;

const BOT: &str = "failover";
const SLOTS: u32 = 3;

fn depth(s: &pb::GetStatusResponse) -> u64 {
    s.outbox.map_or(0, |o| o.depth)
}

/// Writes the trader's store records as delivered.
async fn delivered(store: &Path) -> usize {
    trader_outbox(store)
        .await
        .keys_by_state
        .get("delivered")
        .map_or(0, BTreeSet::len)
}

/// Waits until at least `more` writes beyond `since` are delivered and the
/// outbox is empty: writes went on while the trader was in this state.
async fn wait_for_more_deliveries(
    what: &str,
    c: &mut TraderServiceClient<Channel>,
    store: &Path,
    since: usize,
    more: usize,
) -> usize {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let s = status(c).await;
        let n = delivered(store).await;
        if n >= since + more && depth(&s) == 0 {
            return n;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}: delivered {n} (from {since}), outbox {:?}",
            s.outbox
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_fail_over_between_two_ledger_replicas_and_none_is_lost() {
    let Some(schema) = TestSchema::create("trader_ledger_failover").await else {
        return;
    };
    let t0 = Instant::now();
    let stage = |what: &str| eprintln!("[{:>6.1}s] {what}", t0.elapsed().as_secs_f64());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("trader.db");
    let log = dir.path().join("trader.log");
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = LedgerProcess::start_on(port_a, &schema.url).await;
    let mut b = LedgerProcess::start_on(port_b, &schema.url).await;
    let urls = format!("{},{}", a.endpoint, b.endpoint);

    let run = RunArgs {
        bot: BOT,
        store: &store,
        ledger_url: &urls,
        slots: SLOTS,
    };
    let args = run.paper(11, &["--market", "synthetic", "--shutdown-flush-sec", "10"]);
    let mut trader = TraderProcess::start(&args, &[], &log).await;
    let mut c = trader.client().await;
    stage("stack up; waiting for deliveries through both replicas");
    let n = wait_for_more_deliveries("first deliveries", &mut c, &store, 0, 4).await;

    stage("SIGKILL replica A");
    a.sigkill();
    let n = wait_for_more_deliveries("deliveries with A down", &mut c, &store, n, 6).await;

    stage("restart A, SIGKILL replica B");
    a = LedgerProcess::start_on(port_a, &schema.url).await;
    b.sigkill();
    wait_for_more_deliveries("deliveries with B down", &mut c, &store, n, 6).await;

    stage("pause and SIGTERM the trader");
    c.pause(pb::PauseRequest {
        reason: "audit".into(),
    })
    .await
    .expect("Pause");
    let exit = trader.terminate(Duration::from_secs(30)).await;
    assert_eq!(exit, Some(0), "clean exit; see {}", log.display());
    assert!(
        trader.log_text().contains("ledger replica unreachable"),
        "the failover is in the log"
    );

    stage("auditing");
    let outbox = trader_outbox(&store).await;
    assert_delivered_exactly(&outbox, &ledger_view(&a.endpoint, BOT, SLOTS).await);
    stage("done");
}
