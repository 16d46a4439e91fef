//! Group commit: the keyed journal writes (`JournalEvent`,
//! `RepricePosition`, `ClosePosition`) of one ledger process share
//! database transactions.
//!
//! # Collecting
//! A write joins a queue. When fewer than [`Batching::max_in_flight`]
//! batches are running, it starts one at once, so a lone request is never
//! delayed; while batches run, newcomers wait in the queue and the next
//! batch takes all of them (up to [`Batching::max_batch`]). The batch size
//! thus follows the load: one write per transaction when idle, dozens per
//! transaction under load. After a batch of several, the runner waits a
//! moment (the linger, at most 1 ms) for half of the writers it answered
//! to come back (see `Ledger::linger`).
//!
//! # Applying
//! One batch is one transaction:
//! 1. the bot and slot of every written position are read (write-once, so
//!    no lock is needed) and the batch locks all its slots in one call,
//!    sorted by (bot, slot): every batch, in every process, takes its
//!    locks in that one order, so batches never deadlock;
//! 2. the idempotency key, position and newest subsidy row of every write
//!    are read under those locks (PostgreSQL reads them in the statement
//!    that locks, unless another transaction moved a slot meanwhile);
//! 3. each write is checked by the Rust rules against the batch's own view
//!    (the state read in step 2 plus the writes before it in the batch), in
//!    arrival order. A refused write changes nothing and is answered with
//!    its own error; its neighbours go on;
//! 4. the accepted rows are appended, the moved or closed positions
//!    updated, and the transaction committed. Only then is anyone answered,
//!    so durability is as with one transaction per write.
//!
//! # Without locks
//! On PostgreSQL a batch of appends only (events; no reprice or close)
//! first runs without a transaction held open: step 2 reads the heads and
//! contexts in one statement without locks, step 3 runs the same rules
//! ([`stage`]), and step 4 is one statement that locks them,
//! checks that no slot's `last_seq` moved since the read (every change to a
//! slot moves it under the slot's lock) and only then reserves and appends,
//! committing on its own. That is two round trips instead of four (begin,
//! lock and read, append, commit), which is what a remote database
//! (Supabase) charges for: with 2 ms between ledger and database, one
//! writer's calls took 8.1 ms instead of 13.8 (`ledger-bench` through a
//! delaying proxy). The writes of a slot that moved run again under locks.
//!
//! # From memory
//! A committed batch leaves this process knowing each of its slots exactly
//! (`known`): its `last_seq`, newest subsidy row and the positions it
//! wrote. The next batch of appends to remembered slots skips the read:
//! the rules run over that memory and the same guarded statement appends
//! only if no slot's `last_seq` moved and no key is recorded, in one round
//! trip. Anything else (another process wrote, a retried key, a refusal, a
//! reprice or close) takes the paths above.
//!
//! A batch holds each event key at most once (a repeated key waits for the
//! next batch, which then sees it as a retry). If the database fails a
//! batch (a unique key taken by another process between read and write, a
//! lost connection), the transaction is rolled back and each of its writes
//! is run again alone, so one write's failure never fails its neighbours.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Mutex,
    time::Duration,
};

use tokio::sync::{Notify, oneshot};
use tracing::{debug, warn};

use super::{
    Ledger,
    writes::{CloseOutcome, EventOutcome, RepriceOutcome},
};
use crate::{
    crash_point::CrashPoint,
    domain::{
        JournalEntry, LedgerError,
        journal::{EventCommand, RepriceCommand},
        position::CloseCommand,
    },
    store::{ContextQuery, EventKeyRecord, Store, StoreError, StoreResult, StoreTx},
};

mod known;
mod stage;

use known::KnownSlots;
use stage::{Plan, Staging};

/// How a ledger groups its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Batches (transactions) running at once. With the linger, one gave
    /// 10-18% more writes per second than two at 32 writers on a 2-core
    /// machine and about the same at 256 (`ledger-bench`; the next batch
    /// fills while one commits); more overlap transactions where the
    /// database has cores to spare.
    pub max_in_flight: usize,
    /// Most writes per batch.
    pub max_batch: usize,
    /// Longest a batch runner waits, after answering a batch of several
    /// writes, for that many writes to queue again before it starts the
    /// next batch (zero: never waits). See [the module docs](self).
    pub linger: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            max_in_flight: 1,
            max_batch: 128,
            linger: Duration::from_millis(1),
        }
    }
}

