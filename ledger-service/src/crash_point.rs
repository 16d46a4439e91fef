//! The ledger's crash points (see [`healgrid_proto::crash`]): the moments
//! of a group commit where a crash must not lose or double a write. The
//! fault suite arms one with `--crash-at` and SIGKILLs the ledger there;
//! the trader's retries must then land exactly once.

use std::fmt;

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

impl CrashPoint {
    /// Every point, in the order an error message lists them.
    pub const ALL: [Self; 2] = [Self::BatchAppended, Self::BatchCommitted];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::BatchAppended => "batch-appended",
            Self::BatchCommitted => "batch-committed",
        }
    }
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `--crash-at` against the ledger's points.
///
/// # Errors
/// An unknown point or a bad count, with a message naming the points.
pub fn parse(s: &str) -> Result<CrashAt, CrashAtError> {
    CrashAt::parse(s, &CrashPoint::ALL.map(CrashPoint::name))
}

/// Marks `point` as reached (the process dies here when it is armed).
pub(crate) fn reached(point: CrashPoint) {
    healgrid_proto::crash::reached(point.name());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: every ledger point parses from its own name; a trader point
    /// is refused naming the ledger's.
    #[test]
    fn every_point_parses_from_its_name() {
        for p in CrashPoint::ALL {
            assert_eq!(parse(p.name()).map(|a| a.point), Ok(p.name()));
        }
        let e = parse("exit-sending").unwrap_err().to_string();
        assert!(e.contains("batch-appended, batch-committed"), "{e}");
    }
}
