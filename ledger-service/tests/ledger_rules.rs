//! The in-process ledger API (as the trader's backtest uses it) on every
//! backend: write-once columns, concurrent debits and idempotent races, the
//! compaction property, and the in-memory backend answering exactly as
//! SQLite does.

mod common;

use std::collections::BTreeMap;

use common::{
    commands::{at, close, credit, debit, open},
    ledger_suite,
};
use futures::future::join_all;
use healgrid_tests::pg::TestSchema;
use ledger_service::{EventCommand, JournalScope, Ledger, LedgerError, RepriceReason, Store};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

/// 16 concurrent debits of 0.3 against a balance of 3: exactly 10 succeed,
/// every observed balance is non-negative, and the end balance is exact.
async fn racing_debits<S: Store>(ledger: Ledger<S>) {
    let p = ledger
        .open_position(open("race", 0, "o"))
        .await
        .unwrap()
        .position
        .position_id;
    ledger.journal_event(credit(p, "c", dec!(3))).await.unwrap();
    let tasks = (0..16).map(|i| {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            ledger
                .reprice_position(debit(p, &format!("d{i}"), dec!(0.3)))
                .await
        })
    });
    let mut accepted = 0;
    for r in join_all(tasks).await {
        match r.unwrap() {
            Ok(out) => {
                accepted += 1;
                assert!(out.subsidy.totals.balance() >= Decimal::ZERO);
            }
            Err(LedgerError::InsufficientSubsidy { balance, .. }) => {
                assert!(balance >= Decimal::ZERO)
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(accepted, 10);
    let b = ledger.subsidy_balance("race", 0).await.unwrap();
    assert_eq!(b.totals.balance(), Decimal::ZERO);
    assert_eq!(ledger.position(p).await.unwrap().times_repriced, 10);
    assert!(
        ledger
            .subsidy_audit("race", 0)
            .await
            .unwrap()
            .is_consistent()
    );
}

/// Concurrent identical opens yield one position; concurrent uses of one
/// event key on different slots yield one winner and conflicts.
async fn racing_keys<S: Store>(ledger: Ledger<S>) {
    let opens = (0..8).map(|_| {
        let ledger = ledger.clone();
        tokio::spawn(async move { ledger.open_position(open("keys", 0, "same")).await })
    });
    let ids: Vec<u64> = join_all(opens)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap().position.position_id)
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(ledger.open_positions("keys", None).await.unwrap().len(), 1);

    let mut positions = Vec::new();
    for slot in 1..=6 {
        let p = ledger
            .open_position(open("keys", slot, &format!("o{slot}")))
            .await
            .unwrap();
        positions.push(p.position.position_id);
    }
    let writes = positions.iter().map(|p| {
        let ledger = ledger.clone();
        let p = *p;
        tokio::spawn(async move { ledger.journal_event(credit(p, "shared-key", dec!(1))).await })
    });
    let mut ok = 0;
    for r in join_all(writes).await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(LedgerError::KeyConflict {
                field: "event_key", ..
            }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 1);
    let summary = ledger.subsidy_summary("keys").await.unwrap();
    assert_eq!(summary.total.earned(), dec!(1));
}

/// Many tasks race debits and credits on one slot of the in-memory ledger:
/// every answer shows a non-negative balance, and the final balance is the
/// credits minus exactly the accepted debits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_subsidy_writes_memory() {
    let ledger = Ledger::memory();
    let p = ledger
        .open_position(open("swarm", 7, "o"))
        .await
        .unwrap()
        .position
        .position_id;
    ledger
        .journal_event(credit(p, "seed", dec!(1)))
        .await
        .unwrap();
    let tasks = (0..200i64).map(|i| {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            if i % 5 == 0 {
                let amount = Decimal::new(10 + i % 7, 2);
                ledger
                    .journal_event(credit(p, &format!("c{i}"), amount))
                    .await
                    .map(|out| (amount, Decimal::ZERO, out.subsidy.totals.balance()))
            } else {
                let amount = Decimal::new(5 + i % 11, 2);
                ledger
                    .reprice_position(debit(p, &format!("d{i}"), amount))
                    .await
                    .map(|out| (Decimal::ZERO, amount, out.subsidy.totals.balance()))
            }
        })
    });
    let (mut credits, mut debits, mut refused) = (dec!(1), Decimal::ZERO, 0);
    for r in join_all(tasks).await {
        match r.unwrap() {
            Ok((credit, debit, balance)) => {
                assert!(balance >= Decimal::ZERO, "{balance}");
                credits += credit;
                debits += debit;
            }
            Err(LedgerError::InsufficientSubsidy { balance, .. }) => {
                assert!(balance >= Decimal::ZERO);
                refused += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(refused > 0, "the debits must exceed the credits");
    let b = ledger.subsidy_balance("swarm", 7).await.unwrap().totals;
    assert_eq!((b.earned(), b.consumed()), (credits, debits));
    assert_eq!(b.balance(), credits - debits);
    assert!(b.balance() >= Decimal::ZERO);
    let audit = ledger.subsidy_audit("swarm", 7).await.unwrap();
    assert!(audit.is_consistent(), "{audit:?}");
}

#[tokio::test]
async fn write_once_columns_are_guarded_by_the_database_sqlite() {
    let ledger = Ledger::in_memory().await.unwrap();
    let p = ledger
        .open_position(open("w", 0, "o"))
        .await
        .unwrap()
        .position
        .position_id;
    let pool = ledger.store().pool();
    let e = sqlx::query("UPDATE position_ledger SET entry_price = '1' WHERE position_id = $1")
        .bind(i64::try_from(p).unwrap())
        .execute(pool)
        .await;
    assert!(e.is_err(), "entry_price must be write-once");
    let e = sqlx::query("UPDATE position_journal SET event_key = 'x'")
        .execute(pool)
        .await;
    assert!(e.is_err(), "journal must be append-only");
    ledger.close_position(close(p, "x", 50)).await.unwrap();
    let e = sqlx::query("UPDATE position_ledger SET status = 'open', close_reason = NULL")
        .execute(pool)
        .await;
    assert!(e.is_err(), "a closed position never reopens");
}

#[tokio::test]
async fn write_once_columns_are_guarded_by_the_database_postgres() {
    let Some(schema) = TestSchema::create("write_once_postgres").await else {
        return;
    };
    let ledger = Ledger::open_postgres(&schema.url, 2).await.unwrap();
    let p = ledger
        .open_position(open("w", 0, "o"))
        .await
        .unwrap()
        .position
        .position_id;
    let pool = ledger.store().pool();
    let e = sqlx::query("UPDATE position_ledger SET target_profit_pct = 5 WHERE position_id = $1")
        .bind(i64::try_from(p).unwrap())
        .execute(pool)
        .await;
    assert!(e.is_err(), "target_profit_pct must be write-once");
    let e = sqlx::query("UPDATE position_journal SET event_key = 'x'")
        .execute(pool)
        .await;
    assert!(e.is_err(), "journal must be append-only");
    ledger.close_position(close(p, "x", 50)).await.unwrap();
    let e = sqlx::query("UPDATE position_ledger SET net_profit = 1")
        .execute(pool)
        .await;
    assert!(e.is_err(), "outcome is written once");
}

/// One step of a random journal.
#[derive(Debug, Clone)]
enum Op {
    Open {
        slot: u32,
    },
    Credit {
        pos: usize,
        cents: i64,
    },
    Debit {
        pos: usize,
        cents: i64,
        operator: bool,
    },
    Close {
        pos: usize,
        offset: i64,
    },
    Compact {
        cutoff: i64,
    },
    Retry,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u32..3).prop_map(|slot| Op::Open { slot }),
        3 => (0usize..16, 1i64..500).prop_map(|(pos, cents)| Op::Credit { pos, cents }),
        3 => (0usize..16, 1i64..400, any::<bool>()).prop_map(|(pos, cents, operator)| Op::Debit { pos, cents, operator }),
        1 => (0usize..16, 100i64..1000).prop_map(|(pos, offset)| Op::Close { pos, offset }),
        1 => (0i64..1200).prop_map(|cutoff| Op::Compact { cutoff }),
        1 => Just(Op::Retry),
    ]
}

