//! Shared fixtures for the runtime's tests: stores in temporary directories,
//! entry builders and fake sinks.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::Notify;

use crate::runtime::entry::{IdempotencyKey, LedgerWrite, NewOutboxEntry, OutboxEntry, Seq};
use crate::runtime::outbox::{DeliveryError, Sink};
use crate::runtime::store::{StepCommit, StoreLocation, TraderStore};
use crate::runtime::time::UnixMillis;

/// A store file in a fresh temporary directory (kept alive by the `TempDir`).
pub(crate) async fn temp_store() -> (TempDir, StoreLocation, TraderStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = StoreLocation::File(dir.path().join("trader.db"));
    let store = TraderStore::open(&location).await.expect("open store");
    (dir, location, store)
}

/// One store per backend: a file in a temporary directory (kept alive by
/// the `TempDir`), then memory. Contract tests run over both, so the
/// backtests' memory store can never drift from the production file.
pub(crate) async fn every_backend() -> Vec<(Option<TempDir>, TraderStore)> {
    let (dir, _location, file) = temp_store().await;
    let memory = TraderStore::open(&StoreLocation::Memory)
        .await
        .expect("open memory store");
    vec![(Some(dir), file), (None, memory)]
}

/// A journal-event entry with the given key and payload.
pub(crate) fn entry(key: &str, payload: Value) -> NewOutboxEntry {
    NewOutboxEntry {
        key: IdempotencyKey::new(key).expect("key"),
        kind: LedgerWrite::JournalEvent,
        payload,
    }
}

/// A step with state `{"step": n}` and the given entries.
pub(crate) fn step(n: u64, at: i64, entries: Vec<NewOutboxEntry>) -> StepCommit {
    StepCommit {
        step: n,
        state: json!({ "step": n }).into(),
        at: UnixMillis(at),
        entries,
        meta: Vec::new(),
    }
}

/// A sink that plays a script of outcomes (then succeeds) and records every
/// call as `(seq, key, attempts_before)`.
#[derive(Default)]
pub(crate) struct ScriptedSink {
    script: Mutex<VecDeque<Result<(), DeliveryError>>>,
    calls: Mutex<Vec<(Seq, String, u32)>>,
}

impl ScriptedSink {
    pub(crate) fn with_script(
        outcomes: impl IntoIterator<Item = Result<(), DeliveryError>>,
    ) -> Self {
        Self {
            script: Mutex::new(outcomes.into_iter().collect()),
            calls: Mutex::default(),
        }
    }

    pub(crate) fn calls(&self) -> Vec<(Seq, String, u32)> {
        self.calls.lock().expect("lock").clone()
    }
}

impl Sink for ScriptedSink {
    type Ack = ();

    async fn deliver(&self, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        self.calls
            .lock()
            .expect("lock")
            .push((entry.seq, entry.key.to_string(), entry.attempts));
        self.script
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(Ok(()))
    }
}

/// An idempotent fake ledger: applies each key once, answers repeats like the
/// original, rejects payloads marked `"reject": true`, and can be down.
#[derive(Default)]
pub(crate) struct FakeLedger {
    inner: Mutex<LedgerState>,
}

#[derive(Default)]
pub(crate) struct LedgerState {
    pub(crate) down: bool,
    /// The next calls fail retryably before applying (a flaky network).
    pub(crate) fail_next: u32,
    /// The next calls apply the write but fail retryably (a timeout after
    /// the ledger committed: the ack is lost).
    pub(crate) lose_next_acks: u32,
    /// Keys in the order their effect was applied.
    pub(crate) applied: Vec<String>,
    pub(crate) payloads: HashMap<String, Value>,
    /// Every call, including repeats and failures.
    pub(crate) calls: usize,
}

impl FakeLedger {
    pub(crate) fn set_down(&self, down: bool) {
        self.inner.lock().expect("lock").down = down;
    }

    /// Fails the next `calls` deliveries before applying them.
    pub(crate) fn fail_next(&self, calls: u32) {
        self.inner.lock().expect("lock").fail_next = calls;
    }

    /// Applies the next `calls` deliveries but loses their acks.
    pub(crate) fn lose_next_acks(&self, calls: u32) {
        self.inner.lock().expect("lock").lose_next_acks = calls;
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&LedgerState) -> R) -> R {
        f(&self.inner.lock().expect("lock"))
    }

    /// Applies `entry` (idempotently) and reports whether it was new.
    fn apply(&self, entry: &OutboxEntry) -> Result<bool, DeliveryError> {
        let mut ledger = self.inner.lock().expect("lock");
        ledger.calls += 1;
        if ledger.down {
            return Err(DeliveryError::Retryable("ledger unavailable".into()));
        }
        if ledger.fail_next > 0 {
            ledger.fail_next -= 1;
            return Err(DeliveryError::Retryable("connection reset".into()));
        }
        if entry.payload.get("reject") == Some(&Value::Bool(true)) {
            return Err(DeliveryError::Rejected("insufficient subsidy".into()));
        }
        let key = entry.key.to_string();
        match ledger.payloads.get(&key) {
            Some(seen) if *seen == entry.payload => Ok(false),
            Some(_) => Err(DeliveryError::Rejected(
                "key reused with other content".into(),
            )),
            None => {
                ledger.payloads.insert(key.clone(), entry.payload.clone());
                ledger.applied.push(key);
                if ledger.lose_next_acks > 0 {
                    ledger.lose_next_acks -= 1;
                    return Err(DeliveryError::Retryable("deadline exceeded".into()));
                }
                Ok(true)
            }
        }
    }
}

impl Sink for FakeLedger {
    type Ack = bool;

    async fn deliver(&self, entry: &OutboxEntry) -> Result<bool, DeliveryError> {
        self.apply(entry)
    }
}

/// A ledger that applies a write, signals `applied`, and then never answers:
/// dropping the drain at that point simulates a crash between the ledger's
/// commit and the store's ack.
pub(crate) struct HangAfterApply<'a> {
    pub(crate) ledger: &'a FakeLedger,
    pub(crate) applied: &'a Notify,
}

impl Sink for HangAfterApply<'_> {
    type Ack = bool;

    async fn deliver(&self, entry: &OutboxEntry) -> Result<bool, DeliveryError> {
        self.ledger.apply(entry)?;
        self.applied.notify_one();
        std::future::pending().await
    }
}
