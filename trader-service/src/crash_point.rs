//! The trader's crash points (see [`healgrid_proto::crash`]): the moments
//! where a crash is most likely to leave the exchange, the trader's store
//! and the ledger disagreeing (the exchange has cancelled an exit the store
//! still holds, a fill is known in memory only, an operator's answer is
//! stored but never sent). The fault suite arms one with `--crash-at`.
//! This module is a leaf: it imports nothing of its siblings.

use std::fmt;

pub use healgrid_proto::crash::{CrashAt, CrashAtError};

/// A moment where the trader may be made to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The exchange confirmed the cancel of a slot exit (a reprice, an
    /// operator breakeven or close, a release); its replacement is neither
    /// committed nor sent.
    ExitCancelled,
    /// A slot exit's placement is committed as intended (write-ahead); the
    /// exchange has not heard of it.
    ExitSending,
    /// A churner entry's fill is applied in memory; its exit is neither
    /// committed nor placed.
    ChurnerFilled,
    /// A churner exit's placement is committed as intended; the exchange
    /// has not heard of it.
    ChurnerExitSending,
    /// An operator action is carried out in memory; its answer is not yet
    /// committed.
    OperatorApplied,
    /// An operator action's answer is committed with its effects; the
    /// reply has not left.
    OperatorCommitted,
}

impl CrashPoint {
    /// Every point, in the order an error message lists them.
    pub const ALL: [Self; 6] = [
        Self::ExitCancelled,
        Self::ExitSending,
        Self::ChurnerFilled,
        Self::ChurnerExitSending,
        Self::OperatorApplied,
        Self::OperatorCommitted,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::ExitCancelled => "exit-cancelled",
            Self::ExitSending => "exit-sending",
            Self::ChurnerFilled => "churner-filled",
            Self::ChurnerExitSending => "churner-exit-sending",
            Self::OperatorApplied => "operator-applied",
            Self::OperatorCommitted => "operator-committed",
        }
    }
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `--crash-at` against the trader's points.
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

    /// Proves: every trader point parses from its own name; another
    /// service's point is refused naming the trader's.
    #[test]
    fn every_point_parses_from_its_name() {
        for p in CrashPoint::ALL {
            assert_eq!(parse(p.name()).map(|a| a.point), Ok(p.name()));
        }
        let e = parse("batch-appended").unwrap_err().to_string();
        assert!(e.contains("exit-cancelled"), "{e}");
    }
}
