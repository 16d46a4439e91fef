//! Market sources: where candles come from when the exchange is simulated.
//!
//! A CSV replay reproduces recorded history; a seeded synthetic generator
//! produces endless, reproducible paths that alternate ranging and trending
//! stretches, so grid exits really get stuck in a trend and heal when the
//! market ranges again. The generator uses only decimal arithmetic and an
//! integer RNG, so a seed yields the same path on every platform.

use std::io::{BufRead, Write};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::{Decimal, RoundingStrategy};
use thiserror::Error;

use crate::pair::Candle;

/// Why a market source could not produce a candle.
#[derive(Debug, Error)]
pub enum MarketError {
    /// The CSV file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV row is malformed; `line` is 1-based.
    #[error("line {line}: {reason}")]
    BadRow {
        /// 1-based line number in the file.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The window asked of a replay does not exist.
    #[error("replay window: {0}")]
    Window(String),
}

/// A stream of candles, oldest first.
pub trait MarketSource: Send {
    /// The next candle, or `None` when the source is exhausted.
    fn next_candle(&mut self) -> Result<Option<Candle>, MarketError>;
}

/// Replays candles parsed from CSV `time,open,high,low,close,volume`
/// (unix seconds); a header line is allowed.
#[derive(Debug, Clone)]
pub struct CsvReplay {
    candles: Vec<Candle>,
    pos: usize,
}

impl CsvReplay {
    /// Loads and validates a whole file up front, so a bad row is reported
    /// before the run starts rather than in the middle of it.
    pub fn from_path(path: &Path) -> Result<Self, MarketError> {
        let file = std::fs::File::open(path).map_err(|source| MarketError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_reader(std::io::BufReader::new(file), &path.display().to_string())
    }

    /// Parses CSV from any reader; `name` is used in I/O error messages.
    pub fn from_reader(reader: impl BufRead, name: &str) -> Result<Self, MarketError> {
        let mut candles: Vec<Candle> = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let line_no = i + 1;
            let line = line.map_err(|source| MarketError::Io {
                path: name.to_owned(),
                source,
            })?;
            let trimmed = line.trim();
            if trimmed.is_empty() || (line_no == 1 && trimmed.starts_with("time")) {
                continue;
            }
            let candle = parse_row(trimmed).map_err(|reason| MarketError::BadRow {
                line: line_no,
                reason,
            })?;
            if let Some(prev) = candles.last()
                && candle.time <= prev.time
            {
                return Err(MarketError::BadRow {
                    line: line_no,
                    reason: format!(
                        "time {} does not increase (previous row is {})",
                        candle.time, prev.time
                    ),
                });
            }
            candles.push(candle);
        }
        Ok(Self { candles, pos: 0 })
    }

    /// Number of candles loaded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.candles.len()
    }

    /// True when the file held no candles.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.candles.is_empty()
    }

    /// Keeps only a window of the history: the candles after the first
    /// `skip`, up to (not including) the first one opening `span_secs` or
    /// more after the first kept; `None` keeps the rest. Lets a long file
    /// serve many short replays, each from its own stretch of history.
    ///
    /// # Errors
    /// [`MarketError::Window`] when `skip` leaves no candle or the span is
    /// not positive: the window asked for does not exist.
    pub fn window(mut self, skip: usize, span_secs: Option<i64>) -> Result<Self, MarketError> {
        if skip >= self.candles.len() {
            return Err(MarketError::Window(format!(
                "skipping {skip} candles leaves none of {}",
                self.candles.len()
            )));
        }
        if let Some(span) = span_secs
            && span <= 0
        {
            return Err(MarketError::Window(format!(
                "span {span} s is not positive"
            )));
        }
        self.candles.drain(..skip);
        if let Some(span) = span_secs {
            let end = self.candles[0].time.saturating_add(span);
            self.candles.retain(|c| c.time < end);
        }
        self.pos = 0;
        Ok(self)
    }

    /// The candle length: the smallest gap between consecutive candles, or
    /// `None` with fewer than two. Saturating: times are only checked to
    /// increase, so two far apart may differ by more than an `i64`.
    #[must_use]
    pub fn interval_secs(&self) -> Option<i64> {
        self.candles
            .windows(2)
            .map(|w| w[1].time.saturating_sub(w[0].time))
            .min()
    }
}

