//! The simulator's REST methods as any Kraken client sees them over HTTP:
//! Kraken's result shapes for the public and private methods real clients
//! call, bad arguments refused with Kraken's errors, and the `cl_ord_id`
//! rule (an id already used by an open order is refused, also when a
//! delayed acceptance lands after a copy was placed).

mod common;

use std::time::Duration;

use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::Value;
use trader_service::exchange::sim_server::{Fault, FaultRule};

fn dec_of(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not a string"))
        .parse()
        .unwrap()
}

async fn place(url: &str, price: &str, cl: Option<&str>) -> Value {
    let mut p = vec![
        ("pair", "XDGUSD"),
        ("type", "buy"),
        ("ordertype", "limit"),
        ("price", price),
        ("volume", "100"),
        ("oflags", "post"),
    ];
    if let Some(c) = cl {
        p.push(("cl_ord_id", c));
    }
    private_raw(url, "AddOrder", &p).await
}

/// How long the simulator holds a delayed acceptance in the `cl_ord_id` test.
const DELAY: Duration = Duration::from_secs(2);

fn txid(v: &Value) -> String {
    assert_eq!(errors(v), Vec::<String>::new(), "{v}");
    v["result"]["txid"][0].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn public_methods_answer_in_krakens_shapes() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let url = sim.url();
    sim.push_candle(&candle(
        T0 + 60,
        dec!(0.1),
        dec!(0.102),
        dec!(0.099),
        dec!(0.101),
    ));

    let t = public_raw(&url, "Time", &[]).await;
    let unix = t["result"]["unixtime"].as_i64().unwrap();
    assert_eq!(unix, T0 + 120, "the clock is the last candle's close");
    // 1700000160 is Tuesday 14 November 2023, 22:16:00 UTC.
    assert_eq!(t["result"]["rfc1123"], "Tue, 14 Nov 23 22:16:00 +0000");
    let st = public_raw(&url, "SystemStatus", &[]).await;
    assert_eq!(st["result"]["status"], "online");
    assert_eq!(st["result"]["timestamp"], "2023-11-14T22:16:00Z");

    let a = &public_raw(&url, "Assets", &[]).await["result"];
    assert_eq!(a["XXDG"]["altname"], "XDG");
    assert_eq!(a["XXDG"]["decimals"], 8);
    assert_eq!(a["ZUSD"]["altname"], "USD");
    assert_eq!(a["ZUSD"]["aclass"], "currency");
    assert_eq!(a["ZUSD"]["status"], "enabled");
    assert!(a["ZUSD"]["display_decimals"].is_u64());
    let one = &public_raw(&url, "Assets", &[("asset", "XDG")]).await["result"];
    assert_eq!(one.as_object().unwrap().len(), 1);
    assert!(one["XXDG"].is_object());
    let bad = public_raw(&url, "Assets", &[("asset", "NOPE")]).await;
    assert_eq!(errors(&bad), ["EQuery:Unknown asset"]);

    for name in ["XDGUSD", "XDG/USD"] {
        let p = &public_raw(&url, "AssetPairs", &[("pair", name)]).await["result"]["XDGUSD"];
        assert_eq!(p["wsname"], "XDG/USD");
        assert_eq!(
            (p["base"].as_str(), p["quote"].as_str()),
            (Some("XXDG"), Some("ZUSD"))
        );
        assert_eq!(
            (p["pair_decimals"].as_u64(), p["lot_decimals"].as_u64()),
            (Some(7), Some(8))
        );
        assert_eq!(p["cost_decimals"], 9);
        assert_eq!(dec_of(&p["ordermin"]), dec!(50));
        assert_eq!(dec_of(&p["costmin"]), dec!(0.5));
        assert_eq!(dec_of(&p["tick_size"]), dec!(0.0000001));
        assert_eq!(p["status"], "online");
        assert!(p["leverage_buy"].is_array() && p["fees_maker"].is_array());
    }
    let bad = public_raw(&url, "AssetPairs", &[("pair", "XBTUSD")]).await;
    assert_eq!(errors(&bad), ["EQuery:Unknown asset pair"]);

    let tk = &public_raw(&url, "Ticker", &[("pair", "XDGUSD")]).await["result"]["XDGUSD"];
    assert_eq!(dec_of(&tk["c"][0]), dec!(0.101));
    assert!(dec_of(&tk["b"][0]) < dec_of(&tk["a"][0]));
    assert_eq!(dec_of(&tk["h"][1]), dec!(0.102));
    assert_eq!(dec_of(&tk["l"][1]), dec!(0.099));
    assert_eq!(tk["t"][1], 8, "four synthetic trades per candle");

    // Depth: `count` levels a side, and our resting order in the book.
    txid(&place(&url, "0.10099", Some("depth-1")).await);
    let d =
        &public_raw(&url, "Depth", &[("pair", "XDGUSD"), ("count", "3")]).await["result"]["XDGUSD"];
    let (bids, asks) = (d["bids"].as_array().unwrap(), d["asks"].as_array().unwrap());
    assert_eq!((bids.len(), asks.len()), (3, 3));
    assert_eq!(dec_of(&bids[0][0]), dec!(0.1009999));
    assert_eq!(dec_of(&asks[0][0]), dec!(0.1010001));
    assert!(bids.windows(2).all(|w| dec_of(&w[0][0]) > dec_of(&w[1][0])));
    assert_eq!(bids[0][2], T0 + 120);
    let deep = &public_raw(&url, "Depth", &[("pair", "XDGUSD"), ("count", "500")]).await["result"]
        ["XDGUSD"]["bids"];
    let own = deep
        .as_array()
        .unwrap()
        .iter()
        .find(|l| dec_of(&l[0]) == dec!(0.10099))
        .expect("our order is in the book");
    // 100 ticks below the last price: 100 synthetic lots plus our 100.
    assert_eq!(dec_of(&own[1]), dec!(1000) * Decimal::from(100) + dec!(100));
    let bad = public_raw(&url, "Depth", &[("pair", "XDGUSD"), ("count", "0")]).await;
    assert_eq!(errors(&bad), ["EGeneral:Invalid arguments:count"]);

    let o = &public_raw(&url, "OHLC", &[("pair", "XDGUSD"), ("interval", "1")]).await["result"];
    assert_eq!(o["XDGUSD"].as_array().unwrap().len(), 2);
    assert_eq!(o["last"], T0 + 60);
    let since = (T0 + 60).to_string();
    let o = &public_raw(&url, "OHLC", &[("pair", "XDGUSD"), ("since", &since)]).await["result"];
    assert!(o["XDGUSD"].as_array().unwrap().is_empty());
    assert_eq!(o["last"], T0 + 60);
    let bad = public_raw(&url, "OHLC", &[("pair", "XDGUSD"), ("interval", "7")]).await;
    assert_eq!(errors(&bad), ["EGeneral:Invalid arguments"]);

    let tr = &public_raw(&url, "Trades", &[("pair", "XDGUSD")]).await["result"];
    let rows = tr["XDGUSD"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    let last_ns: i128 = tr["last"].as_str().unwrap().parse().unwrap();
    let last_row = &rows[7];
    assert_eq!(dec_of(&last_row[0]), dec!(0.101), "the close trades last");
    assert!(last_row[2].as_f64().unwrap() < (T0 + 120) as f64);
    assert_eq!(last_ns / 1_000_000_000, i128::from(T0 + 60 + 45));
    let newer = &public_raw(
        &url,
        "Trades",
        &[("pair", "XDGUSD"), ("since", tr["last"].as_str().unwrap())],
    )
    .await["result"]["XDGUSD"];
    assert!(newer.as_array().unwrap().is_empty());
    let two = &public_raw(&url, "Trades", &[("pair", "XDGUSD"), ("count", "2")]).await["result"]["XDGUSD"];
    assert_eq!(two.as_array().unwrap().len(), 2);

    let sp = &public_raw(&url, "Spread", &[("pair", "XDGUSD")]).await["result"];
    let rows = sp["XDGUSD"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(dec_of(&rows[1][1]) < dec_of(&rows[1][2]));
    assert_eq!(sp["last"], T0 + 60);

    let bad = public_raw(&url, "Depth", &[]).await;
    assert_eq!(errors(&bad), ["EGeneral:Invalid arguments"]);
    let bad = public_raw(&url, "Nope", &[]).await;
    assert_eq!(errors(&bad), ["EGeneral:Unknown method"]);
    sim.shutdown();
}

#[tokio::test]
async fn private_methods_answer_in_krakens_shapes() {
    let sim = start_sim(sim_config(fast_tier())).await;
    let url = sim.url();
    let resting = txid(&place(&url, "0.09", Some("rest-1")).await);
    let anonymous = txid(&place(&url, "0.08", None).await);

    let b = &private_raw(&url, "BalanceEx", &[]).await["result"];
    assert_eq!(dec_of(&b["ZUSD"]["balance"]), dec!(1000));
    // 100 × 0.09 and 100 × 0.08, each with the 0.25 % maker fee held.
    assert_eq!(dec_of(&b["ZUSD"]["hold_trade"]), dec!(17.0425));
    assert_eq!(dec_of(&b["XXDG"]["hold_trade"]), dec!(0));
    let tb = &private_raw(&url, "TradeBalance", &[]).await["result"];
    assert_eq!(
        dec_of(&tb["eb"]),
        dec!(2000),
        "10000 DOGE at 0.1 plus 1000 USD"
    );
    let bad = private_raw(&url, "TradeBalance", &[("asset", "XXBT")]).await;
    assert_eq!(errors(&bad), ["EGeneral:Invalid arguments:asset"]);
    let tv = &private_raw(&url, "TradeVolume", &[("pair", "XDGUSD")]).await["result"];
    assert_eq!(tv["currency"], "ZUSD");
    assert_eq!(dec_of(&tv["fees_maker"]["XDGUSD"]["fee"]), dec!(0.25));

    // Validation only: described, nothing placed.
    let v = private_raw(
        &url,
        "AddOrder",
        &[
            ("pair", "XDG/USD"),
            ("type", "sell"),
            ("ordertype", "limit"),
            ("price", "0.2"),
            ("volume", "60"),
            ("validate", "true"),
        ],
    )
    .await;
    assert!(v["result"]["descr"]["order"].is_string());
    assert!(v["result"].get("txid").is_none());
    let open = &private_raw(&url, "OpenOrders", &[]).await["result"]["open"];
    assert_eq!(open.as_object().unwrap().len(), 2);
    assert_eq!(open[&resting]["cl_ord_id"], "rest-1");
    assert!(
        open[&anonymous].get("cl_ord_id").is_none(),
        "no id is reported for an order placed without one"
    );
    let by_id =
        &private_raw(&url, "OpenOrders", &[("cl_ord_id", "rest-1")]).await["result"]["open"];
    assert_eq!(by_id.as_object().unwrap().len(), 1);

    // Cancel by cl_ord_id and by txid; a second cancel is an unknown order.
    let c = private_raw(&url, "CancelOrder", &[("cl_ord_id", "rest-1")]).await;
    assert_eq!(c["result"]["count"], 1);
    let c = private_raw(&url, "CancelOrder", &[("txid", &anonymous)]).await;
    assert_eq!(c["result"]["count"], 1);
    let c = private_raw(&url, "CancelOrder", &[("txid", &anonymous)]).await;
    assert_eq!(errors(&c), ["EOrder:Unknown order"]);
    let c = private_raw(&url, "CancelOrder", &[]).await;
    assert_eq!(errors(&c), ["EGeneral:Invalid arguments:txid"]);

    let q = &private_raw(
        &url,
        "QueryOrders",
        &[("txid", &format!("{resting},{anonymous}"))],
    )
    .await["result"];
    assert_eq!(q[&resting]["status"], "canceled");
    assert_eq!(q[&resting]["reason"], "User requested");
    assert!(q[&resting]["closetm"].is_number());
    let closed = &private_raw(&url, "ClosedOrders", &[]).await["result"];
    assert_eq!(closed["count"], 2);
    let page = &private_raw(&url, "ClosedOrders", &[("ofs", "1")]).await["result"];
    assert_eq!(page["count"], 2, "count is every match, not the page");
    assert_eq!(page["closed"].as_object().unwrap().len(), 1);
    assert!(page["closed"].get(&resting).is_some(), "newest first");
    let bad = private_raw(&url, "ClosedOrders", &[("start", "yesterday")]).await;
    assert_eq!(errors(&bad), ["EGeneral:Invalid arguments:start"]);

    // A marketable limit fills at once: one trade in the history.
    let m = private_raw(
        &url,
        "AddOrder",
        &[
            ("pair", "XDGUSD"),
            ("type", "sell"),
            ("ordertype", "limit"),
            ("price", "0.099"),
            ("volume", "100"),
        ],
    )
    .await;
    let sold = txid(&m);
    let th = &private_raw(&url, "TradesHistory", &[]).await["result"];
    assert_eq!(th["count"], 1);
    let (_, trade) = th["trades"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(trade["ordertxid"], sold.as_str());
    assert_eq!(dec_of(&trade["price"]), dec!(0.1));
    assert_eq!(trade["maker"], false);
    let bad = private_raw(&url, "Withdraw", &[]).await;
    assert_eq!(errors(&bad), ["EGeneral:Unknown method"]);
    sim.shutdown();
}

#[tokio::test]
async fn a_cl_ord_id_in_use_by_an_open_order_is_refused() {
    // The copy must be placed while the delayed original still waits; a
    // wide window keeps that true on a loaded machine.
    let mut cfg = sim_config(fast_tier());
    cfg.delayed_accept = DELAY;
    let sim = start_sim(cfg).await;
    let url = sim.url();
    let first = txid(&place(&url, "0.09", Some("dup-1")).await);
    let again = place(&url, "0.08", Some("dup-1")).await;
    assert_eq!(errors(&again), ["EOrder:Duplicate order"]);
    assert!(again.get("result").is_none());
    let validate = private_raw(
        &url,
        "AddOrder",
        &[
            ("pair", "XDGUSD"),
            ("type", "buy"),
            ("ordertype", "limit"),
            ("price", "0.08"),
            ("volume", "100"),
            ("cl_ord_id", "dup-1"),
            ("validate", "true"),
        ],
    )
    .await;
    assert_eq!(errors(&validate), ["EOrder:Duplicate order"]);
    let open = &private_raw(&url, "OpenOrders", &[]).await["result"]["open"];
    assert_eq!(open.as_object().unwrap().len(), 1, "nothing was added");
    assert_eq!(sim.exchange().with_book(|b| b.closed_orders().len()), 0);

    // Once the order is closed its id may be used again.
    private_raw(&url, "CancelOrder", &[("txid", &first)]).await;
    let reused = txid(&place(&url, "0.08", Some("dup-1")).await);
    assert_ne!(reused, first);
    // A bad id is refused, not stored.
    let bad = place(&url, "0.08", Some("has space")).await;
    assert_eq!(errors(&bad), ["EGeneral:Invalid arguments:cl_ord_id"]);

    // A delayed acceptance lands after a copy was placed: refused, never a
    // second order.
    sim.inject(FaultRule {
        method: "AddOrder".into(),
        fault: Fault::DelayedAccept,
        count: 1,
    })
    .unwrap();
    let busy = place(&url, "0.07", Some("late-1")).await;
    assert_eq!(errors(&busy), ["EService:Busy"]);
    let copy = txid(&place(&url, "0.07", Some("late-1")).await);
    tokio::time::sleep(DELAY + Duration::from_millis(500)).await;
    let open = &private_raw(&url, "OpenOrders", &[("cl_ord_id", "late-1")]).await["result"]["open"];
    let open = open.as_object().unwrap();
    assert_eq!(open.len(), 1);
    assert!(open.contains_key(&copy));
    let placed = sim
        .exchange()
        .with_book(|b| b.open_count() + b.closed_orders().len());
    assert_eq!(placed, 3, "dup-1 twice and one late-1");

    // Without a copy the delayed original is placed, once.
    sim.inject(FaultRule {
        method: "AddOrder".into(),
        fault: Fault::DelayedAccept,
        count: 1,
    })
    .unwrap();
    let busy = place(&url, "0.07", Some("late-2")).await;
    assert_eq!(errors(&busy), ["EService:Busy"]);
    tokio::time::sleep(DELAY + Duration::from_millis(500)).await;
    let open = &private_raw(&url, "OpenOrders", &[("cl_ord_id", "late-2")]).await["result"]["open"];
    assert_eq!(open.as_object().unwrap().len(), 1);
    sim.shutdown();
}
