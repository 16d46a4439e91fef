//! Operator actions (SPEC §8) through the real gRPC server and the real
//! runtime: the cleanup queue, holds, breakeven (also racing the loop's own
//! reprice), refusals and the regime override. Closes at market are in
//! `operator_close.rs`.

#![allow(missing_docs)]

mod faulty;
mod grid;
mod healing;
mod operator;

use healgrid_proto::trader::v1 as pb;
use ledger_service::{EventDetails, RepriceReason};
use operator::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tonic::Code;

/// Proves, over gRPC: a write-off position is in the cleanup queue with
/// its facts, its slot mode (sticky: the slot's own trade) and actions;
/// KeepHolding hides it (the status shows the hold),
/// journals one `keep_holding` row with the reason, and a retry with the
/// same request id returns the first answer without a second row, also
/// after a trader restart; the same id for another request is refused;
/// ReleaseHold brings it back (and is refused when nothing is held);
/// RepriceToBreakeven moves the exit to entry x 1.005 (no subsidy: reduced
/// profit), journals `operator_action` and `repriced` (reason operator,
/// nothing consumed); a second breakeven has nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_release_and_breakeven_leave_their_history() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    let q = r.queue().await;
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].position_id, id);
    assert_eq!(q[0].exit_price, "0.100798");
    assert!(q[0].age_seconds > 1_700, "{:?}", q[0]);
    assert_eq!(q[0].slot_mode, pb::PositionSlotMode::Sticky as i32);
    assert_eq!(
        q[0].actions,
        ["reprice_to_breakeven", "close_at_market", "keep_holding"]
    );
    // Need: (0.100798 - 0.100299) x volume.
    let volume = r.rt.engine().open_exits().next().unwrap().volume;
    assert_eq!(
        q[0].subsidy_needed.parse::<Decimal>().unwrap(),
        dec!(0.000499) * volume
    );

    let first = r.hold(&id, "hold-1", 3_600).await.unwrap();
    assert!(!first.replayed);
    assert_eq!(first.action, "keep_holding");
    assert_eq!(first.position_id, id);
    r.minutes(1, dec!(0.0990)).await;
    assert!(r.queue().await.is_empty(), "held: out of the queue");
    let s = r.status().await;
    assert_eq!(s.positions.len(), 1);
    let again = r.hold(&id, "hold-1", 3_600).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.message, first.message);
    let other = r.hold(&id, "hold-1", 7_200).await.unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition, "{other:?}");
    assert!(other.message().contains("different request"), "{other:?}");

    r.flush().await;
    r.restart().await;
    let after = r.hold(&id, "hold-1", 3_600).await.unwrap();
    assert!(after.replayed, "the answer survives a restart");
    r.minutes(1, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(r.kinds(&id).await, ["created", "keep_holding"]);
    match &r.journal(&id).await[1] {
        EventDetails::KeepHolding(k) => {
            assert_eq!(k.reason, "waiting for the rebound");
            assert_eq!(k.hold_until.timestamp(), first.at.unwrap().seconds + 3_600);
        }
        other => panic!("{other:?}"),
    }

    // On hold: breakeven is refused with the reason.
    let held = r.breakeven(&id, "be-0").await.unwrap_err();
    assert_eq!(held.code(), Code::FailedPrecondition);
    assert!(held.message().contains("on hold"), "{held:?}");

    r.release(&id, "rel-1").await.unwrap();
    let not_held = r.release(&id, "rel-2").await.unwrap_err();
    assert_eq!(not_held.code(), Code::FailedPrecondition);
    assert!(not_held.message().contains("not on hold"), "{not_held:?}");
    r.minutes(1, dec!(0.0990)).await;
    assert_eq!(r.queue().await.len(), 1, "released: back in the queue");

    let be = r.breakeven(&id, "be-1").await.unwrap();
    assert!(be.message.contains("0.100299"), "{be:?}");
    r.minutes(2, dec!(0.0990)).await;
    assert_eq!(r.exit_price(), dec!(0.100299), "entry 0.0998 x 1.005");
    let nothing = r.breakeven(&id, "be-2").await.unwrap_err();
    assert_eq!(nothing.code(), Code::FailedPrecondition);
    assert!(nothing.message().contains("nothing to do"), "{nothing:?}");
    let replay = r.breakeven(&id, "be-1").await.unwrap();
    assert!(replay.replayed);
    r.minutes(1, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(
        r.kinds(&id).await,
        [
            "created",
            "keep_holding",
            "operator_action",
            "operator_action",
            "repriced"
        ]
    );
    let journal = r.journal(&id).await;
    match (&journal[2], &journal[3], &journal[4]) {
        (
            EventDetails::OperatorAction(a),
            EventDetails::OperatorAction(b),
            EventDetails::Repriced(p),
        ) => {
            assert_eq!(
                (a.action.as_str(), a.operator.as_str()),
                ("release_hold", "alice")
            );
            assert_eq!(b.action, "reprice_to_breakeven");
            assert_eq!(b.reason, "free the capital");
            assert_eq!(p.reason, RepriceReason::Operator);
            assert_eq!(p.new_price, dec!(0.100299));
            assert_eq!(p.subsidy_consumed, Decimal::ZERO);
        }
        other => panic!("{other:?}"),
    }
    // One exit on the book, at the new price.
    let exits: Vec<_> = r
        .paper
        .with_book(|b| b.open_orders())
        .into_iter()
        .filter(|o| faulty::is_exit(o.cl_ord_id.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0].limit_price, Some(dec!(0.100299)));
}

/// Proves, over gRPC: a hold without a window holds for the default 96 h,
/// and exactly 60 s and exactly 30 days are accepted (the journal's
/// `keep_holding` rows carry each end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_window_defaults_to_96h_and_takes_its_bounds() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    let mut expected = Vec::new();
    for (n, secs, lasts) in [(0, 0, 96 * 3_600), (1, 60, 60), (2, 2_592_000, 2_592_000)] {
        let a = r.hold(&id, &format!("hold-{n}"), secs).await.unwrap();
        expected.push(a.at.unwrap().seconds + lasts);
        r.release(&id, &format!("release-{n}")).await.unwrap();
    }
    r.minutes(1, dec!(0.0990)).await;
    r.flush().await;
    let ends: Vec<i64> = r
        .journal(&id)
        .await
        .iter()
        .filter_map(|e| match e {
            EventDetails::KeepHolding(k) => Some(k.hold_until.timestamp()),
            _ => None,
        })
        .collect();
    assert_eq!(ends, expected);
}

