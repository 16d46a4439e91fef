//! Issue 4, kill test (b): the **trader** process is SIGKILLed mid-run,
//! several times, and restarted on the same store file. The exchange must
//! outlive it, so it is a separate `trader-service kraken-sim` process
//! driven through the real Kraken client (`--exchange kraken`).
//!
//! Proves, after four kills (one while a placement the exchange accepted
//! is still unanswered, the others at different points of the trader's
//! first and second loops) and a final run: the simulator never received two orders with the same
//! `cl_ord_id` (no double placement after a crash); the trader never lost
//! track of one of its own orders (no `legacy:` import); the ledger holds
//! no duplicate position (`open_key`) or journal event key; and once the
//! market is frozen, the trader's open orders are exactly the simulator's
//! (same txids, same client order ids) and its open positions exactly the
//! ledger's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use healgrid_proto::trader::v1 as pb;
use healgrid_tests::audit::{assert_unique, ledger_view};
use healgrid_tests::http;
use healgrid_tests::process::{
    LedgerProcess, RunArgs, SimProcess, TraderProcess, status, wait_until,
};

const BOT: &str = "kill-trader";
const SLOTS: u32 = 3;
/// When each SIGKILL lands: (wait for the first loop to finish?, then
/// sleep ms). The first one hits a placement in flight: the simulator is
/// told to accept the next AddOrder but hold its response
/// (`lost_response`), so the trader dies after committing its intents and
/// after the exchange took the order, before it learns the txid. The second
/// hits the first loop after a restart (reconciliation, `cl_ord_id`
/// lookups); the last two the second loop, which processes the fills of the
/// first 5 s and places their exits. (Every restart's lookups spend the
/// exchange's rate counter, which outlives the trader like Kraken's does,
/// so more rapid kills only make the test slower.)
const KILLS: [(bool, u64); 4] = [(false, 1_000), (false, 150), (true, 5_050), (true, 5_150)];

