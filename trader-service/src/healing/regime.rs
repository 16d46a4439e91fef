//! The regime detector (SPEC §12): a 3-state Gaussian HMM over 5-minute log
//! returns, refitted on a schedule and forward-filtered on every new return,
//! with a consensus label that only changes on sustained evidence.
//!
//! Flow, per closed 5-minute bar (driven by [`RegimeDetector::update`]):
//! 1. once the window holds `min_returns`, fit from the deterministic
//!    tercile guess; afterwards refit every `refit_every` returns,
//!    warm-started from the previous fit for `refit_iterations` (the
//!    optimisation continues across refits instead of restarting);
//!    between refits, run one forward-filter step;
//! 2. map states to labels by their fitted mean (see [`state_labels`]) and
//!    sum the state posteriors per label;
//! 3. a label whose posterior reaches `confidence` for `dwell` consecutive
//!    returns becomes the consensus; otherwise the previous label stands, so
//!    a single outlier cannot flap it.
//!
//! The view is `unknown` until the first fit, after a failed fit, and when
//! the newest return is older than `stale_after_sec`. An operator override
//! forces the label until its expiry and is shown as such.
//!
//! Labelling refines SPEC's "lowest mean = bearish, highest = bullish,
//! middle = ranging": a state is bearish / bullish only if its mean is
//! negative / positive by at least `trend_min_sharpe` of its own standard
//! deviation and by [`TREND_MIN_T`] standard errors (so a state holding a
//! single jump is no trend), otherwise ranging. This keeps the ordering by
//! mean whenever the means straddle zero, but a window holding a single
//! trend (all three states rising) is not half-called bearish just because
//! one state rises slower.
//!
//! The settings are persisted with the detector (and the window sizes with
//! [`MarketHistory`]); a stored detector whose settings differ from the
//! configuration in force is refused
//! ([`RegimeDetector::check_restored`], used by
//! [`crate::healing::regime_persist`]) and a new one is built.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::healing::candles::MarketHistory;
use crate::healing::config::RegimeConfig;
use crate::healing::hmm::{self, FitError, HmmParams, STATES};
use crate::healing::regime_persist::RestoreError;
use crate::healing::vocab::Regime;

/// Labels in the order of [`RegimeView::posteriors`].
pub const LABELS: [Regime; 3] = [Regime::Bearish, Regime::Ranging, Regime::Bullish];

/// An operator-forced label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegimeOverride {
    /// The forced label.
    pub regime: Regime,
    /// Unix seconds at which it lapses.
    pub until: i64,
}

/// A refused override; the detector is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OverrideError {
    /// The expiry is not in the future.
    #[error("override until {until} is not after now ({now})")]
    ExpiryNotInFuture {
        /// Requested expiry.
        until: i64,
        /// Current time.
        now: i64,
    },
}

/// What callers see.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegimeView {
    /// The label in force (the override's when overridden).
    pub label: Regime,
    /// Model posterior of `label`; for `unknown`, the largest label
    /// posterior (0 without a model).
    pub confidence: f64,
    /// The model is fitted and fresh.
    pub ready: bool,
    /// Expiry of the operator override in force, if any.
    pub overridden: Option<i64>,
    /// Model posteriors of bearish, ranging, bullish (zeros when not ready).
    pub posteriors: [f64; 3],
}

/// Summary of the newest fit, for the status API and logs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// Log-likelihood of the window.
    pub log_likelihood: f64,
    /// Baum-Welch iterations used.
    pub iterations: usize,
    /// Returns fitted.
    pub returns: usize,
}

/// What one [`RegimeDetector::update`] did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegimeUpdate {
    /// New returns consumed.
    pub returns: usize,
    /// A refit ran (successfully or not).
    pub refitted: bool,
    /// The refit failed: the detector is `unknown` until the next one.
    pub fit_error: Option<FitError>,
    /// The consensus label changed `(from, to)`.
    pub changed: Option<(Regime, Regime)>,
}

/// How many standard errors a trend state's mean must be away from zero.
pub const TREND_MIN_T: f64 = 3.0;

/// Per-state labels of a fitted model: bearish / bullish when the mean is
/// below / above zero both economically (by `trend_min_sharpe` of the
/// state's standard deviation) and statistically (by [`TREND_MIN_T`]
/// standard errors given the state's expected `occupancy` in the window),
/// else ranging. The second test keeps a state that holds one outlier from
/// passing for a trend. Monotone in the mean for a given spread.
#[must_use]
pub fn state_labels(
    p: &HmmParams,
    occupancy: &[f64; STATES],
    trend_min_sharpe: f64,
) -> [Regime; STATES] {
    let mut out = [Regime::Ranging; STATES];
    for (k, l) in out.iter_mut().enumerate() {
        let sd = p.var[k].sqrt();
        let band = (trend_min_sharpe * sd).max(TREND_MIN_T * sd / occupancy[k].max(1.0).sqrt());
        if p.mean[k] <= -band && p.mean[k] < 0.0 {
            *l = Regime::Bearish;
        } else if p.mean[k] >= band && p.mean[k] > 0.0 {
            *l = Regime::Bullish;
        }
    }
    out
}

