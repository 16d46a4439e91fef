//! The Kraken client against the Kraken-compatible simulator, end to end
//! over HTTP: placement, queries, fills, cancels, every error kind, and
//! rate-limit pacing and backoff.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rust_decimal_macros::dec;
use trader_service::exchange::kraken::KrakenClient;
use trader_service::exchange::kraken::limits::RateTier;
use trader_service::exchange::sim_server::{Fault, FaultRule};
use trader_service::exchange::{ErrorKind, Exchange, OrderKind, OrderStatus, OrderType};
use trader_service::pair::Side;

#[tokio::test]
async fn public_data_matches_the_simulated_pair() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let c = client(&sim);
    let info = c.pair_info("XDGUSD").await.unwrap();
    assert_eq!(info.spec.price_decimals, 7);
    assert_eq!(info.spec.lot_decimals, 8);
    assert_eq!(info.spec.ordermin, dec!(50));
    assert_eq!(info.spec.costmin, dec!(0.5));
    assert_eq!((info.base.as_str(), info.quote.as_str()), ("XXDG", "ZUSD"));
    let fees = c.fees("XDGUSD").await.unwrap();
    assert_eq!((fees.maker_pct, fees.taker_pct), (dec!(0.25), dec!(0.40)));
    assert_eq!(c.ticker("XDGUSD").await.unwrap().last, dec!(0.1));
    sim.push_candle(&candle(
        T0 + 60,
        dec!(0.1),
        dec!(0.102),
        dec!(0.099),
        dec!(0.101),
    ));
    let candles = c.ohlc("XDGUSD", 1, Some(T0)).await.unwrap();
    assert_eq!(candles.len(), 1);
    assert_eq!(candles[0].close, dec!(0.101));
    let e = c.ticker("XBTUSD").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    let b = c.balances().await.unwrap();
    assert_eq!(b.get("XXDG"), dec!(10000));
    assert_eq!(b.get("ZUSD"), dec!(1000));
    sim.shutdown();
}

#[tokio::test]
async fn place_query_fill_and_trade_history() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let c = client(&sim);
    let ack = c
        .add_order(&limit(Side::Buy, dec!(0.095), dec!(100), 7, "buy-1"))
        .await
        .unwrap();
    assert!(!ack.reconciled);
    let o = &c
        .query_orders(std::slice::from_ref(&ack.txid))
        .await
        .unwrap()[0];
    assert_eq!(o.status, OrderStatus::Open);
    assert_eq!(o.order_type, OrderType::Limit);
    assert!(o.post_only);
    assert_eq!(o.limit_price, Some(dec!(0.095)));
    assert_eq!((o.userref, o.cl_ord_id.as_deref()), (7, Some("buy-1")));
    assert_eq!(c.open_orders().await.unwrap().len(), 1);

    // The market trades through the price: filled at the limit, maker fee.
    let fills = sim.push_candle(&candle(
        T0 + 60,
        dec!(0.1),
        dec!(0.1),
        dec!(0.094),
        dec!(0.096),
    ));
    assert_eq!(fills.len(), 1);
    let o = &c
        .query_orders(std::slice::from_ref(&ack.txid))
        .await
        .unwrap()[0];
    assert_eq!(o.status, OrderStatus::Closed);
    assert_eq!(o.vol_exec, dec!(100));
    assert_eq!(o.cost, dec!(9.5));
    assert_eq!(o.fee, dec!(0.02375));
    assert_eq!(o.avg_price, Some(dec!(0.095)));
    assert!(o.closed_at.is_some());
    assert!(c.open_orders().await.unwrap().is_empty());

    let trades = c.trades_since(0).await.unwrap();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].order_txid, ack.txid);
    assert!(trades[0].maker);
    assert!(c.trades_since(trades[0].time).await.unwrap().is_empty());
    let b = c.balances().await.unwrap();
    assert_eq!(b.get("XXDG"), dec!(10100));
    assert_eq!(b.get("ZUSD"), dec!(1000) - dec!(9.5) - dec!(0.02375));

    // A market sell fills at once with the taker fee.
    let m = trader_service::exchange::OrderRequest {
        kind: OrderKind::Market,
        ..limit(Side::Sell, dec!(0), dec!(100), 8, "mkt-1")
    };
    let ack = c.add_order(&m).await.unwrap();
    let o = &c.query_orders(&[ack.txid]).await.unwrap()[0];
    assert_eq!(o.status, OrderStatus::Closed);
    assert_eq!(o.order_type, OrderType::Market);
    assert_eq!(o.fee, dec!(0.0384));
    sim.shutdown();
}

