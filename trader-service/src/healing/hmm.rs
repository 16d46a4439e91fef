//! A 3-state Gaussian hidden Markov model over 1-D returns: deterministic
//! initialisation, Baum-Welch fitting and one-step forward filtering.
//!
//! Numerics (why this cannot produce NaN or a degenerate state):
//! - emissions are computed in log space and shifted by their per-step
//!   maximum before `exp`, so at least one state always has weight 1 and a
//!   huge jump cannot underflow every state to zero; the shift is added back
//!   to the log-likelihood;
//! - the forward-backward pass is scaled (each step normalised), so long
//!   windows cannot underflow;
//! - variances are floored at `max(ABS_VAR_FLOOR, REL_VAR_FLOOR x sample
//!   variance)`, so a flat market or a cluster of identical returns cannot
//!   collapse a state onto a point, and a single outlier cannot own a state
//!   (a state with less than [`MIN_OCCUPANCY`] expected returns keeps its
//!   previous mean and variance);
//! - a state that has died (less than [`DEAD_SHARE`] of the window) is
//!   re-seeded once per fit on the newest returns, so a warm-started model
//!   whose states all describe yesterday can still pick up a regime that
//!   has just begun instead of waiting for the window to roll over;
//! - transitions get Dirichlet pseudo-counts (a stronger one on the
//!   diagonal), so no transition probability is ever zero and regimes are
//!   favoured to persist;
//! - any non-finite intermediate aborts the fit with an error instead of
//!   returning a poisoned model.
//!
//! States are returned ordered by mean (state 0 lowest). Cost: one
//! iteration is O(T x 9) with 3 `exp` per return.

// The recursions index several arrays by state, as the formulas do.
#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Number of hidden states.
pub const STATES: usize = 3;
/// Absolute variance floor (a standard deviation of 0.001 % per return).
pub const ABS_VAR_FLOOR: f64 = 1e-10;
/// Variance floor as a share of the window's sample variance.
pub const REL_VAR_FLOOR: f64 = 0.1;
/// Expected returns a state needs before its mean and variance are updated.
pub const MIN_OCCUPANCY: f64 = 2.0;
/// A state expected to hold less than this share of the window is dead.
pub const DEAD_SHARE: f64 = 0.03;
/// Newest returns a dead state is re-seeded on.
const RESEED_TAIL: usize = 24;
/// Pseudo-count added to each self-transition.
const STAY_PRIOR: f64 = 2.0;
/// Pseudo-count added to each switch.
const SWITCH_PRIOR: f64 = 0.1;
/// Convergence: log-likelihood gain per return below which the fit stops.
const TOL_PER_RETURN: f64 = 1e-5;
const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// Why a fit produced no model.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FitError {
    /// The window is too short to fit three states.
    #[error("{got} returns cannot be fitted, at least {need} are needed")]
    TooFewReturns {
        /// Returns given.
        got: usize,
        /// Returns needed.
        need: usize,
    },
    /// The window has no movement at all (a flat market): there is nothing
    /// to tell regimes apart by, so the detector says `unknown`.
    #[error("the window of {returns} returns has no price movement")]
    NoMovement {
        /// Returns in the window.
        returns: usize,
    },
    /// An input return is NaN or infinite.
    #[error("return #{index} is not finite")]
    NonFiniteInput {
        /// Position in the window.
        index: usize,
    },
    /// The numerics broke down (should not happen; reported, not hidden).
    #[error("Baum-Welch produced a non-finite value at iteration {iteration}")]
    NonFinite {
        /// Iteration at which it happened.
        iteration: usize,
    },
}

/// Model parameters, states ordered by mean after every fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HmmParams {
    /// Initial state distribution.
    pub initial: [f64; STATES],
    /// `transition[i][j]` = P(next = j | now = i).
    pub transition: [[f64; STATES]; STATES],
    /// Emission means (log return per bar).
    pub mean: [f64; STATES],
    /// Emission variances (floored).
    pub var: [f64; STATES],
}

impl HmmParams {
    /// Whether these could come out of [`fit`]: finite means, variances at
    /// least [`ABS_VAR_FLOOR`], initial and transition rows that are
    /// probability distributions. A stored model failing this is not used.
    #[must_use]
    pub fn is_plausible(&self) -> bool {
        is_distribution(&self.initial)
            && self.transition.iter().all(is_distribution)
            && self.mean.iter().all(|m| m.is_finite())
            && self
                .var
                .iter()
                .all(|v| v.is_finite() && *v >= ABS_VAR_FLOOR)
    }
}

