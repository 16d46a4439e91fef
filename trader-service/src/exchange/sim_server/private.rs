//! Kraken's private REST methods over the paper account, in Kraken's result
//! shapes and with Kraken's error strings. Runs after the envelope checks
//! (key, signature, nonce, faults) in the parent module; errors are the
//! Kraken error strings the client will see.

use std::time::Instant;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Value, json};
use tracing::info;

use super::{Shared, render};
use crate::exchange::error::ExchangeError;
use crate::exchange::kraken::limits::{cancel_penalty, rest_cost};
use crate::exchange::kraken::wire::parse_decimal;
use crate::exchange::types::{OrderInfo, OrderKind, OrderRequest, OrderStatus};
use crate::pair::Side;

/// Kraken pages order and trade history 50 at a time.
const PAGE: usize = 50;

/// Prefix of the client order ids the simulator makes up for orders placed
/// without one; the control character keeps them apart from any id a
/// client can send, and they are never reported.
pub(super) const AUTO_CL_ORD_ID: &str = "\u{1f}auto-";

/// Kraken's refusal of a `cl_ord_id` already used by an open order. The
/// exact live string is not documented anywhere we could find; this is the
/// one our client and other client libraries match on.
pub(super) const DUPLICATE_ORDER: &str = "EOrder:Duplicate order";

use super::Form;

fn kraken_msg(e: &ExchangeError) -> String {
    e.message().to_owned()
}

fn arg<'a>(form: &'a Form, name: &str) -> Result<&'a str, String> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("EGeneral:Invalid arguments:{name}"))
}

fn dec_arg(form: &Form, name: &str) -> Result<Decimal, String> {
    parse_decimal(arg(form, name)?).ok_or_else(|| format!("EGeneral:Invalid arguments:{name}"))
}

/// An optional time bound (`start`, `end`: unix seconds, fractional allowed)
/// in milliseconds.
fn time_arg(form: &Form, name: &str) -> Result<Option<i64>, String> {
    match form.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse_decimal(v)
            .and_then(|d| (d * Decimal::ONE_THOUSAND).trunc().to_i64())
            .map(Some)
            .ok_or_else(|| format!("EGeneral:Invalid arguments:{name}")),
    }
}

fn ofs_arg(form: &Form) -> Result<usize, String> {
    match form.get("ofs").filter(|v| !v.is_empty()) {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| "EGeneral:Invalid arguments:ofs".to_owned()),
    }
}

fn userref_arg(form: &Form) -> Result<Option<i32>, String> {
    match form.get("userref").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(u) => u
            .parse()
            .map(Some)
            .map_err(|_| "EGeneral:Invalid arguments:userref".to_owned()),
    }
}

/// A client order id as a client may send it: printable ASCII, at most 64
/// characters, so it can never collide with [`AUTO_CL_ORD_ID`]. (Kraken
/// is stricter: a UUID or up to 18 characters of free text; the simulator
/// leaves that to the client.)
fn cl_ord_id_arg(form: &Form) -> Result<Option<&str>, String> {
    match form.get("cl_ord_id").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(c) if c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(c)),
        Some(_) => Err("EGeneral:Invalid arguments:cl_ord_id".into()),
    }
}

/// True when the order carries `id` as a client-given `cl_ord_id`.
fn has_cl_ord_id(o: &OrderInfo, id: &str) -> bool {
    o.cl_ord_id.as_deref() == Some(id)
}

/// Hides the made-up ids of orders placed without a `cl_ord_id`.
pub(super) fn visible(mut o: OrderInfo) -> OrderInfo {
    if o.cl_ord_id
        .as_deref()
        .is_some_and(|c| c.starts_with(AUTO_CL_ORD_ID))
    {
        o.cl_ord_id = None;
    }
    o
}

fn in_window(t: i64, start: Option<i64>, end: Option<i64>) -> bool {
    start.is_none_or(|s| t > s) && end.is_none_or(|e| t <= e)
}

