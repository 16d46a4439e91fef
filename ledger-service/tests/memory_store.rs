//! The in-memory store through its storage traits, next to SQLite and
//! PostgreSQL: transaction rollback, the constraints SQLite enforces, and
//! reads identical to both databases' after the same ledger writes.

mod common;

use chrono::DateTime;
use common::commands::{at, close, credit, debit, open as open_command};
use healgrid_tests::pg::TestSchema;
use ledger_service::{
    CreatedDetails, EventDetails, EventKeyRecord, FoldSums, Ledger, MemoryStore, NewJournalRow,
    PgStore, Regime, SqliteStore, Store, StoreError, StoreTx,
};
use rust_decimal_macros::dec;

fn created() -> EventDetails {
    EventDetails::Created(CreatedDetails {
        entry_price: dec!(0.1),
        exit_price: dec!(0.101),
        regime: Regime::Ranging,
        slot_mode: ledger_service::SlotMode::Sticky,
        migration: false,
    })
}

/// Everything a reader can observe for bot `b` (ids up to 40), as text.
async fn observe<S: Store>(store: &S) -> Vec<String> {
    let mut seen = vec![
        format!("{:?}", store.open_positions("b", None).await.unwrap()),
        format!(
            "{:?}",
            store.position_history("b", None, 100).await.unwrap()
        ),
        format!("{:?}", store.subsidy_states("b", None).await.unwrap()),
    ];
    for slot in 0..4 {
        seen.push(format!(
            "{:?}",
            store.open_positions("b", Some(slot)).await.unwrap()
        ));
        seen.push(format!(
            "{:?}",
            store.position_history("b", Some(slot), 2).await.unwrap()
        ));
        seen.push(format!(
            "{:?}",
            store.journal_of_slot("b", slot, 0, 1000).await.unwrap()
        ));
        seen.push(format!(
            "{:?}",
            store.journal_of_slot("b", slot, 3, 2).await.unwrap()
        ));
        seen.push(format!(
            "{:?}",
            store.subsidy_audit("b", slot).await.unwrap()
        ));
    }
    for id in 0..40 {
        seen.push(format!("{:?}", store.position(id).await.unwrap()));
        seen.push(format!("{:?}", store.journal_entry(id).await.unwrap()));
        seen.push(format!(
            "{:?}",
            store.journal_of_position(id, 0, 1000).await.unwrap()
        ));
        seen.push(format!("{:?}", store.created_journal_id(id).await.unwrap()));
        for key in [
            format!("o{id}"),
            format!("c{id}"),
            format!("d{id}"),
            format!("x{id}"),
        ] {
            seen.push(format!("{:?}", store.open_key("b", &key).await.unwrap()));
            seen.push(format!("{:?}", store.event_key("b", &key).await.unwrap()));
        }
    }
    seen
}

/// A history with every kind of row on three slots, some positions closed.
async fn write_history<S: Store>(ledger: &Ledger<S>) {
    let mut ids = Vec::new();
    for i in 0..6u32 {
        let p = ledger
            .open_position(open_command("b", i % 3, &format!("o{i}")))
            .await
            .unwrap();
        ids.push(p.position.position_id);
    }
    for (i, id) in ids.iter().enumerate() {
        ledger
            .journal_event(credit(*id, &format!("c{i}"), dec!(0.5)))
            .await
            .unwrap();
        ledger
            .reprice_position(debit(*id, &format!("d{i}"), dec!(0.2)))
            .await
            .unwrap();
    }
    for (i, id) in ids.iter().enumerate().step_by(2) {
        let offset = 100 + 10 * i64::try_from(i).unwrap();
        ledger
            .close_position(close(*id, &format!("x{i}"), offset))
            .await
            .unwrap();
    }
}

/// Slot locks hand out 1, 2, 3... per slot, and a rolled-back lock leaves
/// no trace, on both embedded backends.
async fn slot_locks_hand_out_increasing_sequence_numbers<S: Store>(store: &S) {
    for expected in 1..=3 {
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.lock_slot("bot", 4).await.unwrap().seq, expected);
        tx.commit().await.unwrap();
    }
    let mut tx = store.begin().await.unwrap();
    tx.lock_slot("bot", 4).await.unwrap();
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.lock_slot("bot", 4).await.unwrap().seq, 4);
    assert!(tx.lock_position_slot(99).await.unwrap().is_none());
}

/// A PostgreSQL store in a fresh schema (kept alive by the returned
/// guard), or `None` when PostgreSQL tests are skipped.
async fn postgres(test: &str) -> Option<(PgStore, TestSchema)> {
    let schema = TestSchema::create(test).await?;
    let store = PgStore::connect_with(&schema.url, 4)
        .await
        .expect("open postgres store");
    Some((store, schema))
}