/// Proves, over gRPC: while a breakeven's cancel is unconfirmed, and while
/// a close at market is under way, every other action on the exit is
/// refused (FAILED_PRECONDITION naming what is in progress) and sends
/// nothing: one reprice, one market order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_on_a_busy_exit_are_refused_with_the_reason() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    r.breakeven(&id, "be-1").await.unwrap();
    for res in [r.close(&id, "c-0").await, r.breakeven(&id, "be-0").await] {
        let e = res.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains("reprice of exit"), "{e:?}");
        assert!(e.message().contains("in progress"), "{e:?}");
    }
    r.minutes(2, dec!(0.0990)).await;
    assert_eq!(r.exit_price(), dec!(0.100299));
    r.close(&id, "c-1").await.unwrap();
    for res in [
        r.close(&id, "c-2").await,
        r.breakeven(&id, "be-2").await,
        r.hold(&id, "h-2", 3_600).await,
    ] {
        let e = res.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains("close at market"), "{e:?}");
    }
    r.minutes(3, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(r.market_fills().len(), 1, "one market order");
    assert_eq!(
        r.kinds(&id).await,
        [
            "created",
            "operator_action",
            "repriced",
            "operator_action",
            "written_off"
        ]
    );
}

/// Proves, over gRPC: while an exit is not live on the exchange (its
/// re-placement after a breakeven refused), a close and another breakeven
/// are refused saying so, and nothing is sent; once the exchange takes the
/// exit again, the close is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_on_an_exit_not_live_are_refused_with_the_reason() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    // Exit placements are refused from now on.
    r.exchange.set(3);
    r.breakeven(&id, "be-1").await.unwrap();
    r.minutes(2, dec!(0.0990)).await;
    for res in [r.close(&id, "c-0").await, r.breakeven(&id, "be-0").await] {
        let e = res.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains("not live"), "{e:?}");
    }
    assert!(r.market_fills().is_empty());
    r.exchange.set(0);
    r.minutes(3, dec!(0.0990)).await;
    assert_eq!(r.exit_price(), dec!(0.100299), "placed again");
    r.close(&id, "c-1").await.unwrap();
    r.minutes(3, dec!(0.0990)).await;
    assert_eq!(r.market_fills().len(), 1);
}

