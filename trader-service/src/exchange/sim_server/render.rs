//! Renders paper-exchange state in Kraken's JSON shapes (numbers as strings,
//! times as fractional seconds, Kraken's date formats), so any Kraken
//! client can read it.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::exchange::kraken::wire::ms_to_seconds;
use crate::exchange::paper::PaperConfig;
use crate::exchange::types::{OrderInfo, OrderType, PairInfo, Trade};
use crate::pair::Candle;

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A decimal as Kraken sends amounts: a JSON string.
#[must_use]
pub fn dec(d: Decimal) -> Value {
    Value::String(d.normalize().to_string())
}

fn s(d: Decimal) -> Value {
    dec(d)
}

/// A decimal as a JSON number (Kraken's times), exact to the digit.
#[must_use]
pub fn number(d: Decimal) -> Value {
    // A decimal string of the number keeps the value exact for lenient
    // parsers and is valid JSON.
    serde_json::from_str(&d.normalize().to_string()).unwrap_or(Value::Null)
}

fn secs(ms: i64) -> Value {
    number(ms_to_seconds(ms))
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01, by
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, usize, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, usize::try_from(month).unwrap_or(1), day)
}

/// Splits unix seconds into (days since the epoch, hour, minute, second).
fn split(unix: i64) -> (i64, i64, i64, i64) {
    let t = unix.rem_euclid(86_400);
    (unix.div_euclid(86_400), t / 3600, t % 3600 / 60, t % 60)
}

/// `Time`'s `rfc1123` field, e.g. `Thu, 06 Jul 23 18:50:48 +0000` (Kraken
/// writes a two-digit year).
#[must_use]
pub fn rfc1123(unix: i64) -> String {
    let (days, h, m, sec) = split(unix);
    let (year, month, day) = civil_from_days(days);
    let weekday = usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0);
    format!(
        "{}, {day:02} {} {:02} {h:02}:{m:02}:{sec:02} +0000",
        WEEKDAYS[weekday],
        MONTHS[month - 1],
        year.rem_euclid(100)
    )
}

/// `SystemStatus`'s `timestamp`, e.g. `2023-07-06T18:52:00Z`.
#[must_use]
pub fn iso8601(unix: i64) -> String {
    let (days, h, m, sec) = split(unix);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}Z")
}

/// An asset's short name: Kraken's four-letter `X`/`Z` ids drop the
/// prefix (`XXDG` → `XDG`, `ZUSD` → `USD`).
#[must_use]
pub fn altname(id: &str) -> &str {
    match id.strip_prefix(['X', 'Z']) {
        Some(rest) if id.len() == 4 => rest,
        _ => id,
    }
}

/// The pair's websocket name, e.g. `XDG/USD`.
#[must_use]
pub fn wsname(pair: &PairInfo) -> String {
    format!("{}/{}", altname(&pair.base), altname(&pair.quote))
}

/// One `Assets` entry.
#[must_use]
pub fn asset(id: &str, decimals: u32) -> Value {
    json!({
        "aclass": "currency",
        "altname": altname(id),
        "decimals": decimals,
        "display_decimals": decimals.min(2),
        "collateral_value": 1.0,
        "status": "enabled",
    })
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
        "leverage": "0",
        "misc": "",
        "maker": t.maker,
    })
}

/// The `AssetPairs` entry for the simulated pair, with the keys of a live
/// 2026 recording (fees as the entry tier; margin is not offered).
#[must_use]
pub fn asset_pair(cfg: &PaperConfig) -> Value {
    let spec = &cfg.pair.spec;
    json!({
        "altname": spec.symbol,
        "wsname": wsname(&cfg.pair),
        "aclass_base": "currency",
        "base": cfg.pair.base,
        "aclass_quote": "currency",
        "quote": cfg.pair.quote,
        "lot": "unit",
        "cost_decimals": spec.price_decimals + 2,
        "pair_decimals": spec.price_decimals,
        "lot_decimals": spec.lot_decimals,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": [[0, cfg.fees.taker_pct]],
        "fees_maker": [[0, cfg.fees.maker_pct]],
        "fee_volume_currency": cfg.pair.quote,
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": s(spec.ordermin),
        "costmin": s(spec.costmin),
        "tick_size": s(spec.tick()),
        "status": "online",
        "execution_venue": "international",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_krakens_formats() {
        // The documented `Time` example.
        assert_eq!(rfc1123(1_688_669_448), "Thu, 06 Jul 23 18:50:48 +0000");
        assert_eq!(iso8601(1_688_669_520), "2023-07-06T18:52:00Z");
        assert_eq!(rfc1123(1_795_935_302), "Sun, 29 Nov 26 06:55:02 +0000");
        assert_eq!(rfc1123(0), "Thu, 01 Jan 70 00:00:00 +0000");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn asset_names_drop_krakens_prefixes() {
        assert_eq!(altname("XXDG"), "XDG");
        assert_eq!(altname("ZUSD"), "USD");
        assert_eq!(altname("SOL"), "SOL");
        assert_eq!(altname("USDT"), "USDT");
    }
}
