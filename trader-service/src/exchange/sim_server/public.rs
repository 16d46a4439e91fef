//! Kraken's public REST methods over the simulated market, in the shapes
//! real clients (ours, ccxt) parse: server time and status, the assets and
//! the pair, and market data derived from the candles played so far (a
//! synthetic order book around the last price that also shows the
//! account's own resting orders, recent trades and spreads).

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::{Shared, render};
use crate::exchange::types::OrderType;
use crate::pair::{Candle, Side};

type Query = HashMap<String, String>;

/// Depth levels when `count` is not given, and the most Kraken serves.
const DEPTH_DEFAULT: usize = 100;
const DEPTH_MAX: usize = 500;
/// Public trades synthesised per candle (open, both extremes, close).
const TRADES_PER_CANDLE: i64 = 4;
/// Most public trades returned, as on Kraken.
const TRADES_MAX: usize = 1000;
/// OHLC intervals Kraken accepts, minutes.
const OHLC_INTERVALS: [u32; 9] = [1, 5, 15, 30, 60, 240, 1440, 10080, 21600];
/// Base volume of the nearest synthetic depth level; level k has k times it.
const LEVEL_VOLUME: i64 = 1000;

impl Shared {
    /// The pair's canonical name when `name` is one of its spellings
    /// (`XDGUSD` or `XDG/USD`), as Kraken resolves them.
    pub(super) fn canonical_pair(&self, name: &str) -> Option<String> {
        let cfg = &self.cfg.paper.pair;
        let symbol = &cfg.spec.symbol;
        (name == symbol || name == render::wsname(cfg)).then(|| symbol.clone())
    }

    /// The `pair` argument: required for market data, and must name the
    /// simulated pair.
    fn pair_arg(&self, q: &Query) -> Result<String, String> {
        let p = q
            .get("pair")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| "EGeneral:Invalid arguments".to_owned())?;
        let mut canonical = None;
        for name in p.split(',') {
            canonical = Some(
                self.canonical_pair(name.trim())
                    .ok_or_else(|| "EQuery:Unknown asset pair".to_owned())?,
            );
        }
        canonical.ok_or_else(|| "EQuery:Unknown asset pair".to_owned())
    }
}

/// Dispatches one public method.
pub(super) fn handle(s: &Shared, method: &str, q: &Query) -> Result<Value, String> {
    let now = s.now_secs();
    let cfg = &s.cfg.paper;
    match method {
        "Time" => Ok(json!({"unixtime": now, "rfc1123": render::rfc1123(now)})),
        "SystemStatus" => Ok(json!({
            "status": "online",
            "timestamp": render::iso8601(now),
            "upcoming_maintenance": [],
            "emergency": [],
        })),
        "Assets" => assets(s, q),
        "AssetPairs" => {
            let symbol = match q.get("pair").filter(|p| !p.is_empty()) {
                Some(_) => s.pair_arg(q)?,
                None => cfg.pair.spec.symbol.clone(),
            };
            Ok(json!({ symbol: render::asset_pair(cfg) }))
        }
        "Ticker" => {
            let symbol = match q.get("pair").filter(|p| !p.is_empty()) {
                Some(_) => s.pair_arg(q)?,
                None => cfg.pair.spec.symbol.clone(),
            };
            Ok(json!({ symbol: ticker(s, now)? }))
        }
        "Depth" => {
            let symbol = s.pair_arg(q)?;
            Ok(json!({ symbol: depth(s, q, now)? }))
        }
        "OHLC" => {
            let symbol = s.pair_arg(q)?;
            if let Some(i) = q.get("interval")
                && !i.parse().is_ok_and(|i: u32| OHLC_INTERVALS.contains(&i))
            {
                return Err("EGeneral:Invalid arguments".into());
            }
            let since = int_arg(q, "since")?;
            let candles = s.exchange.ohlc_history(since);
            let last = candles.last().map_or(since.unwrap_or(0), |c| c.time);
            let rows: Vec<Value> = candles.iter().map(render::ohlc_row).collect();
            Ok(json!({ symbol: rows, "last": last }))
        }
        "Trades" => {
            let symbol = s.pair_arg(q)?;
            trades(s, q, &symbol)
        }
        "Spread" => {
            let symbol = s.pair_arg(q)?;
            let since = int_arg(q, "since")?;
            let tick = cfg.pair.spec.tick();
            let candles = s.exchange.ohlc_history(since);
            let rows: Vec<Value> = candles
                .iter()
                .map(|c| {
                    json!([
                        c.time,
                        render::dec(c.close - tick),
                        render::dec(c.close + tick)
                    ])
                })
                .collect();
            let last = candles.last().map_or(since.unwrap_or(now), |c| c.time);
            Ok(json!({ symbol: rows, "last": last }))
        }
        _ => Err("EGeneral:Unknown method".into()),
    }
}

