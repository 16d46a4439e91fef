//! The rules of a batch: each write checked, in arrival order, against
//! the batch's view of its slot and position (the state read from the
//! store plus the writes before it in the batch), its row staged and its
//! answer prepared. Pure: no store access, so the locked and the unlocked
//! path of [`super::apply_batch`] run the same rules.

use std::collections::{BTreeMap, HashMap};

use tracing::info;

use super::{Answer, Applied, Job, Write};
use crate::{
    domain::{
        EventDetails, JournalEntry, LedgerError, Position, SlotSubsidy, SubsidyTotals,
        journal::RepricedDetails,
        position::PositionStatus,
        subsidy::{CumulativeAt, SubsidyDelta, current_totals},
    },
    ledger::writes::{CloseOutcome, EventOutcome, RepriceOutcome},
    store::{
        ContextQuery, EventKeyRecord, KeyedRow, NewJournalRow, SlotClaim, SlotHead, WriteContext,
    },
};

/// What a batch locks and reads: its slot claims (sorted, so every batch
/// takes its locks in one order) and, per write whose position exists,
/// the context to read.
pub(super) struct Plan<'j> {
    /// One per slot written, with the rows it may append there.
    pub(super) claims: Vec<SlotClaim>,
    /// Job index, bot and slot of each write whose position exists.
    found: Vec<(usize, &'j str, u32)>,
}

impl<'j> Plan<'j> {
    /// The plan of `jobs`, whose positions' bots and slots are `slots`.
    pub(super) fn new(jobs: &[&Job], slots: &'j HashMap<u64, (String, u32)>) -> Self {
        let mut claims: BTreeMap<(String, u32), u32> = BTreeMap::new();
        let mut found = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            if let Some((bot_id, slot_id)) = slots.get(&job.write.position_id()) {
                *claims.entry((bot_id.clone(), *slot_id)).or_default() += 1;
                found.push((i, bot_id.as_str(), *slot_id));
            }
        }
        let claims = claims
            .into_iter()
            .map(|((bot_id, slot_id), rows)| SlotClaim {
                bot_id,
                slot_id,
                rows,
            })
            .collect();
        Self { claims, found }
    }

    /// The context query of each found write, in the jobs' order.
    pub(super) fn queries<'q>(&'q self, jobs: &'q [&Job]) -> Vec<ContextQuery<'q>> {
        self.found
            .iter()
            .map(|&(i, bot_id, slot_id)| ContextQuery {
                bot_id,
                slot_id,
                event_key: jobs[i].write.event_key(),
                position_id: jobs[i].write.position_id(),
            })
            .collect()
    }
}

/// A batch after its rules ran: the rows to append, the positions to
/// update and each job's outcome short of its journal id.
pub(super) struct Staging {
    results: Vec<Option<Result<Staged, LedgerError>>>,
    replays: HashMap<usize, EventKeyRecord>,
    positions: BTreeMap<u64, PositionView>,
    rows: Vec<PendingRow>,
    slots: Vec<SlotAfter>,
}

/// A claimed slot once the batch's rules ran.
#[derive(Debug, Clone, Copy)]
pub(super) struct SlotAfter {
    /// Its head as the batch read it (`seq`: the first number the batch
    /// reserved there).
    pub(super) head: SlotHead,
    /// Its newest subsidy row after the batch's rows (the outer `None`:
    /// no write of the batch read the slot's context).
    pub(super) newest: Option<Option<CumulativeAt>>,
}

