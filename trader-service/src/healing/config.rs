//! Self-healing tunables for the regime detector (SPEC §12) and the profit
//! target in force (SPEC §2, §5), with SPEC §10 semantics: out-of-range
//! values are clamped to safe values and reported as [`ConfigWarning`]s,
//! never a crash. The churner's settings ride along ([`crate::healing::churner::ChurnerConfig`]).

use serde::{Deserialize, Serialize};

use crate::engine::config::ConfigWarning;

/// Everything the healing modules need besides their inputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealingConfig {
    /// Regime detector settings.
    pub regime: RegimeConfig,
    /// Volatility-scaled profit target settings.
    pub target: TargetConfig,
    /// Churner settings (SPEC §6, §10 `CHURNER_*`), clamped by the
    /// configuration layer.
    #[serde(default)]
    pub churner: crate::healing::churner::ChurnerConfig,
    /// Entries held back against a sustained move
    /// ([`crate::healing::trend`]).
    #[serde(default)]
    pub trend: crate::healing::trend::TrendConfig,
}

/// Settings of the 3-state Gaussian HMM regime detector (SPEC §12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeConfig {
    /// `REGIME_WINDOW`: 5-minute returns the model is fitted on (288 = one
    /// day); 48..=4032.
    pub window: usize,
    /// `REGIME_MIN_RETURNS`: returns needed before the first fit (96 = 8 h);
    /// 24..=window.
    pub min_returns: usize,
    /// `REGIME_REFIT_EVERY`: new returns between two Baum-Welch refits (12 =
    /// hourly); 1..=window.
    pub refit_every: usize,
    /// `REGIME_MAX_ITERATIONS`: Baum-Welch iterations of the first (cold)
    /// fit at most (40); 1..=500.
    pub max_iterations: usize,
    /// `REGIME_REFIT_ITERATIONS`: iterations of a warm-started refit at most
    /// (3); 1..=REGIME_MAX_ITERATIONS. Each refit starts where the last one
    /// stopped, so the optimisation continues across refits while the cost
    /// per refit stays small (the backtest budget is < 1 µs per candle).
    pub refit_iterations: usize,
    /// `REGIME_CONFIDENCE`: posterior a label needs to count towards a change
    /// (0.6); 0.51..=0.99 so at most one label can qualify.
    pub confidence: f64,
    /// `REGIME_DWELL`: consecutive qualifying returns before the label
    /// changes (3); 1..=100.
    pub dwell: u32,
    /// `REGIME_TREND_MIN_SHARPE`: a state is a trend only when |mean| is at
    /// least this many of its own standard deviations (0.15); 0..=2.
    pub trend_min_sharpe: f64,
    /// `REGIME_STALE_AFTER_SEC`: with no closed 5-minute bar for this long
    /// the view is `unknown` (1200); >= 300.
    pub stale_after_sec: i64,
}

impl Default for RegimeConfig {
    fn default() -> Self {
        Self {
            window: 288,
            min_returns: 96,
            refit_every: 12,
            max_iterations: 40,
            refit_iterations: 3,
            confidence: 0.6,
            dwell: 3,
            trend_min_sharpe: 0.15,
            stale_after_sec: 1200,
        }
    }
}

/// Windows of the volatility scale of the profit target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetConfig {
    /// `TARGET_RECENT_MINUTES`: 1-minute moves averaged for "recent" (60);
    /// 5..=1440.
    pub recent_minutes: usize,
    /// `TARGET_BASELINE_MINUTES`: 1-minute moves averaged for the long-run
    /// baseline (1440); at least twice `recent_minutes`, at most 10080.
    pub baseline_minutes: usize,
    /// `TARGET_BASELINE_MIN_MINUTES`: moves needed before the scale is used
    /// at all, below it the base target applies (360);
    /// recent_minutes..=baseline_minutes.
    pub baseline_min_minutes: usize,
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            recent_minutes: 60,
            baseline_minutes: 1440,
            baseline_min_minutes: 360,
        }
    }
}