fn parse_row(row: &str) -> Result<Candle, String> {
    let fields: Vec<&str> = row.split(',').map(str::trim).collect();
    if fields.len() != 6 {
        return Err(format!(
            "expected 6 fields time,open,high,low,close,volume, found {}",
            fields.len()
        ));
    }
    let time: i64 = fields[0]
        .parse()
        .map_err(|_| format!("time {:?} is not an integer unix timestamp", fields[0]))?;
    let num = |name: &str, s: &str| -> Result<Decimal, String> {
        let lower = s.to_ascii_lowercase();
        if lower.contains("nan") || lower.contains("inf") {
            return Err(format!("{name} {s:?} is not finite"));
        }
        if s.is_empty() {
            return Err(format!("{name} is missing"));
        }
        s.parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(s))
            .map_err(|_| format!("{name} {s:?} is not a number"))
    };
    let c = Candle {
        time,
        open: num("open", fields[1])?,
        high: num("high", fields[2])?,
        low: num("low", fields[3])?,
        close: num("close", fields[4])?,
        volume: num("volume", fields[5])?,
    };
    if c.high < c.low {
        return Err(format!("high {} < low {}", c.high, c.low));
    }
    if c.open < c.low || c.open > c.high || c.close < c.low || c.close > c.high {
        return Err(format!(
            "open {} / close {} outside [low {}, high {}]",
            c.open, c.close, c.low, c.high
        ));
    }
    if c.low <= Decimal::ZERO || c.volume < Decimal::ZERO {
        return Err("prices must be positive and volume non-negative".into());
    }
    Ok(c)
}

impl MarketSource for CsvReplay {
    fn next_candle(&mut self) -> Result<Option<Candle>, MarketError> {
        let c = self.candles.get(self.pos).copied();
        self.pos += usize::from(c.is_some());
        Ok(c)
    }
}

/// Parameters of the synthetic generator. Defaults resemble a DOGE/USD
/// 1-minute market: about 0.15 % standard deviation per minute, ranging
/// stretches of 6–48 h and trends of 2–12 h moving roughly 1 % per hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticConfig {
    /// RNG seed: same seed, same path.
    pub seed: u64,
    /// First candle's open time, unix seconds.
    pub start_time: i64,
    /// Candle length in seconds.
    pub interval_secs: i64,
    /// Opening price.
    pub start_price: Decimal,
    /// Prices are rounded to this many decimals (the pair's tick).
    pub price_decimals: u32,
    /// Standard deviation of one candle's return (0.0015 = 0.15 %).
    pub sigma_per_candle: Decimal,
    /// Absolute drift per candle while trending (0.00015 = 0.015 %).
    pub trend_drift_per_candle: Decimal,
    /// Fraction of the distance to the range anchor recovered per candle.
    pub mean_reversion: Decimal,
    /// Ranging stretch length bounds, in candles.
    pub ranging_candles: (u32, u32),
    /// Trending stretch length bounds, in candles.
    pub trending_candles: (u32, u32),
    /// Typical base volume per candle.
    pub base_volume: Decimal,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            start_time: 1_700_000_040,
            interval_secs: 60,
            start_price: Decimal::new(1, 1),
            price_decimals: 7,
            sigma_per_candle: Decimal::new(15, 4),
            trend_drift_per_candle: Decimal::new(15, 5),
            mean_reversion: Decimal::new(2, 2),
            ranging_candles: (360, 2880),
            trending_candles: (120, 720),
            base_volume: Decimal::new(200_000, 0),
        }
    }
}

/// The market regime the generator is currently in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    /// Mean-reverting around an anchor price.
    Ranging,
    /// Drifting up.
    TrendUp,
    /// Drifting down.
    TrendDown,
}

