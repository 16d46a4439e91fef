//! The churner through the real loop: the [`Runtime`] over the paper
//! exchange and the in-process ledger. A position gets stuck, the market
//! ranges, the slot's churner runs round trips whose profit is credited to
//! the stuck position, subsidy reprices it, it heals, and the churner
//! stops; plus the hand-over of a churner exit that times out and the
//! healing of such a handed-over round trip, a restart in the middle of a
//! round trip, and a ledger outage while churning.

#![allow(missing_docs)]

mod churner_run;
mod faulty;
mod grid;
mod healing;

use ledger_service::{EventDetails, JournalScope};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::engine::AgeBand;
use trader_service::exchange::Clock;
use trader_service::healing::Regime;
use trader_service::healing::churner::{ChurnStage, PauseReason};

use churner_run::*;

/// Proves the flywheel: a stuck position, a ranging market -> the churner
/// runs round trips, each its own `churner` ledger position closed
/// `filled`, each net credited to the stuck position as `churner_profit`;
/// subsidy reprices the stuck exit to its fillable price, the churner
/// stops (parent fully repriced), the market returns and the parent fills.
/// Ledger balance = credits - debits = the trader's view, exactly.
#[tokio::test]
async fn the_flywheel_heals_a_stuck_position_from_churner_profit() {
    let mut r = Run::new().await;
    let id = r.stuck_position().await;
    let original = r.rt.engine().open_exits().next().unwrap().price;
    for _ in 0..30 {
        r.range_once().await;
        if r.rt.churn_book().slots[&0].paused == Some(PauseReason::ParentRepriced) {
            break;
        }
    }
    let book = r.rt.churn_book().clone();
    assert!(book.stats.cycles >= 2, "{:?}", book.stats);
    assert_eq!(book.stats.losing_cycles, 0);
    assert_eq!(
        book.slots[&0].paused,
        Some(PauseReason::ParentRepriced),
        "the churner stops once the parent is fully repriced: {book:?}"
    );
    let healed =
        r.rt.engine()
            .open_exits()
            .find(|x| x.id.trade == trader_service::engine::TradeId::B)
            .unwrap()
            .price;
    assert!(healed < original, "{healed} < {original}");
    assert_eq!(healed, dec!(0.100299), "breakeven: entry 0.0998 x 1.005");

    // The market comes back and the healed exit fills.
    r.step(candle(
        r.t,
        dec!(0.0990),
        dec!(0.1004),
        dec!(0.0990),
        dec!(0.1),
    ))
    .await;
    r.flat(3, dec!(0.1)).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    let kinds = r.kinds(id).await;
    assert_eq!(kinds.first(), Some(&"created"));
    assert_eq!(kinds.last(), Some(&"filled"), "{kinds:?}");
    assert!(kinds.contains(&"repriced"));
    let credits = kinds.iter().filter(|k| **k == "churner_profit").count();
    assert_eq!(
        credits as u64,
        r.rt.churn_book().stats.cycles.min(credits as u64)
    );
    assert!(credits >= 1);

    // Each round trip is its own churner position, closed filled, and the
    // credits on the parent are exactly their nets.
    let churns = r.churner_positions().await;
    assert_eq!(churns.len() as u64, r.rt.churn_book().stats.cycles);
    assert!(churns.iter().all(|p| p.outcome.is_some()));
    let journal = r
        .lib
        .journal(&JournalScope::Position(id), 0, 200)
        .await
        .unwrap()
        .entries;
    let credited: Decimal = journal
        .iter()
        .filter_map(|e| match &e.details {
            EventDetails::ChurnerProfit(d) => Some(d.net_profit),
            _ => None,
        })
        .sum();
    let consumed: Decimal = journal
        .iter()
        .filter_map(|e| match &e.details {
            EventDetails::Repriced(d) => Some(d.subsidy_consumed),
            _ => None,
        })
        .sum();
    assert_eq!(credited, r.rt.churn_book().stats.credited_usd);
    let balance = r
        .lib
        .subsidy_balance(BOT, 0)
        .await
        .unwrap()
        .totals
        .balance();
    assert_eq!(balance, credited - consumed);
    assert_eq!(
        r.rt.subsidy().balance(0),
        balance,
        "the trader's view is exact"
    );
    // Whatever the churner does now, it no longer works for the healed
    // position (the ranging market gave the slot a new aging position).
    let parent_key = kinds_parent_key(&r, id).await;
    assert!(
        r.stage().parent().is_none_or(|p| p.open_key != parent_key),
        "{:?}",
        r.stage()
    );
}