/// Whether `p` is a probability distribution over the states (up to
/// rounding).
#[must_use]
pub fn is_distribution(p: &[f64; STATES]) -> bool {
    p.iter().all(|x| (0.0..=1.0).contains(x)) && (p.iter().sum::<f64>() - 1.0).abs() < 1e-9
}

/// A fitted model and what the fit saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// The parameters, ordered by mean.
    pub params: HmmParams,
    /// Filtered state posterior after the window's last return.
    pub filtered: [f64; STATES],
    /// Expected number of the window's returns in each state.
    pub occupancy: [f64; STATES],
    /// Log-likelihood of the window under `params`.
    pub log_likelihood: f64,
    /// E-steps run.
    pub iterations: usize,
}

/// Population variance of a window (0 when empty).
fn sample_var(data: &[f64]) -> f64 {
    let n = data.len().max(1) as f64;
    let mean = data.iter().sum::<f64>() / n;
    data.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n
}

/// The variance floor for a window.
#[must_use]
pub fn var_floor(data: &[f64]) -> f64 {
    (REL_VAR_FLOOR * sample_var(data)).max(ABS_VAR_FLOOR)
}

/// Deterministic starting point: the sorted window is split into terciles;
/// each state starts at its tercile's mean with the window's variance, with
/// persistent transitions (0.9 stay). No randomness, so the same window
/// always gives the same model.
#[must_use]
pub fn initial_guess(data: &[f64]) -> HmmParams {
    let mut sorted = data.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len().max(1) as f64;
    let mean_all = sorted.iter().sum::<f64>() / n;
    let var_all = sample_var(data);
    let mut mean = [mean_all; STATES];
    for (k, m) in mean.iter_mut().enumerate() {
        let lo = sorted.len() * k / STATES;
        let hi = sorted.len() * (k + 1) / STATES;
        if hi > lo {
            *m = sorted[lo..hi].iter().sum::<f64>() / (hi - lo) as f64;
        }
    }
    let stay = 0.9;
    let switch = (1.0 - stay) / (STATES - 1) as f64;
    let mut transition = [[switch; STATES]; STATES];
    for (i, row) in transition.iter_mut().enumerate() {
        row[i] = stay;
    }
    HmmParams {
        initial: [1.0 / STATES as f64; STATES],
        transition,
        mean,
        var: [var_all.max(var_floor(data)); STATES],
    }
}

/// Precomputed per-state emission constants.
struct Emission {
    mean: [f64; STATES],
    half_inv_var: [f64; STATES],
    log_norm: [f64; STATES],
}

impl Emission {
    fn new(p: &HmmParams) -> Self {
        let mut e = Emission {
            mean: p.mean,
            half_inv_var: [0.0; STATES],
            log_norm: [0.0; STATES],
        };
        for k in 0..STATES {
            e.half_inv_var[k] = 0.5 / p.var[k];
            e.log_norm[k] = -0.5 * (LN_2PI + p.var[k].ln());
        }
        e
    }

    /// Emission weights shifted so the largest is 1, and the shift.
    #[inline]
    fn weights(&self, x: f64) -> ([f64; STATES], f64) {
        let mut l = [0.0; STATES];
        for k in 0..STATES {
            let d = x - self.mean[k];
            l[k] = self.log_norm[k] - d * d * self.half_inv_var[k];
        }
        let m = l[0].max(l[1]).max(l[2]);
        ([(l[0] - m).exp(), (l[1] - m).exp(), (l[2] - m).exp()], m)
    }
}

/// One forward-filter step: the posterior after observing `x`, given the
/// posterior before it. An observation that carries no usable information
/// (non-finite) leaves the predicted distribution.
#[must_use]
pub fn filter_step(p: &HmmParams, prior: &[f64; STATES], x: f64) -> [f64; STATES] {
    let pred = predict(p, prior);
    if !x.is_finite() {
        return pred;
    }
    let (b, _) = Emission::new(p).weights(x);
    let mut post = [pred[0] * b[0], pred[1] * b[1], pred[2] * b[2]];
    let s: f64 = post.iter().sum();
    if !(s.is_finite() && s > 0.0) {
        return pred;
    }
    for v in &mut post {
        *v /= s;
    }
    post
}