/// Runs a random journal against the ledger and a trivial model; balances
/// and lifetime totals must match the model and be unchanged by every
/// compaction, and watermark + remaining rows must equal the cumulative
/// totals at every step. Returns a transcript of every answer and of the
/// final reads, for comparing backends.
async fn run_random_journal<S: Store>(ledger: Ledger<S>, ops: Vec<Op>) -> Vec<String> {
    let bot = "prop";
    let mut positions: Vec<(u64, u32)> = Vec::new();
    let mut model: BTreeMap<u32, (Decimal, Decimal)> = BTreeMap::new();
    let mut last_write: Option<EventCommand> = None;
    let mut transcript = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Open { slot } => {
                let p = ledger
                    .open_position(open(bot, slot, &format!("o{i}")))
                    .await
                    .unwrap();
                transcript.push(format!("{p:?}"));
                positions.push((p.position.position_id, slot));
                model.entry(slot).or_default();
            }
            Op::Credit { pos, cents } if !positions.is_empty() => {
                let (p, slot) = positions[pos % positions.len()];
                let cmd = credit(p, &format!("c{i}"), Decimal::new(cents, 2));
                let out = ledger.journal_event(cmd.clone()).await.unwrap();
                transcript.push(format!("{out:?}"));
                model.get_mut(&slot).unwrap().0 += Decimal::new(cents, 2);
                last_write = Some(cmd);
            }
            Op::Debit {
                pos,
                cents,
                operator,
            } if !positions.is_empty() => {
                let (p, slot) = positions[pos % positions.len()];
                let mut cmd = debit(p, &format!("d{i}"), Decimal::new(cents, 2));
                if operator {
                    cmd.reason = RepriceReason::Operator;
                }
                let (earned, consumed) = model[&slot];
                let out = ledger.reprice_position(cmd).await;
                transcript.push(format!("{out:?}"));
                match out {
                    Ok(_) => {
                        assert!(earned - consumed >= Decimal::new(cents, 2));
                        model.get_mut(&slot).unwrap().1 += Decimal::new(cents, 2);
                    }
                    Err(LedgerError::InsufficientSubsidy { balance, .. }) => {
                        assert_eq!(balance, earned - consumed);
                        assert!(balance < Decimal::new(cents, 2));
                    }
                    Err(LedgerError::PositionClosed { .. }) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Op::Close { pos, offset } if !positions.is_empty() => {
                let (p, _) = positions[pos % positions.len()];
                let out = ledger
                    .close_position(close(p, &format!("x{i}"), offset))
                    .await;
                transcript.push(format!("{out:?}"));
                match out {
                    Ok(_) | Err(LedgerError::PositionClosed { .. }) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Op::Compact { cutoff } => {
                let before = ledger.subsidy_summary(bot).await.unwrap();
                let report = ledger.compact(bot, at(cutoff)).await.unwrap();
                transcript.push(format!("{report:?}"));
                let after = ledger.subsidy_summary(bot).await.unwrap();
                assert_eq!(before, after, "compaction changed a balance");
            }
            Op::Retry => {
                if let Some(cmd) = last_write.clone() {
                    // A retry never credits twice (replayed, or refused once compacted).
                    let out = ledger.journal_event(cmd).await;
                    transcript.push(format!("{out:?}"));
                    match out {
                        Ok(out) => assert!(out.replayed),
                        Err(LedgerError::KeyCompacted { .. }) => {}
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
            }
            _ => {}
        }
    }
    for (slot, (earned, consumed)) in model {
        let b = ledger.subsidy_balance(bot, slot).await.unwrap().totals;
        assert_eq!(
            (b.earned(), b.consumed()),
            (earned, consumed),
            "slot {slot}"
        );
        let audit = ledger.subsidy_audit(bot, slot).await.unwrap();
        assert!(audit.is_consistent(), "slot {slot}: {audit:?}");
        transcript.push(format!("{audit:?}"));
        let scope = JournalScope::Slot {
            bot_id: bot.into(),
            slot_id: slot,
        };
        transcript.push(format!("{:?}", ledger.journal(&scope, 0, 1000).await));
        transcript.push(format!("{:?}", ledger.journal(&scope, 2, 3).await));
        transcript.push(format!(
            "{:?}",
            ledger.open_positions(bot, Some(slot)).await
        ));
        transcript.push(format!(
            "{:?}",
            ledger.position_history(bot, Some(slot), 3).await
        ));
    }
    transcript.push(format!("{:?}", ledger.subsidy_summary(bot).await));
    transcript.push(format!("{:?}", ledger.open_positions(bot, None).await));
    transcript.push(format!("{:?}", ledger.position_history(bot, None, 0).await));
    for (p, _) in positions {
        let scope = JournalScope::Position(p);
        transcript.push(format!("{:?}", ledger.position(p).await));
        transcript.push(format!("{:?}", ledger.journal(&scope, 0, 1000).await));
    }
    transcript
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn compaction_preserves_every_balance(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            run_random_journal(Ledger::in_memory().await.unwrap(), ops).await;
        });
    }

    #[test]
    fn compaction_preserves_every_balance_memory(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            run_random_journal(Ledger::memory(), ops).await;
        });
    }

    /// The in-memory backend gives exactly SQLite's answers (ids, orders,
    /// refusals, compaction reports, pages) to the same random journal.
    #[test]
    fn memory_answers_exactly_as_sqlite(ops in proptest::collection::vec(op(), 1..80)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let sqlite = run_random_journal(Ledger::in_memory().await.unwrap(), ops.clone()).await;
            let memory = run_random_journal(Ledger::memory(), ops).await;
            assert_eq!(sqlite.len(), memory.len());
            for (i, (s, m)) in sqlite.iter().zip(&memory).enumerate() {
                assert_eq!(s, m, "answer {i} differs");
            }
        });
    }
}

