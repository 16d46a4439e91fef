//! Close at market end to end over the wire: the operator's RPC on the
//! trader's real gRPC server, the real runtime, the real Kraken client and
//! the in-process Kraken simulator injecting a lost AddOrder response into
//! the market order, with the in-process ledger.

#![allow(missing_docs)]

mod common;

use std::time::Duration;

use common::*;
use healgrid_proto::trader::v1 as pb;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;
use ledger_service::{Ledger, SqliteStore};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::engine::{BandThresholds, EngineConfig};
use trader_service::exchange::kraken::KrakenClient;
use trader_service::exchange::sim_server::{Fault, FaultRule, SimHandle};
use trader_service::exchange::{Clock, Exchange, OrderInfo, OrderType};
use trader_service::runtime::intents::StalePolicy;
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};
use trader_service::runtime::{Runtime, RuntimeConfig};

const BOT: &str = "close-bot";

type Rt = Runtime<KrakenClient, LocalLedger<SqliteStore>>;

async fn runtime(sim: &SimHandle, lib: &Ledger<SqliteStore>) -> Rt {
    let client = KrakenClient::new(client_config(sim, fast_tier())).unwrap();
    let spec = client.pair_info("XDGUSD").await.unwrap().spec;
    let mut e = EngineConfig::defaults(spec);
    e.slots = 1;
    e.order_size = trader_service::engine::OrderSize::Usd(dec!(10));
    e.bands.thresholds = BandThresholds {
        fresh_sec: 600,
        aging_sec: 1_200,
        stale_sec: 1_800,
        stuck_sec: 2_400,
    };
    let mut cfg = RuntimeConfig::new(BOT, e.validate().0);
    cfg.placement_stale = StalePolicy {
        window_ms: 200_000,
        min_lookups: 2,
    };
    cfg.reconcile_every = 1;
    let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
    Runtime::new(cfg, client, LocalLedger::new(lib.clone()), store)
        .await
        .unwrap()
}

async fn step(rt: &mut Rt, sim: &SimHandle, low: Decimal, close: Decimal, k: &mut i64) {
    sim.push_candle(&candle(T0 + 60 * *k, close, close.max(low), low, close));
    *k += 1;
    rt.step(sim.exchange().clock().now_ms()).await.unwrap();
}

fn market_orders(sim: &SimHandle) -> Vec<OrderInfo> {
    sim.exchange().with_book(|b| {
        b.open_orders()
            .into_iter()
            .chain(b.closed_orders())
            .filter(|o| o.order_type == OrderType::Market)
            .collect()
    })
}

/// Proves: the operator's CloseAtMarket over gRPC, whose market order the
/// exchange accepts but whose answer is lost, is looked up by client order
/// id (never sent twice), and the position closes `written_off` at the
/// price, cost and fee the simulator reports for that one order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_at_market_over_kraken_with_a_lost_answer_closes_once() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let lib = Ledger::in_memory().await.unwrap();
    let mut rt = runtime(&sim, &lib).await;
    let handle = rt.handle();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(trader_service::server::serve(handle, listener, async {
        std::future::pending::<()>().await;
    }));
    let mut k = 1;
    for _ in 0..3 {
        step(&mut rt, &sim, dec!(0.1), dec!(0.1), &mut k).await;
    }
    // The long leg's entry fills; the market stays 1 % below until the
    // position is in band write_off.
    step(&mut rt, &sim, dec!(0.0990), dec!(0.0990), &mut k).await;
    for _ in 0..35 {
        step(&mut rt, &sim, dec!(0.0990), dec!(0.0990), &mut k).await;
    }
    rt.flush(sim.exchange().clock().now_ms()).await.unwrap();
    let open = lib.open_positions(BOT, Some(0)).await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    let id = open[0].position_id.to_string();

    let channel = loop {
        if let Ok(c) = tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut client = TraderServiceClient::new(channel);
    let queue = client
        .list_cleanup_queue(pb::ListCleanupQueueRequest {})
        .await
        .unwrap()
        .into_inner()
        .positions;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].position_id, id);

    sim.inject(FaultRule {
        method: "AddOrder".into(),
        fault: Fault::LostResponse,
        count: 1,
    })
    .unwrap();
    let req = pb::CloseAtMarketRequest {
        position_id: id.clone(),
        request_id: "close-1".into(),
        reason: "cut the loss".into(),
        operator: "alice".into(),
    };
    let call = tokio::spawn(async move { client.close_at_market(req).await });
    while !call.is_finished() {
        rt.serve_control(sim.exchange().clock().now_ms())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let answer = call.await.unwrap().unwrap().into_inner();
    assert_eq!(answer.action, "close_at_market");
    for _ in 0..8 {
        step(&mut rt, &sim, dec!(0.0990), dec!(0.0990), &mut k).await;
    }
    rt.flush(sim.exchange().clock().now_ms()).await.unwrap();
    assert_eq!(sim.pending_faults(), 0, "the lost answer happened");
    let markets = market_orders(&sim);
    assert_eq!(markets.len(), 1, "one market order: {markets:?}");
    let m = &markets[0];
    let p = lib.position(id.parse().unwrap()).await.unwrap();
    let o = p.outcome.expect("closed");
    assert_eq!(format!("{:?}", o.close_reason), "WrittenOff");
    assert_eq!(o.exit_price, m.avg_price);
    assert_eq!(o.exit_fee, Some(m.fee));
    assert_eq!(o.exit_cost, Some(m.cost));
    assert!(o.net_profit.unwrap() < Decimal::ZERO);
    assert_eq!(rt.write_offs().operator, 1);
}
