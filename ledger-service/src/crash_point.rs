//! The ledger's crash points (see [`healgrid_proto::crash`]): the moments
//! of a group commit where a crash must not lose or double a write. The
//! fault suite arms one with `--crash-at` and SIGKILLs the ledger there;
//! the trader's retries must then land exactly once.

use healgrid_proto::crash::Point;
pub use healgrid_proto::crash::{CrashAt, CrashAtError};

/// A moment where the ledger may be made to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// A batch's journal rows and position updates are written in its
    /// transaction; it is not committed (the writes must vanish).
    BatchAppended,
    /// A batch is committed; no writer has its answer yet (a retry must
    /// be answered from the stored rows, not written again).
    BatchCommitted,
}

impl Point for CrashPoint {
    const ALL: &'static [Self] = &[Self::BatchAppended, Self::BatchCommitted];

    fn name(self) -> &'static str {
        match self {
            Self::BatchAppended => "batch-appended",
            Self::BatchCommitted => "batch-committed",
        }
    }
}

/// Parses `--crash-at` against the ledger's points.
///
/// # Errors
/// An unknown point or a bad count, with a message naming the points.
pub fn parse(s: &str) -> Result<CrashAt, CrashAtError> {
    healgrid_proto::crash::parse_for::<CrashPoint>(s)
}