fn int_arg(q: &Query, name: &str) -> Result<Option<i64>, String> {
    match q.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("EGeneral:Invalid arguments:{name}")),
    }
}

fn assets(s: &Shared, q: &Query) -> Result<Value, String> {
    let cfg = &s.cfg.paper;
    let all = [
        (
            cfg.pair.base.clone(),
            render::asset(&cfg.pair.base, cfg.pair.spec.lot_decimals),
        ),
        (cfg.pair.quote.clone(), render::asset(&cfg.pair.quote, 4)),
    ];
    let mut m = Map::new();
    match q.get("asset").filter(|a| !a.is_empty()) {
        None => m.extend(all),
        Some(wanted) => {
            for name in wanted.split(',').map(str::trim) {
                let (id, v) = all
                    .iter()
                    .find(|(id, _)| id == name || render::altname(id) == name)
                    .ok_or_else(|| "EQuery:Unknown asset".to_owned())?;
                m.insert(id.clone(), v.clone());
            }
        }
    }
    Ok(Value::Object(m))
}

/// Today's and the last 24 hours' figures from the candles played.
fn ticker(s: &Shared, now: i64) -> Result<Value, String> {
    let last = s
        .exchange
        .with_book(|b| b.last_price())
        .ok_or_else(|| "EService:Unavailable".to_owned())?;
    let candles = s.exchange.ohlc_history(None);
    let day_start = now - now.rem_euclid(86_400);
    let today: Vec<&Candle> = candles.iter().filter(|c| c.time >= day_start).collect();
    let day: Vec<&Candle> = candles.iter().filter(|c| c.time > now - 86_400).collect();
    let stats = |cs: &[&Candle]| {
        let volume: Decimal = cs.iter().map(|c| c.volume).sum();
        let turnover: Decimal = cs.iter().map(|c| typical(c) * c.volume).sum();
        let vwap = if volume.is_zero() {
            last
        } else {
            (turnover / volume).round_dp(8)
        };
        let low = cs.iter().map(|c| c.low).min().unwrap_or(last);
        let high = cs.iter().map(|c| c.high).max().unwrap_or(last);
        let count = i64::try_from(cs.len()).unwrap_or(0) * TRADES_PER_CANDLE;
        (volume, vwap, count, low, high)
    };
    let (tv, tp, tt, tl, th) = stats(&today);
    let (dv, dp, dt, dl, dh) = stats(&day);
    let open = today.first().map_or(last, |c| c.open);
    let tick = s.cfg.paper.pair.spec.tick();
    let lot = Decimal::from(LEVEL_VOLUME);
    let d = render::dec;
    // Best bid and ask one tick either side of the last price, like the
    // depth served below; the book trades at the last price itself.
    Ok(json!({
        "a": [d(last + tick), lot.to_string(), format!("{lot}.000")],
        "b": [d((last - tick).max(tick)), lot.to_string(), format!("{lot}.000")],
        "c": [d(last), "0"],
        "v": [d(tv), d(dv)],
        "p": [d(tp), d(dp)],
        "t": [tt, dt],
        "l": [d(tl), d(dl)],
        "h": [d(th), d(dh)],
        "o": d(open),
    }))
}

fn typical(c: &Candle) -> Decimal {
    (c.high + c.low + c.close) / Decimal::from(3)
}