/// Seeded generator alternating ranging and trending stretches.
#[derive(Debug, Clone)]
pub struct SyntheticMarket {
    cfg: SyntheticConfig,
    rng: ChaCha8Rng,
    price: Decimal,
    anchor: Decimal,
    home: Decimal,
    regime: Regime,
    left: u32,
    time: i64,
}

/// Sub-steps per candle used to shape high and low.
const SUBSTEPS: u32 = 4;
/// Decimals kept on the internal (unrounded) price.
const INTERNAL_DECIMALS: u32 = 12;

impl SyntheticMarket {
    /// A generator starting in a ranging stretch at `start_price`.
    #[must_use]
    pub fn new(cfg: SyntheticConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let left = rng
            .random_range(cfg.ranging_candles.0..=cfg.ranging_candles.1.max(cfg.ranging_candles.0));
        Self {
            price: cfg.start_price,
            anchor: cfg.start_price,
            home: cfg.start_price,
            time: cfg.start_time,
            regime: Regime::Ranging,
            left,
            rng,
            cfg,
        }
    }

    /// The regime the next candle will be drawn from.
    #[must_use]
    pub fn regime(&self) -> Regime {
        self.regime
    }

    /// Approximately standard-normal draw (Irwin–Hall: sum of 12 uniforms
    /// minus 6) in integer micro-units, so it is exact and portable.
    fn normal(&mut self) -> Decimal {
        let sum: i64 = (0..12)
            .map(|_| self.rng.random_range(0..1_000_000i64))
            .sum();
        Decimal::new(sum - 6_000_000, 6)
    }

    fn switch_regime(&mut self) {
        let (lo, hi) = match self.regime {
            Regime::Ranging => {
                // Trend away, but lean back towards home so the path neither
                // explodes nor decays over long runs.
                let p_up = if self.price > self.home { 35 } else { 65 };
                self.regime = if self.rng.random_range(0..100) < p_up {
                    Regime::TrendUp
                } else {
                    Regime::TrendDown
                };
                self.cfg.trending_candles
            }
            Regime::TrendUp | Regime::TrendDown => {
                self.regime = Regime::Ranging;
                self.anchor = self.price;
                self.cfg.ranging_candles
            }
        };
        self.left = self.rng.random_range(lo..=hi.max(lo));
    }

    fn round(&self, p: Decimal) -> Decimal {
        p.round_dp_with_strategy(
            self.cfg.price_decimals,
            RoundingStrategy::MidpointAwayFromZero,
        )
    }
}

impl MarketSource for SyntheticMarket {
    fn next_candle(&mut self) -> Result<Option<Candle>, MarketError> {
        if self.left == 0 {
            self.switch_regime();
        }
        self.left -= 1;
        let sub = Decimal::from(SUBSTEPS);
        // sigma per sub-step = sigma / sqrt(4) = sigma / 2.
        let sub_sigma = self.cfg.sigma_per_candle / Decimal::TWO;
        let drift = match self.regime {
            Regime::Ranging => Decimal::ZERO,
            Regime::TrendUp => self.cfg.trend_drift_per_candle / sub,
            Regime::TrendDown => -self.cfg.trend_drift_per_candle / sub,
        };
        let open = self.round(self.price);
        let (mut high, mut low) = (open, open);
        let mut moved = Decimal::ZERO;
        for _ in 0..SUBSTEPS {
            let z = self.normal();
            moved += z.abs();
            let reversion = if self.regime == Regime::Ranging {
                self.cfg.mean_reversion / sub * (self.anchor - self.price) / self.price
            } else {
                Decimal::ZERO
            };
            let ret =
                (drift + reversion + sub_sigma * z).clamp(Decimal::new(-5, 2), Decimal::new(5, 2));
            self.price = (self.price * (Decimal::ONE + ret)).round_dp(INTERNAL_DECIMALS);
            let p = self.round(self.price);
            high = high.max(p);
            low = low.min(p);
        }
        let tick = Decimal::new(1, self.cfg.price_decimals);
        if low <= Decimal::ZERO {
            low = tick;
            self.price = self.price.max(tick);
        }
        let close = self.round(self.price).max(tick);
        let volume = (self.cfg.base_volume * (Decimal::new(5, 1) + moved / sub)).round_dp(8);
        let candle = Candle {
            time: self.time,
            open,
            high: high.max(close),
            low: low.min(close),
            close,
            volume,
        };
        self.time += self.cfg.interval_secs;
        Ok(Some(candle))
    }
}

