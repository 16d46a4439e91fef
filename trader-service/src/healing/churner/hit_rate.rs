//! The churner's hit-rate gate: churn only while churning works.
//!
//! A round trip whose exit misses `CHURNER_EXIT_TIMEOUT_SEC` is handed over
//! to its slot as a sticky position: its capital is stuck and that slot's
//! churner pauses until it closes. A completed round trip earns about 0.1 %
//! of its size. Where the market does not come back within the exit
//! timeout (a drift the regime detector cannot see at 5-minute scale, a
//! quiet book), the churner produces stuck positions faster than subsidy:
//! on the real histories the backtest was run on, about half of the round
//! trips at default settings were handed over, and their positions made up
//! close to half of a stage D run's stuck capital.
//!
//! So the churner keeps score of its last `CHURNER_HIT_WINDOW` outcomes
//! (completed or handed over). When the misses exceed what
//! `CHURNER_MIN_HIT_PCT` allows in a window, every slot's churner cools off
//! for `CHURNER_COOLOFF_SEC`, doubled for each cool-off in a row (capped at
//! [`MAX_COOLOFF_SEC`]); the score starts afresh after it. A full window
//! within the allowance ends the doubling. An operator's spawn is not held
//! back.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The longest cool-off, whatever the count (30 days).
pub const MAX_COOLOFF_SEC: i64 = 30 * 86_400;

/// The gate's tunables (`CHURNER_HIT_WINDOW`, `CHURNER_MIN_HIT_PCT`,
/// `CHURNER_COOLOFF_SEC`), already clamped by the configuration layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HitGate {
    /// Outcomes judged together (1..=100).
    pub window: u32,
    /// Completed share of a window the churner must keep, percent
    /// (0..=100); 0 turns the gate off.
    pub min_hit_pct: u32,
    /// First cool-off, seconds.
    pub cooloff_sec: i64,
}

impl HitGate {
    /// The defaults: at most 2 hand-overs in the last 10 round trips, a
    /// day's cool-off.
    pub const DEFAULT: Self = Self {
        window: 10,
        min_hit_pct: 80,
        cooloff_sec: 86_400,
    };

    /// Hand-overs a window may hold without a cool-off.
    #[must_use]
    pub fn allowed_misses(&self) -> usize {
        (self.window * (100 - self.min_hit_pct.min(100)) / 100) as usize
    }

    /// Cool-off after `in_a_row` earlier ones without a good window since:
    /// `cooloff_sec x 2^in_a_row`, capped.
    #[must_use]
    pub fn cooloff(&self, in_a_row: u32) -> i64 {
        self.cooloff_sec
            .saturating_mul(1_i64 << in_a_row.min(20))
            .min(MAX_COOLOFF_SEC)
    }
}

impl Default for HitGate {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The score: recent outcomes and the cool-off in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HitRecord {
    /// Recent outcomes, oldest first (`true` = completed).
    recent: VecDeque<bool>,
    /// Cool-offs since the last good window.
    pub cooloffs_in_a_row: u32,
    /// The churner cools off until then (unix seconds).
    pub cooling_until: Option<i64>,
}

impl HitRecord {
    /// Scores a completed round trip (it can only end the doubling).
    pub fn completed(&mut self, gate: &HitGate) {
        if gate.min_hit_pct == 0 {
            return;
        }
        self.push(true, gate);
        if self.recent.len() >= gate.window as usize && self.misses() <= gate.allowed_misses() {
            self.cooloffs_in_a_row = 0;
        }
    }

    /// Scores a round trip handed over at `now`; returns the end of the
    /// cool-off it started, if it started one.
    pub fn handed_over(&mut self, now: i64, gate: &HitGate) -> Option<i64> {
        if gate.min_hit_pct == 0 {
            return None;
        }
        self.push(false, gate);
        if self.misses() <= gate.allowed_misses() {
            return None;
        }
        let until = now.saturating_add(gate.cooloff(self.cooloffs_in_a_row));
        self.cooloffs_in_a_row = self.cooloffs_in_a_row.saturating_add(1);
        self.recent.clear();
        self.cooling_until = Some(until);
        Some(until)
    }

    fn push(&mut self, hit: bool, gate: &HitGate) {
        self.recent.push_back(hit);
        while self.recent.len() > gate.window as usize {
            self.recent.pop_front();
        }
    }

    /// Whether the churner cools off at `now`.
    #[must_use]
    pub fn cooling(&self, now: i64) -> bool {
        self.cooling_until.is_some_and(|t| now < t)
    }

    /// Hand-overs among the scored outcomes.
    #[must_use]
    pub fn misses(&self) -> usize {
        self.recent.iter().filter(|hit| !**hit).count()
    }

