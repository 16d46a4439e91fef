//! Operator actions on a handed-over churner round trip through the real
//! loop and the gRPC layer: it reaches the cleanup queue and the status'
//! position list under its ledger id once it ages into band write_off, a
//! hold hides it, a move to breakeven reprices it, and a close at market
//! books the exchange's fill `written_off` (or restores the exit when the
//! market order fails).

#![allow(missing_docs)]

mod churner_run;
mod faulty;
mod grid;
mod healing;

use churner_run::*;
use healgrid_proto::trader::v1 as pb;
use ledger_service::{EventDetails, JournalScope};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::engine::AgeBand;
use trader_service::exchange::{Clock, OrderInfo, OrderType};
use trader_service::healing::churner::{ChurnPosition, ChurnStage, PauseReason};
use trader_service::operator_api;
use trader_service::runtime::status::RuntimeHandle;
use trader_service::runtime::writes::SlotModeKind;

const P: Decimal = dec!(0.0990);

/// A churner round trip handed over to slot 0 and aged into band
/// write_off (in the cleanup queue): its ledger id, the round trip, and
/// its queue entry.
async fn queued_round_trip(
    r: &mut Run,
    h: &RuntimeHandle,
) -> (String, ChurnPosition, pb::CleanupQueueEntry) {
    r.stuck_position().await;
    r.step(candle(r.t, P, P, dec!(0.09884), P)).await;
    r.flat(11, P).await;
    let ChurnStage::HandedOver { position, .. } = r.stage() else {
        panic!("handed over expected: {:?}", r.stage())
    };
    let id = position.position_id.clone().expect("ledger id known");
    for _ in 0..240 {
        r.flat(1, P).await;
        if let Some(e) = queued(h, &id) {
            return (id, position, e);
        }
    }
    panic!("the round trip never reached the cleanup queue")
}

fn queued(h: &RuntimeHandle, id: &str) -> Option<pb::CleanupQueueEntry> {
    operator_api::list_cleanup_queue(h)
        .positions
        .into_iter()
        .find(|e| e.position_id == id)
}

/// Runs an operator call to its answer, the runtime serving its control
/// messages meanwhile (between loops, as `run_forever` does).
async fn serve<T: Send + 'static>(
    r: &mut Run,
    call: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let task = tokio::spawn(call);
    let now_ms = r.paper.clock().now_ms();
    while !task.is_finished() {
        r.rt.serve_control(now_ms).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    task.await.unwrap()
}

async fn close(
    r: &mut Run,
    h: &RuntimeHandle,
    id: &str,
    request_id: &str,
) -> Result<pb::OperatorActionResponse, tonic::Status> {
    let h = h.clone();
    let req = pb::CloseAtMarketRequest {
        position_id: id.to_owned(),
        request_id: request_id.to_owned(),
        reason: "give up".into(),
        operator: "alice".into(),
    };
    serve(
        r,
        async move { operator_api::close_at_market(&h, req).await },
    )
    .await
}

/// The market orders the paper exchange received for churner client ids.
fn churner_market_orders(r: &Run) -> Vec<OrderInfo> {
    r.paper.with_book(|b| {
        b.closed_orders()
            .into_iter()
            .chain(b.open_orders())
            .filter(|o| o.order_type == OrderType::Market)
            .filter(|o| o.cl_ord_id.as_deref().is_some_and(|c| c.starts_with("ch:")))
            .collect()
    })
}

/// Asserts that exactly one churner market order was sent and that the
/// round trip `id` closed `written_off` once, at that order's price and fee.
async fn closed_once(r: &Run, id: &str) {
    let orders = churner_market_orders(r);
    assert_eq!(orders.len(), 1, "one market order: {orders:?}");
    let outcome = r
        .lib
        .position(id.parse().unwrap())
        .await
        .unwrap()
        .outcome
        .expect("closed");
    assert_eq!(format!("{:?}", outcome.close_reason), "WrittenOff");
    assert_eq!(outcome.exit_price, orders[0].avg_price);
    assert_eq!(outcome.exit_fee, Some(orders[0].fee));
    let written_off = journal(r, id)
        .await
        .iter()
        .filter(|e| matches!(e, EventDetails::WrittenOff(_)))
        .count();
    assert_eq!(written_off, 1);
}

async fn journal(r: &Run, id: &str) -> Vec<EventDetails> {
    r.lib
        .journal(&JournalScope::Position(id.parse().unwrap()), 0, 200)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.details)
        .collect()
}

