//! Property tests of the healing path on arbitrary inputs:
//! - any observation stream (gaps, jumps, repeated times, refused bad
//!   prices) keeps every return finite, the windows bounded, and the
//!   detector's view finite, with posteriors summing to 1 when ready;
//! - any measured ratio, base and fee gives a target on the 0.01 grid,
//!   never below the fee floor and never above the cap unless the floor
//!   demands it.

use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::healing::target::{CAP_PCT, target_from_ratio};
use crate::healing::{HealingConfig, MarketHistory, RegimeDetector};

fn small_config() -> HealingConfig {
    let mut c = HealingConfig::default();
    c.regime.window = 48;
    c.regime.min_returns = 24;
    c.regime.refit_every = 4;
    c.validate().0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_observation_stream_stays_finite_and_bounded(
        steps in prop::collection::vec((0i64..900, -3000i64..3000, any::<bool>()), 1..600)
    ) {
        let cfg = small_config();
        let mut h = MarketHistory::new(&cfg);
        let mut d = RegimeDetector::new(cfg.regime.clone());
        let (mut t, mut p) = (0i64, Decimal::ONE);
        for (dt, bp, bad) in steps {
            t += dt;
            // Moves of up to +-30 % per step, never below a tiny positive price.
            p = (p * (Decimal::ONE + Decimal::new(bp, 4))).max(Decimal::new(1, 8));
            if bad {
                let before = h.clone();
                prop_assert!(h.observe(t, -p).is_err());
                prop_assert_eq!(&h, &before);
            }
            h.observe(t, p).expect("valid observation");
            d.update(&h);
            prop_assert!(h.returns_5m().len() <= cfg.regime.window);
            prop_assert!(h.returns_5m().iter().all(|r| r.is_finite()));
            let v = d.view(t);
            prop_assert!(v.confidence.is_finite());
            prop_assert!(v.posteriors.iter().all(|x| x.is_finite() && *x >= 0.0));
            if v.ready {
                let s: f64 = v.posteriors.iter().sum();
                prop_assert!((s - 1.0).abs() < 1e-6, "{:?}", v);
            } else {
                prop_assert!(!v.label.is_known());
            }
        }
    }

    #[test]
    fn any_target_is_on_the_grid_within_floor_and_cap(
        ratio in prop_oneof![Just(None), (-1.0f64..10.0).prop_map(Some)],
        base_c in 1i64..10_000,
        fee_c in 0i64..1_000,
    ) {
        let base = Decimal::new(base_c, 3);
        let fee = Decimal::new(fee_c, 3);
        let t = target_from_ratio(base, fee, ratio).expect("valid inputs");
        let floor = fee + Decimal::new(1, 1);
        prop_assert_eq!(t.pct, t.pct.round_dp(2));
        prop_assert!(t.pct >= floor, "{:?}", t);
        prop_assert!(t.pct <= CAP_PCT.max(t.explain.floor_pct), "{:?}", t);
        prop_assert!(t.explain.scale >= Decimal::new(5, 1) && t.explain.scale <= Decimal::TWO);
    }
}
