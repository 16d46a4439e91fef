//! Fault injection: 50 ambiguous AddOrder failures in a row (unavailable,
//! HTML 5xx, timeout, accepted-but-response-lost, and delayed acceptance
//! that a first lookup cannot see) must still leave exactly one resting
//! order per intended order and no duplicates.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::exchange::kraken::KrakenClient;
use trader_service::exchange::sim_server::{Fault, FaultRule};
use trader_service::exchange::{Exchange, OrderStatus};
use trader_service::pair::Side;

const FAULTS: [Fault; 5] = [
    Fault::ServiceUnavailable,
    Fault::Http5xxHtml,
    Fault::Timeout,
    Fault::LostResponse,
    Fault::DelayedAccept,
];

#[tokio::test]
async fn fifty_ambiguous_add_orders_leave_exactly_one_order_each() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let mut cfg = client_config(&sim, fast_tier());
    cfg.max_place_attempts = 20;
    let c = KrakenClient::new(cfg).unwrap();

    // 50 consecutive AddOrder calls fail ambiguously, cycling the modes.
    for i in 0..50 {
        sim.inject(FaultRule {
            method: "AddOrder".into(),
            fault: FAULTS[i % FAULTS.len()],
            count: 1,
        });
    }

    let intended = 30;
    let mut acks = HashMap::new();
    let mut reconciled = 0;
    for i in 0..intended {
        let id = format!("grid-{i}");
        let price = dec!(0.09) - Decimal::new(i64::from(i), 4);
        let ack = c
            .add_order(&limit(Side::Buy, price, dec!(50), 100 + i, &id))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        reconciled += usize::from(ack.reconciled);
        acks.insert(id, ack.txid);
    }
    assert_eq!(sim.pending_faults(), 0, "all 50 faults were hit");
    assert!(
        reconciled >= 10,
        "lost responses were found, not re-placed: {reconciled}"
    );

    // Let any delayed acceptance still in flight land (it must be refused).
    tokio::time::sleep(Duration::from_millis(400)).await;

    let open = c.open_orders().await.unwrap();
    assert_eq!(
        open.len(),
        intended as usize,
        "one resting order per intended order"
    );
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for o in &open {
        assert_eq!(o.status, OrderStatus::Open);
        let id = o.cl_ord_id.clone().unwrap();
        *per_id.entry(id.clone()).or_default() += 1;
        assert_eq!(acks[&id], o.txid, "the ack names the order that exists");
    }
    assert!(
        per_id.values().all(|&n| n == 1),
        "no duplicates: {per_id:?}"
    );
    // Nothing was placed and then lost elsewhere either.
    let all_orders = sim
        .exchange()
        .with_book(|b| b.closed_orders().len() + b.open_count());
    assert_eq!(all_orders, intended as usize);
    sim.shutdown();
}