#[tokio::test]
async fn cancel_and_cancel_replace() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let c = client(&sim);
    let ack = c
        .add_order(&limit(Side::Sell, dec!(0.11), dec!(100), 3, "s-1"))
        .await
        .unwrap();
    let replaced = c
        .cancel_replace(
            &ack.txid,
            &limit(Side::Sell, dec!(0.105), dec!(100), 3, "s-2"),
        )
        .await
        .unwrap();
    let both = c
        .query_orders(&[ack.txid.clone(), replaced.txid.clone()])
        .await
        .unwrap();
    let status = |t: &str| both.iter().find(|o| o.txid == t).unwrap().status;
    assert_eq!(status(&ack.txid), OrderStatus::Canceled);
    assert_eq!(status(&replaced.txid), OrderStatus::Open);
    // Cancelling an already-cancelled order is reported as done.
    c.cancel_order(&ack.txid).await.unwrap();
    // A filled order cannot be cancelled: UnknownOrder, and nothing placed.
    sim.push_candle(&candle(
        T0 + 60,
        dec!(0.1),
        dec!(0.106),
        dec!(0.1),
        dec!(0.104),
    ));
    let e = c.cancel_order(&replaced.txid).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownOrder);
    let e = c
        .cancel_replace(
            &replaced.txid,
            &limit(Side::Sell, dec!(0.12), dec!(100), 3, "s-3"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownOrder);
    assert!(c.open_orders().await.unwrap().is_empty());
    let e = c.cancel_order("OAAAAA-BBBBB-CCCCCC").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownOrder);
    sim.shutdown();
}

fn kind<T: std::fmt::Debug>(r: Result<T, trader_service::exchange::ExchangeError>) -> ErrorKind {
    r.unwrap_err().kind()
}

#[tokio::test]
async fn every_error_kind_surfaces_correctly() {
    let mut cfg = sim_config(fast_tier());
    cfg.paper.max_open_orders = 2;
    let sim = start_sim(cfg).await;
    let c = client(&sim);

    // Insufficient funds: 1000 USD cannot buy 20000 DOGE at 0.09.
    let big = limit(Side::Buy, dec!(0.09), dec!(20000), 1, "big");
    assert_eq!(kind(c.add_order(&big).await), ErrorKind::InsufficientFunds);
    // Post-only at or through the market.
    let cross = limit(Side::Buy, dec!(0.1), dec!(100), 1, "cross");
    assert_eq!(
        kind(c.add_order(&cross).await),
        ErrorKind::PostOnlyWouldCross
    );
    // Below ordermin, too many price decimals.
    let small = limit(Side::Buy, dec!(0.09), dec!(10), 1, "small");
    assert_eq!(kind(c.add_order(&small).await), ErrorKind::InvalidRequest);
    let fine = limit(Side::Buy, dec!(0.091234567), dec!(100), 1, "fine");
    assert_eq!(kind(c.add_order(&fine).await), ErrorKind::InvalidRequest);
    // Open-order limit.
    c.add_order(&limit(Side::Buy, dec!(0.09), dec!(100), 1, "a"))
        .await
        .unwrap();
    c.add_order(&limit(Side::Buy, dec!(0.08), dec!(100), 1, "b"))
        .await
        .unwrap();
    let third = limit(Side::Buy, dec!(0.07), dec!(100), 1, "c");
    assert_eq!(
        kind(c.add_order(&third).await),
        ErrorKind::OrdersLimitExceeded
    );
    // Unknown order.
    assert_eq!(
        kind(c.cancel_order("ONOPE0-AAAAA-BBBBBB").await),
        ErrorKind::UnknownOrder
    );
    // Retryable: every attempt hits EService:Unavailable.
    sim.inject(FaultRule {
        method: "Balance".into(),
        fault: Fault::ServiceUnavailable,
        count: 4,
    })
    .unwrap();
    assert_eq!(kind(c.balances().await), ErrorKind::Retryable);
    // ...but a transient one is retried transparently.
    sim.inject(FaultRule {
        method: "Balance".into(),
        fault: Fault::Http5xxHtml,
        count: 2,
    })
    .unwrap();
    c.balances().await.unwrap();
    // Ambiguous: the placement may have reached the exchange; it is not
    // sent again (the caller resolves it by cl_ord_id).
    sim.inject(FaultRule {
        method: "AddOrder".into(),
        fault: Fault::Http5xxHtml,
        count: 1,
    })
    .unwrap();
    let amb = limit(Side::Sell, dec!(0.2), dec!(100), 1, "amb");
    assert_eq!(kind(c.add_order(&amb).await), ErrorKind::Ambiguous);
    // Duplicate client order id: the order exists, nothing new is placed.
    let dup = c
        .add_order(&limit(Side::Buy, dec!(0.06), dec!(100), 1, "a"))
        .await;
    assert_eq!(kind(dup), ErrorKind::DuplicateOrder);
    assert_eq!(c.open_orders().await.unwrap().len(), 2);
    // Auth: wrong secret.
    let mut bad = client_config(&sim, fast_tier());
    bad.api_secret = vec![1, 2, 3];
    let bad = KrakenClient::new(bad).unwrap();
    assert_eq!(kind(bad.balances().await), ErrorKind::Auth);
    // Rate limited: the client believes in a bigger counter than enforced
    // and is not allowed to retry.
    let mut tight = sim_config(RateTier {
        rest_max: 2,
        rest_decay: 100,
        ..fast_tier()
    });
    tight.listen = "127.0.0.1:0".parse().unwrap();
    let sim2 = start_sim(tight).await;
    let mut optimistic = client_config(&sim2, fast_tier());
    optimistic.max_retries = 0;
    let c2 = KrakenClient::new(optimistic).unwrap();
    c2.balances().await.unwrap();
    c2.balances().await.unwrap();
    let e = c2.balances().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.retry_after().is_some());
    sim.shutdown();
    sim2.shutdown();
}