/// Every order the simulator ever accepted: txid -> (cl_ord_id, status).
async fn sim_orders(sim: &SimProcess) -> (BTreeMap<String, String>, Vec<String>) {
    let body = http::request(&sim.addr, "GET", "/sim/orders")
        .await
        .expect("GET /sim/orders");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON from /sim/orders");
    let mut open = BTreeMap::new();
    let mut all_cl_ord_ids = Vec::new();
    for (section, orders) in v.as_object().expect("object") {
        for (txid, o) in orders.as_object().expect("orders by txid") {
            let cl = o["cl_ord_id"].as_str().unwrap_or_default().to_owned();
            if !cl.is_empty() {
                all_cl_ord_ids.push(cl.clone());
            }
            if section == "open" {
                open.insert(txid.clone(), cl);
            }
        }
    }
    (open, all_cl_ord_ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trader_killed_mid_run_never_duplicates() {
    let t0 = Instant::now();
    let stage = |what: &str| eprintln!("[{:>6.1}s] {what}", t0.elapsed().as_secs_f64());
    let tmp = tempfile::tempdir().expect("tempdir");
    // HEALGRID_KEEP_TEST_DIR=1 keeps the logs and databases for a post-mortem.
    let (dir, _cleanup) = if std::env::var_os("HEALGRID_KEEP_TEST_DIR").is_some() {
        let kept = tmp.keep();
        eprintln!("test files kept in {}", kept.display());
        (kept, None)
    } else {
        (tmp.path().to_owned(), Some(tmp))
    };
    let log = dir.join("trader.log");
    // The market only moves when this test steps it, so it can be frozen
    // for the final comparison.
    let sim = SimProcess::start_manual(11, &dir.join("sim.log")).await;
    let ledger =
        LedgerProcess::start(&format!("sqlite://{}", dir.join("ledger.db").display())).await;
    stage("simulator and ledger up");
    // One 60 s candle every 50 ms: 1200x real time. The simulator's clock
    // starts at the wall clock and runs ahead of it; the ledger refuses
    // times more than 24 h in the future, which this pace reaches only
    // after 72 s of stepping.
    let stepper = sim.step_every(Duration::from_millis(50));

    let run = RunArgs {
        bot: BOT,
        store: &dir.join("trader.db"),
        ledger_url: &ledger.endpoint,
        slots: SLOTS,
    };
    let args = run.kraken(&sim, &["--profit-pct", "0.5", "--poll-interval-sec", "5"]);
    let envs = SimProcess::CREDENTIALS;

    for (i, (after_first_loop, delay_ms)) in KILLS.iter().enumerate() {
        if i == 0 {
            http::post_json(
                &sim.addr,
                "/sim/faults",
                r#"{"method":"AddOrder","fault":"lost_response","count":1}"#,
            )
            .await
            .expect("queueing a lost_response fault");
        }
        let mut trader = TraderProcess::start(&args, &envs, &log).await;
        if *after_first_loop {
            let mut c = trader.client().await;
            wait_until("a loop after start", 30, &mut c, |s| s.loops >= 1).await;
        }
        tokio::time::sleep(Duration::from_millis(*delay_ms)).await;
        trader.sigkill();
        stage(&format!("trader SIGKILLed ({} of {})", i + 1, KILLS.len()));
    }

    let mut trader = TraderProcess::start(&args, &envs, &log).await;
    let mut c = trader.client().await;
    let start = wait_until("a loop after the last restart", 30, &mut c, |s| {
        s.loops >= 1
    })
    .await;
    wait_until("trading after the last restart", 60, &mut c, |s| {
        s.loops >= start.loops + 2
    })
    .await;
    stage("final run trading; freezing the market");
    stepper.stop().await;
    // A fill of the last market step may still be on its way in: let the
    // trader place its exit (the position is journaled with it) before the
    // pause, which stops placements.
    let still = status(&mut c).await;
    wait_until(
        "every position journaled on the frozen market",
        60,
        &mut c,
        |s| {
            s.loops >= still.loops + 2
                && s.positions.iter().all(|p| !p.position_id.is_empty())
                && s.outbox.is_some_and(|o| o.depth == 0 && o.parked == 0)
        },
    )
    .await;
    c.pause(pb::PauseRequest {
        reason: "audit".into(),
    })
    .await
    .expect("Pause");
    let frozen = status(&mut c).await;
    let s = wait_until("two quiet loops, outbox drained", 30, &mut c, |s| {
        s.mode == pb::Mode::Paused as i32
            && s.loops >= frozen.loops + 2
            && s.outbox.is_some_and(|o| o.depth == 0 && o.parked == 0)
    })
    .await;
    stage("audit");

    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        log_text.contains("unresolved placement found on the exchange by cl_ord_id"),
        "the first kill should leave a placement the exchange took but the trader \
         never heard back about, found again by cl_ord_id; see {}",
        log.display()
    );
    // The simulator: never two orders with one client order id.
    let (sim_open, all_cl) = sim_orders(&sim).await;
    assert!(!all_cl.is_empty(), "the trader placed orders");
    assert_unique("cl_ord_id on the exchange", &all_cl);

    // The trader's resting orders are exactly the simulator's.
    let trader_open: BTreeMap<String, String> = s
        .slots
        .iter()
        .flat_map(|sl| &sl.orders)
        .filter(|o| !o.txid.is_empty())
        .map(|o| (o.txid.clone(), o.order_id.clone()))
        .collect();
    assert!(!sim_open.is_empty(), "orders rest on the exchange");
    assert_eq!(
        trader_open, sim_open,
        "trader's open orders vs the simulator's"
    );

    // The ledger: no duplicates, nothing the trader forgot, and the same
    // open positions as the trader.
    let view = ledger_view(&ledger.endpoint, BOT, SLOTS).await;
    let keys = view.open_keys();
    assert_unique("position open_key", &keys);
    assert_unique("journal event_key", &view.event_keys());
    assert!(
        keys.iter().all(|k| !k.starts_with("legacy:")),
        "the trader lost track of its own order and imported it: {keys:?}"
    );
    let ledger_open: BTreeSet<String> = view
        .open_positions()
        .iter()
        .map(|p| p.position_id.to_string())
        .collect();
    let trader_positions: BTreeSet<String> =
        s.positions.iter().map(|p| p.position_id.clone()).collect();
    assert_eq!(
        trader_positions, ledger_open,
        "open positions: trader vs ledger"
    );

    assert_eq!(
        trader.terminate(Duration::from_secs(30)).await,
        Some(0),
        "clean exit; see {}",
        log.display()
    );
    stage("done");
}