/// A synthetic book: `count` levels a tick apart on each side of the last
/// price, plus the account's own resting orders at their prices.
fn depth(s: &Shared, q: &Query, now: i64) -> Result<Value, String> {
    let count = match q.get("count").filter(|c| !c.is_empty()) {
        None => DEPTH_DEFAULT,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|c| (1..=DEPTH_MAX).contains(c))
            .ok_or_else(|| "EGeneral:Invalid arguments:count".to_owned())?,
    };
    let (last, own) = s.exchange.with_book(|b| (b.last_price(), b.open_orders()));
    let last = last.ok_or_else(|| "EService:Unavailable".to_owned())?;
    let tick = s.cfg.paper.pair.spec.tick();
    let mut bids: BTreeMap<Decimal, Decimal> = BTreeMap::new();
    let mut asks: BTreeMap<Decimal, Decimal> = BTreeMap::new();
    for k in 1..=count {
        let step = tick * Decimal::from(k);
        let volume = Decimal::from(LEVEL_VOLUME) * Decimal::from(k);
        if last - step > Decimal::ZERO {
            *bids.entry(last - step).or_default() += volume;
        }
        *asks.entry(last + step).or_default() += volume;
    }
    for o in own.iter().filter(|o| o.order_type == OrderType::Limit) {
        let Some(price) = o.limit_price else { continue };
        let side = match o.side {
            Side::Buy => &mut bids,
            Side::Sell => &mut asks,
        };
        *side.entry(price).or_default() += o.volume - o.vol_exec;
    }
    let level = |(p, v): (&Decimal, &Decimal)| json!([render::dec(*p), render::dec(*v), now]);
    let bids: Vec<Value> = bids.iter().rev().take(count).map(level).collect();
    let asks: Vec<Value> = asks.iter().take(count).map(level).collect();
    Ok(json!({"asks": asks, "bids": bids}))
}

/// Public trades synthesised from the candles played: four per candle
/// (open, the first extreme, the second, close), each a quarter of its
/// volume. `since` and `last` are nanosecond ids, as on Kraken.
fn trades(s: &Shared, q: &Query, symbol: &str) -> Result<Value, String> {
    const NANOS: i128 = 1_000_000_000;
    let since_ns = match q.get("since").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => {
            let n: i128 = v
                .parse()
                .map_err(|_| "EGeneral:Invalid arguments:since".to_owned())?;
            // Seconds are accepted too, as Kraken does.
            Some(if n < 10_000_000_000 { n * NANOS } else { n })
        }
    };
    let count = match q.get("count").filter(|v| !v.is_empty()) {
        None => TRADES_MAX,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|c| (1..=TRADES_MAX).contains(c))
            .ok_or_else(|| "EGeneral:Invalid arguments:count".to_owned())?,
    };
    let interval_ns = i128::from(s.cfg.interval_secs.max(1)) * NANOS;
    let lot = s.cfg.paper.pair.spec.lot_decimals;
    let mut rows: Vec<(i128, Value)> = Vec::new();
    let mut prev: Option<Decimal> = None;
    for c in s.exchange.ohlc_history(None) {
        let (first, second) = if c.close >= c.open {
            (c.low, c.high)
        } else {
            (c.high, c.low)
        };
        let volume = (c.volume / Decimal::from(TRADES_PER_CANDLE)).round_dp(lot);
        for (k, price) in [c.open, first, second, c.close].into_iter().enumerate() {
            let k = i128::try_from(k).unwrap_or(0);
            let ns = i128::from(c.time) * NANOS + interval_ns * k / i128::from(TRADES_PER_CANDLE);
            let side = if prev.is_some_and(|p| price < p) {
                "s"
            } else {
                "b"
            };
            prev = Some(price);
            if since_ns.is_some_and(|s| ns <= s) {
                continue;
            }
            let secs = Decimal::from_i128_with_scale(ns / 10_000, 5);
            let id = c.time * TRADES_PER_CANDLE + i64::try_from(k).unwrap_or(0);
            rows.push((
                ns,
                json!([
                    render::dec(price),
                    render::dec(volume),
                    render::number(secs),
                    side,
                    "l",
                    "",
                    id
                ]),
            ));
        }
    }
    let skip = rows.len().saturating_sub(count);
    let rows: Vec<(i128, Value)> = rows.into_iter().skip(skip).collect();
    let last = rows
        .last()
        .map_or(since_ns.unwrap_or(0), |(ns, _)| *ns)
        .to_string();
    let list: Vec<Value> = rows.into_iter().map(|(_, v)| v).collect();
    Ok(json!({ symbol: list, "last": last }))
}
