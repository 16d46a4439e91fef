//! Regime detector tests through its real interface: prices go into
//! [`MarketHistory::observe`], the detector consumes them with
//! [`RegimeDetector::update`] and is read with [`RegimeDetector::view`].
//!
//! The synthetic market alternates 2-day stretches of known regimes (drift
//! -0.3 %/5 min, mean-reverting noise, drift +0.3 %/5 min) from a seeded
//! ChaCha generator, so label accuracy is measurable and reproducible.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;

use crate::healing::{HealingConfig, MarketHistory, Regime, RegimeDetector, RegimeView};

const MINUTE: i64 = 60;
const STRETCH_MIN: usize = 2 * 24 * 60;
/// 5-minute drift of the trending stretches (0.3 %), per minute.
const DRIFT_PER_MIN: f64 = 0.003 / 5.0;
/// 5-minute noise of 0.25 %, per minute.
const NOISE_PER_MIN: f64 = 0.0025 / 2.236_067_977;
/// Pull back to the anchor per minute in ranging stretches.
const REVERSION: f64 = 0.02;

/// 1-minute prices with the true regime of every minute.
fn synthetic(seed: u64, stretches: &[Regime]) -> Vec<(i64, Decimal, Regime)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = 0.0f64; // log price
    let mut out = Vec::with_capacity(stretches.len() * STRETCH_MIN);
    let mut t = 1_704_067_200i64;
    for &r in stretches {
        let anchor = x;
        for _ in 0..STRETCH_MIN {
            let eps = normal(&mut rng) * NOISE_PER_MIN;
            x += eps
                + match r {
                    Regime::Bearish => -DRIFT_PER_MIN,
                    Regime::Bullish => DRIFT_PER_MIN,
                    _ => -REVERSION * (x - anchor),
                };
            out.push((t, price(x.exp()), r));
            t += MINUTE;
        }
    }
    out
}

