//! End-to-end durability properties of store + outbox: crashes, reopenings
//! and ledger outages never lose a ledger write, never apply one twice, and
//! never reorder them.

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::json;
use tokio::sync::Notify;

use crate::runtime::outbox::{Outbox, OutboxPolicy};
use crate::runtime::store::{StoreLocation, TraderStore};
use crate::runtime::test_support::{FakeLedger, HangAfterApply, entry, step, temp_store};
use crate::runtime::time::UnixMillis;

/// Runs one drain that "crashes" right after the ledger applied a write and
/// before the ack is stored (the drain future is dropped there). Returns
/// whether the crash point was reached (it is not if nothing was
/// deliverable).
async fn drain_and_crash(outbox: &Outbox, ledger: &FakeLedger, now: UnixMillis) -> bool {
    let applied = Notify::new();
    let sink = HangAfterApply {
        ledger,
        applied: &applied,
    };
    tokio::select! {
        biased;
        () = applied.notified() => true,
        r = outbox.drain_once(&sink, now) => { r.expect("drain"); false }
    }
}

async fn reopen(store: TraderStore, location: &StoreLocation) -> TraderStore {
    store.close().await;
    TraderStore::open(location).await.expect("reopen")
}

/// Proves: a write the ledger applied but whose ack was never stored is
/// still pending after a restart, is delivered again with the same key, and
/// the idempotent ledger applies it only once.
#[tokio::test]
async fn crash_between_delivery_and_ack_redelivers_same_key() {
    let (_dir, location, store) = temp_store().await;
    let entries = vec![
        entry("open:TX1", json!({"price": "0.1"})),
        entry("j:2", json!(2)),
    ];
    store.commit_step(step(1, 0, entries)).await.unwrap();
    let ledger = FakeLedger::default();

    let outbox = Outbox::new(store.clone(), OutboxPolicy::default());
    assert!(drain_and_crash(&outbox, &ledger, UnixMillis(0)).await);
    ledger.with(|l| assert_eq!(l.applied, ["open:TX1"]));

    let store = reopen(store, &location).await;
    let outbox = Outbox::new(store, OutboxPolicy::default());
    assert_eq!(
        outbox.depth().await.unwrap(),
        2,
        "unacked write still pending"
    );
    let r = outbox.drain_once(&ledger, UnixMillis(1)).await.unwrap();
    let got: Vec<_> = r
        .delivered
        .iter()
        .map(|d| (d.key.to_string(), d.ack))
        .collect();
    assert_eq!(
        got,
        [("open:TX1".to_owned(), false), ("j:2".to_owned(), true)],
        "same key redelivered (ledger deduplicated), then the next"
    );
    ledger.with(|l| {
        assert_eq!(l.applied, ["open:TX1", "j:2"]);
        assert_eq!(l.calls, 3);
    });
}

#[derive(Debug, Clone)]
enum Op {
    /// Commit a step with this many entries; `poison` marks one the ledger
    /// rejects.
    Commit {
        entries: u8,
        poison: bool,
    },
    /// Re-queue an earlier key with identical content (a replayed step).
    Requeue(usize),
    LedgerDown,
    LedgerUp,
    /// The next calls fail before reaching the ledger.
    FailNext(u32),
    /// The next calls are applied but their acks are lost.
    LoseAcks(u32),
    Drain,
    DrainAndCrash,
    Advance(u32),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0_u8..4, prop::bool::weighted(0.15))
            .prop_map(|(entries, poison)| Op::Commit { entries, poison }),
        1 => any::<usize>().prop_map(Op::Requeue),
        1 => Just(Op::LedgerDown),
        1 => Just(Op::LedgerUp),
        1 => (1_u32..3).prop_map(Op::FailNext),
        1 => (1_u32..3).prop_map(Op::LoseAcks),
        3 => Just(Op::Drain),
        2 => Just(Op::DrainAndCrash),
        2 => (0_u32..70_000).prop_map(Op::Advance),
        1 => Just(Op::Reopen),
    ]
}