/// Proves: a handed-over round trip that ages into band write_off is in
/// `ListCleanupQueue` under its ledger id, like a slot position, with
/// close_at_market among its actions and slot mode churner (the stuck slot
/// position queued beside it is sticky), and in `GetStatus`'s position list
/// with slot mode churner, its band, age, distance and the same
/// opportunity cost as in the queue; a `KeepHolding` on it hides it
/// (journaled on the round trip), a `ReleaseHold` brings it back, and a
/// `RepriceToBreakeven` moves its exit to entry x 1.005 (fee floor).
#[tokio::test]
async fn a_handed_over_round_trip_in_write_off_is_queued_and_can_be_held() {
    let mut r = Run::with_write_off(1, AgeBand::Stuck, 7_200).await;
    let h = r.rt.handle();
    let (id, position, entry) = queued_round_trip(&mut r, &h).await;
    assert_eq!(entry.slot_id, 0);
    assert_eq!(entry.volume, position.volume.to_string());
    assert_eq!(
        entry.actions,
        ["reprice_to_breakeven", "close_at_market", "keep_holding"]
    );
    assert_eq!(entry.slot_mode, pb::PositionSlotMode::Churner as i32);
    let modes: Vec<_> = operator_api::list_cleanup_queue(&h)
        .positions
        .into_iter()
        .map(|e| (e.position_id == id, e.slot_mode))
        .collect();
    assert_eq!(modes.len(), 2, "{modes:?}");
    assert!(
        modes.contains(&(false, pb::PositionSlotMode::Sticky as i32)),
        "{modes:?}"
    );

    let status = h.status();
    let listed = status
        .positions
        .iter()
        .find(|p| p.position_id.as_deref() == Some(id.as_str()))
        .expect("the round trip is in the status' position list");
    assert_eq!(listed.slot_mode, SlotModeKind::Churner);
    assert_eq!(listed.band, AgeBand::WriteOff);
    assert_eq!(listed.cycle, position.cycle);
    assert!(listed.exit_order_id.starts_with("ch:0:"));
    assert_eq!(listed.entry_price, position.entry_price);
    assert_eq!(listed.age_sec, entry.age_seconds);
    assert_eq!(listed.distance_pct.to_string(), entry.distance_pct);
    assert_eq!(listed.opportunity_cost.to_string(), entry.opportunity_cost);
    let sticky = status
        .positions
        .iter()
        .filter(|p| p.slot_mode == SlotModeKind::Sticky)
        .count();
    assert_eq!(sticky, 1, "the stuck slot position is listed too");
    let wire = trader_service::grpc::status_response(&status);
    let p = wire
        .positions
        .iter()
        .find(|p| p.position_id == id)
        .expect("on the wire too");
    assert_eq!(p.slot_mode, pb::PositionSlotMode::Churner as i32);
    assert_eq!(p.band, pb::AgeBand::WriteOff as i32);

    let hc = h.clone();
    let req = pb::KeepHoldingRequest {
        position_id: id.clone(),
        hold_seconds: 3_600,
        request_id: "hold-1".into(),
        reason: "wait for the range".into(),
        operator: "alice".into(),
    };
    let now_ms = r.paper.clock().now_ms();
    let held = serve(
        &mut r,
        async move { operator_api::keep_holding(&hc, req).await },
    )
    .await
    .expect("hold accepted");
    assert_eq!(held.position_id, id);
    r.flat(1, P).await;
    assert!(queued(&h, &id).is_none(), "on hold: out of the queue");
    let ChurnStage::HandedOver { heal, .. } = r.stage() else {
        panic!("still handed over: {:?}", r.stage())
    };
    assert_eq!(heal.hold_until, Some(now_ms / 1000 + 3_600));

    let hc = h.clone();
    let req = pb::ReleaseHoldRequest {
        position_id: id.clone(),
        request_id: "release-1".into(),
        reason: "enough".into(),
        operator: "alice".into(),
    };
    serve(
        &mut r,
        async move { operator_api::release_hold(&hc, req).await },
    )
    .await
    .expect("release accepted");
    r.flat(1, P).await;
    assert!(queued(&h, &id).is_some(), "released: back in the queue");

    let hc = h.clone();
    let req = pb::RepriceToBreakevenRequest {
        position_id: id.clone(),
        request_id: "breakeven-1".into(),
        reason: "take what the slot has".into(),
        operator: "alice".into(),
    };
    serve(&mut r, async move {
        operator_api::reprice_to_breakeven(&hc, req).await
    })
    .await
    .expect("breakeven accepted");
    // The churner loop cancels the exit and places the remainder at
    // breakeven (entry x 1.005), above the market.
    r.flat(2, P).await;
    let ChurnStage::HandedOver { order, heal, .. } = r.stage() else {
        panic!("still handed over: {:?}", r.stage())
    };
    assert_eq!(heal.times_repriced, 1);
    assert_eq!(
        order.price,
        (position.entry_price * dec!(1.005))
            .round_dp_with_strategy(7, rust_decimal::RoundingStrategy::ToPositiveInfinity)
    );
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    let kinds = r.kinds(id.parse().unwrap()).await;
    assert_eq!(
        kinds.iter().filter(|k| **k == "other").count(),
        3,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"repriced"), "{kinds:?}");
}

