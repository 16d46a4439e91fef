//! What a clear answer to a hostile gRPC request is, for the generated
//! hostile-input suites of every service.

use std::fmt;

use tonic::{Code, Status};

/// Codes a refusal may carry: each names a cause the caller can act on.
pub const REFUSALS: [Code; 5] = [
    Code::InvalidArgument,
    Code::NotFound,
    Code::FailedPrecondition,
    Code::OutOfRange,
    Code::ResourceExhausted,
];

/// Judges one answer to a malformed request: a write must be refused, a
/// read may also answer; a refusal must carry one of [`REFUSALS`] and a
/// message (never INTERNAL, UNKNOWN, UNAVAILABLE or a bare code).
///
/// # Errors
/// Why the answer is not acceptable.
pub fn judge(is_read: bool, answer: &Result<(), Status>) -> Result<(), String> {
    match answer {
        Ok(()) if is_read => Ok(()),
        Ok(()) => Err("a malformed write was accepted".into()),
        Err(s) if REFUSALS.contains(&s.code()) && !s.message().is_empty() => Ok(()),
        Err(s) => Err(format!("unclear status {:?}: {:?}", s.code(), s.message())),
    }
}

/// A generated request whose Debug output is cut short, so a failing case
/// with a 1 MB string still reads in a test log.
#[derive(Clone)]
pub struct Clipped<T>(pub T);

impl<T: fmt::Debug> fmt::Debug for Clipped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = format!("{:?}", self.0);
        let cut: String = full.chars().take(1_500).collect();
        f.write_str(&cut)
    }
}

/// Texts that are no decimal amount to any parser of healgrid (the wire
/// decimals of the ledger, the operator amounts of the trader): NaN and
/// infinities, exponents past every range, grouping, non-ASCII digits and
/// more digits than a 96-bit decimal holds.
pub const JUNK_DECIMALS: [&str; 13] = [
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e30",
    "0,8",
    "1.2.3",
    "--1",
    "0x10",
    "１",
    "٣",
    "99999999999999999999999999999999999",
];