fn predict(p: &HmmParams, prior: &[f64; STATES]) -> [f64; STATES] {
    let mut pred = [0.0; STATES];
    for (i, &a) in prior.iter().enumerate() {
        for (j, q) in pred.iter_mut().enumerate() {
            *q += a * p.transition[i][j];
        }
    }
    pred
}

/// Sufficient statistics of one E-step.
struct Expectations {
    log_likelihood: f64,
    filtered: [f64; STATES],
    gamma0: [f64; STATES],
    occupancy: [f64; STATES],
    sum_x: [f64; STATES],
    sum_x2: [f64; STATES],
    switches: [[f64; STATES]; STATES],
}

/// Scratch buffers reused across iterations of one fit.
struct Scratch {
    b: Vec<[f64; STATES]>,
    alpha: Vec<[f64; STATES]>,
}

fn e_step(data: &[f64], p: &HmmParams, s: &mut Scratch) -> Option<Expectations> {
    let t_len = data.len();
    let em = Emission::new(p);
    let a = &p.transition;
    // Log-likelihood = sum of shifts + ln of the product of the scales; the
    // product is folded into a logarithm only when it gets small (each scale
    // is at most 1), which saves a `ln` per return.
    let mut shifts = 0.0;
    let mut ln_scales = 0.0;
    let mut prod = 1.0f64;
    // Forward (scaled).
    for (t, &x) in data.iter().enumerate() {
        let (b, shift) = em.weights(x);
        let pred = if t == 0 {
            p.initial
        } else {
            predict(p, &s.alpha[t - 1])
        };
        let al = [pred[0] * b[0], pred[1] * b[1], pred[2] * b[2]];
        let c = al[0] + al[1] + al[2];
        if !(c.is_finite() && c > 0.0) {
            return None;
        }
        let inv = 1.0 / c;
        shifts += shift;
        prod *= c;
        if prod < 1e-200 {
            ln_scales += prod.ln();
            prod = 1.0;
        }
        s.b[t] = b;
        s.alpha[t] = [al[0] * inv, al[1] * inv, al[2] * inv];
    }
    // Backward, accumulating the statistics on the fly. Beta is kept
    // normalised: gamma and xi are normalised per step, so only its
    // direction matters.
    let mut ex = Expectations {
        log_likelihood: shifts + ln_scales + prod.ln(),
        filtered: s.alpha[t_len - 1],
        gamma0: [0.0; STATES],
        occupancy: [0.0; STATES],
        sum_x: [0.0; STATES],
        sum_x2: [0.0; STATES],
        switches: [[0.0; STATES]; STATES],
    };
    let mut beta = [1.0; STATES];
    for t in (0..t_len).rev() {
        let x = data[t];
        let al = s.alpha[t];
        let g = [al[0] * beta[0], al[1] * beta[1], al[2] * beta[2]];
        let gs = g[0] + g[1] + g[2];
        if !(gs.is_finite() && gs > 0.0) {
            return None;
        }
        let inv = 1.0 / gs;
        let g = [g[0] * inv, g[1] * inv, g[2] * inv];
        for k in 0..STATES {
            ex.occupancy[k] += g[k];
            ex.sum_x[k] += g[k] * x;
            ex.sum_x2[k] += g[k] * x * x;
        }
        if t == 0 {
            ex.gamma0 = g;
            break;
        }
        // xi(t-1 -> t) and beta(t-1).
        let b = s.b[t];
        let w = [b[0] * beta[0], b[1] * beta[1], b[2] * beta[2]];
        let prev = s.alpha[t - 1];
        let mut nb = [0.0; STATES];
        let mut xi = [[0.0; STATES]; STATES];
        for i in 0..STATES {
            for j in 0..STATES {
                let v = a[i][j] * w[j];
                nb[i] += v;
                xi[i][j] = prev[i] * v;
            }
        }
        let xs = prev[0] * nb[0] + prev[1] * nb[1] + prev[2] * nb[2];
        let nbs = nb[0] + nb[1] + nb[2];
        if !(xs.is_finite() && xs > 0.0 && nbs.is_finite() && nbs > 0.0) {
            return None;
        }
        let inv = 1.0 / xs;
        for i in 0..STATES {
            for j in 0..STATES {
                ex.switches[i][j] += xi[i][j] * inv;
            }
        }
        let inv = 1.0 / nbs;
        beta = [nb[0] * inv, nb[1] * inv, nb[2] * inv];
    }
    Some(ex)
}