/// The detector; persisted with the trader's state (serde) and cheap to
/// clone. Every method is a pure function of its inputs and `now`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeDetector {
    config: RegimeConfig,
    model: Option<HmmParams>,
    /// Expected returns per state in the fitted window.
    occupancy: [f64; STATES],
    /// Filtered state posterior (ordered like the model's states).
    posterior: [f64; STATES],
    /// Returns of the history consumed so far.
    seen: u64,
    since_fit: usize,
    last_return_at: Option<i64>,
    label: Regime,
    /// Label accumulating dwell and its consecutive count.
    pending: Option<(Regime, u32)>,
    override_: Option<RegimeOverride>,
    last_fit: Option<FitSummary>,
    fit_failures: u64,
}

impl RegimeDetector {
    /// A detector with no data (label `unknown`). `config` should be
    /// validated ([`crate::healing::HealingConfig::validate`]).
    #[must_use]
    pub fn new(config: RegimeConfig) -> Self {
        Self {
            config,
            model: None,
            occupancy: [0.0; STATES],
            posterior: [0.0; STATES],
            seen: 0,
            since_fit: 0,
            last_return_at: None,
            label: Regime::Unknown,
            pending: None,
            override_: None,
            last_fit: None,
            fit_failures: 0,
        }
    }

    /// Consumes the 5-minute returns `history` produced since the last call
    /// (call it after every [`MarketHistory::observe`]; a call with nothing
    /// new costs a comparison). Refits on schedule, filters each new return
    /// and advances the consensus label. A history that restarted (fewer
    /// returns than already seen) resets the model, keeping the override.
    pub fn update(&mut self, history: &MarketHistory) -> RegimeUpdate {
        let total = history.returns_5m_total();
        if total < self.seen {
            let kept = self.override_;
            *self = Self::new(self.config.clone());
            self.override_ = kept;
        }
        let new = usize::try_from(total - self.seen).unwrap_or(usize::MAX);
        let mut out = RegimeUpdate {
            returns: new,
            ..RegimeUpdate::default()
        };
        if new == 0 {
            return out;
        }
        self.seen = total;
        self.last_return_at = history.last_return_at();
        let window = history.returns_5m();
        let fresh = new.min(window.len());
        self.since_fit += new;
        let due = match self.model {
            None => {
                window.len() >= self.config.min_returns
                    && (self.fit_failures == 0 || self.since_fit >= self.config.refit_every)
            }
            Some(_) => self.since_fit >= self.config.refit_every,
        };
        if due {
            out.refitted = true;
            self.since_fit = 0;
            if let Err(e) = self.refit(window) {
                out.fit_error = Some(e);
            }
        } else if let Some(model) = &self.model {
            for &r in &window[window.len() - fresh..] {
                self.posterior = hmm::filter_step(model, &self.posterior, r);
            }
        }
        out.changed = self.advance_consensus(fresh.max(1));
        out
    }

    fn refit(&mut self, window: &[f64]) -> Result<(), FitError> {
        let (start, iterations) = match &self.model {
            Some(m) => (m.clone(), self.config.refit_iterations),
            None => (hmm::initial_guess(window), self.config.max_iterations),
        };
        match hmm::fit(window, &start, iterations) {
            Ok(f) => {
                self.posterior = f.filtered;
                self.occupancy = f.occupancy;
                self.last_fit = Some(FitSummary {
                    log_likelihood: f.log_likelihood,
                    iterations: f.iterations,
                    returns: window.len(),
                });
                self.model = Some(f.params);
                Ok(())
            }
            Err(e) => {
                self.fit_failures += 1;
                self.model = None;
                self.posterior = [0.0; STATES];
                self.label = Regime::Unknown;
                self.pending = None;
                Err(e)
            }
        }
    }

    /// Label posteriors `[bearish, ranging, bullish]` of the current filter.
    fn label_posteriors(&self) -> [f64; 3] {
        let Some(model) = &self.model else {
            return [0.0; 3];
        };
        let labels = state_labels(model, &self.occupancy, self.config.trend_min_sharpe);
        let mut out = [0.0; 3];
        for (k, l) in labels.iter().enumerate() {
            if let Some(i) = LABELS.iter().position(|x| x == l) {
                out[i] += self.posterior[k];
            }
        }
        out
    }