#[tokio::test]
async fn slot_sequences_memory_sqlite_and_postgres() {
    slot_locks_hand_out_increasing_sequence_numbers(&MemoryStore::new()).await;
    let sqlite = SqliteStore::connect("sqlite::memory:").await.unwrap();
    slot_locks_hand_out_increasing_sequence_numbers(&sqlite).await;
    if let Some((pg, _schema)) = postgres("memory_slot_sequences").await {
        slot_locks_hand_out_increasing_sequence_numbers(&pg).await;
        // The last transaction was dropped; its rollback runs as the pool
        // takes the connection back, which must happen before the schema
        // is dropped (that waits for the slot's lock).
        pg.pool().close().await;
    }
}

/// A slot nobody wrote to has no subsidy state and an all-zero audit.
async fn unknown_slots_have_no_subsidy_state<S: Store>(store: S) {
    assert!(
        store
            .subsidy_states("bot", Some(1))
            .await
            .unwrap()
            .is_empty()
    );
    let (watermark, remaining) = store.subsidy_audit("bot", 1).await.unwrap();
    assert!(watermark.is_zero() && remaining.is_zero());
}

#[tokio::test]
async fn unknown_slots_memory_sqlite_and_postgres() {
    unknown_slots_have_no_subsidy_state(MemoryStore::new()).await;
    let sqlite = SqliteStore::connect("sqlite::memory:").await.unwrap();
    unknown_slots_have_no_subsidy_state(sqlite).await;
    if let Some((pg, _schema)) = postgres("memory_unknown_slots").await {
        unknown_slots_have_no_subsidy_state(pg).await;
    }
}

/// A dropped transaction restores the state before it exactly, id counters
/// included: the ids it took are handed out again (as with SQLite, whose
/// `AUTOINCREMENT` counter is rolled back with the transaction).
#[tokio::test]
async fn dropped_transaction_leaves_no_trace() {
    let store = MemoryStore::new();
    let before = observe(&store).await;
    let mut tx = store.begin().await.unwrap();
    let head = tx.lock_slot("b", 1).await.unwrap();
    let position_id = tx
        .insert_position(&open_command("b", 1, "o1"), "hash")
        .await
        .unwrap();
    let journal_id = tx
        .append_keyed(
            NewJournalRow {
                position_id,
                bot_id: "b",
                slot_id: 1,
                slot_seq: head.seq,
                at: at(0),
                details: &created(),
                event_key: "c1",
                subsidy: None,
            },
            "hash",
        )
        .await
        .unwrap();
    assert_eq!((position_id, journal_id), (1, 1));
    assert!(tx.position(1).await.unwrap().is_some(), "visible inside");
    drop(tx);

    assert_eq!(observe(&store).await, before);
    assert!(store.position(1).await.unwrap().is_none());
    assert!(store.journal_entry(1).await.unwrap().is_none());
    assert!(store.event_key("b", "c1").await.unwrap().is_none());
    assert!(store.open_key("b", "o1").await.unwrap().is_none());
    assert!(store.subsidy_states("b", None).await.unwrap().is_empty());

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.lock_slot("b", 1).await.unwrap().seq, 1);
    let again = tx
        .insert_position(&open_command("b", 1, "o1"), "hash")
        .await
        .unwrap();
    assert_eq!(again, 1, "the rolled-back id is reused");
    tx.commit().await.unwrap();
    assert_eq!(store.open_positions("b", None).await.unwrap().len(), 1);
}

/// Rolling back updates, closes, compaction deletes and watermark moves
/// restores every table and index: reads are unchanged, and a later
/// compaction folds exactly what it would have.
#[tokio::test]
async fn rolled_back_updates_and_deletes_restore_every_index() {
    let ledger = Ledger::memory();
    write_history(&ledger).await;
    let store = ledger.store();
    let before = observe(store).await;

    let mut tx = store.begin().await.unwrap();
    let head = tx.lock_slot("b", 1).await.unwrap();
    tx.update_exit_intent(2, dec!(0.5), "moved", 9)
        .await
        .unwrap();
    tx.close_position(2, &close(2, "x", 300).outcome)
        .await
        .unwrap();
    let sums = tx.fold_sums("b", 1, at(1000)).await.unwrap();
    assert_eq!(
        (sums.rows, sums.positions),
        (7, 2),
        "both positions of slot 1 fold: {sums:?}"
    );
    tx.set_watermark("b", 1, &sums.totals, &head.snapshot)
        .await
        .unwrap();
    assert_eq!(tx.delete_folded("b", 1, at(1000)).await.unwrap(), 7);
    assert_eq!(
        tx.fold_sums("b", 1, at(1000)).await.unwrap(),
        FoldSums::default()
    );
    assert_eq!(
        tx.compactable_slots("b", at(1000)).await.unwrap(),
        vec![0, 2]
    );
    drop(tx);
    assert_eq!(observe(store).await, before);

    let sqlite = Ledger::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
    write_history(&sqlite).await;
    assert_eq!(
        observe(sqlite.store()).await,
        before,
        "same reads as SQLite"
    );
    for cutoff in [105, 125, 1000] {
        let report = ledger.compact("b", at(cutoff)).await.unwrap();
        assert_eq!(report, sqlite.compact("b", at(cutoff)).await.unwrap());
        assert_eq!(observe(store).await, observe(sqlite.store()).await);
    }
}