/// A keyed write waiting for its batch.
pub(super) enum Write {
    /// A journal event.
    Event(EventCommand),
    /// An exit move.
    Reprice(RepriceCommand),
    /// A close.
    Close(CloseCommand),
}

impl Write {
    fn position_id(&self) -> u64 {
        match self {
            Self::Event(c) => c.position_id,
            Self::Reprice(c) => c.position_id,
            Self::Close(c) => c.position_id,
        }
    }

    fn event_key(&self) -> &str {
        match self {
            Self::Event(c) => &c.event_key,
            Self::Reprice(c) => &c.event_key,
            Self::Close(c) => &c.event_key,
        }
    }
}

/// The fresh result of a write.
#[derive(Debug)]
pub(super) enum Answer {
    /// Of [`Write::Event`].
    Event(EventOutcome),
    /// Of [`Write::Reprice`].
    Reprice(RepriceOutcome),
    /// Of [`Write::Close`].
    Close(CloseOutcome),
}

impl Answer {
    fn entry_mut(&mut self) -> &mut JournalEntry {
        match self {
            Self::Event(o) => &mut o.entry,
            Self::Reprice(o) => &mut o.entry,
            Self::Close(o) => &mut o.entry,
        }
    }
}

/// What a write came to inside its batch.
#[derive(Debug)]
pub(super) enum Applied {
    /// Appended (the answer of the write's kind).
    Fresh(Box<Answer>),
    /// Its key was recorded before; the caller replays it.
    Replay(EventKeyRecord),
}

type Reply = oneshot::Sender<Result<Applied, LedgerError>>;

struct Job {
    write: Write,
    hash: String,
    reply: Reply,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Batch runners started and not yet finished (lingering ones count).
    running: usize,
    /// Jobs a lingering runner waits for; `None` when none lingers.
    awaited: Option<usize>,
}

/// Most positions whose bot and slot [`Batcher`] remembers; past it the
/// memory starts over (a miss only costs one read).
const SLOT_CACHE_LIMIT: usize = 100_000;

/// The queue of one ledger's writes, shared by its clones.
#[derive(Default)]
pub(super) struct Batcher {
    queue: Mutex<Queue>,
    /// Wakes the lingering runner once the queue holds what it awaits.
    filled: Notify,
    batching: Batching,
    /// Bot and slot of positions seen before. Both are write-once, so a
    /// remembered answer never goes stale, and a batch of known positions
    /// skips the read.
    slots: Mutex<HashMap<u64, (String, u32)>>,
    /// What this process last wrote to each slot (see [`known`]).
    known: KnownSlots,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("batching", &self.batching)
            .finish_non_exhaustive()
    }
}

impl Batcher {
    pub(super) fn new(batching: Batching) -> Self {
        Self {
            queue: Mutex::default(),
            filled: Notify::new(),
            slots: Mutex::default(),
            known: KnownSlots::default(),
            batching: Batching {
                max_in_flight: batching.max_in_flight.max(1),
                max_batch: batching.max_batch.max(1),
                linger: batching.linger,
            },
        }
    }

