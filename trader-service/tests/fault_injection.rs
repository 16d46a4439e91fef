//! Fault injection at the client: an AddOrder whose outcome is ambiguous
//! (unavailable, HTML 5xx, timeout, accepted-but-response-lost, delayed
//! acceptance) is sent exactly once and reported `Ambiguous`, never
//! repeated behind the caller's back (the runtime resolves it over the
//! stale window, see `ambiguous_placement.rs`); a second send of a client
//! order id that is open is refused as a duplicate. The faults that are
//! not about placement (an invalid nonce, a stale order status, a slow
//! reply, a partial fill) each do what they say at the wire.

mod common;

use std::time::Duration;

use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::exchange::kraken::KrakenClient;
use trader_service::exchange::paper::SPLIT_HOLD_CANDLES;
use trader_service::exchange::sim_server::{ANY_METHOD, FILL_METHOD, Fault, FaultRule};
use trader_service::exchange::{ErrorKind, Exchange, OrderStatus};
use trader_service::pair::Side;

/// The faults, and whether the simulator processes the request anyway.
const FAULTS: [(Fault, bool); 5] = [
    (Fault::ServiceUnavailable, false),
    (Fault::Http5xxHtml, false),
    (Fault::Timeout, false),
    (Fault::LostResponse, true),
    (Fault::DelayedAccept, true),
];

#[tokio::test]
async fn ambiguous_add_orders_are_sent_once_and_duplicates_refused() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let c = KrakenClient::new(client_config(&sim, fast_tier())).unwrap();
    for (i, (fault, processed)) in FAULTS.into_iter().enumerate() {
        let id = format!("amb-{i}");
        sim.inject(FaultRule {
            method: "AddOrder".into(),
            fault,
            count: 1,
        })
        .unwrap();
        let sends = sim.stats().calls.get("AddOrder").copied().unwrap_or(0);
        let price = dec!(0.09) - Decimal::new(i64::try_from(i).unwrap(), 4);
        let req = limit(Side::Buy, price, dec!(50), 1, &id);
        let e = c.add_order(&req).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Ambiguous, "{fault:?}: {e}");
        let after = sim.stats().calls.get("AddOrder").copied().unwrap_or(0);
        assert_eq!(after - sends, 1, "{fault:?}: sent exactly once");
        // Let a delayed acceptance land.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let open = c.open_orders().await.unwrap();
        let copies = open
            .iter()
            .filter(|o| o.cl_ord_id.as_deref() == Some(id.as_str()))
            .count();
        assert_eq!(copies, usize::from(processed), "{fault:?}");
        if processed {
            let e = c.add_order(&req).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DuplicateOrder, "{fault:?}: {e}");
        }
    }
    assert_eq!(sim.pending_faults(), 0);
    // A failure that certainly had no effect is still retried by the client.
    let ok = c
        .add_order(&limit(Side::Buy, dec!(0.08), dec!(50), 1, "fine"))
        .await
        .unwrap();
    assert!(!ok.reconciled);
    sim.shutdown();
}

/// An injected `EOrder:Rate limit exceeded` was not processed: the client
/// backs off and sends the order again, and exactly one order rests.
#[tokio::test]
async fn an_injected_rate_limit_is_backed_off_and_placed_once() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let c = KrakenClient::new(client_config(&sim, fast_tier())).unwrap();
    sim.inject(FaultRule {
        method: "AddOrder".into(),
        fault: Fault::RateLimited,
        count: 1,
    })
    .unwrap();
    let ack = c
        .add_order(&limit(Side::Buy, dec!(0.09), dec!(50), 1, "rl"))
        .await
        .unwrap();
    assert_eq!(
        sim.stats().calls.get("AddOrder").copied(),
        Some(2),
        "refused once, then sent again"
    );
    let open = c.open_orders().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].txid, ack.txid);
    sim.shutdown();
}

/// An injected `EAPI:Invalid nonce` was not processed: on any call the
/// client signs again with a fresh nonce, so a read succeeds and an order
/// is placed exactly once.
#[tokio::test]
async fn an_injected_invalid_nonce_is_retried_without_effect() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let c = KrakenClient::new(client_config(&sim, fast_tier())).unwrap();
    sim.inject(FaultRule {
        method: ANY_METHOD.into(),
        fault: Fault::InvalidNonce,
        count: 2,
    })
    .unwrap();
    c.balances().await.unwrap();
    assert_eq!(sim.stats().calls.get("Balance").copied(), Some(3));
    sim.inject(FaultRule {
        method: "AddOrder".into(),
        fault: Fault::InvalidNonce,
        count: 1,
    })
    .unwrap();
    let ack = c
        .add_order(&limit(Side::Buy, dec!(0.09), dec!(50), 1, "nonce"))
        .await
        .unwrap();
    assert_eq!(sim.stats().calls.get("AddOrder").copied(), Some(2));
    let open = c.open_orders().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].txid, ack.txid);
    assert_eq!(sim.pending_faults(), 0);
    sim.shutdown();
}

