//! Crash points, shared by the services: named moments in the middle of a
//! multi-step write where a crash is most likely to leave two systems
//! disagreeing. A fault test arms one with `--crash-at POINT[:NTH]`
//! (`HEALGRID_CRASH_AT`), and the process sends itself SIGKILL the `NTH`
//! time it gets there: exactly `kill -9` at that instant, with no
//! destructor, flush or shutdown running. A restart must then find a
//! consistent state.
//!
//! Each service names its own points (a small enum whose names it passes
//! here); this module holds the one rule for parsing, arming and firing.
//! Unarmed, the default and the only sane setting with real money, a point
//! costs one read of a `OnceLock`.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Which point to crash at, and on which time it is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashAt {
    /// The point's name.
    pub point: &'static str,
    /// The time it is reached that crashes (1 = the first).
    pub nth: u32,
}

/// A `--crash-at` value that names no point of the service, or no count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CrashAtError(String);

impl CrashAt {
    /// Parses `POINT` or `POINT:NTH` (NTH from 1), `POINT` one of `points`.
    ///
    /// # Errors
    /// An unknown point (the message lists the known ones) or a count that
    /// is not a number from 1.
    pub fn parse(s: &str, points: &[&'static str]) -> Result<Self, CrashAtError> {
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
        let point = points.iter().copied().find(|p| *p == name).ok_or_else(|| {
            CrashAtError(format!(
                "unknown crash point `{name}` (one of: {})",
                points.join(", ")
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

/// A service's crash points: a small enum listing them all, each with its
/// command-line name.
pub trait Point: Copy + 'static {
    /// Every point.
    const ALL: &'static [Self];
    /// Its name on the command line.
    fn name(self) -> &'static str;
}

/// Parses `--crash-at` against the points of `P` (a clap value parser).
///
/// # Errors
/// An unknown point or a bad count, with a message naming `P`'s points.
pub fn parse_for<P: Point>(s: &str) -> Result<CrashAt, CrashAtError> {
    let names: Vec<&'static str> = P::ALL.iter().map(|p| p.name()).collect();
    CrashAt::parse(s, &names)
}

/// [`reached`] for a point of a service's enum.
pub fn reached_at<P: Point>(point: P) {
    reached(point.name());
}

/// The armed point and how often it was reached.
struct Armed {
    at: CrashAt,
    hits: AtomicU32,
}

static ARMED: OnceLock<Armed> = OnceLock::new();

/// Arms `at` for the life of the process and warns loudly; false when a
/// point was armed already (the first one stays).
pub fn arm(at: CrashAt) -> bool {
    let armed = ARMED
        .set(Armed {
            at,
            hits: AtomicU32::new(0),
        })
        .is_ok();
    if armed {
        tracing::warn!(crash_at = %at,
            "CRASH POINT ARMED: this process kills itself when it reaches it (fault tests only)");
    }
    armed
}

/// Marks `point` as reached: the process kills itself with SIGKILL when it
/// is the armed point's `nth` time; otherwise nothing happens.
pub fn reached(point: &'static str) {
    let Some(armed) = ARMED.get() else {
        return;
    };
    if armed.at.point != point {
        return;
    }
    let n = armed.hits.fetch_add(1, Ordering::SeqCst) + 1;
    if n == armed.at.nth {
        // stderr is unbuffered: the line is out before the signal lands.
        tracing::error!(
            point,
            nth = n,
            "crash point reached: the process kills itself (SIGKILL)"
        );
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

    const POINTS: [&str; 2] = ["exit-cancelled", "batch-appended"];

    /// Proves: a point parses with and without a count, and back from its
    /// own display.
    #[test]
    fn points_parse_with_and_without_a_count() {
        for p in POINTS {
            assert_eq!(CrashAt::parse(p, &POINTS), Ok(CrashAt { point: p, nth: 1 }));
            let at = CrashAt::parse(&format!("{p}:3"), &POINTS).unwrap();
            assert_eq!(at, CrashAt { point: p, nth: 3 });
            assert_eq!(CrashAt::parse(&at.to_string(), &POINTS), Ok(at));
        }
    }

    /// Proves: an unknown point or a count that is not 1 or more is refused
    /// with a message naming what is wrong and the known points.
    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let e = CrashAt::parse("exit-canceled", &POINTS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown crash point `exit-canceled`"), "{e}");
        assert!(e.contains("exit-cancelled, batch-appended"), "{e}");
        for bad in [
            "exit-cancelled:0",
            "exit-cancelled:-1",
            "exit-cancelled:x",
            "",
        ] {
            assert!(CrashAt::parse(bad, &POINTS).is_err(), "{bad}");
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Service {
        Written,
        Committed,
    }

    impl Point for Service {
        const ALL: &'static [Self] = &[Self::Written, Self::Committed];
        fn name(self) -> &'static str {
            match self {
                Self::Written => "written",
                Self::Committed => "committed",
            }
        }
    }

    /// Proves: a service's points parse by their names, and another name
    /// is refused listing the service's own.
    #[test]
    fn a_services_points_parse_by_name() {
        for p in Service::ALL {
            assert_eq!(
                parse_for::<Service>(p.name()).map(|a| a.point),
                Ok(p.name())
            );
        }
        let e = parse_for::<Service>("exit-sending")
            .unwrap_err()
            .to_string();
        assert!(e.contains("one of: written, committed"), "{e}");
        reached_at(Service::Written);
    }

    /// Proves: reaching a point while nothing is armed does nothing (the
    /// test process lives on); an armed point is driven by the fault
    /// suite, where the kill can be watched from outside.
    #[test]
    fn unarmed_points_do_nothing() {
        for p in POINTS {
            reached(p);
        }
    }
}