/// Proves, over gRPC: when the market has risen past breakeven, the move
/// to breakeven stops at the fillable price above the market (never
/// crossing it): the sell exit rests above both, and does not fill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakeven_never_crosses_the_market() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    let market = dec!(0.1002);
    r.minutes(2, market).await;
    let a = r.breakeven(&id, "be-m").await.unwrap();
    r.minutes(2, market).await;
    r.flush().await;
    let journal = r.journal(&id).await;
    let Some(EventDetails::Repriced(p)) = journal.last() else {
        panic!("a reprice last: {journal:?}");
    };
    let price = p.new_price;
    assert!(
        price > market,
        "{price} must rest above the market {market}"
    );
    assert!(
        price > dec!(0.100299),
        "{price}: above breakeven, at the market's edge"
    );
    assert!(price < dec!(0.100798), "{price}: moved toward the market");
    assert!(a.message.contains(&price.to_string()), "{a:?}");
    assert_eq!(
        r.kinds(&id).await,
        ["created", "operator_action", "repriced"]
    );
    let live =
        r.rt.engine()
            .open_exits()
            .any(|x| x.position_id.as_deref() == Some(id.as_str()) && x.price == price);
    assert!(live, "the exit rests at {price}, unfilled");
}

/// A write-off position with 0.01 of subsidy whose automatic reprice the
/// loop has started and cannot finish: cancels fail (the exchange's mode
/// 8) until the test sets the mode back to 0.
async fn loop_reprice_in_flight() -> (Run, String) {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    r.credit(&id, "credit-1", dec!(0.01)).await;
    r.exchange.set(8);
    for _ in 0..20 {
        r.minutes(1, dec!(0.0990)).await;
        if r.rt.engine().open_exits().next().unwrap().reprice.is_some() {
            return (r, id);
        }
    }
    panic!("the loop's reprice never started");
}

/// Proves, over gRPC against the running loop: while the loop's own
/// subsidized reprice of an exit is in flight, a close at market is
/// refused (reprice in progress) and a release is refused (not on hold),
/// but a hold is taken; the reprice in flight completes, and while the
/// hold lasts no further automatic reprice happens however much subsidy
/// arrives; once released, the loop reprices it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_hold_and_release_race_the_loops_reprice() {
    let (mut r, id) = loop_reprice_in_flight().await;
    let e = r.close(&id, "c-race").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("reprice of exit"), "{e:?}");
    let e = r.release(&id, "rel-race").await.unwrap_err();
    assert!(e.message().contains("not on hold"), "{e:?}");
    r.hold(&id, "hold-race", 7_200).await.unwrap();
    r.exchange.set(0);
    r.minutes(2, dec!(0.0990)).await;
    let held_at = r.exit_price();
    assert!(held_at < dec!(0.100798), "the reprice in flight completed");

    // On hold: more subsidy, past the reprice cooldown, and nothing moves.
    r.credit(&id, "credit-2", dec!(0.01)).await;
    r.minutes(20, dec!(0.0990)).await;
    assert_eq!(r.exit_price(), held_at, "no automatic reprice on hold");
    r.flush().await;
    let reprices = |kinds: Vec<&str>| kinds.iter().filter(|k| **k == "repriced").count();
    assert_eq!(reprices(r.kinds(&id).await), 1);

    r.release(&id, "rel-1").await.unwrap();
    r.minutes(20, dec!(0.0990)).await;
    assert!(r.exit_price() < held_at, "released: repriced again");
    r.flush().await;
    assert_eq!(reprices(r.kinds(&id).await), 2);
    assert_eq!(r.market_fills().len(), 0, "nothing closed");
}

