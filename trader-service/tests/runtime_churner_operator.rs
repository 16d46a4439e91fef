//! Operator actions on a handed-over churner round trip through the real
//! loop and the gRPC layer: it reaches the cleanup queue under its ledger
//! id once it ages into band write_off, a hold hides it, a move to
//! breakeven reprices it, and a close at market is refused.

#![allow(missing_docs)]

mod churner_run;
mod faulty;
mod grid;
mod healing;

use churner_run::*;
use rust_decimal_macros::dec;
use trader_service::engine::AgeBand;
use trader_service::exchange::Clock;
use trader_service::healing::churner::ChurnStage;

/// Proves: a handed-over round trip that ages into band write_off is in
/// `ListCleanupQueue` under its ledger id, like a slot position; a
/// `KeepHolding` on it hides it (journaled on the round trip), a close at
/// market is refused for it, a `ReleaseHold` brings it back, and a
/// `RepriceToBreakeven` moves its exit to entry x 1.005 (fee floor).
#[tokio::test]
async fn a_handed_over_round_trip_in_write_off_is_queued_and_can_be_held() {
    use healgrid_proto::trader::v1 as pb;
    use trader_service::operator_api;

    let mut r = Run::with_write_off(1, AgeBand::Stuck, 7_200).await;
    r.stuck_position().await;
    let p = dec!(0.0990);
    r.step(candle(r.t, p, p, dec!(0.09884), p)).await;
    r.flat(11, p).await;
    let ChurnStage::HandedOver { position, .. } = r.stage() else {
        panic!("handed over expected: {:?}", r.stage())
    };
    let id = position.position_id.clone().expect("ledger id known");
    let handle = r.rt.handle();
    let queued = |h: &trader_service::runtime::status::RuntimeHandle| {
        operator_api::list_cleanup_queue(h)
            .positions
            .into_iter()
            .find(|e| e.position_id == id)
    };
    let mut entry = None;
    for _ in 0..240 {
        r.flat(1, p).await;
        entry = queued(&handle);
        if entry.is_some() {
            break;
        }
    }
    let entry = entry.expect("the round trip reaches the cleanup queue");
    assert_eq!(entry.slot_id, 0);
    assert_eq!(entry.volume, position.volume.to_string());
    assert_eq!(entry.actions, ["reprice_to_breakeven", "keep_holding"]);

    let now_ms = r.paper.clock().now_ms();
    let ask = |action: &'static str| {
        let h = handle.clone();
        let id = id.clone();
        tokio::spawn(async move {
            match action {
                "hold" => {
                    operator_api::keep_holding(
                        &h,
                        pb::KeepHoldingRequest {
                            position_id: id,
                            hold_seconds: 3_600,
                            request_id: "hold-1".into(),
                            reason: "wait for the range".into(),
                            operator: "alice".into(),
                        },
                    )
                    .await
                }
                "release" => {
                    operator_api::release_hold(
                        &h,
                        pb::ReleaseHoldRequest {
                            position_id: id,
                            request_id: "release-1".into(),
                            reason: "enough".into(),
                            operator: "alice".into(),
                        },
                    )
                    .await
                }
                "breakeven" => {
                    operator_api::reprice_to_breakeven(
                        &h,
                        pb::RepriceToBreakevenRequest {
                            position_id: id,
                            request_id: "breakeven-1".into(),
                            reason: "take what the slot has".into(),
                            operator: "alice".into(),
                        },
                    )
                    .await
                }
                _ => {
                    operator_api::close_at_market(
                        &h,
                        pb::CloseAtMarketRequest {
                            position_id: id,
                            request_id: "close-1".into(),
                            reason: "give up".into(),
                            operator: "alice".into(),
                        },
                    )
                    .await
                }
            }
        })
    };
    let mut answers = Vec::new();
    for action in ["hold", "close", "release", "breakeven"] {
        let task = ask(action);
        while !task.is_finished() {
            r.rt.serve_control(now_ms).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        answers.push(task.await.unwrap());
        if action == "release" {
            r.flat(1, p).await;
            assert!(queued(&handle).is_some(), "released: back in the queue");
        }
        if action == "hold" {
            r.flat(1, p).await;
            assert!(queued(&handle).is_none(), "on hold: out of the queue");
            let ChurnStage::HandedOver { heal, .. } = r.stage() else {
                panic!("still handed over: {:?}", r.stage())
            };
            assert_eq!(heal.hold_until, Some(now_ms / 1000 + 3_600));
        }
    }
    let held = answers[0].as_ref().expect("hold accepted");
    assert_eq!(held.position_id, id);
    let refused = answers[1].as_ref().expect_err("close refused");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        refused.message(),
        "close at market is not available for a churner round trip yet"
    );
    answers[2].as_ref().expect("release accepted");
    answers[3].as_ref().expect("breakeven accepted");
    // The churner loop cancels the exit and places the remainder at
    // breakeven (entry x 1.005), above the market.
    r.flat(2, p).await;
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