impl Staging {
    /// Runs the rules of `jobs` over the slot `heads` (one per claim of
    /// `plan`) and the `contexts` read for its queries.
    pub(super) fn run(
        jobs: &[&Job],
        plan: &Plan<'_>,
        heads: Vec<SlotHead>,
        contexts: Vec<WriteContext>,
    ) -> Self {
        let mut view: HashMap<(&str, u32), SlotView> = plan
            .claims
            .iter()
            .zip(&heads)
            .map(|(c, &head)| {
                let slot = SlotView {
                    next_seq: head.seq,
                    snapshot: head.snapshot,
                    newest: None,
                };
                ((c.bot_id.as_str(), c.slot_id), slot)
            })
            .collect();
        let mut s = Self {
            results: jobs.iter().map(|_| None).collect(),
            replays: HashMap::new(),
            positions: BTreeMap::new(),
            rows: Vec::new(),
            slots: Vec::new(),
        };
        for ((i, bot_id, slot_id), ctx) in plan.found.iter().copied().zip(contexts) {
            if let Some(record) = ctx.key {
                s.replays.insert(i, record);
                continue;
            }
            let position_id = jobs[i].write.position_id();
            let Some(slot) = view.get_mut(&(bot_id, slot_id)) else {
                s.results[i] = Some(Err(LedgerError::PositionNotFound { position_id }));
                continue;
            };
            if slot.newest.is_none() {
                slot.newest = Some(ctx.newest);
            }
            let entry = match (s.positions.contains_key(&position_id), ctx.position) {
                (true, _) => s.positions.get_mut(&position_id),
                (false, Some(position)) => {
                    Some(s.positions.entry(position_id).or_insert(PositionView {
                        position,
                        exit_moved: false,
                        closed: false,
                    }))
                }
                (false, None) => None,
            };
            let Some(pv) = entry else {
                s.results[i] = Some(Err(LedgerError::PositionNotFound { position_id }));
                continue;
            };
            let result = stage(&jobs[i].write, pv, slot, bot_id, slot_id, i, &mut s.rows);
            s.results[i] = Some(result);
        }
        s.slots = plan
            .claims
            .iter()
            .zip(heads)
            .map(|(c, head)| SlotAfter {
                head,
                newest: view
                    .get(&(c.bot_id.as_str(), c.slot_id))
                    .and_then(|v| v.newest),
            })
            .collect();
        s
    }

    /// Whether every write was accepted as new: none refused, none a
    /// replay.
    pub(super) fn all_fresh(&self) -> bool {
        self.replays.is_empty() && self.results.iter().all(|r| matches!(r, Some(Ok(_))))
    }

    /// Each claimed slot after the rules, in the claims' order.
    pub(super) fn slots(&self) -> &[SlotAfter] {
        &self.slots
    }

    /// Each position a write of the batch read, as the batch left it.
    pub(super) fn positions(&self) -> impl Iterator<Item = &Position> {
        self.positions.values().map(|pv| &pv.position)
    }

    /// The rows to append, in staging order, with their request hashes.
    pub(super) fn keyed_rows<'s>(&'s self, jobs: &'s [&Job]) -> Vec<KeyedRow<'s>> {
        self.rows
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
            .collect()
    }

    /// Each position whose exit moved (with its new state) or that closed.
    pub(super) fn moved_positions(&self) -> impl Iterator<Item = (&Position, bool, bool)> {
        self.positions
            .values()
            .filter(|pv| pv.exit_moved || pv.closed)
            .map(|pv| (&pv.position, pv.exit_moved, pv.closed))
    }

    /// One result per job, in order, once its row is appended with the
    /// journal id `journal_ids[row]` (rows in staging order). `None` for a
    /// job whose row was not written (no id): it must run again.
    pub(super) fn answers(
        self,
        jobs: &[&Job],
        journal_ids: &[Option<u64>],
    ) -> Vec<Option<Result<Applied, LedgerError>>> {
        let Self {
            results,
            mut replays,
            ..
        } = self;
        results
            .into_iter()
            .enumerate()
            .map(|(i, result)| match (replays.remove(&i), result) {
                (Some(record), _) => Some(Ok(Applied::Replay(record))),
                (None, Some(Ok(Staged { row, mut answer }))) => {
                    let journal_id = journal_ids.get(row).copied().flatten()?;
                    answer.entry_mut().journal_id = journal_id;
                    log_fresh(&answer, journal_id);
                    Some(Ok(Applied::Fresh(Box::new(answer))))
                }
                (None, Some(Err(e))) => Some(Err(e)),
                (None, None) => Some(Err(LedgerError::PositionNotFound {
                    position_id: jobs[i].write.position_id(),
                })),
            })
            .collect()
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