/// Proves SPEC §7 in the status: while a stuck position still needs
/// subsidy and the churner has earned some, `GetStatus` reports the total
/// pending need (the sum of the slots'), the churner's net of the last
/// 24 h and the ETA `ceil(need x 86400 / net)`; `ctl status` prints them
/// and every open position carries its opportunity cost.
#[tokio::test]
async fn the_status_reports_pending_need_and_the_eta_to_earn_it() {
    let mut r = Run::new().await;
    r.stuck_position().await;
    let handle = r.rt.handle();
    let mut snap = handle.status();
    for _ in 0..30 {
        r.range_once().await;
        r.flat(1, dec!(0.1)).await;
        snap = handle.status();
        if snap.healing.pending_need_total > Decimal::ZERO && snap.healing.churner.stats.cycles >= 1
        {
            break;
        }
    }
    let h = &snap.healing;
    let stats = &snap.healing.churner.stats;
    assert!(stats.cycles >= 1, "{stats:?}");
    assert_eq!(
        h.churner_net_24h, stats.net_usd,
        "every round trip is recent"
    );
    let per_slot: Decimal = h.subsidy.iter().map(|s| s.pending_need).sum();
    assert_eq!(h.pending_need_total, per_slot);
    assert!(h.pending_need_total > Decimal::ZERO, "{h:?}");
    let want = (h.pending_need_total * dec!(86400) / h.churner_net_24h)
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::ToPositiveInfinity);
    assert_eq!(h.eta_sec.map(Decimal::from), Some(want));
    assert!(
        snap.positions
            .iter()
            .all(|p| p.opportunity_cost >= Decimal::ZERO)
    );
    let text = trader_service::ctl::render_status(&trader_service::grpc::status_response(&snap));
    let eta = h.eta_sec.unwrap();
    assert!(
        text.contains(&format!("pending need {} USD", h.pending_need_total))
            && text.contains(&format!("ETA {eta}s")),
        "{text}"
    );
    assert!(text.contains("opportunity cost"), "{text}");
}

async fn kinds_parent_key(r: &Run, id: u64) -> String {
    r.lib
        .position_history(BOT, Some(0), 500)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.position_id == id)
        .unwrap()
        .open_key
}