    pub(super) fn batching(&self) -> Batching {
        self.batching
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue half
        // updated (each critical section is a push or a drain), so a
        // poisoned lock is still consistent.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers the bot and slot of a position.
    pub(super) fn remember_slot(&self, position_id: u64, bot_id: &str, slot_id: u32) {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slots.len() >= SLOT_CACHE_LIMIT {
            slots.clear();
        }
        slots.insert(position_id, (bot_id.to_owned(), slot_id));
    }

    /// Bot and slot of each existing position of `ids`: remembered ones
    /// from memory, the rest read from the store.
    async fn position_slots<S: Store>(
        &self,
        store: &S,
        ids: &[u64],
    ) -> StoreResult<HashMap<u64, (String, u32)>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let slots = self
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for id in ids {
                match slots.get(id) {
                    Some(slot) => {
                        found.insert(*id, slot.clone());
                    }
                    None => missing.push(*id),
                }
            }
        }
        if !missing.is_empty() {
            for (id, (bot_id, slot_id)) in store.position_slots(&missing).await? {
                self.remember_slot(id, &bot_id, slot_id);
                found.insert(id, (bot_id, slot_id));
            }
        }
        Ok(found)
    }

    /// The next batch: queued jobs in arrival order, each event key once;
    /// `None` (and one batch fewer running) when the queue is empty.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let mut q = self.lock();
        if q.jobs.is_empty() {
            q.running = q.running.saturating_sub(1);
            return None;
        }
        let mut batch = Vec::new();
        let mut keys = HashSet::new();
        let mut later = VecDeque::new();
        while let Some(job) = q.jobs.pop_front() {
            if batch.len() >= self.batching.max_batch {
                later.push_back(job);
                break;
            }
            if keys.insert(job.write.event_key().to_owned()) {
                batch.push(job);
            } else {
                later.push_back(job);
            }
        }
        later.append(&mut q.jobs);
        q.jobs = later;
        Some(batch)
    }
}

impl<S: Store> Ledger<S> {
    /// Queues a keyed write and waits for its batch to commit.
    pub(super) async fn submit(&self, write: Write, hash: String) -> Result<Applied, LedgerError> {
        let (reply, answer) = oneshot::channel();
        let (start, filled) = {
            let mut q = self.batcher.lock();
            q.jobs.push_back(Job { write, hash, reply });
            match q.awaited {
                // A lingering runner takes this job: no batch of its own.
                Some(awaited) => (false, q.jobs.len() >= awaited),
                None if q.running < self.batcher.batching.max_in_flight => {
                    q.running += 1;
                    (true, false)
                }
                None => (false, false),
            }
        };
        if filled {
            self.batcher.filled.notify_one();
        }
        if start {
            // The batch runs on its own task: a caller that gives up (a
            // cancelled RPC) must not abort its neighbours' transaction.
            let ledger = self.clone();
            tokio::spawn(async move { ledger.drain().await });
        }
        answer.await.map_err(|_| StoreError::BatchLost)?
    }

    /// Runs batches until the queue is empty.
    async fn drain(self) {
        while let Some(jobs) = self.batcher.next_batch() {
            let size = jobs.len();
            self.run_jobs(jobs).await;
            if !self.linger(size).await {
                return;
            }
        }
    }

    /// After a batch of `answered` writes, waits (at most
    /// [`Batching::linger`]) until half as many are queued, unless the
    /// queue already holds them. `false` when this runner stepped aside
    /// (and ended) because another one is already waiting for the queue.
    ///
    /// Without it, concurrent writers fall into a convoy: a batch answers
    /// them all at once, the first one back finds the ledger idle and gets
    /// a batch (and a round of transaction costs) of its own, and the
    /// rest wait behind it (measured: `1, 1, 1, 30` batch after batch at
    /// 32 writers). Waiting for half, not all, splits the writers into two
    /// groups that take turns: one group's batch is in the database while
    /// the other's answers travel back and its next writes arrive, so the
    /// database does not idle through that turnaround (measured at 32
    /// writers: batches of 11 to 21, 16% more calls than waiting for all).
    /// A lone writer is never delayed: it only ever answers batches of one.
    async fn linger(&self, answered: usize) -> bool {
        let linger = self.batcher.batching.linger;
        if answered < 2 || linger.is_zero() {
            return true;
        }
        {
            let mut q = self.batcher.lock();
            // The writers just answered, back with their next write, and
            // those already queued.
            let awaited = answered.div_ceil(2).min(self.batcher.batching.max_batch);
            match q.awaited {
                _ if q.jobs.len() >= awaited => return true,
                // The waiting runner will take the queue, with the writers
                // this batch just answered.
                Some(other) if q.jobs.len() < other => {
                    q.running -= 1;
                    return false;
                }
                Some(_) => return true,
                None => q.awaited = Some(awaited),
            }
        }
        // A stale wake-up (stored when nobody waited) only ends this wait
        // early, as the timeout does: the next batch takes what is queued.
        let _ = tokio::time::timeout(linger, self.batcher.filled.notified()).await;
        self.batcher.lock().awaited = None;
        true
    }

