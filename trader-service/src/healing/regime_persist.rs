//! What of the regime detector survives a restart, and the rules that
//! decide whether a stored copy may be used.
//!
//! Without it a restarted trader would see `unknown` until `min_returns`
//! new 5-minute bars arrived (eight hours by default), and the churner,
//! which needs a ready "ranging" detector, would stay off that long.
//!
//! The state is kept in two records so that what is written on every new
//! return stays small:
//! - a [`WindowCheckpoint`]: the whole return window (up to the configured
//!   `window`, 288 returns by default) and the profit target's 1-minute
//!   moves, written only when the returns since the previous checkpoint
//!   would exceed [`TAIL_MAX`];
//! - a [`RegimeProgress`]: the detector itself (settings, fitted model,
//!   filter posterior, consensus and dwell), the 5-minute bar chain and the
//!   returns since the checkpoint (at most [`TAIL_MAX`]), written with
//!   every commit that follows a new return.
//!
//! The window after a restore is the checkpoint's followed by the tail,
//! i.e. exactly the window the detector saw, so the restored detector
//! continues bit for bit as if no restart had happened (JSON keeps every
//! `f64` exact). A stored copy that does not fit together (another
//! configuration, another layout version, a non-finite value, counts
//! that disagree) is refused with a [`RestoreError`]; the caller then
//! starts a fresh detector.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::healing::candles::{MarketHistory, RegimeBars};
use crate::healing::config::HealingConfig;
use crate::healing::regime::RegimeDetector;

/// Layout version of [`RegimeProgress`].
pub const REGIME_STATE_VERSION: u32 = 1;

/// Most returns a [`RegimeProgress`] carries beyond its checkpoint (one
/// hour of 5-minute bars): the bound on the per-return record.
pub const TAIL_MAX: usize = 12;

/// The newest 1-minute moves a [`RegimeProgress`] carries: the minutes a
/// checkpoint can be behind (its tail of returns and the bar after), so a
/// restart finds every move the last progress record saw.
pub const MOVE_TAIL_MAX: usize = 5 * (TAIL_MAX + 1);

/// Why a stored detector is not restored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestoreError {
    /// Written by another layout version.
    #[error("stored regime state has layout version {found}, this build reads {expected}")]
    Version {
        /// The stored version.
        found: u32,
        /// The version this build writes.
        expected: u32,
    },
    /// The detector settings (window, thresholds, ...) changed since it
    /// was stored: its model and window mean something else now.
    #[error("stored regime state was built with other detector settings")]
    ConfigChanged,
    /// A value that must be finite is not.
    #[error("stored regime state holds a non-finite {what}")]
    NonFinite {
        /// Which value.
        what: &'static str,
    },
    /// Parts that do not fit together.
    #[error("stored regime state is inconsistent: {what}")]
    Inconsistent {
        /// What disagrees.
        what: &'static str,
    },
}

/// The return window as of `total` returns, and the profit target's
/// 1-minute moves as of the same moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowCheckpoint {
    /// Returns produced when it was taken.
    pub total: u64,
    /// The window then, oldest first.
    pub returns: Vec<f64>,
    /// The absolute 1-minute moves then, oldest first
    /// ([`MarketHistory::moves`]), so the volatility-scaled target does
    /// not fall back to its base for `TARGET_BASELINE_MIN_MINUTES` after
    /// every restart; the progress record carries the moves since. Absent
    /// in checkpoints written before it existed (restored empty).
    #[serde(default)]
    pub moves: Vec<f64>,
    /// [`MarketHistory::moves_total`] when it was taken (0 in checkpoints
    /// written before it existed).
    #[serde(default)]
    pub moves_total: u64,
}

/// The detector and what moved since the checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeProgress {
    /// Layout version ([`REGIME_STATE_VERSION`]).
    pub version: u32,
    /// `total` of the checkpoint the tail continues.
    pub checkpoint_total: u64,
    /// Returns since that checkpoint, oldest first.
    pub tail: Vec<f64>,
    /// The 5-minute bar chain.
    pub bars: RegimeBars,
    /// The detector.
    pub detector: RegimeDetector,
    /// [`MarketHistory::moves_total`] when it was written.
    #[serde(default)]
    pub moves_total: u64,
    /// The newest 1-minute moves (at most [`MOVE_TAIL_MAX`], oldest
    /// first): those since the checkpoint complete its moves on a restore,
    /// so a crash loses only the minutes since the last progress record.
    /// Empty in records written before it existed (the checkpoint's moves
    /// alone are restored then).
    #[serde(default)]
    pub recent_moves: Vec<f64>,
}

/// What to write for the current state.
#[derive(Debug, Clone, PartialEq)]
pub struct RegimeSave {
    /// A new checkpoint, when one is due.
    pub checkpoint: Option<WindowCheckpoint>,
    /// The progress record (always).
    pub progress: RegimeProgress,
}

