//! Named crash points: the moments in the middle of a multi-step action
//! where a crash is most likely to leave two systems disagreeing (the
//! exchange has cancelled an exit the store still holds, a fill is known in
//! memory only, an operator's answer is stored but never sent). The fault
//! suite arms one with `--crash-at POINT[:NTH]` (`HEALGRID_CRASH_AT`), and
//! the trader sends itself SIGKILL the `NTH` time it reaches that point:
//! exactly `kill -9` at that instant, with no destructor, flush or shutdown
//! running. A restart must then find a consistent state.
//!
//! Unarmed (the default, and the only sane setting with real money), each
//! point costs one read of a `OnceLock`. Armed, the trader warns loudly at
//! start. This module is a leaf: it imports nothing of its siblings.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

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
    /// Every point, in the order `--help` lists them.
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

/// Which point to crash at, and on which time it is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashAt {
    /// The point.
    pub point: CrashPoint,
    /// The time it is reached that crashes (1 = the first).
    pub nth: u32,
}

/// A `--crash-at` value that names no point or no valid count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CrashAtError(String);

impl FromStr for CrashAt {
    type Err = CrashAtError;

    /// Parses `POINT` or `POINT:NTH` (NTH from 1).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, nth) = match s.split_once(':') {
            Some((name, nth)) => {
                let nth = nth.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    CrashAtError(format!(
                        "`{nth}` is not a count from 1 (expected POINT or POINT:NTH)"
                    ))
                })?;
                (name, nth)
            }
            None => (s, 1),
        };
        let point = CrashPoint::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = CrashPoint::ALL.iter().map(|p| p.name()).collect();
                CrashAtError(format!(
                    "unknown crash point `{name}` (one of: {})",
                    names.join(", ")
                ))
            })?;
        Ok(Self { point, nth })
    }
}

impl fmt::Display for CrashAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.point, self.nth)
    }
}

/// The armed point and how often it was reached.
struct Armed {
    at: CrashAt,
    hits: AtomicU32,
}

static ARMED: OnceLock<Armed> = OnceLock::new();

/// Arms `at` for the life of the process; false when a point was armed
/// already (the first one stays).
pub fn arm(at: CrashAt) -> bool {
    ARMED
        .set(Armed {
            at,
            hits: AtomicU32::new(0),
        })
        .is_ok()
}

/// Marks `point` as reached: the process kills itself with SIGKILL when it
/// is the armed point's `nth` time; otherwise nothing happens.
pub(crate) fn reached(point: CrashPoint) {
    let Some(armed) = ARMED.get() else {
        return;
    };
    if armed.at.point != point {
        return;
    }
    let n = armed.hits.fetch_add(1, Ordering::SeqCst) + 1;
    if n == armed.at.nth {
        // stderr is unbuffered: the line is out before the signal lands.
        tracing::error!(point = %point, nth = n, "crash point reached: the trader kills itself (SIGKILL)");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; should it somehow not have landed, do
        // not carry on past the crash point either.
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: every point parses back from its own name, with and without
    /// a count.
    #[test]
    fn every_point_parses_from_its_name() {
        for p in CrashPoint::ALL {
            assert_eq!(
                p.name().parse::<CrashAt>(),
                Ok(CrashAt { point: p, nth: 1 })
            );
            let at: CrashAt = format!("{p}:3").parse().unwrap();
            assert_eq!(at, CrashAt { point: p, nth: 3 });
            assert_eq!(at.to_string().parse::<CrashAt>(), Ok(at));
        }
    }

    /// Proves: an unknown point or a count that is not 1 or more is refused
    /// with a message naming what is wrong.
    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let e = "exit-canceled".parse::<CrashAt>().unwrap_err().to_string();
        assert!(e.contains("unknown crash point `exit-canceled`"), "{e}");
        assert!(e.contains("exit-cancelled"), "{e}");
        for bad in ["exit-sending:0", "exit-sending:-1", "exit-sending:x", ""] {
            assert!(bad.parse::<CrashAt>().is_err(), "{bad}");
        }
    }

    /// Proves: reaching a point that is not armed does nothing (the test
    /// process lives on); the armed point itself is driven by the fault
    /// suite, where the kill can be observed from outside.
    #[test]
    fn unarmed_points_do_nothing() {
        for p in CrashPoint::ALL {
            reached(p);
        }
    }
}