/// Proves: a churner exit unfilled for 600 s is handed over (journaled
/// `handed_over` on the churner position) with its ledger id kept across a
/// restart, stays on the book, the slot's
/// churner pauses meanwhile; when it fills the round trip closes and the
/// churner resumes.
#[tokio::test]
async fn a_timed_out_churner_exit_is_handed_over_and_kept() {
    let mut r = Run::new().await;
    r.stuck_position().await;
    let p = dec!(0.0990);
    r.step(candle(r.t, p, p, dec!(0.09884), p)).await;
    assert!(
        matches!(r.stage(), ChurnStage::Exit { .. }),
        "{:?}",
        r.stage()
    );
    r.flat(11, p).await;
    let ChurnStage::HandedOver {
        order, position, ..
    } = r.stage()
    else {
        panic!("handed over expected: {:?}", r.stage())
    };
    assert_eq!(
        r.rt.churn_book().slots[&0].paused,
        Some(PauseReason::HandedOverOpen)
    );
    // The round trip knows its ledger id (what an operator names it by),
    // and keeps it across a restart.
    let ledger_id = r
        .lib
        .open_positions(BOT, Some(0))
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.open_key == position.open_key)
        .unwrap()
        .position_id
        .to_string();
    assert_eq!(position.position_id.as_deref(), Some(ledger_id.as_str()));
    r.restart().await;
    let ChurnStage::HandedOver {
        position: restored, ..
    } = r.stage()
    else {
        panic!("handed over after a restart: {:?}", r.stage())
    };
    assert_eq!(restored.position_id.as_deref(), Some(ledger_id.as_str()));
    let txid = order.txid.clone().unwrap();
    assert!(
        r.paper
            .with_book(|b| b.open_orders())
            .iter()
            .any(|o| o.txid == txid),
        "exit stays"
    );
    r.flat(5, p).await;
    assert!(
        matches!(r.stage(), ChurnStage::HandedOver { .. }),
        "no new churner while paused"
    );
    // GetStatus and `ctl status` show it.
    let handle = r.rt.handle();
    r.flat(1, p).await;
    let snap = handle.status();
    let c = &snap.healing.churner;
    assert!(c.enabled);
    assert_eq!(c.stats.handed_over, 1);
    let slot = c.slots.iter().find(|s| s.slot_id == 0).unwrap();
    assert_eq!(slot.stage, "handed_over");
    assert_eq!(slot.paused_reason.as_deref(), Some("handed_over_open"));
    assert_eq!(slot.txid.as_deref(), Some(txid.as_str()));
    assert!(slot.parent_open_key.is_some());
    let text = trader_service::ctl::render_status(&trader_service::grpc::status_response(&snap));
    assert!(text.contains("slot 0 churner handed_over"), "{text}");
    assert!(text.contains("paused handed_over_open"), "{text}");
    assert!(text.contains("handed over 1"), "{text}");
    r.step(candle(r.t, p, dec!(0.0996), p, p)).await;
    r.flat(1, p).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    let churns = r.churner_positions().await;
    let pos = churns
        .iter()
        .find(|c| c.open_key == position.open_key)
        .unwrap();
    assert!(pos.outcome.is_some(), "closed filled");
    assert_eq!(
        r.kinds(pos.position_id).await,
        ["created", "handed_over", "filled"]
    );
    assert_eq!(r.rt.churn_book().stats.handed_over, 1);
    assert_ne!(
        r.rt.churn_book().slots[&0].paused,
        Some(PauseReason::HandedOverOpen)
    );
}

