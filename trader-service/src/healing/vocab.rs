//! The regime vocabulary shared by the detector, the ledger (`entry_regime`),
//! the status API and the CLI.
//!
//! A leaf module on purpose: it imports nothing from its siblings, so any
//! caller can name a regime without pulling in the detector's maths.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Market regime (SPEC §12). `Unknown` whenever the detector is not ready,
/// is stale or its fit failed; it never counts as ranging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// Prices drift down.
    Bearish,
    /// No usable trend: the churner may run.
    Ranging,
    /// Prices drift up.
    Bullish,
    /// Not enough (or not fresh enough) information to say.
    Unknown,
}

impl Regime {
    /// Every value, in display order.
    pub const ALL: [Regime; 4] = [
        Regime::Bearish,
        Regime::Ranging,
        Regime::Bullish,
        Regime::Unknown,
    ];

    /// The wire / storage spelling: `bearish|ranging|bullish|unknown`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Regime::Bearish => "bearish",
            Regime::Ranging => "ranging",
            Regime::Bullish => "bullish",
            Regime::Unknown => "unknown",
        }
    }

    /// True only for a known ranging market (unknown is never ranging).
    #[must_use]
    pub const fn is_ranging(self) -> bool {
        matches!(self, Regime::Ranging)
    }

    /// True for every label except `Unknown`.
    #[must_use]
    pub const fn is_known(self) -> bool {
        !matches!(self, Regime::Unknown)
    }
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the four regime names.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown regime {given:?}: expected one of bearish, ranging, bullish, unknown")]
pub struct ParseRegimeError {
    /// The rejected input.
    pub given: String,
}

impl FromStr for Regime {
    type Err = ParseRegimeError;

    /// Parses the [`Regime::as_str`] spelling, ignoring ASCII case and
    /// surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Regime::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| ParseRegimeError { given: s.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_rejected() {
        for r in Regime::ALL {
            assert_eq!(r.as_str().parse::<Regime>(), Ok(r));
            assert_eq!(r.to_string(), r.as_str());
            let json = serde_json::to_string(&r).expect("serialize");
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
        assert_eq!(" Bullish ".parse::<Regime>(), Ok(Regime::Bullish));
        let err = "sideways".parse::<Regime>().expect_err("not a regime");
        assert_eq!(err.given, "sideways");
        assert!(err.to_string().contains("sideways"));
        assert!("".parse::<Regime>().is_err());
    }

    #[test]
    fn unknown_is_never_ranging() {
        assert!(Regime::Ranging.is_ranging());
        for r in [Regime::Bearish, Regime::Bullish, Regime::Unknown] {
            assert!(!r.is_ranging(), "{r}");
        }
        assert!(!Regime::Unknown.is_known());
    }
}
