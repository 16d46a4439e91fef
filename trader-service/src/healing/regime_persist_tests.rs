//! Round trips of the stored regime state through JSON, its size bound and
//! the refusal of stored copies that do not fit.

use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use serde_json::Value;

use super::*;
use crate::healing::Regime;

const T0: i64 = 1_704_067_200;

fn small() -> HealingConfig {
    let mut c = HealingConfig::default();
    c.regime.window = 48;
    c.regime.min_returns = 24;
    c.regime.refit_every = 6;
    c.regime.dwell = 2;
    c.validate().0
}

/// A mean-reverting price every `step` seconds from `T0` (deterministic).
fn price(i: i64) -> Decimal {
    let x = 0.004 * (i as f64 * 1.3).sin() + 0.002 * (i as f64 * 0.37).cos();
    Decimal::from_f64(100.0 * x.exp())
        .expect("finite")
        .round_dp(6)
}

/// The store as the runtime keeps it: the JSON of both records and the
/// durable checkpoint total.
#[derive(Default)]
struct Stored {
    checkpoint: Option<String>,
    progress: Option<String>,
    checkpoint_total: Option<u64>,
}

impl Stored {
    fn commit(&mut self, h: &MarketHistory, d: &RegimeDetector) -> RegimeSave {
        let s = save(h, d, self.checkpoint_total);
        if let Some(c) = &s.checkpoint {
            self.checkpoint = Some(serde_json::to_string(c).expect("encode"));
        }
        self.progress = Some(serde_json::to_string(&s.progress).expect("encode"));
        self.checkpoint_total = Some(s.checkpoint_total());
        s
    }

    fn load(
        &self,
        config: &HealingConfig,
    ) -> Result<(MarketHistory, RegimeDetector), RestoreError> {
        let c: WindowCheckpoint =
            serde_json::from_str(self.checkpoint.as_deref().expect("checkpoint")).expect("decode");
        let p: RegimeProgress =
            serde_json::from_str(self.progress.as_deref().expect("progress")).expect("decode");
        restore(config, &c, p)
    }
}

/// Feeds observations `from..to` (one a minute, a new price every five),
/// committing after each as the runtime does after each loop.
fn feed(h: &mut MarketHistory, d: &mut RegimeDetector, st: &mut Stored, from: i64, to: i64) {
    for i in from..to {
        h.observe(T0 + 60 * i, price(i / 5 + i % 5)).expect("valid");
        d.update(h);
        st.commit(h, d);
    }
}