/// The same property on PostgreSQL, over a fixed sample of random journals.
#[tokio::test]
async fn compaction_preserves_every_balance_postgres() {
    use proptest::{strategy::ValueTree, test_runner::TestRunner};
    let Some(schema) = TestSchema::create("compaction_property_postgres").await else {
        return;
    };
    let ledger = Ledger::open_postgres(&schema.url, 4).await.unwrap();
    let mut runner = TestRunner::deterministic();
    let ops = proptest::collection::vec(op(), 80..120)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    run_random_journal(ledger, ops).await;
}

/// A burst of writes with the longest keys, on eight slots at once: the
/// batches it makes are larger than one database statement may carry, and
/// every write still lands once, in order, with exact balances.
async fn a_burst_larger_than_one_statement<S: Store>(ledger: Ledger<S>) {
    let mut positions = Vec::new();
    for slot in 0..8 {
        let p = ledger
            .open_position(open("burst", slot, &format!("o{slot}")))
            .await
            .unwrap();
        positions.push(p.position.position_id);
    }
    let key = |n: usize| format!("{n:0>128}");
    let tasks = (0..400).map(|n| {
        let ledger = ledger.clone();
        let p = positions[n % positions.len()];
        tokio::spawn(async move { ledger.journal_event(credit(p, &key(n), dec!(0.01))).await })
    });
    let mut ids = Vec::new();
    for r in join_all(tasks).await {
        let out = r.unwrap().unwrap();
        assert!(!out.replayed);
        ids.push(out.entry.journal_id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 400, "every write has its own row");
    for slot in 0..8 {
        let b = ledger.subsidy_balance("burst", slot).await.unwrap();
        assert_eq!(b.totals.balance(), dec!(0.50), "slot {slot}");
        assert!(
            ledger
                .subsidy_audit("burst", slot)
                .await
                .unwrap()
                .is_consistent()
        );
    }
    let again = ledger
        .journal_event(credit(positions[3], &key(3), dec!(0.01)))
        .await
        .unwrap();
    assert!(again.replayed, "a retried key replays");
}

ledger_suite!(
    racing_debits,
    racing_keys,
    a_burst_larger_than_one_statement
);

/// The in-memory backend gives exactly PostgreSQL's answers (ids, orders,
/// refusals, compaction reports, pages) to the same random journals, each
/// on a fresh schema; a fixed sample, since each case costs a schema.
#[tokio::test]
async fn memory_answers_exactly_as_postgres() {
    use proptest::{strategy::ValueTree, test_runner::TestRunner};
    let mut runner = TestRunner::deterministic();
    for case in 0..6 {
        let Some(schema) = TestSchema::create("memory_answers_as_postgres").await else {
            return;
        };
        let ops = proptest::collection::vec(op(), 40..100)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let postgres = Ledger::open_postgres(&schema.url, 4).await.unwrap();
        let postgres = run_random_journal(postgres, ops.clone()).await;
        let memory = run_random_journal(Ledger::memory(), ops).await;
        assert_eq!(postgres.len(), memory.len(), "case {case}");
        for (i, (p, m)) in postgres.iter().zip(&memory).enumerate() {
            assert_eq!(p, m, "case {case}: answer {i} differs");
        }
    }
}

/// Group commit waits for returning writers only after a batch of several:
/// a lone writer is never held back, and writers that do not come back
/// cost the next write at most the linger.
#[tokio::test(start_paused = true)]
async fn a_lingering_batch_never_delays_a_lone_writer() {
    use std::time::Duration;

    use ledger_service::Batching;
    use tokio::time::Instant;

    let linger = Duration::from_secs(10);
    let ledger = Ledger::memory().with_batching(Batching {
        linger,
        ..Batching::default()
    });
    let mut positions = Vec::new();
    for slot in 0..8 {
        let p = ledger
            .open_position(open("linger", slot, &format!("o{slot}")))
            .await
            .unwrap();
        positions.push(p.position.position_id);
    }

    let start = Instant::now();
    for n in 0..5 {
        ledger
            .journal_event(credit(positions[0], &format!("lone-{n}"), dec!(1)))
            .await
            .unwrap();
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "a lone writer waited");

    // Eight at once, answered together; then they go quiet.
    let wave = join_all(positions.iter().map(|&id| {
        let ledger = ledger.clone();
        async move {
            ledger
                .journal_event(credit(id, &format!("wave-{id}"), dec!(1)))
                .await
        }
    }))
    .await;
    assert!(wave.iter().all(Result::is_ok), "{wave:?}");
    assert_eq!(start.elapsed(), Duration::ZERO, "the wave waited");

    // The runner waits for them in vain, then serves the next write.
    ledger
        .journal_event(credit(positions[0], "after-the-wave", dec!(1)))
        .await
        .unwrap();
    let waited = start.elapsed();
    assert!(waited <= linger, "waited {waited:?}");
    let balance = ledger.subsidy_balance("linger", 0).await.unwrap();
    assert_eq!(balance.totals.balance(), dec!(7));
}

/// Two ledgers (as two processes) on one PostgreSQL credit the same slots
/// at once. Their batches of appends read without locks, so they keep
/// finding slots the other moved: those writes run again under locks,
/// and every write must still be appended once, answered as fresh, at its
/// own sequence, with the slot's balance the sum of its credits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_ledgers_appending_to_shared_slots_lose_and_repeat_nothing_postgres() {
    const SLOTS: u32 = 4;
    const WRITERS: usize = 6;
    const WRITES: usize = 15;
    let Some(schema) = TestSchema::create("unlocked_contention").await else {
        return;
    };
    let ledgers = [
        Ledger::open_postgres(&schema.url, 4).await.unwrap(),
        Ledger::open_postgres(&schema.url, 4).await.unwrap(),
    ];
    let mut positions = Vec::new();
    for slot in 0..SLOTS {
        let opened = ledgers[0]
            .open_position(open("shared", slot, &format!("o{slot}")))
            .await
            .unwrap();
        positions.push(opened.position.position_id);
    }
    let tasks = (0..WRITERS * 2).map(|w| {
        let ledger = ledgers[w % 2].clone();
        let positions = positions.clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..WRITES {
                let p = positions[(w + n) % positions.len()];
                let out = ledger
                    .journal_event(credit(p, &format!("w{w}-{n}"), dec!(0.01)))
                    .await
                    .unwrap();
                assert!(!out.replayed, "a first write answered as a replay");
                seqs.push(out.entry.journal_id);
            }
            seqs
        })
    });
    let mut ids: Vec<u64> = join_all(tasks)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "two writes answered with one row");

    let mut credited = 0;
    for (slot, &p) in (0..SLOTS).zip(&positions) {
        let page = ledgers[1]
            .journal(&JournalScope::Position(p), 0, 1000)
            .await
            .unwrap();
        let credits = page.entries.len() - 1; // and the `created` row
        credited += credits;
        let balance = ledgers[1].subsidy_balance("shared", slot).await.unwrap();
        assert_eq!(
            balance.totals.balance(),
            Decimal::new(i64::try_from(credits).unwrap(), 2),
            "slot {slot}"
        );
        assert!(
            ledgers[1]
                .subsidy_audit("shared", slot)
                .await
                .unwrap()
                .is_consistent()
        );
    }
    assert_eq!(credited, WRITERS * 2 * WRITES, "every write appended once");
}