/// Proves: a handed-over round trip heals like any position of its slot.
/// Its exit times out and it is handed over; it ages into band stale; the
/// slot gets subsidy and repricing moves the churner's exit (cancel, the
/// remainder placed again at the fillable price, `repriced` journaled on
/// the round trip, the slot's subsidy debited); the market reaches the new
/// price, it fills, and the slot's churner resumes with a new entry.
#[tokio::test]
async fn a_handed_over_round_trip_is_repriced_fills_and_the_churner_resumes() {
    let mut r = Run::with(1, AgeBand::Stale).await;
    let parent = r.stuck_position().await;
    let p = dec!(0.0990);
    r.step(candle(r.t, p, p, dec!(0.09884), p)).await;
    r.flat(11, p).await;
    let ChurnStage::HandedOver {
        order: first,
        position,
        ..
    } = r.stage()
    else {
        panic!("handed over expected: {:?}", r.stage())
    };
    // The slot gets subsidy (as an operator or the churner would credit it).
    healing::credit(&r.ledger, parent, "credit-1", dec!(0.02), r.t).await;
    let mut repriced = None;
    for _ in 0..60 {
        r.flat(1, p).await;
        if let ChurnStage::HandedOver { order, heal, .. } = r.stage()
            && heal.times_repriced > 0
            && order.txid.is_some()
        {
            repriced = Some(order);
            break;
        }
    }
    let order = repriced.unwrap_or_else(|| panic!("repriced expected: {:?}", r.stage()));
    assert!(
        order.price < first.price,
        "{} < {}",
        order.price,
        first.price
    );
    assert_ne!(order.id, first.id);
    assert_eq!(order.volume, position.volume, "the whole remainder");
    // Fillable: entry x 1.005 (the fee floor), above the market.
    assert_eq!(
        order.price,
        (position.entry_price * dec!(1.005))
            .round_dp_with_strategy(7, rust_decimal::RoundingStrategy::ToPositiveInfinity)
    );
    let book: Vec<_> = r.churn_orders().into_iter().map(|o| o.txid).collect();
    assert_eq!(
        book,
        vec![order.txid.clone().unwrap()],
        "only the new exit rests"
    );
    assert_eq!(
        r.rt.churn_book().slots[&0].paused,
        Some(PauseReason::HandedOverOpen)
    );
    // The slot's subsidy paid the move (what is left may go to the parent,
    // looked at after the handed-over round trip).
    let spent = (first.price - order.price) * position.volume;
    let left = r.rt.subsidy().balance(0);
    assert!(left <= dec!(0.02) - spent, "{left}");
    // The market reaches the new price: it fills and the churner resumes.
    r.step(candle(r.t, p, order.price + dec!(0.00002), p, p))
        .await;
    r.flat(2, p).await;
    assert!(
        matches!(
            r.stage(),
            ChurnStage::Entry { .. } | ChurnStage::Exit { .. }
        ),
        "the slot's churner resumes: {:?}",
        r.stage()
    );
    assert_ne!(
        r.rt.churn_book().slots[&0].paused,
        Some(PauseReason::HandedOverOpen)
    );
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    let churns = r.churner_positions().await;
    let pos = churns
        .iter()
        .find(|c| c.open_key == position.open_key)
        .unwrap();
    assert!(pos.outcome.is_some(), "closed filled");
    assert_eq!(
        r.kinds(pos.position_id).await,
        ["created", "handed_over", "repriced", "filled"]
    );
    let ledger = r
        .lib
        .subsidy_balance(BOT, 0)
        .await
        .unwrap()
        .totals
        .balance();
    assert_eq!(
        r.rt.subsidy().balance(0),
        ledger,
        "the trader's view is exact"
    );
}

/// Proves: a trader killed after a churner entry filled and its exit was
/// placed resumes after a restart with exactly one churner exit on the
/// book, the round trip opened once in the ledger, and it completes.
#[tokio::test]
async fn a_restart_mid_round_trip_duplicates_nothing() {
    let mut r = Run::new().await;
    r.stuck_position().await;
    let p = dec!(0.0990);
    r.step(candle(r.t, p, p, dec!(0.09884), p)).await;
    let ChurnStage::Exit { position, .. } = r.stage() else {
        panic!("exit expected: {:?}", r.stage())
    };
    r.restart().await;
    r.flat(2, p).await;
    let churn_orders: Vec<_> = r
        .paper
        .with_book(|b| b.open_orders())
        .into_iter()
        .filter(|o| o.cl_ord_id.as_deref().is_some_and(|c| c.starts_with("ch:")))
        .collect();
    assert_eq!(churn_orders.len(), 1, "{churn_orders:?}");
    r.step(candle(r.t, p, dec!(0.0996), p, p)).await;
    r.flat(1, p).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    let churns = r.churner_positions().await;
    assert_eq!(
        churns
            .iter()
            .filter(|c| c.open_key == position.open_key)
            .count(),
        1
    );
    assert!(churns.iter().all(|c| c.outcome.is_some()) || churns.len() > 1);
    assert_eq!(r.rt.churn_book().stats.cycles, 1);
}