#[tokio::test]
async fn client_paces_itself_instead_of_hitting_the_rest_limit() {
    // Enforced and modelled: 3 points, decaying 5/s.
    let tier = RateTier {
        rest_max: 3,
        rest_decay: 5_000,
        ..fast_tier()
    };
    let sim = start_sim(sim_config(tier)).await;
    // A 10 % margin absorbs the latency jitter between our model and the
    // server's counter (production uses 25 %).
    let mut cfg = client_config(&sim, tier);
    cfg.limit_pct = 90;
    let c = KrakenClient::new(cfg).unwrap();
    let start = Instant::now();
    for _ in 0..8 {
        c.balances().await.unwrap();
    }
    // 2 free calls, then waits of ~200 ms each.
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(sim.stats().rate_limited, 0);
    assert_eq!(sim.stats().calls["Balance"], 8);
    sim.shutdown();
}

#[tokio::test]
async fn client_backs_off_when_the_server_says_rate_limited() {
    let enforced = RateTier {
        rest_max: 3,
        rest_decay: 5_000,
        ..fast_tier()
    };
    let sim = start_sim(sim_config(enforced)).await;
    // The client wrongly believes in a 20-point counter (right decay).
    let believed = RateTier {
        rest_max: 20,
        ..enforced
    };
    let mut cfg = client_config(&sim, believed);
    cfg.max_retries = 6;
    let c = KrakenClient::new(cfg).unwrap();
    for _ in 0..8 {
        c.balances().await.unwrap();
    }
    let stats = sim.stats();
    // One push-back saturates the client's model; from then on it paces
    // itself, so the server rarely has to refuse again.
    assert!(stats.rate_limited >= 1, "the server must have pushed back");
    assert!(
        stats.rate_limited <= 3,
        "after backing off the client stays within the limit: {stats:?}"
    );
    sim.shutdown();
}

#[tokio::test]
async fn cancel_penalty_of_young_orders_is_paced() {
    // Trading counter 10, decaying 10/s: each young cancel costs 8.
    let tier = RateTier {
        trading_max: 10,
        trading_decay: 10_000,
        ..fast_tier()
    };
    let sim = start_sim(sim_config(tier)).await;
    let mut cfg = client_config(&sim, tier);
    cfg.limit_pct = 90;
    let c = KrakenClient::new(cfg).unwrap();
    let start = Instant::now();
    for i in 0..4 {
        let ack = c
            .add_order(&limit(
                Side::Buy,
                dec!(0.09),
                dec!(100),
                1,
                &format!("y-{i}"),
            ))
            .await
            .unwrap();
        c.cancel_order(&ack.txid).await.unwrap();
    }
    // 4 x (1 + 8) = 36 points against a 9-point budget at 10/s.
    assert!(
        start.elapsed() >= Duration::from_millis(2_000),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(sim.stats().rate_limited, 0);
    sim.shutdown();
}

#[tokio::test]
async fn nonces_stay_valid_under_concurrent_calls() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let c = std::sync::Arc::new(client(&sim));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = std::sync::Arc::clone(&c);
        tasks.push(tokio::spawn(
            async move { c.open_orders().await.map(|_| ()) },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(sim.stats().bad_nonce, 0);
    sim.shutdown();
}

/// The trader holds the exchange generically inside a tokio task: both
/// implementations must produce `Send` futures.
#[tokio::test]
async fn both_exchanges_run_inside_spawned_tasks() {
    async fn balances_in_task<E: Exchange + 'static>(
        e: std::sync::Arc<E>,
    ) -> rust_decimal::Decimal {
        tokio::spawn(async move { e.balances().await.unwrap().get("ZUSD") })
            .await
            .unwrap()
    }
    let sim = start_sim(sim_config(fast_tier())).await;
    let kraken = std::sync::Arc::new(client(&sim));
    assert_eq!(balances_in_task(kraken).await, dec!(1000));
    let paper = std::sync::Arc::new(sim.exchange().clone());
    assert_eq!(balances_in_task(paper).await, dec!(1000));
    sim.shutdown();
}