/// The commands a case runs and what it expects the ledger to end up with.
#[derive(Default)]
struct Model {
    step: u64,
    now: i64,
    /// Every distinct key ever committed, in commit order, with its payload.
    committed: Vec<(String, serde_json::Value)>,
    poison: HashSet<String>,
}

async fn run_case(ops: Vec<Op>, retain: u32, max_per_drain: u32) -> Result<(), TestCaseError> {
    let (_dir, location, mut store) = temp_store().await;
    let policy = OutboxPolicy {
        retain_delivered: retain,
        max_per_drain,
        ..OutboxPolicy::default()
    };
    let ledger = FakeLedger::default();
    let mut model = Model::default();

    for op in ops {
        let outbox = Outbox::new(store.clone(), policy);
        let now = UnixMillis(model.now);
        match op {
            Op::Commit { entries, poison } => {
                model.step += 1;
                let mut batch = Vec::new();
                for i in 0..entries {
                    let key = format!("s{}e{i}", model.step);
                    let bad = poison && i == 0;
                    let payload = json!({ "key": key, "reject": bad });
                    if bad {
                        model.poison.insert(key.clone());
                    }
                    model.committed.push((key.clone(), payload.clone()));
                    batch.push(entry(&key, payload));
                }
                store
                    .commit_step(step(model.step, model.now, batch))
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Op::Requeue(i) => {
                if !model.committed.is_empty() {
                    let (key, payload) = model.committed[i % model.committed.len()].clone();
                    model.step += 1;
                    store
                        .commit_step(step(model.step, model.now, vec![entry(&key, payload)]))
                        .await
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
            }
            Op::LedgerDown => ledger.set_down(true),
            Op::LedgerUp => ledger.set_down(false),
            Op::FailNext(n) => ledger.fail_next(n),
            Op::LoseAcks(n) => ledger.lose_next_acks(n),
            Op::Drain => {
                outbox
                    .drain_once(&ledger, now)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Op::DrainAndCrash => {
                drain_and_crash(&outbox, &ledger, now).await;
                drop(outbox);
                store = reopen(store, &location).await;
            }
            Op::Advance(ms) => model.now += i64::from(ms),
            Op::Reopen => {
                drop(outbox);
                store = reopen(store, &location).await;
            }
        }
    }

    // The ledger comes back for good; drain until nothing is pending.
    ledger.set_down(false);
    let outbox = Outbox::new(store.clone(), policy);
    for _ in 0..10_000 {
        if outbox
            .depth()
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            == 0
        {
            break;
        }
        model.now += 61_000;
        outbox
            .drain_once(&ledger, UnixMillis(model.now))
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    prop_assert_eq!(outbox.depth().await.unwrap(), 0);

    let expected: Vec<String> = model
        .committed
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| !model.poison.contains(k))
        .collect();
    let applied = ledger.with(|l| l.applied.clone());
    prop_assert_eq!(
        applied,
        expected,
        "every write applied exactly once, in seq order"
    );
    let parked: HashSet<String> = outbox
        .parked()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key.to_string())
        .collect();
    prop_assert_eq!(parked, model.poison);
    let last = store.load_state().await.unwrap().map_or(0, |s| s.step);
    prop_assert_eq!(last, model.step);
    store.close().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Proves: under random interleavings of commits, replays, ledger
    /// outages, drains, crashes mid-delivery and reopenings, every
    /// non-rejected write reaches the idempotent ledger exactly once and in
    /// seq order, rejected ones are parked, and the snapshot is the last step.
    #[test]
    fn every_write_applied_exactly_once_in_order(
        ops in prop::collection::vec(op(), 1..40),
        retain in 0_u32..4,
        max_per_drain in 1_u32..6,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(run_case(ops, retain, max_per_drain))?;
    }
}

/// Proves the crash helper itself: with nothing deliverable the drain ends
/// normally instead of reporting a crash.
#[test]
fn drain_and_crash_is_harmless_when_nothing_is_due() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_dir, _location, store) = temp_store().await;
        let outbox = Outbox::new(store, OutboxPolicy::default());
        let ledger = FakeLedger::default();
        assert!(!drain_and_crash(&outbox, &ledger, UnixMillis(0)).await);
    });
}