    /// Counts `steps` consecutive observations of the current evidence
    /// towards the dwell; returns the change if the label moved.
    fn advance_consensus(&mut self, steps: usize) -> Option<(Regime, Regime)> {
        if self.model.is_none() {
            self.pending = None;
            return None;
        }
        let lp = self.label_posteriors();
        let best = (0..3).max_by(|&a, &b| lp[a].total_cmp(&lp[b])).unwrap_or(1);
        if lp[best] < self.config.confidence {
            self.pending = None;
            return None;
        }
        let cand = LABELS[best];
        let step = u32::try_from(steps).unwrap_or(u32::MAX);
        let count = match self.pending {
            Some((l, n)) if l == cand => n.saturating_add(step),
            _ => step,
        };
        self.pending = Some((cand, count));
        if count >= self.config.dwell && cand != self.label {
            let from = self.label;
            self.label = cand;
            tracing::info!(from = %from, to = %cand, posterior = lp[best], "regime changed");
            return Some((from, cand));
        }
        None
    }

    /// Forces `regime` until `until` (exclusive), shown in the view as
    /// overridden. Replaces any earlier override.
    ///
    /// # Errors
    /// `until` not after `now`; the detector is unchanged.
    pub fn set_override(
        &mut self,
        regime: Regime,
        until: i64,
        now: i64,
    ) -> Result<(), OverrideError> {
        if until <= now {
            return Err(OverrideError::ExpiryNotInFuture { until, now });
        }
        self.override_ = Some(RegimeOverride { regime, until });
        Ok(())
    }

    /// Removes the override, returning it.
    pub fn clear_override(&mut self) -> Option<RegimeOverride> {
        self.override_.take()
    }

    /// Drops the override once `now >= until` and returns it (for the log);
    /// an expired override is already ignored by [`Self::view`].
    pub fn expire_override(&mut self, now: i64) -> Option<RegimeOverride> {
        match self.override_ {
            Some(o) if now >= o.until => self.override_.take(),
            _ => None,
        }
    }

    /// The override in force at `now`, if any.
    #[must_use]
    pub fn active_override(&self, now: i64) -> Option<RegimeOverride> {
        self.override_.filter(|o| now < o.until)
    }

    /// The regime at `now`: the override while it lasts, else the consensus
    /// label if the model is fitted and its newest return is no older than
    /// `stale_after_sec`, else `unknown`.
    #[must_use]
    pub fn view(&self, now: i64) -> RegimeView {
        let fresh = self
            .last_return_at
            .is_some_and(|at| now - at <= self.config.stale_after_sec);
        let ready = self.model.is_some() && fresh;
        let posteriors = if ready {
            self.label_posteriors()
        } else {
            [0.0; 3]
        };
        let forced = self.active_override(now);
        let label = match forced {
            Some(o) => o.regime,
            None if ready => self.label,
            None => Regime::Unknown,
        };
        let confidence = match LABELS.iter().position(|l| *l == label) {
            Some(i) => posteriors[i],
            None => posteriors.iter().copied().fold(0.0, f64::max),
        };
        RegimeView {
            label,
            confidence,
            ready,
            overridden: forced.map(|o| o.until),
            posteriors,
        }
    }

    /// Refuses a restored detector that this build, with `config`, could
    /// not have produced after consuming `returns_total` returns: settings
    /// that differ from `config` (a window or threshold changed since it
    /// was stored), an implausible model, a filter that is not a
    /// distribution, non-finite statistics or a label without a model.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check_restored(
        &self,
        config: &RegimeConfig,
        returns_total: u64,
    ) -> Result<(), RestoreError> {
        if self.config != *config {
            return Err(RestoreError::ConfigChanged);
        }
        if self.seen != returns_total {
            return Err(RestoreError::Inconsistent {
                what: "returns seen by the detector",
            });
        }
        let stats_finite = self.occupancy.iter().all(|o| o.is_finite() && *o >= 0.0)
            && self.last_fit.is_none_or(|f| f.log_likelihood.is_finite());
        if !stats_finite {
            return Err(RestoreError::NonFinite {
                what: "fit statistics",
            });
        }
        let consistent = match &self.model {
            Some(m) => m.is_plausible() && hmm::is_distribution(&self.posterior),
            None => self.posterior == [0.0; STATES] && self.label == Regime::Unknown,
        };
        if !consistent {
            return Err(RestoreError::Inconsistent { what: "model" });
        }
        if self.pending.is_some_and(|(l, _)| l == Regime::Unknown) {
            return Err(RestoreError::Inconsistent {
                what: "pending label",
            });
        }
        Ok(())
    }

    /// The fitted model (states ordered by mean), if any.
    #[must_use]
    pub fn model(&self) -> Option<&HmmParams> {
        self.model.as_ref()
    }

    /// The newest successful fit.
    #[must_use]
    pub fn last_fit(&self) -> Option<FitSummary> {
        self.last_fit
    }

    /// Fits that failed since the detector was created.
    #[must_use]
    pub fn fit_failures(&self) -> u64 {
        self.fit_failures
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &RegimeConfig {
        &self.config
    }
}