/// A stale status replays the previous reply to the same call: an order
/// placed since is missing from it, and the next call sees it again. A
/// call asked for the first time has nothing older, so the fault waits.
#[tokio::test]
async fn a_stale_status_replays_the_previous_reply_to_the_same_call() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let c = KrakenClient::new(client_config(&sim, fast_tier())).unwrap();
    let first = c
        .add_order(&limit(Side::Buy, dec!(0.09), dec!(50), 1, "s1"))
        .await
        .unwrap();
    assert_eq!(c.open_orders().await.unwrap().len(), 1);
    c.add_order(&limit(Side::Buy, dec!(0.089), dec!(50), 1, "s2"))
        .await
        .unwrap();
    sim.inject(FaultRule {
        method: "OpenOrders".into(),
        fault: Fault::StaleStatus,
        count: 1,
    })
    .unwrap();
    let stale = c.open_orders().await.unwrap();
    assert_eq!(stale.len(), 1, "the view before the second order");
    assert_eq!(stale[0].txid, first.txid);
    assert_eq!(c.open_orders().await.unwrap().len(), 2);

    sim.inject(FaultRule {
        method: "QueryOrders".into(),
        fault: Fault::StaleStatus,
        count: 1,
    })
    .unwrap();
    let asked = [first.txid.clone()];
    let fresh = c.query_orders(&asked).await.unwrap();
    assert_eq!(fresh[0].status, OrderStatus::Open);
    assert_eq!(sim.pending_faults(), 1, "nothing older to replay yet");
    c.cancel_order(&first.txid).await.unwrap();
    let stale = c.query_orders(&asked).await.unwrap();
    assert_eq!(stale[0].status, OrderStatus::Open, "as it was");
    assert_eq!(sim.pending_faults(), 0);
    let now = c.query_orders(&asked).await.unwrap();
    assert_eq!(now[0].status, OrderStatus::Canceled);
    sim.shutdown();
}

/// A slow reply is processed at once and answered late: within the
/// client's timeout it arrives whole, the call made once.
#[tokio::test]
async fn a_slow_reply_arrives_late_but_whole() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let mut cfg = client_config(&sim, fast_tier());
    cfg.request_timeout = Duration::from_secs(2);
    let c = KrakenClient::new(cfg).unwrap();
    sim.inject(FaultRule {
        method: ANY_METHOD.into(),
        fault: Fault::SlowReply { ms: 400 },
        count: 1,
    })
    .unwrap();
    let started = std::time::Instant::now();
    let b = c.balances().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(b.assets.get("ZUSD").copied(), Some(dec!(1000)));
    assert_eq!(sim.stats().calls.get("Balance").copied(), Some(1));
    sim.shutdown();
}

/// A partial fill is queued for the fills, not for a call: the next
/// resting execution fills half, the rest stays on the book and fills
/// once its hold is over; a partial fill named for a call is refused.
#[tokio::test]
async fn a_partial_fill_splits_the_next_execution() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let c = KrakenClient::new(client_config(&sim, fast_tier())).unwrap();
    let refused = sim.inject(FaultRule {
        method: "AddOrder".into(),
        fault: Fault::PartialFill,
        count: 1,
    });
    assert!(refused.unwrap_err().contains(FILL_METHOD));
    let misplaced = sim.inject(FaultRule {
        method: FILL_METHOD.into(),
        fault: Fault::ServiceUnavailable,
        count: 1,
    });
    assert!(misplaced.is_err());
    let ack = c
        .add_order(&limit(Side::Buy, dec!(0.09), dec!(120), 1, "pf"))
        .await
        .unwrap();
    let pending = sim
        .inject(FaultRule {
            method: FILL_METHOD.into(),
            fault: Fault::PartialFill,
            count: 1,
        })
        .unwrap();
    assert_eq!(pending, 1);
    let through = candle(T0 + 60, dec!(0.1), dec!(0.1), dec!(0.08), dec!(0.1));
    sim.push_candle(&through);
    let o = &c
        .query_orders(std::slice::from_ref(&ack.txid))
        .await
        .unwrap()[0];
    assert_eq!((o.status, o.vol_exec), (OrderStatus::Open, dec!(60)));
    assert_eq!(sim.pending_faults(), 0);
    // The rest waits out the hold, then fills.
    for n in 1..=SPLIT_HOLD_CANDLES {
        let open = T0 + 60 + 60 * i64::from(n);
        sim.push_candle(&candle(open, dec!(0.1), dec!(0.1), dec!(0.08), dec!(0.1)));
        if n == SPLIT_HOLD_CANDLES - 1 {
            let o = &c
                .query_orders(std::slice::from_ref(&ack.txid))
                .await
                .unwrap()[0];
            assert_eq!(o.vol_exec, dec!(60), "held until the last candle");
        }
    }
    let o = &c
        .query_orders(std::slice::from_ref(&ack.txid))
        .await
        .unwrap()[0];
    assert_eq!((o.status, o.vol_exec), (OrderStatus::Closed, dec!(120)));
    sim.shutdown();
}
