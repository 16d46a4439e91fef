//! Fault injection at the client: an AddOrder whose outcome is ambiguous
//! (unavailable, HTML 5xx, timeout, accepted-but-response-lost, delayed
//! acceptance) is sent exactly once and reported `Ambiguous`, never
//! repeated behind the caller's back (the runtime resolves it over the
//! stale window, see `ambiguous_placement.rs`); a second send of a client
//! order id that is open is refused as a duplicate.

mod common;

use std::time::Duration;

use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::exchange::kraken::KrakenClient;
use trader_service::exchange::sim_server::{Fault, FaultRule};
use trader_service::exchange::{ErrorKind, Exchange};
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
        });
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
    });
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