    /// Outcomes scored since the last cool-off (at most the window).
    #[must_use]
    pub fn scored(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::healing::churner::tests::{
        cfg, entry_of, exit_of, fill_all, inputs, pair, place, stuck,
    };
    use crate::healing::churner::{
        ChurnBook, ChurnStage, ManualCommand, PauseReason, manual, plan,
    };

    const DAY: i64 = 86_400;

    fn gate() -> HitGate {
        HitGate::DEFAULT
    }

    /// Proves: two hand-overs in ten are tolerated, the third starts a
    /// day's cool-off and clears the score.
    #[test]
    fn the_third_miss_in_a_window_starts_a_cool_off() {
        let mut r = HitRecord::default();
        let g = gate();
        assert_eq!(g.allowed_misses(), 2);
        assert_eq!(r.handed_over(1, &g), None);
        r.completed(&g);
        assert_eq!(r.handed_over(2, &g), None);
        assert!(!r.cooling(10));
        assert_eq!(r.handed_over(100, &g), Some(100 + DAY));
        assert!(r.cooling(100) && r.cooling(100 + DAY - 1));
        assert!(!r.cooling(100 + DAY), "over at its end");
        assert_eq!((r.scored(), r.cooloffs_in_a_row), (0, 1));
    }

    /// Proves: cool-offs in a row double (capped at 30 days); a full good
    /// window ends the doubling.
    #[test]
    fn cool_offs_in_a_row_double_until_a_good_window() {
        let mut r = HitRecord::default();
        let g = gate();
        let trip =
            |r: &mut HitRecord, now: i64| (0..3).filter_map(|_| r.handed_over(now, &g)).last();
        assert_eq!(trip(&mut r, 0), Some(DAY));
        assert_eq!(trip(&mut r, 0), Some(2 * DAY));
        assert_eq!(trip(&mut r, 0), Some(4 * DAY));
        for _ in 0..9 {
            r.completed(&g);
        }
        assert_eq!(r.cooloffs_in_a_row, 3, "nine are not a window yet");
        r.completed(&g);
        assert_eq!(r.cooloffs_in_a_row, 0, "a good window");
        assert_eq!(trip(&mut r, 0), Some(DAY));
        assert_eq!(g.cooloff(30), MAX_COOLOFF_SEC);
    }

    /// Proves: old misses slide out of the window; a minimum of 0 turns
    /// the gate off.
    #[test]
    fn misses_slide_out_and_zero_turns_it_off() {
        let mut r = HitRecord::default();
        let g = gate();
        r.handed_over(0, &g);
        r.handed_over(0, &g);
        for _ in 0..10 {
            r.completed(&g);
        }
        assert_eq!(r.misses(), 0, "both left the window");
        assert_eq!(r.handed_over(0, &g), None);
        let off = HitGate {
            min_hit_pct: 0,
            ..g
        };
        let mut r = HitRecord::default();
        for _ in 0..50 {
            assert_eq!(r.handed_over(0, &off), None);
        }
        assert!(!r.cooling(0));
    }

    /// One round trip of slot 0 from `t`: entry placed and filled, exit
    /// placed, handed over at its timeout, then filled (the slot is free
    /// again).
    fn handed_over_round_trip(book: &mut ChurnBook, t: i64) {
        let (c, p) = (cfg(), pair());
        let slots = [stuck(0)];
        plan(book, &inputs(&c, &p, t, dec!(0.1), &slots));
        let e = entry_of(book, 0);
        place(book, &e, &format!("TE{t}"));
        fill_all(book, &e, e.price, t + 10, dec!(1));
        let x = exit_of(book, 0);
        place(book, &x, &format!("TX{t}"));
        plan(
            book,
            &inputs(&c, &p, t + 10 + c.exit_timeout_sec, dec!(0.1), &slots),
        );
        assert!(matches!(
            book.slots[&0].stage,
            ChurnStage::HandedOver { .. }
        ));
        let x = exit_of(book, 0);
        fill_all(book, &x, x.price, t + 700, dec!(1));
        assert!(matches!(book.slots[&0].stage, ChurnStage::Idle));
    }

    /// Proves, through the churner's plan: after three round trips handed
    /// over, no slot's churner enters again until the cool-off ends, and
    /// the status says why; an operator's spawn is not held back.
    #[test]
    fn plan_holds_every_churner_while_cooling_off() {
        let (c, p) = (cfg(), pair());
        let slots = [stuck(0)];
        let mut book = ChurnBook::default();
        for t in [1_000, 2_000, 3_000] {
            handed_over_round_trip(&mut book, t);
        }
        assert_eq!(book.hits.cooling_until, Some(3_610 + DAY));
        assert!(super::super::dormant(&book, 4_000, true));
        let before = book.clone();
        assert!(
            plan(&mut book, &inputs(&c, &p, 4_000, dec!(0.1), &slots)).is_empty(),
            "dormant: plan acts on nothing"
        );
        assert_eq!(book.slots[&0].stage, before.slots[&0].stage);
        assert!(matches!(book.slots[&0].stage, ChurnStage::Idle), "no entry");
        assert_eq!(book.slots[&0].paused, Some(PauseReason::LowHitRate));
        assert_eq!(PauseReason::LowHitRate.as_str(), "low_hit_rate");

        let mut spawned = book.clone();
        manual(&mut spawned, &c, 4_000, 0, ManualCommand::Spawn).unwrap();
        assert!(
            !super::super::dormant(&spawned, 4_001, true),
            "a command wakes it"
        );
        plan(&mut spawned, &inputs(&c, &p, 4_001, dec!(0.1), &slots));
        assert!(
            matches!(spawned.slots[&0].stage, ChurnStage::Entry { .. }),
            "by hand"
        );

        assert!(!super::super::dormant(&book, 3_610 + DAY, true));
        assert!(
            super::super::dormant(&book, 3_610 + DAY, false),
            "not ranging"
        );
        plan(&mut book, &inputs(&c, &p, 3_610 + DAY, dec!(0.1), &slots));
        assert!(
            matches!(book.slots[&0].stage, ChurnStage::Entry { .. }),
            "after it"
        );
        assert!(
            !super::super::dormant(&book, 3_611 + DAY, false),
            "a churner works"
        );
        assert_eq!(book.slots[&0].paused, None);
    }
}