/// The `slot_seq` of the journal row written under `key`.
async fn slot_seq_of(ledger: &Ledger<ledger_service::PgStore>, key: &str) -> i64 {
    sqlx::query_scalar("SELECT slot_seq FROM position_journal WHERE event_key = $1")
        .bind(key)
        .fetch_one(ledger.store().pool())
        .await
        .unwrap()
}

/// A ledger remembers what it last wrote to a slot and appends its next
/// writes there without reading. Whatever another writer does to the slot
/// meanwhile (reserves numbers, credits it), the next write must land
/// after it and count it; and a retried key is still answered as a replay.
#[tokio::test]
async fn a_remembered_slot_yields_to_other_writers_postgres() {
    let Some(schema) = TestSchema::create("remembered_slot").await else {
        return;
    };
    let a = Ledger::open_postgres(&schema.url, 2).await.unwrap();
    let b = Ledger::open_postgres(&schema.url, 2).await.unwrap();
    let p = a
        .open_position(open("mem", 0, "o"))
        .await
        .unwrap()
        .position
        .position_id;
    let k1 = a.journal_event(credit(p, "k1", dec!(1))).await.unwrap();
    a.journal_event(credit(p, "k2", dec!(1))).await.unwrap();
    let k2_seq = slot_seq_of(&a, "k2").await;

    // Another process reserves five numbers in the slot.
    sqlx::query("UPDATE ledger_slots SET last_seq = last_seq + 5 WHERE bot_id = 'mem'")
        .execute(a.store().pool())
        .await
        .unwrap();
    a.journal_event(credit(p, "k3", dec!(1))).await.unwrap();
    assert_eq!(
        slot_seq_of(&a, "k3").await,
        k2_seq + 6,
        "a write reused a number another writer reserved"
    );

    // Another ledger credits the slot; the next write counts it.
    b.journal_event(credit(p, "k4", dec!(10))).await.unwrap();
    let k5 = a.journal_event(credit(p, "k5", dec!(1))).await.unwrap();
    assert_eq!(k5.subsidy.totals.balance(), dec!(14));
    let k6 = a.journal_event(credit(p, "k6", dec!(1))).await.unwrap();
    assert_eq!(k6.subsidy.totals.balance(), dec!(15));

    // Retries, of a key written long ago and of the last one.
    for (key, first) in [("k1", &k1), ("k6", &k6)] {
        let again = a.journal_event(credit(p, key, dec!(1))).await.unwrap();
        assert!(again.replayed, "{key} written twice");
        assert_eq!(again.entry.journal_id, first.entry.journal_id);
    }
    let balance = b.subsidy_balance("mem", 0).await.unwrap();
    assert_eq!(balance.totals.balance(), dec!(15));
    assert!(b.subsidy_audit("mem", 0).await.unwrap().is_consistent());
    let page = b.journal(&JournalScope::Position(p), 0, 100).await.unwrap();
    assert_eq!(page.entries.len(), 7, "the `created` row and six credits");
}

