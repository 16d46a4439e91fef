//! The trader's crash points (see [`healgrid_proto::crash`]): the moments
//! where a crash is most likely to leave the exchange, the trader's store
//! and the ledger disagreeing (the exchange has cancelled an exit the store
//! still holds, a fill is known in memory only, an operator's answer is
//! stored but never sent). The fault suite arms one with `--crash-at`.
//! This module is a leaf: it imports nothing of its siblings.

use healgrid_proto::crash::Point;
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

impl Point for CrashPoint {
    const ALL: &'static [Self] = &[
        Self::ExitCancelled,
        Self::ExitSending,
        Self::ChurnerFilled,
        Self::ChurnerExitSending,
        Self::OperatorApplied,
        Self::OperatorCommitted,
    ];

    fn name(self) -> &'static str {
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

/// Parses `--crash-at` against the trader's points.
///
/// # Errors
/// An unknown point or a bad count, with a message naming the points.
pub fn parse(s: &str) -> Result<CrashAt, CrashAtError> {
    healgrid_proto::crash::parse_for::<CrashPoint>(s)
}