/// Proves: malformed requests are INVALID_ARGUMENT and an unknown position
/// NOT_FOUND, each with a message, and none of them changes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_their_reason_and_change_nothing() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    for (res, code, words) in [
        (
            r.hold("abc", "x1", 3_600).await,
            Code::InvalidArgument,
            "positive integer",
        ),
        (
            r.hold(&id, "x2", 30).await,
            Code::InvalidArgument,
            "out of range",
        ),
        (
            r.hold(&id, "x3", 31 * 86_400).await,
            Code::InvalidArgument,
            "out of range",
        ),
        (
            r.hold(&id, "", 3_600).await,
            Code::InvalidArgument,
            "request_id",
        ),
        (
            r.hold("999", "x4", 3_600).await,
            Code::NotFound,
            "no open position 999",
        ),
        (
            r.breakeven("999", "x5").await,
            Code::NotFound,
            "no open position",
        ),
        (
            r.release(&id, "x6").await,
            Code::FailedPrecondition,
            "not on hold",
        ),
        (
            r.regime("sideways", 3_600, "x7").await,
            Code::InvalidArgument,
            "ranging",
        ),
        (
            r.regime("unknown", 3_600, "x8").await,
            Code::InvalidArgument,
            "ranging",
        ),
        (
            r.regime("ranging", 10, "x9").await,
            Code::InvalidArgument,
            "ttl_seconds",
        ),
    ] {
        let e = res.unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(words), "{e:?}");
    }
    r.minutes(1, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(r.kinds(&id).await, ["created"], "nothing journaled");
    assert_eq!(r.queue().await.len(), 1);
}

/// Proves: an operator breakeven that arrives while the loop's own
/// subsidized reprice of the same exit is in flight is refused (nothing
/// doubled); after it, a breakeven spends only what the slot has (capped
/// debit, journaled `operator` with that consumption) and the ledger's
/// balance and the trader's view end equal at zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakeven_races_the_loops_reprice_and_spends_only_the_balance() {
    let (mut r, id) = loop_reprice_in_flight().await;
    let e = r.breakeven(&id, "be-race").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("in progress"), "{e:?}");
    r.exchange.set(0);
    r.minutes(2, dec!(0.0990)).await;
    let partial = r.exit_price();
    assert!(
        partial < dec!(0.100798) && partial > dec!(0.100299),
        "{partial}"
    );

    // More credit; within the loop's 600 s cooldown the operator moves it.
    r.credit(&id, "credit-2", dec!(0.005)).await;
    r.minutes(6, dec!(0.0990)).await; // the reconciliation syncs the view
    // 0.005 plus what the partial move left of the first 0.01 (it rounds
    // so it never spends more than the balance).
    let bal = r.rt.subsidy().balance(0);
    assert!(bal >= dec!(0.005) && bal < dec!(0.0051), "{bal}");
    let be = r.breakeven(&id, "be-1").await.unwrap();
    assert!(
        be.message.contains(&format!("subsidy pays {bal} of")),
        "{be:?}"
    );
    r.minutes(2, dec!(0.0990)).await;
    assert_eq!(r.exit_price(), dec!(0.100299));
    r.flush().await;
    let consumed: Vec<(RepriceReason, Decimal)> = r
        .journal(&id)
        .await
        .iter()
        .filter_map(|d| match d {
            EventDetails::Repriced(p) => Some((p.reason, p.subsidy_consumed)),
            _ => None,
        })
        .collect();
    assert_eq!(consumed.len(), 2, "{consumed:?}");
    assert_eq!(consumed[0].0, RepriceReason::Subsidy);
    assert!(
        consumed[0].1 > Decimal::ZERO && consumed[0].1 <= dec!(0.01),
        "{consumed:?}"
    );
    assert_eq!(consumed[1], (RepriceReason::Operator, bal));
    let ledger = r
        .lib
        .subsidy_balance(BOT, 0)
        .await
        .unwrap()
        .totals
        .balance();
    assert_eq!(ledger, dec!(0.015) - consumed[0].1 - consumed[1].1);
    assert_eq!(
        ledger,
        Decimal::ZERO,
        "the operator spent what the slot had"
    );
    assert_eq!(r.rt.subsidy().balance(0), ledger);
}