/// A reprice in a slot the ledger remembers moves the position's exit
/// (under the slot's lock), and the writes after it see the moved exit
/// and the spent subsidy.
#[tokio::test]
async fn a_reprice_in_a_remembered_slot_moves_the_exit_postgres() {
    let Some(schema) = TestSchema::create("remembered_reprice").await else {
        return;
    };
    let ledger = Ledger::open_postgres(&schema.url, 2).await.unwrap();
    let p = ledger
        .open_position(open("mem", 0, "o"))
        .await
        .unwrap()
        .position
        .position_id;
    ledger
        .journal_event(credit(p, "c1", dec!(5)))
        .await
        .unwrap();
    ledger
        .journal_event(credit(p, "c2", dec!(1)))
        .await
        .unwrap();
    let repriced = ledger
        .reprice_position(debit(p, "d1", dec!(2)))
        .await
        .unwrap();
    assert_eq!(repriced.subsidy.totals.balance(), dec!(4));
    let position = ledger.position(p).await.unwrap();
    assert_eq!(position.current_exit_price, dec!(0.199));
    assert_eq!(position.times_repriced, 1);
    let after = ledger
        .journal_event(credit(p, "c3", dec!(1)))
        .await
        .unwrap();
    assert_eq!(after.subsidy.totals.balance(), dec!(5));
    assert!(
        ledger
            .subsidy_audit("mem", 0)
            .await
            .unwrap()
            .is_consistent()
    );
}
