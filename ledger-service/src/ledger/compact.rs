//! Compaction: folding the journal rows of long-closed positions into
//! per-slot watermarks, in one transaction, without changing any balance or
//! lifetime total.

use chrono::{DateTime, Utc};
use tracing::info;

use super::Ledger;
use crate::{
    domain::{LedgerError, validate},
    store::{Store, StoreTx},
};

/// What a compaction folded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Positions whose journal rows were folded.
    pub positions_compacted: u64,
    /// Journal rows folded (deleted).
    pub rows_folded: u64,
    /// Slots whose watermark moved.
    pub slots_touched: u32,
}

impl<S: Store> Ledger<S> {
    /// Folds the journal rows of positions of `bot_id` closed before
    /// `cutoff` into their slots' watermarks. Each slot is locked (in
    /// ascending order) before it is folded, so concurrent writers see either
    /// the state before or after, never a mix.
    pub async fn compact(
        &self,
        bot_id: &str,
        cutoff: DateTime<Utc>,
    ) -> Result<CompactReport, LedgerError> {
        validate::id("bot_id", bot_id)?;
        let cutoff = validate::time("cutoff", cutoff, self.now())?;
        let mut tx = self.store.begin().await?;
        let mut report = CompactReport::default();
        for slot_id in tx.compactable_slots(bot_id, cutoff).await? {
            let head = tx.lock_slot(bot_id, slot_id).await?;
            let sums = tx.fold_sums(bot_id, slot_id, cutoff).await?;
            if sums.rows == 0 {
                continue;
            }
            // Snapshot the lifetime totals before their row may be folded.
            let snapshot = match tx.newest_cumulative(bot_id, slot_id).await? {
                Some(newest) if newest.slot_seq >= head.snapshot.slot_seq => newest,
                _ => head.snapshot,
            };
            let watermark = head.watermark.plus(&sums.totals);
            tx.set_watermark(bot_id, slot_id, &watermark, &snapshot)
                .await?;
            report.rows_folded += tx.delete_folded(bot_id, slot_id, cutoff).await?;
            report.positions_compacted += sums.positions;
            report.slots_touched += 1;
        }
        tx.commit().await?;
        info!(bot_id, %cutoff, rows_folded = report.rows_folded, positions = report.positions_compacted, slots = report.slots_touched, "journal compacted");
        Ok(report)
    }
}
