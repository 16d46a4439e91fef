//! Keeping the regime detector across restarts: its two records
//! ([`crate::healing::regime_persist`]) ride in the step commit as store
//! metadata, so they always agree with the committed engine state, and are
//! read back on start.
//!
//! A new 5-minute return makes the loop commit (once per five minutes:
//! about 1.5 KB of progress, plus the window, about 6 KB at the default
//! 288 returns, once an hour). A price that only moves the open bar is
//! saved with the shutdown flush only: it does not change the detector,
//! and a crash loses at most the open bar's last price (its close is then
//! the last price seen after the restart), which is not worth encoding
//! the records on every commit of a backtest. A stored copy that cannot
//! be read or does not fit is logged and ignored: the detector starts
//! fresh and overwrites it with its first save.

use thiserror::Error;

use crate::exchange::Exchange;
use crate::healing::regime_persist::{self, RegimeProgress, WindowCheckpoint};
use crate::runtime::heal::MarketModel;
use crate::runtime::ledger::LedgerApi;

use super::r#loop::{Runtime, RuntimeError};

/// Store metadata key of the window checkpoint.
pub(crate) const REGIME_WINDOW_META_KEY: &str = "regime:window";
/// Store metadata key of the detector's progress.
pub(crate) const REGIME_PROGRESS_META_KEY: &str = "regime:progress";

/// What of the market model the store does not hold yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) enum Unsaved {
    /// Everything is committed.
    #[default]
    Nothing,
    /// The open bar moved: saved with the next return or at shutdown.
    Bar,
    /// A return was consumed: the detector moved; commit it this loop.
    Return,
}

/// Records to commit and the checkpoint total they make durable.
pub(crate) struct RegimeMeta {
    pub(crate) entries: Vec<(String, String)>,
    pub(crate) checkpoint_total: u64,
}

impl MarketModel {
    /// Notes what an observation changed.
    pub(crate) fn mark_unsaved(&mut self, what: Unsaved) {
        self.unsaved = self.unsaved.max(what);
    }

    /// Whether the next commit must carry the records (and so must
    /// happen even if nothing else changed).
    pub(crate) fn needs_commit(&self) -> bool {
        self.unsaved == Unsaved::Return
    }

    /// Makes the next commit carry whatever moved, the open bar included
    /// (the shutdown flush).
    pub(crate) fn save_all_next(&mut self) {
        if self.unsaved == Unsaved::Bar {
            self.unsaved = Unsaved::Return;
        }
    }

    /// The records to commit, when due.
    ///
    /// # Errors
    /// Encoding failed (a bug: the records are plain numbers).
    pub(crate) fn regime_meta(&self) -> Result<Option<RegimeMeta>, serde_json::Error> {
        if !self.needs_commit() {
            return Ok(None);
        }
        let save = regime_persist::save(&self.history, &self.regime, self.checkpoint_total);
        let mut entries = Vec::with_capacity(2);
        if let Some(c) = &save.checkpoint {
            entries.push((REGIME_WINDOW_META_KEY.to_owned(), serde_json::to_string(c)?));
        }
        entries.push((
            REGIME_PROGRESS_META_KEY.to_owned(),
            serde_json::to_string(&save.progress)?,
        ));
        Ok(Some(RegimeMeta {
            entries,
            checkpoint_total: save.checkpoint_total(),
        }))
    }

    /// The records of [`Self::regime_meta`] are committed.
    pub(crate) fn regime_saved(&mut self, checkpoint_total: u64) {
        self.unsaved = Unsaved::Nothing;
        self.checkpoint_total = Some(checkpoint_total);
    }
}

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Restores the regime detector and its 5-minute history from the
    /// store; anything unreadable or not fitting the configuration in
    /// force is logged and ignored (the detector starts fresh).
    ///
    /// # Errors
    /// [`RuntimeError`] only if the store cannot be read.
    pub(super) async fn restore_regime(&mut self) -> Result<(), RuntimeError> {
        let Some(progress) = self.store.get_meta(REGIME_PROGRESS_META_KEY).await? else {
            return Ok(());
        };
        let checkpoint = self.store.get_meta(REGIME_WINDOW_META_KEY).await?;
        match decode(checkpoint.as_deref(), &progress) {
            Ok((checkpoint, progress)) => {
                match regime_persist::restore(&self.cfg.market, &checkpoint, progress) {
                    Ok((history, regime)) => {
                        let view = regime.view(self.engine.now);
                        tracing::info!(regime = %view.label, ready = view.ready,
                            returns = history.returns_5m_total(),
                            window = history.returns_5m().len(),
                            fitted = regime.model().is_some(), "regime detector restored");
                        self.market.history = history;
                        self.market.regime = regime;
                        self.market.regime_saved(checkpoint.total);
                    }
                    Err(e) => tracing::warn!(error = %e,
                        "stored regime detector not restored; it starts fresh"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "stored regime detector unreadable; it starts fresh");
            }
        }
        Ok(())
    }
}

/// Why the stored records cannot be read.
#[derive(Debug, Error)]
enum DecodeError {
    /// The progress is there, its checkpoint is not.
    #[error("the window checkpoint is missing")]
    MissingCheckpoint,
    /// A record is not valid JSON of its type (a NaN is stored as `null`
    /// and lands here too).
    #[error("{record} record: {source}")]
    Json {
        record: &'static str,
        source: serde_json::Error,
    },
}

/// Parses both records.
fn decode(
    checkpoint: Option<&str>,
    progress: &str,
) -> Result<(WindowCheckpoint, RegimeProgress), DecodeError> {
    let json = |record| move |source| DecodeError::Json { record, source };
    let checkpoint = checkpoint.ok_or(DecodeError::MissingCheckpoint)?;
    let checkpoint = serde_json::from_str(checkpoint).map_err(json("window"))?;
    let progress = serde_json::from_str(progress).map_err(json("progress"))?;
    Ok((checkpoint, progress))
}