/// Proves: while the ledger is down the churner goes on, its credits
/// raise the trader's subsidy view from the outbox, and when the ledger
/// returns every write lands once: the ledger's balance equals the view.
#[tokio::test]
async fn a_ledger_outage_while_churning_loses_nothing() {
    let mut r = Run::new().await;
    let id = r.stuck_position().await;
    r.ledger.set_down(true);
    for _ in 0..3 {
        r.range_once().await;
    }
    let cycles = r.rt.churn_book().stats.cycles;
    assert!(cycles >= 1);
    let view = r.rt.subsidy().balance(0);
    assert!(view > Decimal::ZERO, "credits counted from the outbox");
    r.ledger.set_down(false);
    r.flat(2, dec!(0.0990)).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    let credits = r
        .kinds(id)
        .await
        .iter()
        .filter(|k| **k == "churner_profit")
        .count();
    assert_eq!(credits as u64, cycles);
    let balance = r
        .lib
        .subsidy_balance(BOT, 0)
        .await
        .unwrap()
        .totals
        .balance();
    assert_eq!(r.rt.subsidy().balance(0), balance);
}

/// Proves: a churner entry unfilled for `CHURNER_TIMEOUT_SEC` (300 s) is
/// cancelled on the exchange and re-entered at the market of that moment;
/// one churner order rests at any time and no round trip is counted.
#[tokio::test]
async fn an_unfilled_churner_entry_is_re_entered_at_the_current_price() {
    let mut r = Run::new().await;
    r.stuck_position().await;
    let ChurnStage::Entry { order: first, .. } = r.stage() else {
        panic!("entry expected: {:?}", r.stage())
    };
    assert_eq!(first.price, dec!(0.0988515), "0.0990 - 0.15 %");
    // The market lifts away from the entry and stays: nothing fills.
    let p = dec!(0.0993);
    for _ in 0..7 {
        r.step(candle(r.t, p, p, p, p)).await;
        assert!(r.churn_orders().len() <= 1, "{:?}", r.churn_orders());
    }
    let ChurnStage::Entry { order: second, .. } = r.stage() else {
        panic!("re-entry expected: {:?}", r.stage())
    };
    assert_ne!(second.id, first.id);
    assert_eq!(
        second.price,
        dec!(0.0991510),
        "0.0993 - 0.15 %, rounded down"
    );
    let resting = r.churn_orders();
    assert_eq!(resting.len(), 1, "{resting:?}");
    assert_eq!(resting[0].limit_price, Some(second.price));
    assert_ne!(
        Some(resting[0].txid.clone()),
        first.txid,
        "the first is gone"
    );
    assert_eq!(r.rt.churn_book().stats.cycles, 0);
}

/// Proves: when the regime leaves ranging after a churner entry filled,
/// the churner stops (no new entry) but the filled inventory keeps its
/// exit on the book; the exit still fills and closes the round trip.
#[tokio::test]
async fn deactivation_keeps_the_exit_of_a_filled_churner_entry() {
    let mut r = Run::new().await;
    r.stuck_position().await;
    let p = dec!(0.0990);
    r.step(candle(r.t, p, p, dec!(0.09884), p)).await;
    let ChurnStage::Exit {
        order, position, ..
    } = r.stage()
    else {
        panic!("exit expected: {:?}", r.stage())
    };
    r.rt.override_regime(Regime::Bearish, r.t + 86_400, r.t)
        .unwrap();
    r.flat(3, p).await;
    assert!(
        matches!(r.stage(), ChurnStage::Exit { .. }),
        "the exit stays: {:?}",
        r.stage()
    );
    assert_eq!(
        r.rt.churn_book().slots[&0].paused,
        Some(PauseReason::NotRanging)
    );
    let resting = r.churn_orders();
    assert_eq!(resting.len(), 1, "only the exit: {resting:?}");
    assert_eq!(Some(resting[0].txid.clone()), order.txid);
    // The bounce fills the exit; the churner stays off.
    r.step(candle(r.t, p, dec!(0.0996), p, p)).await;
    r.flat(2, p).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    assert!(matches!(r.stage(), ChurnStage::Idle), "{:?}", r.stage());
    assert!(r.churn_orders().is_empty());
    assert_eq!(r.rt.churn_book().stats.cycles, 1);
    let churns = r.churner_positions().await;
    let pos = churns
        .iter()
        .find(|c| c.open_key == position.open_key)
        .unwrap();
    assert!(pos.outcome.is_some(), "closed filled");
}