fn m_step(ex: &Expectations, old: &HmmParams, floor: f64) -> HmmParams {
    let mut p = old.clone();
    let g0s: f64 = ex.gamma0.iter().map(|g| g + 0.01).sum();
    for k in 0..STATES {
        p.initial[k] = (ex.gamma0[k] + 0.01) / g0s;
    }
    for i in 0..STATES {
        let mut row = [SWITCH_PRIOR; STATES];
        row[i] = STAY_PRIOR;
        for (j, r) in row.iter_mut().enumerate() {
            *r += ex.switches[i][j];
        }
        let rs: f64 = row.iter().sum();
        for j in 0..STATES {
            p.transition[i][j] = row[j] / rs;
        }
    }
    for k in 0..STATES {
        let n = ex.occupancy[k];
        if n >= MIN_OCCUPANCY {
            let m = ex.sum_x[k] / n;
            p.mean[k] = m;
            p.var[k] = (ex.sum_x2[k] / n - m * m).max(floor);
        } else {
            p.var[k] = p.var[k].max(floor);
        }
    }
    p
}

/// Fits the model to `data` by Baum-Welch, starting from `start` (a previous
/// fit for a warm start, or [`initial_guess`]), for at most `max_iterations`
/// E-steps, stopping once the log-likelihood gains less than
/// `1e-5` per return. The returned parameters are ordered by mean and
/// `filtered` is the posterior after the last return under them.
///
/// # Errors
/// Fewer than 6 returns, a non-finite return, or a numerical breakdown.
pub fn fit(data: &[f64], start: &HmmParams, max_iterations: usize) -> Result<Fit, FitError> {
    const NEED: usize = 2 * STATES;
    if data.len() < NEED {
        return Err(FitError::TooFewReturns {
            got: data.len(),
            need: NEED,
        });
    }
    if let Some(index) = data.iter().position(|x| !x.is_finite()) {
        return Err(FitError::NonFiniteInput { index });
    }
    if sample_var(data) <= ABS_VAR_FLOOR {
        return Err(FitError::NoMovement {
            returns: data.len(),
        });
    }
    let floor = var_floor(data);
    let mut params = start.clone();
    for v in &mut params.var {
        if !(v.is_finite() && *v >= floor) {
            *v = floor;
        }
    }
    let mut s = Scratch {
        b: vec![[0.0; STATES]; data.len()],
        alpha: vec![[0.0; STATES]; data.len()],
    };
    let tol = TOL_PER_RETURN * data.len() as f64;
    let mut prev_ll = f64::NEG_INFINITY;
    let max_iterations = max_iterations.max(1);
    let mut may_reseed = true;
    for iteration in 1..=max_iterations {
        let ex = e_step(data, &params, &mut s).ok_or(FitError::NonFinite { iteration })?;
        let ll = ex.log_likelihood;
        if !ll.is_finite() {
            return Err(FitError::NonFinite { iteration });
        }
        if may_reseed && iteration < max_iterations {
            may_reseed = false;
            if reseed_dead_state(&mut params, &ex, data, floor) {
                continue;
            }
        }
        if iteration == max_iterations || (ll - prev_ll).abs() < tol {
            return Ok(order_by_mean(Fit {
                params,
                filtered: ex.filtered,
                occupancy: ex.occupancy,
                log_likelihood: ll,
                iterations: iteration,
            }));
        }
        prev_ll = ll;
        params = m_step(&ex, &params, floor);
    }
    Err(FitError::NonFinite {
        iteration: max_iterations,
    })
}

