//! Group commit: the keyed journal writes (`JournalEvent`,
//! `RepricePosition`, `ClosePosition`) of one ledger process share
//! database transactions.
//!
//! # Collecting
//! A write joins a queue. When fewer than [`Batching::max_in_flight`]
//! batches are running, it starts one at once, so a lone request is never
//! delayed; while batches run, newcomers wait in the queue and the next
//! batch takes all of them (up to [`Batching::max_batch`]). The batch size
//! thus follows the load with no timer: one write per transaction when
//! idle, dozens per transaction under load.
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
//! A batch holds each event key at most once (a repeated key waits for the
//! next batch, which then sees it as a retry). If the database fails a
//! batch (a unique key taken by another process between read and write, a
//! lost connection), the transaction is rolled back and each of its writes
//! is run again alone, so one write's failure never fails its neighbours.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::Mutex,
    time::Duration,
};

use tokio::sync::{Notify, oneshot};
use tracing::{debug, info, warn};

use super::{
    Ledger,
    writes::{CloseOutcome, EventOutcome, RepriceOutcome},
};
use crate::{
    crash_point::CrashPoint,
    domain::{
        EventDetails, JournalEntry, LedgerError, Position, SlotSubsidy, SubsidyTotals,
        journal::{EventCommand, RepriceCommand, RepricedDetails},
        position::{CloseCommand, PositionStatus},
        subsidy::{CumulativeAt, SubsidyDelta, current_totals},
    },
    store::{
        ContextQuery, EventKeyRecord, KeyedRow, NewJournalRow, SlotClaim, Store, StoreError,
        StoreResult, StoreTx,
    },
};

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
    /// [`Batching::linger`]) until as many more are queued, unless the
    /// queue already holds them. `false` when this runner stepped aside
    /// (and ended) because another one is already waiting for the queue.
    ///
    /// Without it, concurrent writers fall into a convoy: a batch answers
    /// them all at once, the first one back finds the ledger idle and gets
    /// a batch (and a round of transaction costs) of its own, and the
    /// rest wait behind it (measured: `1, 1, 1, 30` batch after batch at
    /// 32 writers). A lone writer is never delayed: it only ever answers
    /// batches of one.
    async fn linger(&self, answered: usize) -> bool {
        let linger = self.batcher.batching.linger;
        if answered < 2 || linger.is_zero() {
            return true;
        }
        {
            let mut q = self.batcher.lock();
            // The writers just answered, back with their next write, and
            // those already queued.
            let awaited = (answered + q.jobs.len()).min(self.batcher.batching.max_batch);
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
        match apply_batch(self.store.as_ref(), &self.batcher, &jobs).await {
            Ok(results) => {
                debug!(size, "write batch committed");
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) if size > 1 => {
                warn!(size, error = %e, "write batch failed; running its writes one by one");
                for job in jobs {
                    let result = match apply_batch(
                        self.store.as_ref(),
                        &self.batcher,
                        std::slice::from_ref(&job),
                    )
                    .await
                    {
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

/// A slot as the batch sees it.
struct SlotView {
    /// Next reserved sequence number.
    next_seq: i64,
    /// Compaction snapshot.
    snapshot: CumulativeAt,
    /// Newest subsidy row, once read (the outer `None`: not read yet).
    newest: Option<Option<CumulativeAt>>,
}

impl SlotView {
    fn totals(&self) -> SubsidyTotals {
        current_totals(self.snapshot, self.newest.flatten())
    }
}

/// A position the batch wrote: its state now, and what changed.
struct PositionView {
    position: Position,
    exit_moved: bool,
    closed: bool,
}

/// One accepted write: its row and its answer, awaiting the row's id.
struct Staged {
    row: usize,
    answer: Answer,
}

/// A write's row, owned until the batch appends.
struct PendingRow {
    position_id: u64,
    bot_id: String,
    slot_id: u32,
    slot_seq: i64,
    at: chrono::DateTime<chrono::Utc>,
    details: EventDetails,
    event_key: String,
    subsidy: Option<(SubsidyDelta, SubsidyTotals)>,
    job: usize,
}

/// Applies `jobs` in one transaction; one result per job, in order. `Err`
/// only when the store failed, after which nothing was written.
async fn apply_batch<S: Store>(
    store: &S,
    batcher: &Batcher,
    jobs: &[Job],
) -> StoreResult<Vec<Result<Applied, LedgerError>>> {
    let ids: Vec<u64> = jobs.iter().map(|j| j.write.position_id()).collect();
    let slots = batcher.position_slots(store, &ids).await?;

    let mut claims: BTreeMap<(String, u32), u32> = BTreeMap::new();
    for id in &ids {
        if let Some((bot_id, slot_id)) = slots.get(id) {
            *claims.entry((bot_id.clone(), *slot_id)).or_default() += 1;
        }
    }
    let claims: Vec<SlotClaim> = claims
        .into_iter()
        .map(|((bot_id, slot_id), rows)| SlotClaim {
            bot_id,
            slot_id,
            rows,
        })
        .collect();

    let found: Vec<(usize, &str, u32)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| {
            slots
                .get(&j.write.position_id())
                .map(|(bot_id, slot_id)| (i, bot_id.as_str(), *slot_id))
        })
        .collect();
    let queries: Vec<ContextQuery<'_>> = found
        .iter()
        .map(|&(i, bot_id, slot_id)| ContextQuery {
            bot_id,
            slot_id,
            event_key: jobs[i].write.event_key(),
            position_id: jobs[i].write.position_id(),
        })
        .collect();
    let mut tx = store.begin().await?;
    let (heads, contexts) = tx.lock_and_read(&claims, &queries).await?;
    let mut view: HashMap<(&str, u32), SlotView> = claims
        .iter()
        .zip(heads)
        .map(|(c, head)| {
            let slot = SlotView {
                next_seq: head.seq,
                snapshot: head.snapshot,
                newest: None,
            };
            ((c.bot_id.as_str(), c.slot_id), slot)
        })
        .collect();

    let mut results: Vec<Option<Result<Staged, LedgerError>>> = jobs.iter().map(|_| None).collect();
    let mut replays: HashMap<usize, EventKeyRecord> = HashMap::new();
    let mut positions: BTreeMap<u64, PositionView> = BTreeMap::new();
    let mut rows: Vec<PendingRow> = Vec::new();
    for ((i, bot_id, slot_id), ctx) in found.iter().copied().zip(contexts) {
        if let Some(record) = ctx.key {
            replays.insert(i, record);
            continue;
        }
        let job = &jobs[i];
        let position_id = job.write.position_id();
        let Some(slot) = view.get_mut(&(bot_id, slot_id)) else {
            results[i] = Some(Err(LedgerError::PositionNotFound { position_id }));
            continue;
        };
        if slot.newest.is_none() {
            slot.newest = Some(ctx.newest);
        }
        let entry = match (positions.contains_key(&position_id), ctx.position) {
            (true, _) => positions.get_mut(&position_id),
            (false, Some(position)) => Some(positions.entry(position_id).or_insert(PositionView {
                position,
                exit_moved: false,
                closed: false,
            })),
            (false, None) => None,
        };
        let Some(pv) = entry else {
            results[i] = Some(Err(LedgerError::PositionNotFound { position_id }));
            continue;
        };
        let result = stage(&job.write, pv, slot, bot_id, slot_id, i, &mut rows);
        results[i] = Some(result);
    }

    let keyed: Vec<KeyedRow<'_>> = rows
        .iter()
        .map(|r| KeyedRow {
            row: NewJournalRow {
                position_id: r.position_id,
                bot_id: &r.bot_id,
                slot_id: r.slot_id,
                slot_seq: r.slot_seq,
                at: r.at,
                details: &r.details,
                event_key: &r.event_key,
                subsidy: r.subsidy,
            },
            request_hash: &jobs[r.job].hash,
        })
        .collect();
    let journal_ids = if keyed.is_empty() {
        Vec::new()
    } else {
        tx.append_rows(&keyed).await?
    };
    for pv in positions.values() {
        let p = &pv.position;
        if pv.exit_moved {
            tx.update_exit_intent(
                p.position_id,
                p.current_exit_price,
                &p.exit_txid,
                p.times_repriced,
            )
            .await?;
        }
        if pv.closed
            && let Some(outcome) = &p.outcome
        {
            tx.close_position(p.position_id, outcome).await?;
        }
    }
    healgrid_proto::crash::reached_at(CrashPoint::BatchAppended);
    tx.commit().await?;
    healgrid_proto::crash::reached_at(CrashPoint::BatchCommitted);

    let mut out = Vec::with_capacity(jobs.len());
    for (i, result) in results.into_iter().enumerate() {
        let applied = match (replays.remove(&i), result) {
            (Some(record), _) => Ok(Applied::Replay(record)),
            (None, Some(Ok(Staged { row, mut answer }))) => {
                let journal_id = journal_ids
                    .get(row)
                    .copied()
                    .ok_or_else(|| StoreError::corrupt("position_journal", "row id missing"))?;
                answer.entry_mut().journal_id = journal_id;
                log_fresh(&answer, journal_id);
                Ok(Applied::Fresh(Box::new(answer)))
            }
            (None, Some(Err(e))) => Err(e),
            (None, None) => Err(LedgerError::PositionNotFound {
                position_id: jobs[i].write.position_id(),
            }),
        };
        out.push(applied);
    }
    Ok(out)
}

/// Checks one write against the batch's view and, if the rules accept it,
/// stages its row and moves the view on. A refusal changes nothing.
fn stage(
    write: &Write,
    pv: &mut PositionView,
    slot: &mut SlotView,
    bot_id: &str,
    slot_id: u32,
    job: usize,
    rows: &mut Vec<PendingRow>,
) -> Result<Staged, LedgerError> {
    let position = &pv.position;
    let (details, at, event_key) = match write {
        Write::Event(cmd) => {
            cmd.check_position(position)?;
            (cmd.details.clone(), cmd.at, &cmd.event_key)
        }
        Write::Reprice(cmd) => {
            position.ensure_open("reprice")?;
            let details = EventDetails::Repriced(RepricedDetails {
                old_price: position.current_exit_price,
                new_price: cmd.new_price,
                old_txid: position.exit_txid.clone(),
                new_txid: cmd.new_txid.clone(),
                reason: cmd.reason,
                subsidy_consumed: cmd.subsidy_consumed,
            });
            (details, cmd.at, &cmd.event_key)
        }
        Write::Close(cmd) => (
            cmd.close_details(position)?,
            cmd.outcome.exit_time,
            &cmd.event_key,
        ),
    };
    let (subsidy, totals) = subsidy_after(slot.totals(), bot_id, slot_id, &details)?;

    // Accepted: move the view on.
    let slot_seq = slot.next_seq;
    slot.next_seq += 1;
    if let Some((_, next)) = subsidy {
        slot.newest = Some(Some(CumulativeAt {
            slot_seq,
            totals: next,
        }));
    }
    match write {
        Write::Event(_) => {}
        Write::Reprice(cmd) => {
            let p = &mut pv.position;
            p.current_exit_price = cmd.new_price;
            p.exit_txid.clone_from(&cmd.new_txid);
            p.times_repriced = p.times_repriced.saturating_add(1);
            pv.exit_moved = true;
        }
        Write::Close(cmd) => {
            let p = &mut pv.position;
            if !cmd.exit_txid.is_empty() && cmd.exit_txid != p.exit_txid {
                p.exit_txid.clone_from(&cmd.exit_txid);
                pv.exit_moved = true;
            }
            p.status = PositionStatus::Closed;
            p.outcome = Some(cmd.outcome.clone());
            pv.closed = true;
        }
    }
    let entry = JournalEntry {
        journal_id: 0,
        position_id: pv.position.position_id,
        bot_id: bot_id.to_owned(),
        slot_id,
        at,
        details: details.clone(),
        event_key: event_key.clone(),
    };
    let subsidy_now = || SlotSubsidy {
        bot_id: bot_id.to_owned(),
        slot_id,
        totals,
    };
    let answer = match write {
        Write::Event(_) => Answer::Event(EventOutcome {
            entry,
            subsidy: subsidy_now(),
            replayed: false,
        }),
        Write::Reprice(_) => Answer::Reprice(RepriceOutcome {
            position: pv.position.clone(),
            entry,
            subsidy: subsidy_now(),
            replayed: false,
        }),
        Write::Close(_) => Answer::Close(CloseOutcome {
            position: pv.position.clone(),
            entry,
            replayed: false,
        }),
    };
    rows.push(PendingRow {
        position_id: pv.position.position_id,
        bot_id: bot_id.to_owned(),
        slot_id,
        slot_seq,
        at,
        details,
        event_key: event_key.clone(),
        subsidy,
        job,
    });
    Ok(Staged {
        row: rows.len() - 1,
        answer,
    })
}

/// The subsidy row to store for `details` (if it moves subsidy) and the
/// slot's totals after it. Refuses an overdraft.
fn subsidy_after(
    current: SubsidyTotals,
    bot_id: &str,
    slot_id: u32,
    details: &EventDetails,
) -> Result<(Option<(SubsidyDelta, SubsidyTotals)>, SubsidyTotals), LedgerError> {
    let delta = details.subsidy_delta();
    if delta.is_zero() {
        return Ok((None, current));
    }
    let next = current.apply(&delta, bot_id, slot_id)?;
    Ok((Some((delta, next)), next))
}

fn log_fresh(answer: &Answer, journal_id: u64) {
    match answer {
        Answer::Event(o) => {
            let e = &o.entry;
            info!(journal_id, position_id = e.position_id, bot_id = %e.bot_id, slot_id = e.slot_id, event_type = %e.details.event_type(), event_key = %e.event_key, balance = %o.subsidy.totals.balance(), "event journaled");
        }
        Answer::Reprice(o) => {
            let e = &o.entry;
            info!(journal_id, position_id = e.position_id, bot_id = %e.bot_id, slot_id = e.slot_id, event_key = %e.event_key, balance = %o.subsidy.totals.balance(), "position repriced");
        }
        Answer::Close(o) => {
            let e = &o.entry;
            info!(journal_id, position_id = e.position_id, bot_id = %e.bot_id, slot_id = e.slot_id, event_key = %e.event_key, "position closed");
        }
    }
}