impl Shared {
    /// Processes an authenticated private call: rate counters, then the
    /// method. Errors are Kraken error strings.
    pub(super) fn handle(&self, method: &str, form: &Form) -> Result<Value, String> {
        let now = self.real_ms();
        {
            let mut inner = self.inner();
            if rest_cost(method) > 0 && inner.limiter.acquire_rest(now, method).is_err() {
                inner.stats.rate_limited += 1;
                return Err("EAPI:Rate limit exceeded".into());
            }
        }
        match method {
            "Balance" => Ok(self.balance()),
            "BalanceEx" => Ok(self.balance_ex()),
            "TradeBalance" => self.trade_balance(form),
            "TradeVolume" => Ok(self.trade_volume()),
            "AddOrder" => self.add_order(form, now),
            "CancelOrder" => self.cancel_order(form, now),
            "QueryOrders" => self.query_orders(form),
            "OpenOrders" => self.open_orders(form),
            "ClosedOrders" => self.closed_orders(form),
            "TradesHistory" => self.trades_history(form),
            _ => Err("EGeneral:Unknown method".into()),
        }
    }

    fn balance(&self) -> Value {
        let b = self.exchange.with_book(|b| b.balances());
        let m: Map<String, Value> = b
            .assets
            .into_iter()
            .map(|(k, v)| (k, render::dec(v)))
            .collect();
        Value::Object(m)
    }

    fn balance_ex(&self) -> Value {
        let a = self.exchange.with_book(|b| b.account());
        let pair = &self.cfg.paper.pair;
        json!({
            &pair.base: {
                "balance": render::dec(a.base_free + a.base_locked),
                "hold_trade": render::dec(a.base_locked),
            },
            &pair.quote: {
                "balance": render::dec(a.quote_free + a.quote_locked),
                "hold_trade": render::dec(a.quote_locked),
            },
        })
    }

    /// Equity in the quote asset at the last price; the account is spot
    /// only, so margin figures are zero.
    fn trade_balance(&self, form: &Form) -> Result<Value, String> {
        let quote = &self.cfg.paper.pair.quote;
        if let Some(asset) = form.get("asset")
            && asset != quote
        {
            return Err("EGeneral:Invalid arguments:asset".into());
        }
        let (a, last) = self
            .exchange
            .with_book(|b| (b.account(), b.last_price().unwrap_or_default()));
        let equity =
            ((a.base_free + a.base_locked) * last + a.quote_free + a.quote_locked).round_dp(4);
        let zero = render::dec(Decimal::ZERO);
        Ok(json!({
            "eb": render::dec(equity), "tb": render::dec(equity), "m": zero,
            "n": zero, "c": zero, "v": zero, "e": render::dec(equity),
            "mf": render::dec(equity), "uv": zero,
        }))
    }

    fn trade_volume(&self) -> Value {
        let f = self.cfg.paper.fees;
        let symbol = &self.cfg.paper.pair.spec.symbol;
        let tier = |pct: Decimal| {
            json!({"fee": pct.to_string(), "minfee": pct.to_string(), "maxfee": pct.to_string(),
                   "nextfee": null, "nextvolume": null, "tiervolume": "0.0000"})
        };
        json!({
            "currency": self.cfg.paper.pair.quote,
            "volume": "0.0000",
            "fees": { symbol: tier(f.taker_pct) },
            "fees_maker": { symbol: tier(f.maker_pct) },
        })
    }

    fn query_orders(&self, form: &Form) -> Result<Value, String> {
        let txids = arg(form, "txid")?;
        let userref = userref_arg(form)?;
        let orders: Vec<_> = self.exchange.with_book(|b| {
            txids
                .split(',')
                .filter_map(|t| b.order(t.trim()))
                .filter(|o| userref.is_none_or(|u| o.userref == u))
                .map(visible)
                .collect()
        });
        Ok(render::orders(&orders))
    }

    fn open_orders(&self, form: &Form) -> Result<Value, String> {
        let userref = userref_arg(form)?;
        let cl = cl_ord_id_arg(form)?;
        let orders: Vec<_> = self
            .exchange
            .with_book(|b| b.open_orders())
            .into_iter()
            .filter(|o| userref.is_none_or(|u| o.userref == u))
            .filter(|o| cl.is_none_or(|c| has_cl_ord_id(o, c)))
            .map(visible)
            .collect();
        Ok(json!({"open": render::orders(&orders)}))
    }