/// Moves the least occupied state, if it is dead, onto the newest returns
/// (their median and MAD-based variance) with default persistence. Returns whether it
/// did.
fn reseed_dead_state(p: &mut HmmParams, ex: &Expectations, data: &[f64], floor: f64) -> bool {
    let k = (0..STATES)
        .min_by(|&a, &b| ex.occupancy[a].total_cmp(&ex.occupancy[b]))
        .unwrap_or(0);
    if ex.occupancy[k] >= DEAD_SHARE * data.len() as f64 {
        return false;
    }
    // Robust statistics: an outlier among the newest returns must not
    // become a state of its own.
    let mut tail = data[data.len() - RESEED_TAIL.min(data.len() / 4).max(2)..].to_vec();
    tail.sort_by(f64::total_cmp);
    let median = tail[tail.len() / 2];
    let mut dev: Vec<f64> = tail.iter().map(|x| (x - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let sd = 1.4826 * dev[dev.len() / 2];
    p.mean[k] = median;
    p.var[k] = (sd * sd).max(floor);
    let fresh = initial_guess(data);
    p.transition[k] = fresh.transition[k];
    true
}

/// Relabels states so that their means ascend.
fn order_by_mean(f: Fit) -> Fit {
    let mut idx = [0usize, 1, 2];
    idx.sort_by(|&a, &b| f.params.mean[a].total_cmp(&f.params.mean[b]));
    let p = &f.params;
    let mut q = p.clone();
    let mut filtered = [0.0; STATES];
    let mut occupancy = [0.0; STATES];
    for (new, &old) in idx.iter().enumerate() {
        occupancy[new] = f.occupancy[old];
        q.initial[new] = p.initial[old];
        q.mean[new] = p.mean[old];
        q.var[new] = p.var[old];
        filtered[new] = f.filtered[old];
        for (new_j, &old_j) in idx.iter().enumerate() {
            q.transition[new][new_j] = p.transition[old][old_j];
        }
    }
    Fit {
        params: q,
        filtered,
        occupancy,
        ..f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finite(p: &HmmParams) -> bool {
        p.initial
            .iter()
            .chain(p.transition.iter().flatten())
            .chain(&p.mean)
            .chain(&p.var)
            .all(|v| v.is_finite())
    }

    #[test]
    fn recovers_two_separated_regimes_ordered_by_mean() {
        // 100 returns near -1 %, 100 near +1 %, tiny deterministic noise.
        let data: Vec<f64> = (0..200)
            .map(|i| {
                let noise = 0.001 * (f64::from(i) * 1.7).sin();
                if i < 100 { -0.01 + noise } else { 0.01 + noise }
            })
            .collect();
        let f = fit(&data, &initial_guess(&data), 100).expect("fit");
        assert!(finite(&f.params));
        assert!(f.params.mean[0] < f.params.mean[1] && f.params.mean[1] < f.params.mean[2]);
        assert!((f.params.mean[0] + 0.01).abs() < 0.002, "{:?}", f.params);
        assert!((f.params.mean[2] - 0.01).abs() < 0.002, "{:?}", f.params);
        // The middle tercile starts empty and is re-seeded on the newest
        // returns, so two states may share the upper regime.
        let up: f64 = (0..STATES)
            .filter(|&k| f.params.mean[k] > 0.005)
            .map(|k| f.filtered[k])
            .sum();
        assert!(up > 0.99, "{:?}", f.filtered);
        let s: f64 = f.filtered.iter().sum();
        assert!((s - 1.0).abs() < 1e-9);
    }

    #[test]
    fn flat_and_outlier_windows_stay_finite() {
        let flat = vec![0.0; 100];
        assert_eq!(
            fit(&flat, &initial_guess(&flat), 50),
            Err(FitError::NoMovement { returns: 100 })
        );
        let mut ticks = vec![0.0; 100];
        ticks[10] = 1e-4;
        ticks[70] = -1e-4;
        let f = fit(&ticks, &initial_guess(&ticks), 50).expect("rare ticks fit");
        assert!(finite(&f.params), "{:?}", f.params);
        assert!(f.params.var.iter().all(|&v| v >= ABS_VAR_FLOOR));
        let mut spike = vec![0.0; 100];
        spike[50] = 5.0;
        let f = fit(&spike, &initial_guess(&spike), 50).expect("spike fits");
        assert!(finite(&f.params), "{:?}", f.params);
        let floor = var_floor(&spike);
        assert!(f.params.var.iter().all(|&v| v >= floor));
        let post = filter_step(&f.params, &f.filtered, 1e6);
        assert!(post.iter().all(|v| v.is_finite()));
        assert!((post.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn bad_windows_are_errors() {
        assert_eq!(
            fit(&[0.0; 3], &initial_guess(&[0.0; 3]), 5),
            Err(FitError::TooFewReturns { got: 3, need: 6 })
        );
        let mut d = vec![0.01; 10];
        d[4] = f64::NAN;
        assert_eq!(
            fit(&d, &initial_guess(&d), 5),
            Err(FitError::NonFiniteInput { index: 4 })
        );
    }

    #[test]
    fn fitting_is_deterministic() {
        let data: Vec<f64> = (0..150)
            .map(|i| 0.003 * (f64::from(i) * 0.37).sin())
            .collect();
        let a = fit(&data, &initial_guess(&data), 30).expect("fit");
        let b = fit(&data, &initial_guess(&data), 30).expect("fit");
        assert_eq!(a, b);
    }
}