/// Proves: a detector restored from its JSON records equals the one that
/// was saved (model, filter, consensus and dwell), sees the same window,
/// and keeps evolving identically on the same later prices, mid-bar
/// included.
#[test]
fn a_restored_detector_continues_bit_for_bit() {
    let cfg = small();
    let mut h = MarketHistory::new(&cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let mut st = Stored::default();
    // 63 bars and two minutes into the next one: past the first fit and
    // several refits, the window full, a checkpoint and a tail on record.
    feed(&mut h, &mut d, &mut st, 0, 5 * 63 + 2);
    let now = T0 + 60 * (5 * 63 + 1);
    assert!(d.view(now).ready, "{:?}", d.view(now));
    assert_ne!(d.view(now).label, Regime::Unknown);
    assert!(h.returns_5m().len() == cfg.regime.window);
    let (mut h2, mut d2) = st.load(&cfg).expect("restores");
    assert_eq!(d2, d);
    assert_eq!(h2.returns_5m(), h.returns_5m());
    assert_eq!(h2.regime_bars(), h.regime_bars());
    assert_eq!(d2.view(now), d.view(now));
    let mut st2 = Stored::default();
    for i in 5 * 63 + 2..5 * 90 {
        let (t, p) = (T0 + 60 * i, price(i / 5 + i % 5));
        h.observe(t, p).expect("valid");
        h2.observe(t, p).expect("valid");
        assert_eq!(d.update(&h), d2.update(&h2));
        assert_eq!(d2, d, "minute {i}");
        assert_eq!(d2.view(t), d.view(t));
        st2.commit(&h2, &d2);
    }
}

/// Proves: the profit target's 1-minute moves come back whole, the
/// checkpoint's and those the progress record saw since, so the
/// volatility scale after a restart is the one before it (not the base
/// for `baseline_min_minutes`, nor a scale an hour old); a stored move
/// that is not a finite absolute value is refused, as is a progress record
/// older than its checkpoint; records written before the progress carried
/// moves restore the checkpoint's.
#[test]
fn the_moves_come_back_whole() {
    let cfg = small();
    let mut h = MarketHistory::new(&cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let mut st = Stored::default();
    feed(&mut h, &mut d, &mut st, 0, 5 * 90 + 3);
    assert!(h.move_stats().is_some(), "enough moves before the restart");
    let checkpoint: WindowCheckpoint =
        serde_json::from_str(st.checkpoint.as_deref().expect("written")).expect("decode");
    assert!(checkpoint.moves.len() >= cfg.target.baseline_min_minutes);
    assert!(
        checkpoint.moves_total < h.moves_total(),
        "moves came after the checkpoint"
    );
    let (h2, _) = st.load(&cfg).expect("restores");
    assert_eq!(h2.moves(), h.moves());
    assert_eq!(h2.moves_total(), h.moves_total());
    assert_eq!(h2.move_stats(), h.move_stats(), "the scale is the same");

    let progress: Value = serde_json::from_str(st.progress.as_deref().expect("written")).unwrap();
    let c: Value = serde_json::from_str(st.checkpoint.as_deref().expect("written")).unwrap();
    let mut old = progress.clone();
    let o = old.as_object_mut().expect("object");
    o.remove("moves_total");
    o.remove("recent_moves");
    let (h3, _) = restore(
        &cfg,
        &serde_json::from_value(c.clone()).unwrap(),
        serde_json::from_value(old).unwrap(),
    )
    .expect("an older progress record restores");
    assert_eq!(h3.moves(), checkpoint.moves.as_slice());
    let mut behind = progress;
    behind["moves_total"] = (checkpoint.moves_total - 1).into();
    assert!(matches!(
        restore(
            &cfg,
            &serde_json::from_value(c).unwrap(),
            serde_json::from_value(behind).unwrap()
        ),
        Err(RestoreError::Inconsistent { .. })
    ));
    assert_eq!(
        MarketHistory::new(&cfg).move_stats(),
        None,
        "a fresh history would wait"
    );

    let (cfg, c, p) = stored_values();
    let mut v = c.clone();
    v["moves"][0] = (-0.001).into();
    assert!(matches!(
        try_restore(&cfg, &v, &p),
        Err(RestoreError::Inconsistent { .. })
    ));
    let mut v = c;
    v.as_object_mut().expect("object").remove("moves");
    try_restore(&cfg, &v, &p).expect("an older checkpoint restores without moves");
}

/// Proves: the record written per return carries at most [`TAIL_MAX`]
/// returns and stays around a kilobyte, while the whole window is written
/// only once every `TAIL_MAX + 1` returns. Sizes are for the default
/// settings (a 288-return window).
#[test]
fn the_per_return_record_stays_small() {
    let cfg = HealingConfig::default().validate().0;
    let mut h = MarketHistory::new(&cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let mut st = Stored::default();
    let (mut checkpoints, mut progress_max, mut checkpoint_max) = (0, 0, 0);
    for i in 0..5 * 400 {
        h.observe(T0 + 60 * i, price(i / 5)).expect("valid");
        if d.update(&h).returns == 0 {
            continue;
        }
        let s = st.commit(&h, &d);
        assert!(s.progress.tail.len() <= TAIL_MAX);
        if let Some(c) = &s.checkpoint {
            checkpoints += 1;
            checkpoint_max = checkpoint_max.max(serde_json::to_string(c).expect("encode").len());
        }
        let len = st.progress.as_ref().expect("written").len();
        progress_max = progress_max.max(len);
    }
    assert!(d.model().is_some());
    // 399 returns: one checkpoint per 13.
    assert_eq!(checkpoints, 399usize.div_ceil(TAIL_MAX + 1));
    // The detector and bars, up to TAIL_MAX returns and MOVE_TAIL_MAX
    // moves, about 25 bytes a number.
    assert!(
        progress_max < 2_000 + MOVE_TAIL_MAX * 25,
        "progress record {progress_max} bytes"
    );
    // The window and a day of 1-minute moves, about 25 bytes a number.
    assert!(
        checkpoint_max < (288 + 1440) * 25,
        "checkpoint {checkpoint_max} bytes"
    );
    println!("regime progress <= {progress_max} B, window checkpoint <= {checkpoint_max} B");
}

/// Stored records of a ready detector as JSON values, for tampering.
fn stored_values() -> (HealingConfig, Value, Value) {
    let cfg = small();
    let mut h = MarketHistory::new(&cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let mut st = Stored::default();
    feed(&mut h, &mut d, &mut st, 0, 5 * 40);
    assert!(d.model().is_some());
    let c = serde_json::from_str(st.checkpoint.as_deref().expect("written")).expect("json");
    let p = serde_json::from_str(st.progress.as_deref().expect("written")).expect("json");
    (cfg, c, p)
}

fn try_restore(cfg: &HealingConfig, c: &Value, p: &Value) -> Result<RegimeDetector, RestoreError> {
    let c: WindowCheckpoint = serde_json::from_value(c.clone()).expect("shape");
    let p: RegimeProgress = serde_json::from_value(p.clone()).expect("shape");
    restore(cfg, &c, p).map(|(_, d)| d)
}

/// Proves: stored records that the configuration in force, or each
/// other, contradict are refused with the reason, never half restored.
#[test]
fn records_that_do_not_fit_are_refused() {
    let (cfg, c, p) = stored_values();
    try_restore(&cfg, &c, &p).expect("untouched records restore");

    let mut other = cfg.clone();
    other.regime.window = 96;
    assert_eq!(
        try_restore(&other, &c, &p),
        Err(RestoreError::ConfigChanged)
    );

    let mut v = p.clone();
    v["version"] = 99.into();
    assert!(matches!(
        try_restore(&cfg, &c, &v),
        Err(RestoreError::Version { found: 99, .. })
    ));

    let mut v = p.clone();
    v["tail"].as_array_mut().expect("tail").push(0.001.into());
    assert!(matches!(
        try_restore(&cfg, &c, &v),
        Err(RestoreError::Inconsistent { .. })
    ));

    let mut v = c.clone();
    v["returns"].as_array_mut().expect("returns").pop();
    assert!(matches!(
        try_restore(&cfg, &v, &p),
        Err(RestoreError::Inconsistent { .. })
    ));

    let mut v = p.clone();
    v["detector"]["model"]["var"][1] = (-1.0).into();
    assert!(matches!(
        try_restore(&cfg, &c, &v),
        Err(RestoreError::Inconsistent { what: "model" })
    ));

    let mut v = p.clone();
    v["detector"]["posterior"] = serde_json::json!([0.5, 0.5, 0.5]);
    assert!(matches!(
        try_restore(&cfg, &c, &v),
        Err(RestoreError::Inconsistent { what: "model" })
    ));

    let mut v = p.clone();
    v["detector"]["seen"] = 1.into();
    assert!(matches!(
        try_restore(&cfg, &c, &v),
        Err(RestoreError::Inconsistent { .. })
    ));

    // A NaN cannot be written as JSON (it becomes null, which does not
    // decode as a number); one built in memory is refused too.
    let mut checkpoint: WindowCheckpoint = serde_json::from_value(c.clone()).expect("shape");
    checkpoint.returns[3] = f64::NAN;
    let progress: RegimeProgress = serde_json::from_value(p.clone()).expect("shape");
    assert_eq!(
        restore(&cfg, &checkpoint, progress).map(|_| ()),
        Err(RestoreError::NonFinite { what: "return" })
    );
    let mut v = p.clone();
    v["detector"]["posterior"][0] = Value::Null;
    assert!(serde_json::from_value::<RegimeProgress>(v).is_err());
}

/// Proves: an operator override stored inside the detector is not brought
/// back (the runtime restores the one its book holds).
#[test]
fn the_override_is_left_to_the_book() {
    let (cfg, c, p) = stored_values();
    let c2: WindowCheckpoint = serde_json::from_value(c).expect("shape");
    let mut p2: RegimeProgress = serde_json::from_value(p).expect("shape");
    p2.detector
        .set_override(Regime::Bullish, T0 + 1_000_000, T0)
        .expect("future");
    let (_, d) = restore(&cfg, &c2, p2).expect("restores");
    assert_eq!(d.active_override(T0), None);
}
