//! What this ledger process last wrote to each slot, so that its next
//! batch of appends there runs the rules without reading first.
//!
//! After a batch commits, the ledger knows each claimed slot's state
//! exactly as the database holds it: the slot's `last_seq` (the batch
//! reserved its claim's rows), its compaction snapshot, its newest subsidy
//! row and the positions the batch read. Every change to a slot (a row
//! appended, a position repriced or closed, a compaction) moves its
//! `last_seq` under the slot's lock, so while `last_seq` is still the
//! remembered one, so is the rest. The next batch therefore stages its
//! rows from memory and hands them to [`Store::append_if_unchanged`],
//! which writes only if every slot's `last_seq` is still the remembered
//! one and no key is recorded: one round trip per batch instead of two.
//! If another process moved a slot (or a key is a retry), nothing is
//! written, the slots are forgotten, and the batch takes the reading path.
//!
//! A remembered slot never answers a write on its own: a batch staged
//! from memory is sent only if every write in it is accepted as new. A
//! refusal (an overdraft, a closed position) or a replay is decided from a
//! fresh read.
//!
//! [`Store::append_if_unchanged`]: crate::store::Store::append_if_unchanged

use std::{collections::HashMap, sync::Mutex};

use super::stage::Staging;
use crate::{
    domain::{Position, subsidy::CumulativeAt},
    store::{ContextQuery, SlotClaim, SlotHead, UnlockedRead, WriteContext},
};

/// Most slots remembered; past it the memory starts over (a miss costs
/// one read).
const SLOTS_LIMIT: usize = 100_000;

/// Most positions remembered per slot: a slot writes to its few open
/// positions, and a miss costs one read.
const POSITIONS_PER_SLOT: usize = 64;

/// One remembered slot.
#[derive(Debug, Clone)]
struct Known {
    /// The slot's `last_seq` after the batch that taught it.
    last_seq: i64,
    /// Its head (compaction watermark and snapshot; `seq` unused).
    head: SlotHead,
    /// Its newest subsidy row.
    newest: Option<CumulativeAt>,
    /// Positions of the slot, as of `last_seq`.
    positions: HashMap<u64, Position>,
}

/// The remembered slots of one ledger process, by bot, then slot.
#[derive(Debug, Default)]
pub(super) struct KnownSlots {
    bots: Mutex<HashMap<String, HashMap<u32, Known>>>,
}

impl KnownSlots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u32, Known>>> {
        // Each critical section replaces whole entries, so a poisoned lock
        // is still consistent.
        self.bots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The read of a batch (`claims`, `queries`) from memory, shaped as
    /// [`crate::store::Store::read_unlocked`] answers, with every key
    /// taken as new. `None` unless every claimed slot and every written
    /// position is remembered.
    pub(super) fn read(
        &self,
        claims: &[SlotClaim],
        queries: &[ContextQuery<'_>],
    ) -> Option<UnlockedRead> {
        let bots = self.lock();
        let known = |bot_id: &str, slot_id: u32| bots.get(bot_id)?.get(&slot_id);
        let mut heads = Vec::with_capacity(claims.len());
        let mut seen = Vec::with_capacity(claims.len());
        for c in claims {
            let k = known(&c.bot_id, c.slot_id)?;
            heads.push(SlotHead {
                seq: k.last_seq + 1,
                ..k.head
            });
            seen.push(k.last_seq);
        }
        let contexts = queries
            .iter()
            .map(|q| {
                let k = known(q.bot_id, q.slot_id)?;
                Some(WriteContext {
                    key: None,
                    position: Some(k.positions.get(&q.position_id)?.clone()),
                    newest: k.newest,
                })
            })
            .collect::<Option<_>>()?;
        Some(UnlockedRead {
            heads,
            seen,
            contexts,
        })
    }

    /// Settles the slots of a committed batch (`claims`, staged as
    /// `staging`): learns them if the batch `reserved` its claims' rows
    /// and moved no position (a moved position's new state is the
    /// database's to say: its close columns), else forgets them.
    pub(super) fn settle(&self, claims: &[SlotClaim], staging: &Staging, reserved: bool) {
        if reserved && staging.moved_positions().next().is_none() {
            self.learn(claims, staging);
        } else {
            self.forget(claims);
        }
    }

    /// Learns the slots of a committed batch that reserved its claims'
    /// rows. A slot no write of the batch read is forgotten instead.
    fn learn(&self, claims: &[SlotClaim], staging: &Staging) {
        let mut bots = self.lock();
        if bots.values().map(HashMap::len).sum::<usize>() >= SLOTS_LIMIT {
            bots.clear();
        }
        for (c, after) in claims.iter().zip(staging.slots()) {
            let slots = bots.entry(c.bot_id.clone()).or_default();
            let Some(newest) = after.newest else {
                slots.remove(&c.slot_id);
                continue;
            };
            let base = after.head.seq - 1;
            let mut positions = match slots.remove(&c.slot_id) {
                // Unmoved since it was remembered: its positions still hold.
                Some(k) if k.last_seq == base && k.positions.len() < POSITIONS_PER_SLOT => {
                    k.positions
                }
                _ => HashMap::new(),
            };
            for p in staging
                .positions()
                .filter(|p| p.bot_id == c.bot_id && p.slot_id == c.slot_id)
            {
                positions.insert(p.position_id, p.clone());
            }
            slots.insert(
                c.slot_id,
                Known {
                    last_seq: base + i64::from(c.rows),
                    head: after.head,
                    newest,
                    positions,
                },
            );
        }
    }

    /// Forgets `claims`' slots: their next batch reads.
    pub(super) fn forget(&self, claims: &[SlotClaim]) {
        let mut bots = self.lock();
        for c in claims {
            if let Some(slots) = bots.get_mut(&c.bot_id) {
                slots.remove(&c.slot_id);
            }
        }
    }
}