    /// Closed orders newest first, 50 a page from `ofs`; `count` is the
    /// number matching, as on Kraken.
    fn closed_orders(&self, form: &Form) -> Result<Value, String> {
        let userref = userref_arg(form)?;
        let cl = cl_ord_id_arg(form)?;
        let (start, end) = (time_arg(form, "start")?, time_arg(form, "end")?);
        let ofs = ofs_arg(form)?;
        let matching: Vec<_> = self
            .exchange
            .with_book(|b| b.closed_orders())
            .into_iter()
            .filter(|o| userref.is_none_or(|u| o.userref == u))
            .filter(|o| cl.is_none_or(|c| has_cl_ord_id(o, c)))
            .filter(|o| in_window(o.closed_at.unwrap_or(o.opened_at), start, end))
            .collect();
        let count = matching.len();
        let page: Vec<_> = matching
            .into_iter()
            .skip(ofs)
            .take(PAGE)
            .map(visible)
            .collect();
        Ok(json!({"closed": render::orders(&page), "count": count}))
    }

    /// The account's executions newest first, 50 a page from `ofs`.
    fn trades_history(&self, form: &Form) -> Result<Value, String> {
        let (start, end) = (time_arg(form, "start")?, time_arg(form, "end")?);
        let ofs = ofs_arg(form)?;
        let all: Vec<_> = self
            .exchange
            .with_book(|b| b.trades_since(i64::MIN))
            .into_iter()
            .filter(|t| in_window(t.time, start, end))
            .collect();
        let count = all.len();
        let mut m = Map::new();
        for t in all.iter().rev().skip(ofs).take(PAGE) {
            m.insert(t.trade_id.clone(), render::trade(t));
        }
        Ok(json!({"trades": Value::Object(m), "count": count}))
    }

    fn add_order(&self, form: &Form, now: i64) -> Result<Value, String> {
        let pair = arg(form, "pair")?;
        let pair = self
            .canonical_pair(pair)
            .ok_or_else(|| "EQuery:Unknown asset pair".to_owned())?;
        let side = match arg(form, "type")? {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            _ => return Err("EGeneral:Invalid arguments:type".into()),
        };
        let volume = dec_arg(form, "volume")?;
        let post_only = form
            .get("oflags")
            .is_some_and(|f| f.split(',').any(|x| x.trim() == "post"));
        let kind = match arg(form, "ordertype")? {
            "limit" => OrderKind::Limit {
                price: dec_arg(form, "price")?,
                post_only,
            },
            "market" => OrderKind::Market,
            _ => return Err("EGeneral:Invalid arguments:ordertype".into()),
        };
        let userref = userref_arg(form)?.unwrap_or(0);
        let cl_ord_id = cl_ord_id_arg(form)?.map(str::to_owned);
        let validate_only = form
            .get("validate")
            .is_some_and(|v| v == "true" || v == "1");
        let mut inner = self.inner();
        if inner.limiter.acquire_trading(now, &pair, 1).is_err() {
            inner.stats.rate_limited += 1;
            return Err("EOrder:Rate limit exceeded".into());
        }
        let client_order_id = match cl_ord_id {
            Some(c) => c,
            None => {
                inner.auto_cl_ord_id += 1;
                format!("{AUTO_CL_ORD_ID}{}", inner.auto_cl_ord_id)
            }
        };
        let req = OrderRequest {
            pair,
            side,
            kind,
            volume,
            userref,
            client_order_id,
        };
        if validate_only {
            if self
                .exchange
                .with_book(|b| b.has_open_cl_ord_id(&req.client_order_id))
            {
                return Err(DUPLICATE_ORDER.into());
            }
            return Ok(json!({"descr": {"order": describe(&req)}}));
        }
        let placed = self.exchange.with_book(|b| b.add_order(&req));
        let txid = placed.map_err(|e| {
            info!(cl_ord_id = req.client_order_id, error = %e, "simulated order refused");
            kraken_msg(&e)
        })?;
        inner.placed.insert(txid.clone(), Instant::now());
        info!(
            txid,
            cl_ord_id = req.client_order_id,
            "simulated order placed"
        );
        Ok(json!({"descr": {"order": describe(&req)}, "txid": [txid]}))
    }