fn price(p: f64) -> Decimal {
    Decimal::from_f64(p).expect("finite").round_dp(8)
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn cfg() -> HealingConfig {
    HealingConfig::default().validate().0
}

/// Feeds every price; returns the view after each 5-minute return with the
/// true regime of that return's bar.
fn run(
    cfg: &HealingConfig,
    prices: &[(i64, Decimal, Regime)],
) -> (Vec<(RegimeView, Regime)>, RegimeDetector) {
    let mut h = MarketHistory::new(cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let mut views = Vec::new();
    for &(t, p, truth) in prices {
        let o = h.observe(t, p).expect("valid price");
        let u = d.update(&h);
        assert!(u.returns <= 1);
        if o.regime_return.is_some() {
            let v = d.view(t);
            assert_finite(&v);
            views.push((v, truth));
        }
    }
    (views, d)
}

fn assert_finite(v: &RegimeView) {
    assert!(v.confidence.is_finite(), "{v:?}");
    assert!(v.posteriors.iter().all(|p| p.is_finite()), "{v:?}");
    let s: f64 = v.posteriors.iter().sum();
    assert!(!v.ready || (s - 1.0).abs() < 1e-9, "{v:?}");
}

const CYCLE: [Regime; 4] = [
    Regime::Ranging,
    Regime::Bearish,
    Regime::Ranging,
    Regime::Bullish,
];

fn accuracy(views: &[(RegimeView, Regime)], skip: usize) -> f64 {
    let scored = &views[skip..];
    let hits = scored.iter().filter(|(v, t)| v.label == *t).count();
    hits as f64 / scored.len() as f64
}

#[test]
fn labels_synthetic_regimes_above_80_percent_measured_92_4_to_93_3() {
    let stretches: Vec<Regime> = CYCLE.iter().copied().cycle().take(12).collect();
    let mut worst = 1.0f64;
    for seed in [1u64, 2, 3] {
        let prices = synthetic(seed, &stretches);
        let (views, _) = run(&cfg(), &prices);
        // Warm-up: the first day of returns.
        let acc = accuracy(&views, 288);
        eprintln!(
            "seed {seed}: label accuracy after warm-up {:.1} %",
            acc * 100.0
        );
        worst = worst.min(acc);
    }
    assert!(
        worst > 0.80,
        "worst accuracy {:.1} % (must beat 80 %)",
        worst * 100.0
    );
}

#[test]
fn same_input_same_output_also_after_a_serde_round_trip_mid_stream() {
    let cfg = cfg();
    let prices = synthetic(9, &CYCLE);
    let (a, da) = run(&cfg, &prices);
    let (b, db) = run(&cfg, &prices);
    assert_eq!(a, b);
    assert_eq!(da, db);
    // Persist both pieces mid-stream (not on a refit boundary), restore and
    // continue: every later view is identical.
    let cut = prices.len() / 2 + 37;
    let mut h = MarketHistory::new(&cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let mut views = Vec::new();
    for (i, &(t, p, _)) in prices.iter().enumerate() {
        if i == cut {
            let hj = serde_json::to_string(&h).expect("serialize history");
            let dj = serde_json::to_string(&d).expect("serialize detector");
            h = serde_json::from_str(&hj).expect("history back");
            d = serde_json::from_str(&dj).expect("detector back");
        }
        if h.observe(t, p).expect("valid").regime_return.is_some() {
            d.update(&h);
            views.push(d.view(t));
        }
    }
    let plain: Vec<RegimeView> = a.into_iter().map(|(v, _)| v).collect();
    assert_eq!(views, plain);
    assert_eq!(d, da);
}

#[test]
fn too_few_candles_stay_unknown() {
    let cfg = cfg();
    for n in [0usize, 1, 2] {
        let mut h = MarketHistory::new(&cfg);
        let mut d = RegimeDetector::new(cfg.regime.clone());
        for i in 0..n {
            h.observe(i as i64 * 300, Decimal::ONE).expect("valid");
            d.update(&h);
        }
        let v = d.view(n as i64 * 300);
        assert_eq!(v.label, Regime::Unknown, "{n} candles");
        assert!(!v.ready);
        assert_eq!(v.posteriors, [0.0; 3]);
        assert!(!v.label.is_ranging());
    }
    // 95 returns (96 candles of 5 minutes): one short of the first fit.
    let prices = synthetic(4, &[Regime::Ranging]);
    let mut h = MarketHistory::new(&cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    for &(t, p, _) in prices.iter().take(96 * 5) {
        h.observe(t, p).expect("valid");
        d.update(&h);
    }
    assert!(h.returns_5m_total() < 96);
    assert_eq!(d.view(prices[96 * 5].0).label, Regime::Unknown);
    assert!(d.model().is_none());
}

#[test]
fn perfectly_flat_prices_stay_unknown_without_nan() {
    let cfg = cfg();
    let mut h = MarketHistory::new(&cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let mut t = 0;
    for _ in 0..3 * 24 * 60 {
        h.observe(t, Decimal::new(1, 1)).expect("valid");
        let u = d.update(&h);
        assert_finite(&d.view(t));
        assert!(u.changed.is_none());
        t += MINUTE;
    }
    let v = d.view(t);
    assert_eq!(v.label, Regime::Unknown);
    assert!(!v.ready);
    assert!(
        d.fit_failures() > 0,
        "a flat window is reported, not fitted"
    );
}

#[test]
fn huge_jumps_never_produce_nan() {
    let cfg = cfg();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut h = MarketHistory::new(&cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let mut x = 0.0f64;
    for m in 0..4 * 24 * 60i64 {
        x += normal(&mut rng) * 0.001;
        if m % 997 == 0 {
            x += if m % 2 == 0 { 4.0 } else { -4.0 };
        }
        h.observe(m * MINUTE, price(x.exp())).expect("valid");
        d.update(&h);
        assert_finite(&d.view(m * MINUTE));
    }
    let model = d.model().expect("fitted");
    assert!(model.var.iter().chain(&model.mean).all(|v| v.is_finite()));
    assert!(d.view(4 * 24 * 60 * MINUTE).ready);
}

#[test]
fn a_long_gap_makes_the_view_unknown_until_returns_resume() {
    let cfg = cfg();
    let prices = synthetic(5, &[Regime::Bullish]);
    let mut h = MarketHistory::new(&cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    for &(t, p, _) in &prices {
        h.observe(t, p).expect("valid");
        d.update(&h);
    }
    let end = prices.last().expect("prices").0;
    assert_eq!(d.view(end).label, Regime::Bullish);
    // Three days without data.
    let later = end + 3 * 86_400;
    let v = d.view(later);
    assert_eq!(v.label, Regime::Unknown, "stale");
    assert!(!v.ready);
    // Data resumes far away: the jump across the gap is not a return.
    let resumed: Vec<_> = synthetic(6, &[Regime::Bullish])
        .into_iter()
        .map(|(t, p, r)| (t - prices[0].0 + later, p * Decimal::TEN, r))
        .collect();
    for &(t, p, _) in resumed.iter().take(15) {
        h.observe(t, p).expect("valid");
        d.update(&h);
    }
    // Only adjacent bars make returns: the x10 jump (ln 10 = 2.3) is absent.
    assert!(h.returns_5m().iter().all(|r| r.abs() < 0.1));
    let t = resumed[14].0;
    assert!(d.view(t).ready, "fresh again");
    assert_eq!(d.view(t).label, Regime::Bullish);
}

#[test]
fn a_single_outlier_does_not_flap_the_label() {
    let cfg = cfg();
    let mut prices = synthetic(7, &[Regime::Ranging, Regime::Ranging]);
    let (views, _) = run(&cfg, &prices[..STRETCH_MIN]);
    assert_eq!(views.last().expect("views").0.label, Regime::Ranging);
    // One 5-minute bar jumps 3 % and comes straight back.
    for row in prices.iter_mut().skip(STRETCH_MIN + 2).take(5) {
        row.1 *= Decimal::new(103, 2);
    }
    let (views, _) = run(&cfg, &prices);
    let after: Vec<Regime> = views[STRETCH_MIN / 5 - 2..]
        .iter()
        .map(|(v, _)| v.label)
        .collect();
    assert!(after.iter().all(|l| *l == Regime::Ranging), "{after:?}");
}

#[test]
fn a_longer_dwell_delays_the_change() {
    let stretches = [Regime::Ranging, Regime::Bullish];
    let prices = synthetic(8, &stretches);
    let switch_at = STRETCH_MIN / 5; // first return of the bullish stretch
    let change = |dwell: u32| {
        let mut c = cfg();
        c.regime.dwell = dwell;
        let (views, _) = run(&c, &prices);
        views
            .iter()
            .enumerate()
            .skip(switch_at - 1)
            .find(|(_, (v, _))| v.label == Regime::Bullish)
            .map(|(i, _)| i)
            .expect("detects the bull run")
    };
    let quick = change(1);
    let slow = change(20);
    assert!(quick >= switch_at - 1);
    assert!(slow >= quick + 19, "dwell 1 at {quick}, dwell 20 at {slow}");
}

#[test]
fn override_forces_the_label_until_it_expires() {
    let cfg = cfg();
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let now = 1_000;
    assert_eq!(
        d.set_override(Regime::Bullish, now, now),
        Err(crate::healing::OverrideError::ExpiryNotInFuture { until: now, now })
    );
    assert_eq!(
        d,
        RegimeDetector::new(cfg.regime.clone()),
        "refusal changes nothing"
    );
    d.set_override(Regime::Ranging, now + 600, now)
        .expect("valid");
    let v = d.view(now);
    assert_eq!(v.label, Regime::Ranging);
    assert_eq!(v.overridden, Some(now + 600));
    assert!(!v.ready, "the model itself is still not ready");
    assert_eq!(d.view(now + 599).label, Regime::Ranging);
    let v = d.view(now + 600);
    assert_eq!(v.label, Regime::Unknown);
    assert_eq!(v.overridden, None);
    assert_eq!(d.expire_override(now + 599), None);
    let gone = d.expire_override(now + 600).expect("expired");
    assert_eq!(gone.regime, Regime::Ranging);
    assert_eq!(d.active_override(now), None);
    d.set_override(Regime::Bearish, now + 10, now)
        .expect("valid");
    assert_eq!(d.clear_override().map(|o| o.regime), Some(Regime::Bearish));
    assert_eq!(d.view(now).overridden, None);
}

#[test]
fn a_restarted_history_resets_the_model_but_keeps_the_override() {
    let cfg = cfg();
    let prices = synthetic(10, &[Regime::Bullish]);
    let (_, mut d) = run(&cfg, &prices);
    assert!(d.model().is_some());
    let now = prices.last().expect("prices").0;
    d.set_override(Regime::Ranging, now + 3600, now)
        .expect("valid");
    let mut fresh = MarketHistory::new(&cfg);
    fresh.observe(now, Decimal::ONE).expect("valid");
    let u = d.update(&fresh);
    assert_eq!(u.returns, 0);
    assert!(
        d.model().is_none(),
        "a restarted history cannot extend the old fit"
    );
    let v = d.view(now);
    assert_eq!(v.label, Regime::Ranging);
    assert_eq!(v.overridden, Some(now + 3600));
    assert!(!v.ready);
}

/// Share of time per regime on real DOGE/USDT 5-minute candles of 2024
/// (read by path, never copied). `cargo test -p trader-service --lib
/// healing::regime_tests::real -- --ignored --nocapture`
#[test]
#[ignore = "reads /work/shared/data; run by hand"]
fn real_doge_2024_regime_shares() {
    let path = "/work/shared/data/doge-usdt-5m-2024.csv";
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("{path} not found; skipped");
        return;
    };
    let cfg = cfg();
    let mut h = MarketHistory::new(&cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let mut counts = [0usize; 4];
    let mut changes = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (Ok(t), Ok(p)) = (f[0].parse::<i64>(), f[4].parse::<Decimal>()) else {
            continue;
        };
        h.observe(t, p).expect("valid candle");
        if d.update(&h).changed.is_some() {
            changes += 1;
        }
        let l = d.view(t).label;
        let i = Regime::ALL.iter().position(|r| *r == l).expect("label");
        counts[i] += 1;
    }
    let n: usize = counts.iter().sum();
    for (r, c) in Regime::ALL.iter().zip(counts) {
        eprintln!("{r}: {:.1} %", 100.0 * c as f64 / n as f64);
    }
    eprintln!("{n} candles, {changes} label changes");
    assert!(n > 0);
}
