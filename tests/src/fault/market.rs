//! The market a rig's simulator plays: real candles replayed fast from a
//! file (`--candles FILE` or `HEALGRID_FAULT_CANDLES`), each rig from its
//! own seeded stretch of history, or the simulator's seeded synthetic
//! market when no file is given.
//!
//! A rig may let the simulated clock run at most a day ahead of the wall
//! clock (the ledger refuses later times), so a replay plays
//! [`REPLAY_HOURS`] of history and then freezes, wherever the round is.
//! The simulator does the windowing itself (`--replay-skip`,
//! `--replay-hours`); this module only reads the file's times to choose
//! where a window starts and how long a step is.

use std::fmt;
use std::path::{Path, PathBuf};

/// Hours of history one rig replays.
pub const REPLAY_HOURS: u32 = 23;

/// The environment variable naming the candle file.
pub const CANDLES_ENV: &str = "HEALGRID_FAULT_CANDLES";

/// Why a candle file cannot drive the suite.
#[derive(Debug, thiserror::Error)]
pub enum MarketFileError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A row's time is not a whole number of seconds.
    #[error("{path}, line {line}: time `{text}` is not an integer")]
    BadTime {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What was there.
        text: String,
    },
    /// The file's history is too short or its times do not increase.
    #[error("{path}: {reason}")]
    Unusable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A candle file (`time,open,high,low,close,volume`, the simulator's
/// format), known by its times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandleFile {
    path: PathBuf,
    /// Open time of each candle, in order.
    times: Vec<i64>,
    /// The candle length: the smallest gap between two candles.
    interval_secs: i64,
}

impl CandleFile {
    /// Reads the file's times (the simulator validates the prices when it
    /// loads it). It must hold more than [`REPLAY_HOURS`] of history.
    ///
    /// # Errors
    /// When the file cannot be read, a time is not an integer, times do
    /// not increase, or the history is too short.
    pub fn open(path: &Path) -> Result<Self, MarketFileError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MarketFileError::Io {
            path: name.clone(),
            source,
        })?;
        let mut times = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let first = line.split(',').next().unwrap_or("").trim();
            if first.is_empty() || (i == 0 && first == "time") {
                continue;
            }
            let t = first.parse::<i64>().map_err(|_| MarketFileError::BadTime {
                path: name.clone(),
                line: i + 1,
                text: first.to_owned(),
            })?;
            times.push(t);
        }
        let unusable = |reason: String| MarketFileError::Unusable {
            path: name.clone(),
            reason,
        };
        if times.windows(2).any(|w| w[1] <= w[0]) {
            return Err(unusable("times do not increase".into()));
        }
        let interval_secs = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .min()
            .ok_or_else(|| unusable("fewer than two candles".into()))?;
        let span = times[times.len() - 1] - times[0];
        if span <= i64::from(REPLAY_HOURS) * 3600 {
            return Err(unusable(format!(
                "{} h of history; the suite replays windows of {REPLAY_HOURS} h",
                span / 3600
            )));
        }
        Ok(Self {
            path: path.to_owned(),
            times,
            interval_secs,
        })
    }

    /// The first candle of a window chosen by `pick` (any number: it is
    /// reduced to a start whose window is whole).
    fn window_start(&self, pick: u64) -> usize {
        let last_open = self.times[self.times.len() - 1] - i64::from(REPLAY_HOURS) * 3600;
        // Starts whose window ends inside the file.
        let starts = self.times.partition_point(|t| *t <= last_open).max(1);
        usize::try_from(pick % starts as u64).unwrap_or(0)
    }
}

/// What the simulator of every rig plays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Market {
    /// The simulator's own seeded synthetic market (one-minute candles).
    #[default]
    Synthetic,
    /// Real candles from a file, a seeded window per rig.
    Replay(CandleFile),
}

impl Market {
    /// The file named by [`CANDLES_ENV`], else synthetic.
    ///
    /// # Errors
    /// When the variable names a file that cannot drive the suite.
    pub fn from_env() -> Result<Self, MarketFileError> {
        match std::env::var_os(CANDLES_ENV) {
            Some(p) if !p.is_empty() => Ok(Self::Replay(CandleFile::open(Path::new(&p))?)),
            _ => Ok(Self::Synthetic),
        }
    }

    /// The simulator's flags for a rig drawing `pick`: none for the
    /// synthetic market (the rig seeds it), or the file and the window the
    /// draw picks.
    pub fn sim_args(&self, pick: u64) -> Vec<String> {
        match self {
            Self::Synthetic => Vec::new(),
            Self::Replay(file) => vec![
                "--market".into(),
                format!("csv:{}", file.path.display()),
                "--replay-skip".into(),
                file.window_start(pick).to_string(),
                "--replay-hours".into(),
                REPLAY_HOURS.to_string(),
            ],
        }
    }

    /// Wall milliseconds per market step, for a pace of `ms_per_minute`
    /// per simulated minute: a step plays one candle, so a five-minute
    /// candle gets five times as long as a one-minute one.
    pub fn step_ms(&self, ms_per_minute: u64) -> u64 {
        match self {
            Self::Synthetic => ms_per_minute,
            Self::Replay(file) => {
                let minutes = u64::try_from(file.interval_secs / 60).unwrap_or(1).max(1);
                ms_per_minute * minutes
            }
        }
    }
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Synthetic => f.write_str("the simulator's synthetic market"),
            Self::Replay(file) => write!(
                f,
                "real candles from {} ({} candles of {} s; {REPLAY_HOURS} h windows)",
                file.path.display(),
                file.times.len(),
                file.interval_secs
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, rows: &str) -> PathBuf {
        let dir = tempfile::tempdir().unwrap().keep();
        let p = dir.join(name);
        std::fs::write(&p, rows).unwrap();
        p
    }

    /// Two days of five-minute candles.
    fn two_days() -> String {
        let mut s = String::from("time,open,high,low,close,volume\n");
        for i in 0..576 {
            s.push_str(&format!("{},1,1,1,1,1\n", 1_700_000_000 + i * 300));
        }
        s
    }

    #[test]
    fn windows_stay_inside_the_file() {
        let f = CandleFile::open(&file("two.csv", &two_days())).unwrap();
        assert_eq!(f.interval_secs, 300);
        let last_start = f.times[575] - 23 * 3600;
        for pick in [0, 1, 299, 300, 301, u64::MAX] {
            let start = f.window_start(pick);
            assert!(f.times[start] <= last_start, "pick {pick}: start {start}");
        }
        let market = Market::Replay(f);
        assert_eq!(market.step_ms(80), 400);
        let args = market.sim_args(7);
        assert_eq!(args[2..], ["--replay-skip", "7", "--replay-hours", "23"]);
        assert_eq!(Market::Synthetic.step_ms(80), 80);
        assert!(Market::Synthetic.sim_args(1234).is_empty());
    }

    #[test]
    fn unusable_files_are_refused_with_the_reason() {
        let cases = [
            ("time,open\n", "fewer than two"),
            ("1,1\n2,1\n", "0 h of history"),
            ("60,1\nx,1\n", "line 2: time `x`"),
            ("120,1\n60,1\n", "do not increase"),
        ];
        for (rows, needle) in cases {
            let err = CandleFile::open(&file("bad.csv", rows))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{rows:?}: {err}");
        }
        let missing = CandleFile::open(Path::new("/nonexistent/c.csv")).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("cannot read /nonexistent/c.csv")
        );
    }
}