/// Proves: three slots stuck at once with a 12 USD reserve and 6 USD
/// churner orders: the reserve lends to two slots at most (through entry
/// timeouts and re-entries), the third waits with `no_capital`, and it is
/// never over-lent at any loop.
#[tokio::test]
async fn the_reserve_is_never_over_lent() {
    let mut r = Run::with_slots(3).await;
    r.flat(3, dec!(0.1)).await;
    // A drop through every slot's buy entry (0.2, 0.7 and 1.2 % below).
    let low = dec!(0.0980);
    r.step(candle(r.t, dec!(0.1), dec!(0.1), low, low)).await;
    let mut saw_no_capital = false;
    let mut most_lent = 0;
    for _ in 0..12 {
        r.step(candle(r.t, low, low, low, low)).await;
        let book = r.rt.churn_book();
        assert!(book.reserve.lent.len() <= 2, "{:?}", book.reserve);
        assert!(r.churn_orders().len() <= 2, "{:?}", r.churn_orders());
        most_lent = most_lent.max(book.reserve.lent.len());
        saw_no_capital |= book
            .slots
            .values()
            .any(|s| s.paused == Some(PauseReason::NoCapital));
    }
    let open = r.lib.open_positions(BOT, None).await.unwrap();
    let parents: std::collections::BTreeSet<u32> = open
        .iter()
        .filter(|p| !p.open_key.starts_with("churn:"))
        .map(|p| p.slot_id)
        .collect();
    assert_eq!(parents.len(), 3, "every slot holds a stuck long: {open:?}");
    assert_eq!(most_lent, 2, "the reserve was used up to its limit");
    assert!(saw_no_capital, "the third slot waited for capital");
}

/// Proves the hit-rate gate through the real loop: three round trips in a
/// row are handed over (each then fills late), so every churner cools off
/// for a day; `GetStatus` and `ctl status` say `low_hit_rate`, no entry is
/// placed on the next dip, and the cool-off survives a restart.
#[tokio::test]
async fn three_hand_overs_in_a_row_cool_the_churner_off() {
    let mut r = Run::new().await;
    r.stuck_position().await;
    let p = dec!(0.0990);
    for round in 1..=3 {
        r.step(candle(r.t, p, p, dec!(0.09884), p)).await;
        assert!(
            matches!(r.stage(), ChurnStage::Exit { .. }),
            "round {round}: {:?}",
            r.stage()
        );
        r.flat(11, p).await;
        assert!(matches!(r.stage(), ChurnStage::HandedOver { .. }));
        // The market comes back late: the handed-over exit fills.
        r.step(candle(r.t, p, dec!(0.0996), p, p)).await;
        r.flat(1, p).await;
    }
    let book = r.rt.churn_book();
    assert_eq!(book.stats.handed_over, 3);
    let until = book.hits.cooling_until.expect("cooling off");
    assert!(until > r.t + 80_000, "a day: {until} vs {}", r.t);
    r.restart().await;
    let handle = r.rt.handle();
    r.step(candle(r.t, p, p, dec!(0.09884), p)).await;
    r.flat(2, p).await;
    assert!(matches!(r.stage(), ChurnStage::Idle), "{:?}", r.stage());
    assert!(r.churn_orders().is_empty(), "no entry while cooling off");
    let snap = handle.status();
    let slot = snap
        .healing
        .churner
        .slots
        .iter()
        .find(|s| s.slot_id == 0)
        .unwrap();
    assert_eq!(slot.paused_reason.as_deref(), Some("low_hit_rate"));
    let text = trader_service::ctl::render_status(&trader_service::grpc::status_response(&snap));
    assert!(text.contains("paused low_hit_rate"), "{text}");
}