impl HealingConfig {
    /// Clamps every out-of-range value to a safe one and returns the warnings
    /// (SPEC §10: never a crash). Idempotent: validating a validated config
    /// yields no warnings.
    #[must_use]
    pub fn validate(mut self) -> (Self, Vec<ConfigWarning>) {
        let mut w = Vec::new();
        let r = &mut self.regime;
        clamp_usize(
            &mut w,
            "REGIME_WINDOW",
            &mut r.window,
            48,
            4032,
            "48..=4032",
        );
        let window = r.window;
        clamp_usize(
            &mut w,
            "REGIME_MIN_RETURNS",
            &mut r.min_returns,
            24,
            window,
            "24..=REGIME_WINDOW",
        );
        clamp_usize(
            &mut w,
            "REGIME_REFIT_EVERY",
            &mut r.refit_every,
            1,
            window,
            "1..=REGIME_WINDOW",
        );
        clamp_usize(
            &mut w,
            "REGIME_MAX_ITERATIONS",
            &mut r.max_iterations,
            1,
            500,
            "1..=500",
        );
        let max_it = r.max_iterations;
        clamp_usize(
            &mut w,
            "REGIME_REFIT_ITERATIONS",
            &mut r.refit_iterations,
            1,
            max_it,
            "1..=REGIME_MAX_ITERATIONS",
        );
        clamp_f64(
            &mut w,
            "REGIME_CONFIDENCE",
            &mut r.confidence,
            (0.51, 0.99),
            0.6,
            "0.51..=0.99",
        );
        let mut dwell = r.dwell as usize;
        clamp_usize(&mut w, "REGIME_DWELL", &mut dwell, 1, 100, "1..=100");
        r.dwell = u32::try_from(dwell).unwrap_or(3);
        clamp_f64(
            &mut w,
            "REGIME_TREND_MIN_SHARPE",
            &mut r.trend_min_sharpe,
            (0.0, 2.0),
            0.15,
            "0..=2",
        );
        if r.stale_after_sec < 300 {
            push(
                &mut w,
                "REGIME_STALE_AFTER_SEC",
                &mut r.stale_after_sec,
                300,
                ">= 300",
            );
        }
        let t = &mut self.target;
        clamp_usize(
            &mut w,
            "TARGET_RECENT_MINUTES",
            &mut t.recent_minutes,
            5,
            1440,
            "5..=1440",
        );
        let recent = t.recent_minutes;
        clamp_usize(
            &mut w,
            "TARGET_BASELINE_MINUTES",
            &mut t.baseline_minutes,
            2 * recent,
            10_080,
            "2 x TARGET_RECENT_MINUTES..=10080",
        );
        let baseline = t.baseline_minutes;
        clamp_usize(
            &mut w,
            "TARGET_BASELINE_MIN_MINUTES",
            &mut t.baseline_min_minutes,
            recent,
            baseline,
            "TARGET_RECENT_MINUTES..=TARGET_BASELINE_MINUTES",
        );
        let tr = &mut self.trend;
        if tr.hold_er == 0.0 {
            // Off: the window is never read, so following a smaller
            // REGIME_WINDOW is not worth a warning.
            tr.window = tr.window.clamp(12, window);
        } else {
            clamp_usize(
                &mut w,
                "HEAL_TREND_WINDOW",
                &mut tr.window,
                12,
                window,
                "12..=REGIME_WINDOW",
            );
            clamp_f64(
                &mut w,
                "HEAL_TREND_HOLD_ER",
                &mut tr.hold_er,
                (0.01, 1.0),
                0.0,
                "0 (off) or 0.01..=1",
            );
        }
        let hold = tr.hold_er;
        clamp_f64(
            &mut w,
            "HEAL_TREND_RESUME_ER",
            &mut tr.resume_er,
            (0.0, hold),
            hold,
            "0..=HEAL_TREND_HOLD_ER",
        );
        (self, w)
    }
}

fn push<T: ToString>(
    w: &mut Vec<ConfigWarning>,
    field: &'static str,
    v: &mut T,
    used: T,
    rule: &'static str,
) {
    w.push(ConfigWarning {
        field,
        given: v.to_string(),
        used: used.to_string(),
        rule,
    });
    *v = used;
}

fn clamp_usize(
    w: &mut Vec<ConfigWarning>,
    field: &'static str,
    v: &mut usize,
    min: usize,
    max: usize,
    rule: &'static str,
) {
    let c = (*v).clamp(min, max);
    if c != *v {
        push(w, field, v, c, rule);
    }
}

