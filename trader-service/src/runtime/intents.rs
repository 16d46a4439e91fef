//! The placement rule after an ambiguous AddOrder, as pure decisions.
//!
//! Kraken may accept an order long after answering `EService:Busy` (or
//! after a timeout, a lost response, a 5xx), and enforces `cl_ord_id`
//! uniqueness only among *open* orders, so an order that filled at once
//! does not stop a second copy. The rule therefore lives here, once, and
//! the exchange client never repeats an ambiguous send: an intent whose
//! outcome is unknown is looked up by `cl_ord_id` among open **and**
//! closed orders; it is adopted when found, and placed again only after
//! the exchange's stale window has passed *and* enough lookups found
//! nothing. An intent the exchange refused as a duplicate exists, so it is
//! never placed again. The intent itself is persisted with the runtime
//! book, so a crash in between keeps the same rule.

use serde::{Deserialize, Serialize};

/// How long an ambiguous placement may still turn up on the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StalePolicy {
    /// Milliseconds (of the loop's clock) after the last send during which
    /// the order may still appear.
    pub window_ms: i64,
    /// Lookups that must have found nothing before placing again, so a
    /// clock jump alone never re-places.
    pub min_lookups: u32,
}

impl Default for StalePolicy {
    /// 60 s and two empty lookups.
    fn default() -> Self {
        Self {
            window_ms: 60_000,
            min_lookups: 2,
        }
    }
}

impl StalePolicy {
    /// A window of `window_ms` for a loop that looks once every
    /// `poll_ms`: it must pass on the loop's clock *and* in lookups (as
    /// many as the window holds polls, at least two). Why both: the delays
    /// behind an ambiguous answer (a send still in flight, a replica that
    /// lags) are physical time, while the loop's clock is the exchange's,
    /// which may run ahead of it (a clock that jumps forward, a simulator
    /// replaying history at speed). Counted in polls, the window is never
    /// shorter than it would be on a clock that keeps time.
    #[must_use]
    pub fn for_loop(window_ms: i64, poll_ms: i64) -> Self {
        let polls = if poll_ms > 0 {
            window_ms.div_euclid(poll_ms) + i64::from(window_ms.rem_euclid(poll_ms) > 0)
        } else {
            0
        };
        Self {
            window_ms,
            min_lookups: u32::try_from(polls).unwrap_or(u32::MAX).max(2),
        }
    }
}

/// A placement committed before the exchange heard of it (write-ahead),
/// whose outcome is not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "IntentRepr")]
pub struct PlacementIntent {
    /// Unix ms of the last send (or of the intent, before any send).
    pub attempted_at: i64,
    /// Lookups since that send that found nothing.
    #[serde(default)]
    pub empty_lookups: u32,
    /// The exchange refused a copy as a duplicate: the order exists.
    #[serde(default)]
    pub exists: bool,
}

/// Stored form: older states kept only the intent time.
#[derive(Deserialize)]
#[serde(untagged)]
enum IntentRepr {
    Time(i64),
    Full {
        attempted_at: i64,
        #[serde(default)]
        empty_lookups: u32,
        #[serde(default)]
        exists: bool,
    },
}

impl From<IntentRepr> for PlacementIntent {
    fn from(r: IntentRepr) -> Self {
        match r {
            IntentRepr::Time(t) => Self::sent(t),
            IntentRepr::Full {
                attempted_at,
                empty_lookups,
                exists,
            } => Self {
                attempted_at,
                empty_lookups,
                exists,
            },
        }
    }
}

impl PlacementIntent {
    /// An intent (about to be) sent at `at`.
    #[must_use]
    pub fn sent(at: i64) -> Self {
        Self {
            attempted_at: at,
            empty_lookups: 0,
            exists: false,
        }
    }
}

/// What to do with an unresolved intent after one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentDecision {
    /// The order exists under this txid: track it, never place again.
    Adopt(String),
    /// Not found yet and it may still appear: keep the intent, place
    /// nothing, look again next loop.
    Wait(PlacementIntent),
    /// The stale window passed with nothing found: the earlier sends had no
    /// effect, the intent may be placed again.
    PlaceAgain,
}