impl RegimeSave {
    /// `total` of the checkpoint the progress continues (durable once
    /// this save is committed).
    #[must_use]
    pub fn checkpoint_total(&self) -> u64 {
        self.progress.checkpoint_total
    }
}

/// What to persist for `history` and `detector`, given the `total` of the
/// newest durable checkpoint (`None` when there is none): the progress
/// record, plus a new checkpoint when the tail would exceed [`TAIL_MAX`]
/// or no longer fits in the window.
#[must_use]
pub fn save(
    history: &MarketHistory,
    detector: &RegimeDetector,
    checkpoint_total: Option<u64>,
) -> RegimeSave {
    let total = history.returns_5m_total();
    let window = history.returns_5m();
    let since = checkpoint_total
        .and_then(|c| total.checked_sub(c))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= TAIL_MAX && n <= window.len());
    let (checkpoint, checkpoint_total, tail) = match since {
        Some(n) => (None, total - n as u64, window[window.len() - n..].to_vec()),
        None => (
            Some(WindowCheckpoint {
                total,
                returns: window.to_vec(),
                moves: history.moves().to_vec(),
                moves_total: history.moves_total(),
            }),
            total,
            Vec::new(),
        ),
    };
    RegimeSave {
        checkpoint,
        progress: RegimeProgress {
            version: REGIME_STATE_VERSION,
            checkpoint_total,
            tail,
            bars: history.regime_bars(),
            detector: detector.clone(),
            moves_total: history.moves_total(),
            recent_moves: {
                let moves = history.moves();
                moves[moves.len().saturating_sub(MOVE_TAIL_MAX)..].to_vec()
            },
        },
    }
}

/// Rebuilds the history's 5-minute side and the detector from a stored
/// checkpoint and progress, for the (validated) `config` in force. The
/// detector comes back without an operator override: the runtime keeps
/// that in its own book.
///
/// # Errors
/// [`RestoreError`] when the records do not fit together or do not fit
/// `config`; nothing is restored then.
pub fn restore(
    config: &HealingConfig,
    checkpoint: &WindowCheckpoint,
    progress: RegimeProgress,
) -> Result<(MarketHistory, RegimeDetector), RestoreError> {
    if progress.version != REGIME_STATE_VERSION {
        return Err(RestoreError::Version {
            found: progress.version,
            expected: REGIME_STATE_VERSION,
        });
    }
    let total = progress.bars.returns_total();
    progress.detector.check_restored(&config.regime, total)?;
    let tail_len = progress.tail.len() as u64;
    if checkpoint.total != progress.checkpoint_total
        || progress.tail.len() > TAIL_MAX
        || checkpoint.total.checked_add(tail_len) != Some(total)
    {
        return Err(RestoreError::Inconsistent {
            what: "checkpoint and progress",
        });
    }
    if checkpoint.returns.len() > config.regime.window {
        return Err(RestoreError::Inconsistent {
            what: "checkpoint longer than the window",
        });
    }
    let mut window = checkpoint.returns.clone();
    window.extend_from_slice(&progress.tail);
    let keep = window.len().saturating_sub(config.regime.window);
    let (moves, moves_total) = restored_moves(checkpoint, &progress)?;
    let history = MarketHistory::with_regime_bars(config, progress.bars, &window[keep..])?
        .with_moves(&moves, moves_total)?;
    let mut detector = progress.detector;
    detector.clear_override();
    Ok((history, detector))
}

/// The checkpoint's moves followed by those the progress record saw
/// since, and the move count they end at. Moves the progress record no
/// longer holds (more than [`MOVE_TAIL_MAX`] since the checkpoint, which
/// the checkpoint schedule rules out) are left out: the windows are means
/// of moves, and a few missing minutes barely change them.
///
/// # Errors
/// A progress record older than its checkpoint.
fn restored_moves(
    checkpoint: &WindowCheckpoint,
    progress: &RegimeProgress,
) -> Result<(Vec<f64>, u64), RestoreError> {
    if progress.moves_total == 0 && progress.recent_moves.is_empty() {
        // Written before the progress record carried moves.
        return Ok((checkpoint.moves.clone(), checkpoint.moves_total));
    }
    let since = progress
        .moves_total
        .checked_sub(checkpoint.moves_total)
        .ok_or(RestoreError::Inconsistent {
            what: "progress moves older than the checkpoint",
        })?;
    let new = usize::try_from(since).map_or(progress.recent_moves.len(), |n| {
        n.min(progress.recent_moves.len())
    });
    let mut moves = checkpoint.moves.clone();
    moves.extend_from_slice(&progress.recent_moves[progress.recent_moves.len() - new..]);
    Ok((moves, progress.moves_total))
}

#[cfg(test)]
#[path = "regime_persist_tests.rs"]
mod tests;