/// Writes up to `limit` candles of `source` as CSV with the header
/// [`CsvReplay`] reads, so a synthetic path can be saved once and replayed
/// by the backtest or the simulator like recorded history. Returns how many
/// rows were written (fewer than `limit` when the source ends).
///
/// # Errors
/// [`MarketError`] from the source, or [`MarketError::Io`] naming `name`
/// when writing fails.
pub fn write_csv(
    source: &mut dyn MarketSource,
    limit: usize,
    mut out: impl Write,
    name: &str,
) -> Result<usize, MarketError> {
    let io = |source| MarketError::Io {
        path: name.to_owned(),
        source,
    };
    writeln!(out, "time,open,high,low,close,volume").map_err(io)?;
    let mut written = 0;
    while written < limit {
        let Some(c) = source.next_candle()? else {
            break;
        };
        writeln!(
            out,
            "{},{},{},{},{},{}",
            c.time, c.open, c.high, c.low, c.close, c.volume
        )
        .map_err(io)?;
        written += 1;
    }
    out.flush().map_err(io)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: candles at the two ends of the `i64` range (an overflow
    /// panic in the `candles_csv` fuzz target, whose seed corpus keeps this
    /// file) load and report their interval without a panic.
    #[test]
    fn interval_of_extreme_times_saturates() {
        let csv = "-9000000000000000000,1,1,1,1,1\n9000000000000000000,1,1,1,1,1\n";
        let r = CsvReplay::from_reader(csv.as_bytes(), "t").unwrap();
        assert_eq!(r.interval_secs(), Some(i64::MAX));
    }

    #[test]
    fn a_window_keeps_the_stretch_asked_for() {
        // Minutes 0..10 with minute 3 missing (a gap, as real files have).
        let csv: String = (0..10)
            .filter(|m| *m != 3)
            .map(|m| format!("{},1,2,0.5,1.5,1\n", m * 60))
            .collect();
        let all = || CsvReplay::from_reader(csv.as_bytes(), "t").unwrap();
        let times = |mut r: CsvReplay| {
            std::iter::from_fn(|| r.next_candle().unwrap())
                .map(|c| c.time)
                .collect::<Vec<_>>()
        };
        // Skip two candles (minutes 0 and 1); keep 3 minutes of history from
        // minute 2: minute 3 is missing, so two candles.
        assert_eq!(times(all().window(2, Some(180)).unwrap()), [120, 240]);
        assert_eq!(times(all().window(8, None).unwrap()), [540]);
        assert_eq!(times(all().window(0, Some(61)).unwrap()), [0, 60]);
        for (skip, span, needle) in [
            (9, None, "leaves none of 9"),
            (0, Some(0), "not positive"),
            (0, Some(-60), "not positive"),
        ] {
            let err = all().window(skip, span).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn csv_parses_with_header_and_rejects_bad_rows_by_line() {
        let ok = "time,open,high,low,close,volume\n60,1,2,0.5,1.5,10\n120,1.5,1.6,1.4,1.4,3\n";
        let mut r = CsvReplay::from_reader(ok.as_bytes(), "t").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.interval_secs(), Some(60));
        assert_eq!(r.next_candle().unwrap().unwrap().time, 60);
        assert_eq!(r.next_candle().unwrap().unwrap().time, 120);
        assert!(r.next_candle().unwrap().is_none());

        let cases = [
            ("60,1,2,0.5,1.5\n", 1, "expected 6 fields"),
            ("60,1,2,0.5,1.5,10\n120,1,NaN,0.5,1,1\n", 2, "not finite"),
            ("60,1,2,0.5,1.5,10\n120,1,inf,0.5,1,1\n", 2, "not finite"),
            ("60,1,0.4,0.5,0.45,10\n", 1, "high 0.4 < low 0.5"),
            (
                "60,1,2,0.5,1.5,10\n30,1,2,0.5,1.5,10\n",
                2,
                "does not increase",
            ),
            (
                "time,open,high,low,close,volume\n60,1,2,,1.5,10\n",
                2,
                "low is missing",
            ),
            ("x,1,2,0.5,1.5,10\n", 1, "not an integer"),
        ];
        for (csv, line, needle) in cases {
            match CsvReplay::from_reader(csv.as_bytes(), "t") {
                Err(MarketError::BadRow { line: l, reason }) => {
                    assert_eq!(l, line, "{csv}");
                    assert!(reason.contains(needle), "{reason} should mention {needle}");
                }
                other => panic!("{csv}: expected BadRow, got {other:?}"),
            }
        }
    }

    #[test]
    fn synthetic_is_reproducible_and_well_formed() {
        let cfg = SyntheticConfig::default();
        let mut a = SyntheticMarket::new(cfg.clone());
        let mut b = SyntheticMarket::new(cfg.clone());
        let mut other = SyntheticMarket::new(SyntheticConfig { seed: 7, ..cfg });
        let mut differs = false;
        let mut prev_time = None;
        for _ in 0..5_000 {
            let ca = a.next_candle().unwrap().unwrap();
            let cb = b.next_candle().unwrap().unwrap();
            let co = other.next_candle().unwrap().unwrap();
            assert_eq!(ca, cb);
            differs |= ca != co;
            assert!(ca.low <= ca.open && ca.open <= ca.high);
            assert!(ca.low <= ca.close && ca.close <= ca.high);
            assert!(ca.low > Decimal::ZERO);
            assert!(prev_time.is_none_or(|t| ca.time == t + 60));
            prev_time = Some(ca.time);
        }
        assert!(differs);
    }

    #[test]
    fn synthetic_alternates_regimes_with_realistic_volatility() {
        let mut m = SyntheticMarket::new(SyntheticConfig::default());
        let mut seen_trend = false;
        let mut seen_range_after_trend = false;
        let mut sum_abs_ret = Decimal::ZERO;
        let n = 20_000;
        let mut prev = m.next_candle().unwrap().unwrap().close;
        for _ in 0..n {
            let r = m.regime();
            seen_trend |= r != Regime::Ranging;
            seen_range_after_trend |= seen_trend && r == Regime::Ranging;
            let c = m.next_candle().unwrap().unwrap();
            sum_abs_ret += ((c.close - prev) / prev).abs();
            prev = c.close;
        }
        assert!(seen_trend && seen_range_after_trend);
        let mean_abs = sum_abs_ret / Decimal::from(n);
        // E|N(0, 0.0015)| ~ 0.0012; accept a generous band.
        assert!(
            mean_abs > Decimal::new(5, 4) && mean_abs < Decimal::new(25, 4),
            "mean |1m return| {mean_abs}"
        );
    }

    #[test]
    fn a_written_synthetic_path_replays_candle_for_candle() {
        let cfg = SyntheticConfig::default();
        let mut buf = Vec::new();
        let n = write_csv(&mut SyntheticMarket::new(cfg.clone()), 500, &mut buf, "mem").unwrap();
        assert_eq!(n, 500);
        let mut replay = CsvReplay::from_reader(buf.as_slice(), "mem").unwrap();
        let mut again = SyntheticMarket::new(cfg);
        for _ in 0..500 {
            assert_eq!(replay.next_candle().unwrap(), again.next_candle().unwrap());
        }
        assert!(replay.next_candle().unwrap().is_none());
    }
}