    /// Cancels by `txid` (an order id, or a userref cancelling all its open
    /// orders) or by `cl_ord_id`.
    fn cancel_order(&self, form: &Form, now: i64) -> Result<Value, String> {
        let cl = cl_ord_id_arg(form)?;
        let txid = form.get("txid").filter(|t| !t.is_empty());
        let targets: Vec<OrderInfo> = self.exchange.with_book(|b| match (cl, txid) {
            (Some(c), _) => b
                .open_orders()
                .into_iter()
                .filter(|o| has_cl_ord_id(o, c))
                .collect(),
            (None, Some(t)) => match t.parse::<i32>() {
                Ok(u) => b
                    .open_orders()
                    .into_iter()
                    .filter(|o| o.userref == u)
                    .collect(),
                Err(_) => b
                    .order(t)
                    .filter(|o| o.status == OrderStatus::Open)
                    .into_iter()
                    .collect(),
            },
            (None, None) => Vec::new(),
        });
        if cl.is_none() && txid.is_none() {
            return Err("EGeneral:Invalid arguments:txid".into());
        }
        if targets.is_empty() {
            return Err("EOrder:Unknown order".into());
        }
        let mut inner = self.inner();
        let symbol = self.cfg.paper.pair.spec.symbol.clone();
        let penalty: u32 = targets
            .iter()
            .map(|o| {
                let age = inner.placed.get(&o.txid).map_or(i64::MAX, |t| {
                    i64::try_from(t.elapsed().as_millis()).unwrap_or(i64::MAX)
                });
                cancel_penalty(age)
            })
            .sum();
        if inner
            .limiter
            .acquire_trading(now, &symbol, penalty)
            .is_err()
        {
            inner.stats.rate_limited += 1;
            return Err("EOrder:Rate limit exceeded".into());
        }
        for o in &targets {
            self.exchange
                .with_book(|b| b.cancel(&o.txid))
                .map_err(|e| kraken_msg(&e))?;
            inner.placed.remove(&o.txid);
        }
        Ok(json!({"count": targets.len()}))
    }
}

fn describe(req: &OrderRequest) -> String {
    match req.kind {
        OrderKind::Limit { price, .. } => format!(
            "{} {} {} @ limit {}",
            req.side.as_str(),
            req.volume.normalize(),
            req.pair,
            price.normalize()
        ),
        OrderKind::Market => format!(
            "{} {} {} @ market",
            req.side.as_str(),
            req.volume.normalize(),
            req.pair
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::form_of as form;

    #[test]
    fn arguments_are_checked_with_kraken_messages() {
        assert_eq!(
            time_arg(&form(&[("start", "1700000000.5")]), "start"),
            Ok(Some(1_700_000_000_500))
        );
        assert_eq!(
            time_arg(&form(&[("start", "soon")]), "start"),
            Err("EGeneral:Invalid arguments:start".into())
        );
        assert_eq!(ofs_arg(&form(&[])), Ok(0));
        assert!(ofs_arg(&form(&[("ofs", "-1")])).is_err());
        assert!(userref_arg(&form(&[("userref", "x")])).is_err());
        assert_eq!(
            cl_ord_id_arg(&form(&[("cl_ord_id", "grid-1")])),
            Ok(Some("grid-1"))
        );
        let made_up = format!("{AUTO_CL_ORD_ID}1");
        assert!(cl_ord_id_arg(&form(&[("cl_ord_id", &made_up)])).is_err());
        assert!(cl_ord_id_arg(&form(&[("cl_ord_id", &"x".repeat(65))])).is_err());
        assert!(in_window(5, Some(4), Some(5)));
        assert!(!in_window(4, Some(4), None));
    }
}
