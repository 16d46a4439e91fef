//! Renders paper-exchange state in Kraken's JSON shapes (numbers as strings,
//! times as fractional seconds), so any Kraken client can read it.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::exchange::kraken::wire::ms_to_seconds;
use crate::exchange::paper::PaperConfig;
use crate::exchange::types::{OrderInfo, OrderType, Trade};
use crate::pair::Candle;

fn s(d: Decimal) -> Value {
    Value::String(d.normalize().to_string())
}

fn secs(ms: i64) -> Value {
    // Kraken sends times as JSON numbers; a decimal string of the number
    // keeps the value exact for lenient parsers and is valid JSON.
    serde_json::from_str(&ms_to_seconds(ms).normalize().to_string()).unwrap_or(Value::Null)
}

/// One order as Kraken's order object.
#[must_use]
pub fn order(o: &OrderInfo) -> Value {
    let ordertype = match &o.order_type {
        OrderType::Limit => "limit",
        OrderType::Market => "market",
        OrderType::Other(t) => t.as_str(),
    };
    let price = o.limit_price.unwrap_or_default();
    let text = match o.order_type {
        OrderType::Limit => format!(
            "{} {} {} @ limit {}",
            o.side.as_str(),
            o.volume.normalize(),
            o.pair,
            price.normalize()
        ),
        _ => format!(
            "{} {} {} @ market",
            o.side.as_str(),
            o.volume.normalize(),
            o.pair
        ),
    };
    let mut v = json!({
        "refid": null,
        "userref": o.userref,
        "status": o.status.as_str(),
        "opentm": secs(o.opened_at),
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": o.pair, "type": o.side.as_str(), "ordertype": ordertype,
            "price": s(price), "price2": "0", "leverage": "none",
            "order": text, "close": ""
        },
        "vol": s(o.volume),
        "vol_exec": s(o.vol_exec),
        "cost": s(o.cost),
        "fee": s(o.fee),
        "price": s(o.avg_price.unwrap_or_default()),
        "stopprice": "0",
        "limitprice": "0",
        "misc": "",
        "oflags": if o.post_only { "post,fciq" } else { "fciq" },
        "reason": o.reason,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(id) = &o.cl_ord_id {
            obj.insert("cl_ord_id".into(), Value::String(id.clone()));
        }
        if let Some(t) = o.closed_at {
            obj.insert("closetm".into(), secs(t));
        }
    }
    v
}

/// A txid → order map.
#[must_use]
pub fn orders<'a>(list: impl IntoIterator<Item = &'a OrderInfo>) -> Value {
    let mut m = Map::new();
    for o in list {
        m.insert(o.txid.clone(), order(o));
    }
    Value::Object(m)
}

/// One trade as Kraken's trade object.
#[must_use]
pub fn trade(t: &Trade) -> Value {
    json!({
        "ordertxid": t.order_txid,
        "postxid": "",
        "pair": t.pair,
        "time": secs(t.time),
        "type": t.side.as_str(),
        "ordertype": if t.maker { "limit" } else { "market" },
        "price": s(t.price),
        "cost": s(t.cost),
        "fee": s(t.fee),
        "vol": s(t.volume),
        "margin": "0",
        "misc": "",
        "maker": t.maker,
    })
}

/// The `AssetPairs` entry for the simulated pair.
#[must_use]
pub fn asset_pair(cfg: &PaperConfig) -> Value {
    let spec = &cfg.pair.spec;
    json!({
        "altname": spec.symbol,
        "wsname": format!("{}/{}", cfg.pair.base, cfg.pair.quote),
        "aclass_base": "currency",
        "base": cfg.pair.base,
        "aclass_quote": "currency",
        "quote": cfg.pair.quote,
        "lot": "unit",
        "cost_decimals": spec.price_decimals + spec.lot_decimals,
        "pair_decimals": spec.price_decimals,
        "lot_decimals": spec.lot_decimals,
        "lot_multiplier": 1,
        "fees": [[0, cfg.fees.taker_pct]],
        "fees_maker": [[0, cfg.fees.maker_pct]],
        "fee_volume_currency": "ZUSD",
        "ordermin": s(spec.ordermin),
        "costmin": s(spec.costmin),
        "tick_size": s(spec.tick()),
        "status": "online",
    })
}

/// One OHLC row: `[time, open, high, low, close, vwap, volume, count]`.
#[must_use]
pub fn ohlc_row(c: &Candle) -> Value {
    let vwap = (c.open + c.high + c.low + c.close) / Decimal::from(4);
    json!([
        c.time,
        s(c.open),
        s(c.high),
        s(c.low),
        s(c.close),
        s(vwap.round_dp(8)),
        s(c.volume),
        1
    ])
}