/// Proves: a regime override is shown in the status with its expiry,
/// survives a restart, and `auto` clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regime_override_is_shown_survives_restart_and_clears() {
    let mut r = Run::new().await;
    r.minutes(2, dec!(0.1)).await;
    let set = r.regime("bearish", 7_200, "rg-1").await.unwrap();
    assert_eq!(set.action, "set_regime_override");
    let regime = r.status().await.healing.unwrap().regime.unwrap();
    assert_eq!(regime.state, "bearish");
    let until = regime.override_until.unwrap().seconds;
    assert_eq!(until, set.at.unwrap().seconds + 7_200);
    r.flush().await;
    r.restart().await;
    r.minutes(1, dec!(0.1)).await;
    let regime = r.status().await.healing.unwrap().regime.unwrap();
    assert_eq!(
        (
            regime.state.as_str(),
            regime.override_until.map(|t| t.seconds)
        ),
        ("bearish", Some(until))
    );
    r.regime("auto", 0, "rg-2").await.unwrap();
    let regime = r.status().await.healing.unwrap().regime.unwrap();
    assert_eq!(regime.override_until, None);
    assert_ne!(regime.state, "bearish");
}

/// Proves: a trader killed between the cancel and the re-placement of an
/// operator breakeven (the exchange never answered the new exit) restarts
/// with exactly one exit, at breakeven, one `operator_action` and one
/// `repriced` in the journal, and the retry is answered from the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_breakeven_reprices_once_after_restart() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    r.breakeven(&id, "be-kill").await.unwrap();
    r.exchange.set(5);
    assert!(
        r.minutes_until_hang(5, dec!(0.0990)).await,
        "the new exit must have been sent"
    );
    r.exchange.set(0);
    r.restart().await;
    r.minutes(5, dec!(0.0990)).await;
    r.flush().await;
    let exits: Vec<_> = r
        .paper
        .with_book(|b| b.open_orders())
        .into_iter()
        .filter(|o| faulty::is_exit(o.cl_ord_id.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(exits.len(), 1, "{exits:?}");
    assert_eq!(exits[0].limit_price, Some(dec!(0.100299)));
    assert_eq!(
        r.kinds(&id).await,
        ["created", "operator_action", "repriced"],
        "one action, one reprice"
    );
    let again = r.breakeven(&id, "be-kill").await.unwrap();
    assert!(again.replayed);
}

/// Proves: a trader killed right after it accepted a hold (before its next
/// loop) ends, after a restart and the operator's retry, with one hold in
/// force and one `keep_holding` in the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_right_after_a_hold_holds_once() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    r.hold(&id, "hold-kill", 3_600).await.unwrap();
    r.restart().await;
    r.hold(&id, "hold-kill", 3_600).await.unwrap();
    r.minutes(2, dec!(0.0990)).await;
    r.flush().await;
    assert!(r.queue().await.is_empty(), "held");
    assert_eq!(r.kinds(&id).await, ["created", "keep_holding"]);
}