/// Proves: `CloseAtMarket` of a handed-over round trip (a second close
/// while it is in progress is refused, nothing changed), accepted and then
/// carried out by a restarted trader (the close is in the store, committed
/// with its answer), cancels the exit and sends exactly one market order
/// for its volume; the ledger closes the round trip `written_off` at the
/// price, cost and fee the exchange reported for that order, with the
/// realized loss and the operator's reason after the journaled action; the
/// slot's churner is no longer paused for it; the status counts the
/// operator write-off; a retry with the same request id (also after the
/// close) answers `replayed` and sends nothing again.
#[tokio::test]
async fn a_close_at_market_books_the_exchanges_fill_written_off() {
    let mut r = Run::with_write_off(1, AgeBand::Stuck, 7_200).await;
    let mut h = r.rt.handle();
    let (id, position, _) = queued_round_trip(&mut r, &h).await;
    let a = close(&mut r, &h, &id, "close-1")
        .await
        .expect("close accepted");
    assert_eq!(a.action, "close_at_market");
    assert!(!a.replayed);
    assert!(a.message.starts_with("closing at market"), "{}", a.message);
    assert_eq!(
        queued(&h, &id).map(|e| e.actions),
        Some(vec!["keep_holding".to_owned()]),
        "a close in progress: no move, no second close"
    );
    let second = close(&mut r, &h, &id, "close-x").await.unwrap_err();
    assert_eq!(second.code(), tonic::Code::FailedPrecondition);
    assert!(
        second
            .message()
            .starts_with("a close at market of exit ch:0:"),
        "{second:?}"
    );
    r.restart().await;
    h = r.rt.handle();
    r.flat(3, P).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();

    let orders = churner_market_orders(&r);
    assert_eq!(orders.len(), 1, "exactly one market order: {orders:?}");
    let m = &orders[0];
    assert_eq!(m.vol_exec, position.volume, "the whole (unfilled) volume");
    let p = r.lib.position(id.parse().unwrap()).await.unwrap();
    let outcome = p.outcome.expect("closed");
    assert_eq!(format!("{:?}", outcome.close_reason), "WrittenOff");
    assert_eq!(outcome.exit_price, m.avg_price);
    assert_eq!(outcome.exit_fee, Some(m.fee));
    assert_eq!(outcome.exit_cost, Some(m.cost));
    let net = (m.avg_price.unwrap() - position.entry_price) * position.volume
        - position.entry_fee
        - m.fee;
    assert_eq!(outcome.net_profit, Some(net));
    assert!(net < Decimal::ZERO);
    let j = journal(&r, &id).await;
    let n = j.len();
    match (&j[n - 2], &j[n - 1]) {
        (EventDetails::OperatorAction(a), EventDetails::WrittenOff(w)) => {
            assert_eq!(a.action, "close_at_market");
            assert_eq!(w.close_price, m.avg_price.unwrap());
            assert_eq!(w.realized_loss, -net);
            assert!(w.reason.contains("give up"), "{w:?}");
        }
        other => panic!("operator_action then written_off expected: {other:?}"),
    }
    let slot = &r.rt.churn_book().slots[&0];
    assert!(
        !matches!(slot.stage, ChurnStage::HandedOver { .. }),
        "{:?}",
        slot.stage
    );
    assert_ne!(slot.paused, Some(PauseReason::HandedOverOpen));
    assert_eq!(r.rt.write_offs().operator, 1);
    assert_eq!(r.rt.write_offs().operator_loss_usd, -net);
    assert!(queued(&h, &id).is_none());

    let again = close(&mut r, &h, &id, "close-1").await.expect("replayed");
    assert!(again.replayed);
    r.flat(2, P).await;
    assert_eq!(churner_market_orders(&r).len(), 1, "no second market order");
    let refused = close(&mut r, &h, &id, "close-2").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
}