/// Clamps a finite value into `range`; a non-finite one takes `default`.
fn clamp_f64(
    w: &mut Vec<ConfigWarning>,
    field: &'static str,
    v: &mut f64,
    range: (f64, f64),
    default: f64,
    rule: &'static str,
) {
    let c = if v.is_finite() {
        v.clamp(range.0, range.1)
    } else {
        default
    };
    if c.to_bits() != v.to_bits() {
        push(w, field, v, c, rule);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(w: &[ConfigWarning]) -> Vec<&'static str> {
        w.iter().map(|w| w.field).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let (c, w) = HealingConfig::default().validate();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c, HealingConfig::default());
    }

    #[test]
    fn every_regime_setting_is_clamped_with_a_warning() {
        let c = HealingConfig {
            regime: RegimeConfig {
                window: 10,
                min_returns: 1000,
                refit_every: 0,
                max_iterations: 0,
                refit_iterations: 0,
                confidence: 0.4,
                dwell: 0,
                trend_min_sharpe: -1.0,
                stale_after_sec: 10,
            },
            ..HealingConfig::default()
        };
        let (v, w) = c.validate();
        assert_eq!(
            fields(&w),
            [
                "REGIME_WINDOW",
                "REGIME_MIN_RETURNS",
                "REGIME_REFIT_EVERY",
                "REGIME_MAX_ITERATIONS",
                "REGIME_REFIT_ITERATIONS",
                "REGIME_CONFIDENCE",
                "REGIME_DWELL",
                "REGIME_TREND_MIN_SHARPE",
                "REGIME_STALE_AFTER_SEC",
            ]
        );
        let r = &v.regime;
        assert_eq!(r.window, 48);
        assert_eq!(r.min_returns, 48, "min_returns never exceeds the window");
        assert_eq!(r.refit_every, 1);
        assert_eq!(r.max_iterations, 1);
        assert_eq!(r.refit_iterations, 1);
        assert!((r.confidence - 0.51).abs() < 1e-12);
        assert_eq!(r.dwell, 1);
        assert!(r.trend_min_sharpe.abs() < 1e-12);
        assert_eq!(r.stale_after_sec, 300);
        assert_eq!(w[0].given, "10");
        assert_eq!(w[0].used, "48");
        let (again, w2) = v.clone().validate();
        assert!(w2.is_empty(), "{w2:?}");
        assert_eq!(again, v);
    }

    #[test]
    fn the_trend_hold_settings_are_clamped_with_a_warning() {
        let mut c = HealingConfig::default();
        c.trend.window = 5000;
        c.trend.hold_er = 3.0;
        c.trend.resume_er = 2.0;
        let (v, w) = c.validate();
        assert_eq!(
            fields(&w),
            [
                "HEAL_TREND_WINDOW",
                "HEAL_TREND_HOLD_ER",
                "HEAL_TREND_RESUME_ER"
            ]
        );
        assert_eq!(v.trend.window, 288, "at most REGIME_WINDOW");
        assert!((v.trend.hold_er - 1.0).abs() < 1e-12);
        assert!((v.trend.resume_er - 1.0).abs() < 1e-12, "at most the hold");
        let mut c = HealingConfig::default();
        c.trend.hold_er = f64::NAN;
        let (v, w) = c.validate();
        assert_eq!(fields(&w), ["HEAL_TREND_HOLD_ER"]);
        assert!(!v.trend.enabled(), "NaN turns the hold off");
        let mut c = HealingConfig::default();
        c.regime.window = 48;
        c.regime.min_returns = 24;
        let (v, w) = c.validate();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(v.trend.window, 48, "an unused window follows silently");
    }

    #[test]
    fn upper_bounds_and_non_finite_values_are_clamped() {
        let mut c = HealingConfig::default();
        c.regime.window = 100_000;
        c.regime.refit_every = 100_000;
        c.regime.max_iterations = 10_000;
        c.regime.refit_iterations = 10_000;
        c.regime.confidence = f64::NAN;
        c.regime.dwell = 1000;
        c.regime.trend_min_sharpe = f64::INFINITY;
        let (v, w) = c.validate();
        assert_eq!(w.len(), 7, "{w:?}");
        assert_eq!(v.regime.window, 4032);
        assert_eq!(v.regime.refit_every, 4032);
        assert_eq!(v.regime.max_iterations, 500);
        assert_eq!(v.regime.refit_iterations, 500);
        assert!(
            (v.regime.confidence - 0.6).abs() < 1e-12,
            "NaN takes the default"
        );
        assert_eq!(v.regime.dwell, 100);
        assert!((v.regime.trend_min_sharpe - 0.15).abs() < 1e-12);
        let mut c = HealingConfig::default();
        c.regime.confidence = 1.0;
        let (v, w) = c.validate();
        assert_eq!(fields(&w), ["REGIME_CONFIDENCE"]);
        assert!((v.regime.confidence - 0.99).abs() < 1e-12);
    }

    #[test]
    fn every_target_setting_is_clamped_with_a_warning() {
        let c = HealingConfig {
            target: TargetConfig {
                recent_minutes: 1,
                baseline_minutes: 6,
                baseline_min_minutes: 0,
            },
            ..HealingConfig::default()
        };
        let (v, w) = c.validate();
        assert_eq!(
            fields(&w),
            [
                "TARGET_RECENT_MINUTES",
                "TARGET_BASELINE_MINUTES",
                "TARGET_BASELINE_MIN_MINUTES"
            ]
        );
        assert_eq!(v.target.recent_minutes, 5);
        assert_eq!(v.target.baseline_minutes, 10);
        assert_eq!(v.target.baseline_min_minutes, 5);

        let c = HealingConfig {
            target: TargetConfig {
                recent_minutes: 5000,
                baseline_minutes: 50_000,
                baseline_min_minutes: 50_000,
            },
            ..HealingConfig::default()
        };
        let (v, w) = c.validate();
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(v.target.recent_minutes, 1440);
        assert_eq!(v.target.baseline_minutes, 10_080);
        assert_eq!(v.target.baseline_min_minutes, 10_080);
        assert!(v.validate().1.is_empty());
    }
}