    async fn run_jobs(&self, jobs: Vec<Job>) {
        let size = jobs.len();
        let all: Vec<&Job> = jobs.iter().collect();
        let applied = apply_batch(self.store.as_ref(), &self.batcher, &all).await;
        drop(all);
        match applied {
            Ok(results) => {
                debug!(size, "write batch committed");
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) if size > 1 => {
                warn!(size, error = %e, "write batch failed; running its writes one by one");
                for job in jobs {
                    let result =
                        match apply_batch(self.store.as_ref(), &self.batcher, &[&job]).await {
                            Ok(mut results) => {
                                results.pop().unwrap_or(Err(StoreError::BatchLost.into()))
                            }
                            Err(e) => Err(e.into()),
                        };
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                if let Some(job) = jobs.into_iter().next() {
                    let _ = job.reply.send(Err(e.into()));
                }
            }
        }
    }
}

/// Applies `jobs`; one result per job, in order. `Err` only when the
/// store failed, after which nothing of the failed step was written.
///
/// Where the store offers it, a batch of appends to slots this process
/// wrote last runs from memory: the rules over the remembered state and
/// one statement that appends only if none of its slots moved (one round
/// trip; see [`known`]). Otherwise it first runs unlocked: one read, the
/// rules, and the same statement (two round trips, no transaction held
/// open between them). A batch that moves positions (reprices, closes)
/// runs as one transaction under its slots' locks, and so do the writes
/// the store did not append unlocked.
async fn apply_batch<S: Store>(
    store: &S,
    batcher: &Batcher,
    jobs: &[&Job],
) -> StoreResult<Vec<Result<Applied, LedgerError>>> {
    let ids: Vec<u64> = jobs.iter().map(|j| j.write.position_id()).collect();
    let slots = batcher.position_slots(store, &ids).await?;
    let plan = Plan::new(jobs, &slots);
    let queries = plan.queries(jobs);
    if let Some(answers) = append_known(store, batcher, jobs, &plan, &queries).await? {
        return Ok(answers);
    }
    let Some(read) = store.read_unlocked(&plan.claims, &queries).await? else {
        return apply_locked(store, batcher, jobs, &plan, &queries).await;
    };
    let staging = Staging::run(jobs, &plan, read.heads, read.contexts);
    if staging.moved_positions().next().is_some() {
        return apply_locked(store, batcher, jobs, &plan, &queries).await;
    }
    let rows = staging.keyed_rows(jobs);
    healgrid_proto::crash::reached_at(CrashPoint::BatchAppended);
    let journal_ids = if rows.is_empty() {
        // Replays and refusals only: answered from one consistent read.
        Vec::new()
    } else {
        store
            .append_if_unchanged(&plan.claims, &read.seen, &rows)
            .await?
    };
    healgrid_proto::crash::reached_at(CrashPoint::BatchCommitted);
    let reserved = !rows.is_empty() && journal_ids.iter().all(Option::is_some);
    batcher.known.settle(&plan.claims, &staging, reserved);
    let answers = staging.answers(jobs, &journal_ids);
    let again: Vec<&Job> = jobs
        .iter()
        .zip(&answers)
        .filter_map(|(job, answer)| answer.is_none().then_some(*job))
        .collect();
    if again.is_empty() {
        return Ok(answers.into_iter().flatten().collect());
    }
    debug!(
        writes = again.len(),
        "writes not appended without locks (a slot moved, or the batch is too large); \
         they run under locks"
    );
    // If this fails, the caller runs every write of the batch again, one by
    // one: those written above come back as replays of their keys.
    let plan = Plan::new(&again, &slots);
    let queries = plan.queries(&again);
    let mut locked = apply_locked(store, batcher, &again, &plan, &queries)
        .await?
        .into_iter();
    answers
        .into_iter()
        .map(|answer| match answer {
            Some(answer) => Ok(answer),
            None => locked.next().ok_or(StoreError::BatchLost),
        })
        .collect()
}

/// Appends `jobs` (planned as `plan`, reading `queries`) staged from
/// their slots' remembered state, if the batch is small enough to run
/// unlocked ([`Store::unlocked_max_writes`]), every slot is remembered,
/// every write is accepted as new and no slot moved since; `None`
/// (nothing written) otherwise.
async fn append_known<S: Store>(
    store: &S,
    batcher: &Batcher,
    jobs: &[&Job],
    plan: &Plan<'_>,
    queries: &[ContextQuery<'_>],
) -> StoreResult<Option<Vec<Result<Applied, LedgerError>>>> {
    if jobs.len() > store.unlocked_max_writes() {
        // Too large for one guarded append: staging it would be wasted.
        return Ok(None);
    }
    let Some(read) = batcher.known.read(&plan.claims, queries) else {
        return Ok(None);
    };
    let staging = Staging::run(jobs, plan, read.heads, read.contexts);
    if !staging.all_fresh() || staging.moved_positions().next().is_some() {
        // A refusal or a replay is decided from a fresh read, and a moved
        // position is updated under its slot's lock.
        return Ok(None);
    }
    let rows = staging.keyed_rows(jobs);
    healgrid_proto::crash::reached_at(CrashPoint::BatchAppended);
    let appended = store
        .append_if_unchanged(&plan.claims, &read.seen, &rows)
        .await;
    let journal_ids = match appended {
        Ok(ids) if ids.iter().all(Option::is_some) => ids,
        other => {
            batcher.known.forget(&plan.claims);
            other?;
            debug!(
                writes = jobs.len(),
                "a remembered slot moved or a key was recorded; the batch reads"
            );
            return Ok(None);
        }
    };
    healgrid_proto::crash::reached_at(CrashPoint::BatchCommitted);
    batcher.known.settle(&plan.claims, &staging, true);
    Ok(Some(
        staging
            .answers(jobs, &journal_ids)
            .into_iter()
            .map(|answer| answer.unwrap_or_else(|| Err(StoreError::BatchLost.into())))
            .collect(),
    ))
}

/// Applies `jobs` (planned as `plan`, reading `queries`) in one
/// transaction under their slots' locks.
async fn apply_locked<S: Store>(
    store: &S,
    batcher: &Batcher,
    jobs: &[&Job],
    plan: &Plan<'_>,
    queries: &[ContextQuery<'_>],
) -> StoreResult<Vec<Result<Applied, LedgerError>>> {
    let mut tx = store.begin().await?;
    let (heads, contexts) = tx.lock_and_read(&plan.claims, queries).await?;
    let staging = Staging::run(jobs, plan, heads, contexts);
    let rows = staging.keyed_rows(jobs);
    let journal_ids = if rows.is_empty() {
        Vec::new()
    } else {
        tx.append_rows(&rows).await?
    };
    for (p, exit_moved, closed) in staging.moved_positions() {
        if exit_moved {
            tx.update_exit_intent(
                p.position_id,
                p.current_exit_price,
                &p.exit_txid,
                p.times_repriced,
            )
            .await?;
        }
        if closed && let Some(outcome) = &p.outcome {
            tx.close_position(p.position_id, outcome).await?;
        }
    }
    healgrid_proto::crash::reached_at(CrashPoint::BatchAppended);
    tx.commit().await?;
    healgrid_proto::crash::reached_at(CrashPoint::BatchCommitted);
    // The locks reserved every claim's rows; remembering pays only where
    // the store appends unlocked.
    batcher
        .known
        .settle(&plan.claims, &staging, store.unlocked_max_writes() > 0);
    let ids: Vec<Option<u64>> = journal_ids.into_iter().map(Some).collect();
    staging
        .answers(jobs, &ids)
        .into_iter()
        .map(|answer| {
            answer.ok_or_else(|| StoreError::corrupt("position_journal", "row id missing"))
        })
        .collect()
}