/// Proves: a market order the exchange refuses restores the round trip's
/// exit at its price (one churner exit on the book again), journals
/// `close_at_market_failed` on the round trip and leaves it open and
/// handed over; a later close with a new request id closes it.
#[tokio::test]
async fn a_refused_market_order_restores_the_round_trips_exit() {
    let mut r = Run::with_write_off(1, AgeBand::Stuck, 7_200).await;
    let h = r.rt.handle();
    let (id, _, _) = queued_round_trip(&mut r, &h).await;
    let ChurnStage::HandedOver { order: before, .. } = r.stage() else {
        panic!("handed over expected")
    };
    r.exchange.set(6);
    close(&mut r, &h, &id, "close-1")
        .await
        .expect("close accepted");
    r.flat(3, P).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    assert!(churner_market_orders(&r).is_empty());
    let ChurnStage::HandedOver {
        order, close: c, ..
    } = r.stage()
    else {
        panic!("still handed over: {:?}", r.stage())
    };
    assert!(c.is_none(), "no close in progress");
    assert_ne!(order.id, before.id, "restored under a new client id");
    let resting = r.churn_orders();
    assert_eq!(resting.len(), 1, "the exit is back: {resting:?}");
    assert_eq!(resting[0].limit_price, Some(before.price));
    assert_eq!(resting[0].volume, before.volume);
    let j = journal(&r, &id).await;
    match j.last().unwrap() {
        EventDetails::OperatorAction(a) => assert_eq!(a.action, "close_at_market_failed"),
        other => panic!("{other:?}"),
    }
    assert!(
        r.lib
            .position(id.parse().unwrap())
            .await
            .unwrap()
            .outcome
            .is_none()
    );
    assert_eq!(r.rt.write_offs().operator, 0);

    r.exchange.set(0);
    close(&mut r, &h, &id, "close-2")
        .await
        .expect("close accepted");
    r.flat(3, P).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    assert_eq!(churner_market_orders(&r).len(), 1);
    let outcome = r.lib.position(id.parse().unwrap()).await.unwrap().outcome;
    assert_eq!(
        format!("{:?}", outcome.expect("closed").close_reason),
        "WrittenOff"
    );
}

/// Proves: a market order whose answer is lost (the exchange took it) is
/// looked up by its client order id and its fill booked; it is never sent
/// twice, and the round trip closes `written_off` once.
#[tokio::test]
async fn an_ambiguous_market_order_is_reconciled_not_repeated() {
    let mut r = Run::with_write_off(1, AgeBand::Stuck, 7_200).await;
    let h = r.rt.handle();
    let (id, _, _) = queued_round_trip(&mut r, &h).await;
    r.exchange.set(7);
    close(&mut r, &h, &id, "close-1")
        .await
        .expect("close accepted");
    r.flat(3, P).await;
    r.exchange.set(0);
    r.flat(10, P).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    closed_once(&r, &id).await;
}

/// Proves: a trader killed while the round trip's market order is in
/// flight (the exchange took it, the answer never came) restarts, finds
/// the order by its client id, books its fill and closes the round trip
/// once: one market order, one `written_off` close.
#[tokio::test]
async fn a_kill_during_the_market_order_closes_once_after_restart() {
    let mut r = Run::with_write_off(1, AgeBand::Stuck, 7_200).await;
    let mut h = r.rt.handle();
    let (id, _, _) = queued_round_trip(&mut r, &h).await;
    close(&mut r, &h, &id, "close-1")
        .await
        .expect("close accepted");
    r.exchange.set(1);
    let mut hung = false;
    for _ in 0..5 {
        r.paper.step(&candle(r.t, P, P, P, P));
        r.t += 60;
        let step = r.rt.step(r.paper.clock().now_ms());
        if tokio::time::timeout(std::time::Duration::from_millis(500), step)
            .await
            .is_err()
        {
            hung = true;
            break;
        }
    }
    assert!(hung, "a placement must have been sent");
    assert_eq!(
        churner_market_orders(&r).len(),
        1,
        "the market order reached the exchange"
    );
    r.exchange.set(0);
    r.restart().await;
    h = r.rt.handle();
    r.flat(10, P).await;
    r.rt.flush(r.paper.clock().now_ms()).await.unwrap();
    closed_once(&r, &id).await;
    let again = close(&mut r, &h, &id, "close-1").await.expect("replayed");
    assert!(again.replayed, "the answer survives the restart");
}