/// Proves: a regime override accepted right before the trader is killed
/// (nothing else happened since) is in force after the restart with the
/// same expiry, and the retry is answered from the first; clearing it and
/// a kill right after leaves it cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_right_after_a_regime_override_keeps_it_once() {
    let mut r = Run::new().await;
    r.minutes(2, dec!(0.1)).await;
    let set = r.regime("bullish", 3_600, "rg-kill").await.unwrap();
    r.restart().await;
    let again = r.regime("bullish", 3_600, "rg-kill").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.at, set.at);
    r.minutes(1, dec!(0.1)).await;
    let regime = r.status().await.healing.unwrap().regime.unwrap();
    assert_eq!(
        (
            regime.state.as_str(),
            regime.override_until.map(|t| t.seconds)
        ),
        ("bullish", Some(set.at.unwrap().seconds + 3_600))
    );
    r.regime("auto", 0, "rg-clear").await.unwrap();
    r.restart().await;
    assert!(r.regime("auto", 0, "rg-clear").await.unwrap().replayed);
    r.minutes(1, dec!(0.1)).await;
    let regime = r.status().await.healing.unwrap().regime.unwrap();
    assert_eq!(regime.override_until, None);
}

/// Proves: a trader killed right after it accepted a ReleaseHold (before
/// its next loop) restarts with the hold gone: the position is back in the
/// cleanup queue and the loop's automatic reprice moves its exit again once
/// the slot has subsidy; the release is journaled once in the position's
/// history and the retry with the same request id returns the first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_right_after_a_release_releases_once() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    r.hold(&id, "hold-rel", 3_600).await.unwrap();
    r.minutes(1, dec!(0.0990)).await;
    assert!(r.queue().await.is_empty(), "held");

    let released = r.release(&id, "rel-kill").await.unwrap();
    assert_eq!(
        (released.action.as_str(), released.position_id.as_str()),
        ("release_hold", id.as_str())
    );
    r.restart().await;
    let again = r.release(&id, "rel-kill").await.unwrap();
    assert!(again.replayed, "{again:?}");
    assert_eq!(
        (&again.message, again.at, &again.position_id),
        (&released.message, released.at, &released.position_id)
    );
    r.minutes(1, dec!(0.0990)).await;
    let q = r.queue().await;
    assert_eq!(q.len(), 1, "released: back in the queue");
    assert_eq!(q[0].position_id, id);
    assert!(q[0].actions.iter().any(|a| a == "keep_holding"), "{q:?}");

    // Automatic repricing applies again: subsidy moves the exit.
    r.credit(&id, "credit-rel", dec!(0.01)).await;
    let mut moved = false;
    for _ in 0..20 {
        r.minutes(1, dec!(0.0990)).await;
        if r.exit_price() < dec!(0.100798) {
            moved = true;
            break;
        }
    }
    assert!(moved, "the loop's reprice must move a released exit");
    assert!(r.release(&id, "rel-kill").await.unwrap().replayed);
    r.minutes(2, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(
        r.kinds(&id).await,
        [
            "created",
            "keep_holding",
            "operator_action",
            "churner_profit",
            "repriced"
        ],
        "one release, the credit, then the loop's reprice"
    );
    let journal = r.journal(&id).await;
    match (&journal[2], &journal[4]) {
        (EventDetails::OperatorAction(a), EventDetails::Repriced(p)) => {
            assert_eq!(
                (a.action.as_str(), a.reason.as_str(), a.operator.as_str()),
                ("release_hold", "rebound is not coming", "alice")
            );
            assert_eq!(p.reason, RepriceReason::Subsidy);
        }
        other => panic!("{other:?}"),
    }
}