/// After the same ledger writes and compactions, every read of the memory
/// store answers as PostgreSQL's does, answer for answer.
#[tokio::test]
async fn memory_reads_as_postgres() {
    let Some((pg, _schema)) = postgres("memory_reads_as_postgres").await else {
        return;
    };
    let memory = Ledger::memory();
    let pg = Ledger::new(pg);
    write_history(&memory).await;
    write_history(&pg).await;
    assert_eq!(
        observe(memory.store()).await,
        observe(pg.store()).await,
        "same reads as PostgreSQL"
    );
    for cutoff in [105, 125, 1000] {
        let report = memory.compact("b", at(cutoff)).await.unwrap();
        assert_eq!(report, pg.compact("b", at(cutoff)).await.unwrap());
        assert_eq!(observe(memory.store()).await, observe(pg.store()).await);
    }
}

/// The unique keys, the journal's foreign key and the updates' `WHERE
/// status = 'open'` behave as in SQLite.
#[tokio::test]
async fn constraints_match_sqlite() {
    let store = MemoryStore::new();
    let mut tx = store.begin().await.unwrap();
    let head = tx.lock_slot("b", 0).await.unwrap();
    let id = tx
        .insert_position(&open_command("b", 0, "o"), "h")
        .await
        .unwrap();
    assert!(matches!(
        tx.insert_position(&open_command("b", 5, "o"), "h").await,
        Err(StoreError::Duplicate { .. })
    ));
    let details = created();
    let row = |position_id, seq| NewJournalRow {
        position_id,
        bot_id: "b",
        slot_id: 0,
        slot_seq: seq,
        at: at(0),
        details: &details,
        event_key: "k",
        subsidy: None,
    };
    tx.append_keyed(row(id, head.seq), "h").await.unwrap();
    assert!(matches!(
        tx.insert_journal(row(id, head.seq)).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert!(matches!(
        tx.insert_journal(row(77, head.seq + 1)).await,
        Err(StoreError::Corrupt { .. })
    ));
    let record = store_record(id);
    assert!(matches!(
        tx.insert_event_key("b", "k", &record).await,
        Err(StoreError::Duplicate { .. })
    ));
    tx.insert_event_key("other-bot", "k", &record)
        .await
        .unwrap();
    tx.close_position(id, &close(id, "x", 50).outcome)
        .await
        .unwrap();
    assert!(matches!(
        tx.close_position(id, &close(id, "x", 60).outcome).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        tx.close_position(99, &close(99, "x", 60).outcome).await,
        Err(StoreError::Corrupt { .. })
    ));
    tx.update_exit_intent(id, dec!(9), "late", 3).await.unwrap();
    tx.update_exit_intent(99, dec!(9), "none", 3).await.unwrap();
    tx.set_watermark("b", 42, &Default::default(), &Default::default())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let p = store.position(id).await.unwrap().unwrap();
    assert_eq!((p.current_exit_price, p.times_repriced), (dec!(0.198), 0));
    assert!(
        store
            .subsidy_states("b", Some(42))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.created_journal_id(id).await.unwrap(), Some(1));
}

fn store_record(position_id: u64) -> EventKeyRecord {
    EventKeyRecord {
        request_hash: "h".into(),
        position_id,
        journal_id: 1,
    }
}

/// A cycle beyond `i64::MAX` reads back saturated and times read back in
/// whole microseconds, as from SQLite.
#[tokio::test]
async fn stored_values_read_back_as_from_sqlite() {
    let nanos = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
    let micros = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
    let store = MemoryStore::new();
    let mut cmd = open_command("b", 0, "o");
    cmd.cycle = u64::MAX;
    cmd.entry.time = nanos;
    let mut tx = store.begin().await.unwrap();
    let head = tx.lock_slot("b", 0).await.unwrap();
    let id = tx.insert_position(&cmd, "h").await.unwrap();
    let details = created();
    let journal_id = tx
        .insert_journal(NewJournalRow {
            position_id: id,
            bot_id: "b",
            slot_id: 0,
            slot_seq: head.seq,
            at: nanos,
            details: &details,
            event_key: "o",
            subsidy: None,
        })
        .await
        .unwrap();
    let mut outcome = close(id, "x", 0).outcome;
    outcome.exit_time = nanos;
    tx.close_position(id, &outcome).await.unwrap();
    tx.commit().await.unwrap();
    let p = store.position(id).await.unwrap().unwrap();
    assert_eq!(p.cycle, u64::try_from(i64::MAX).unwrap());
    assert_eq!(p.entry.time, micros);
    assert_eq!(p.outcome.unwrap().exit_time, micros);
    let row = store.journal_entry(journal_id).await.unwrap().unwrap();
    assert_eq!(row.at, micros);
}

#[tokio::test]
async fn memory_is_never_opened_from_a_url() {
    use ledger_service::AnyLedger;
    for url in ["memory:", "memory://", "mem"] {
        assert!(matches!(
            AnyLedger::open(url, 1).await,
            Err(StoreError::UnsupportedUrl(_))
        ));
    }
    assert_eq!(AnyLedger::memory().backend(), "memory");
}