/// Decides an unresolved intent from one lookup (`found`: the txid of the
/// order carrying its `cl_ord_id`, if any) at `now_ms`.
#[must_use]
pub fn decide(
    intent: PlacementIntent,
    found: Option<&str>,
    now_ms: i64,
    policy: StalePolicy,
) -> IntentDecision {
    if let Some(txid) = found {
        return IntentDecision::Adopt(txid.to_owned());
    }
    let looked = PlacementIntent {
        empty_lookups: intent.empty_lookups.saturating_add(1),
        ..intent
    };
    let stale = now_ms.saturating_sub(intent.attempted_at) >= policy.window_ms
        && looked.empty_lookups >= policy.min_lookups;
    if stale && !intent.exists {
        IntentDecision::PlaceAgain
    } else {
        IntentDecision::Wait(looked)
    }
}

/// Start of the lookback for closed orders that may carry an intent's
/// `cl_ord_id`: the send time less the stale window (clocks differ a
/// little, and a restored intent's send time is approximate).
#[must_use]
pub fn lookup_since(intent: PlacementIntent, policy: StalePolicy) -> i64 {
    intent.attempted_at.saturating_sub(policy.window_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: StalePolicy = StalePolicy {
        window_ms: 60_000,
        min_lookups: 2,
    };

    /// Proves: a found order is adopted whatever the window says.
    #[test]
    fn found_is_adopted() {
        let i = PlacementIntent::sent(0);
        assert_eq!(
            decide(i, Some("T1"), 1, P),
            IntentDecision::Adopt("T1".into())
        );
        let dup = PlacementIntent { exists: true, ..i };
        assert_eq!(
            decide(dup, Some("T2"), 10_000_000, P),
            IntentDecision::Adopt("T2".into())
        );
    }

    /// Proves: nothing found inside the window, or with too few lookups,
    /// waits (counting the lookup); only both conditions place again.
    #[test]
    fn placing_again_needs_the_window_and_the_lookups() {
        let i = PlacementIntent::sent(1_000);
        let IntentDecision::Wait(i1) = decide(i, None, 2_000, P) else {
            panic!("inside the window must wait")
        };
        assert_eq!(i1.empty_lookups, 1);
        // The window passed but only one lookup ever happened: wait.
        let fresh = PlacementIntent::sent(1_000);
        assert!(matches!(
            decide(fresh, None, 1_000_000, P),
            IntentDecision::Wait(_)
        ));
        // Second empty lookup, window not passed: wait.
        assert!(matches!(
            decide(i1, None, 60_999, P),
            IntentDecision::Wait(_)
        ));
        assert_eq!(decide(i1, None, 61_000, P), IntentDecision::PlaceAgain);
    }

    /// Proves: a loop's window holds as many lookups as polls fit in it
    /// (never fewer than two), so a clock running ahead of real time does
    /// not shorten it: at one poll per 5 s, 60 s on an exchange clock that
    /// ran an hour per poll still takes twelve empty lookups.
    #[test]
    fn a_fast_clock_does_not_shorten_the_window() {
        let p = StalePolicy::for_loop(60_000, 5_000);
        assert_eq!(p.min_lookups, 12);
        assert_eq!(StalePolicy::for_loop(60_000, 7_000).min_lookups, 9);
        assert_eq!(StalePolicy::for_loop(60_000, 60_000).min_lookups, 2);
        assert_eq!(StalePolicy::for_loop(60_000, 0).min_lookups, 2);
        let mut i = PlacementIntent::sent(0);
        for n in 1..12 {
            let now = n * 3_600_000;
            let IntentDecision::Wait(next) = decide(i, None, now, p) else {
                panic!("lookup {n} of 12 must wait");
            };
            i = next;
        }
        assert_eq!(
            decide(i, None, 12 * 3_600_000, p),
            IntentDecision::PlaceAgain
        );
    }

    /// Proves: an intent the exchange refused as a duplicate is never
    /// placed again, however long nothing is found.
    #[test]
    fn duplicate_refusal_never_places_again() {
        let i = PlacementIntent {
            exists: true,
            empty_lookups: 50,
            ..PlacementIntent::sent(0)
        };
        assert!(matches!(
            decide(i, None, i64::MAX, P),
            IntentDecision::Wait(_)
        ));
    }

    /// Proves: older stored states (intent time only) still load, and the
    /// full form round-trips.
    #[test]
    fn stored_forms_load() {
        let old: PlacementIntent = serde_json::from_str("1234").unwrap();
        assert_eq!(old, PlacementIntent::sent(1234));
        let i = PlacementIntent {
            attempted_at: 5,
            empty_lookups: 3,
            exists: true,
        };
        let back: PlacementIntent =
            serde_json::from_str(&serde_json::to_string(&i).unwrap()).unwrap();
        assert_eq!(back, i);
        assert_eq!(lookup_since(i, P), 5 - 60_000);
    }
}
