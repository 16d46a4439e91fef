//! Kraken's REST wire format, parsed leniently: numbers may arrive as
//! strings or JSON numbers, `txid` as a string or an array, error bodies may
//! lack `result`, and closed orders may report `price` 0. Every Kraken error
//! string is mapped to an [`ExchangeError`] in exactly one place, [`classify`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::Value;
use thiserror::Error;

use super::super::error::ExchangeError;
use super::super::types::{OrderInfo, OrderStatus, OrderType, PairInfo, Ticker, Trade, UnixMillis};
use crate::pair::{Candle, PairSpec, Side};

/// Why a response body could not be turned into a result.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// The body is not JSON (e.g. an HTML error page from a proxy).
    #[error("response is not JSON: {0}")]
    NotJson(String),
    /// Kraken reported errors in the envelope.
    #[error("exchange error: {}", .0.join(", "))]
    Api(Vec<String>),
    /// No errors and no `result`.
    #[error("response has neither error nor result")]
    MissingResult,
    /// The result does not have the expected shape.
    #[error("unexpected response shape: {0}")]
    Shape(String),
}

/// A decimal that accepts `"1.5"`, `1.5`, `15` or `"1e-3"` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Num(pub Decimal);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a numeric string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Num, E> {
                parse_decimal(s)
                    .map(Num)
                    .ok_or_else(|| E::custom(format!("bad number {s:?}")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(Decimal::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(Decimal::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                // Shortest round-trip text of the float, e.g. 1688148493.7708.
                parse_decimal(&v.to_string())
                    .map(Num)
                    .ok_or_else(|| E::custom(format!("non-finite number {v}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a decimal in plain or scientific notation.
#[must_use]
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = s.trim();
    Decimal::from_str(s)
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

/// Unix seconds to milliseconds; a time too large for either (only a
/// broken or hostile reply sends one) becomes 0, like any unreadable time.
fn seconds_to_ms(n: Num) -> UnixMillis {
    n.0.checked_mul(Decimal::ONE_THOUSAND)
        .and_then(|ms| ms.trunc().to_i64())
        .unwrap_or(0)
}

/// `txid` as Kraken sends it: an array (AddOrder) or a single string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxidList(pub Vec<String>);

impl<'de> Deserialize<'de> for TxidList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => Self(vec![s]),
            OneOrMany::Many(v) => Self(v),
        })
    }
}

/// Maps Kraken error strings to what the caller should do. The first error
/// decides; unknown strings become [`ExchangeError::InvalidRequest`] with the
/// full text.
#[must_use]
pub fn classify(errors: &[String]) -> ExchangeError {
    let message = errors.join(", ");
    let first = errors.first().map_or("", String::as_str);
    let has = |p: &str| first.starts_with(p);
    if has("EAPI:Rate limit exceeded") || has("EOrder:Rate limit exceeded") {
        ExchangeError::RateLimited {
            retry_after: Duration::from_secs(1),
            message,
        }
    } else if has("EGeneral:Temporary lockout") {
        ExchangeError::RateLimited {
            retry_after: Duration::from_secs(60),
            message,
        }
    } else if has("EAPI:Invalid nonce") || has("EService:") || has("EGeneral:Internal error") {
        ExchangeError::Retryable { message }
    } else if has("EAPI:Invalid key")
        || has("EAPI:Invalid signature")
        || has("EAPI:Bad request")
        || has("EGeneral:Permission denied")
        || has("EAPI:Feature disabled")
    {
        ExchangeError::Auth { message }
    } else if has("EOrder:Insufficient funds") || has("EOrder:Insufficient margin") {
        ExchangeError::InsufficientFunds { message }
    } else if has("EOrder:Unknown order") || first == "EOrder:Invalid order" {
        ExchangeError::UnknownOrder { message }
    } else if has("EOrder:Orders limit exceeded") {
        ExchangeError::OrdersLimitExceeded { message }
    } else if has("EOrder:Post only") {
        ExchangeError::PostOnlyWouldCross { message }
    } else if has("EOrder:Duplicate") {
        ExchangeError::DuplicateOrder { message }
    } else {
        ExchangeError::InvalidRequest { message }
    }
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(default)]
    error: Vec<String>,
    #[serde(default)]
    result: Option<Value>,
}

/// Parses an envelope body into its `result`, or the reason it has none.
pub fn parse_envelope<T: DeserializeOwned>(body: &str) -> Result<T, WireError> {
    let raw: RawEnvelope = serde_json::from_str(body).map_err(|e| {
        let snippet: String = body.chars().take(80).collect();
        WireError::NotJson(format!("{e}: {snippet}"))
    })?;
    if !raw.error.is_empty() {
        return Err(WireError::Api(raw.error));
    }
    let result = raw.result.ok_or(WireError::MissingResult)?;
    serde_json::from_value(result).map_err(|e| WireError::Shape(e.to_string()))
}

/// `GET /0/public/Time`.
#[derive(Debug, Clone, Deserialize)]
pub struct TimeResult {
    /// Server time, unix seconds.
    pub unixtime: i64,
    /// Server time, RFC 1123.
    #[serde(default)]
    pub rfc1123: String,
}

/// `GET /0/public/SystemStatus`.
#[derive(Debug, Clone, Deserialize)]
pub struct SystemStatus {
    /// `online`, `maintenance`, `cancel_only`, `post_only`.
    pub status: String,
    /// Server timestamp.
    pub timestamp: String,
}

/// One entry of `AssetPairs`.
#[derive(Debug, Clone, Deserialize)]
pub struct AssetPairWire {
    /// Alternate name, e.g. `XBTUSD`.
    pub altname: String,
    /// Base asset id.
    pub base: String,
    /// Quote asset id.
    pub quote: String,
    /// Price decimals.
    pub pair_decimals: u32,
    /// Volume decimals.
    pub lot_decimals: u32,
    /// Minimum volume.
    #[serde(default)]
    pub ordermin: Option<Num>,
    /// Minimum cost.
    #[serde(default)]
    pub costmin: Option<Num>,
    /// Trading status.
    #[serde(default)]
    pub status: Option<String>,
}

impl AssetPairWire {
    /// Converts to the trader's pair description, keyed by the symbol the
    /// trader asked for.
    #[must_use]
    pub fn into_pair_info(self, symbol: &str) -> PairInfo {
        PairInfo {
            spec: PairSpec {
                symbol: symbol.to_owned(),
                price_decimals: self.pair_decimals,
                lot_decimals: self.lot_decimals,
                ordermin: self.ordermin.unwrap_or_default().0,
                costmin: self.costmin.unwrap_or_default().0,
            },
            base: self.base,
            quote: self.quote,
        }
    }
}

/// `AssetPairs` result.
pub type AssetPairsResult = BTreeMap<String, AssetPairWire>;

/// `Assets` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct AssetWire {
    /// Alternate name.
    pub altname: String,
    /// Balance decimals.
    pub decimals: u32,
}

/// One entry of `Ticker`.
#[derive(Debug, Clone, Deserialize)]
pub struct TickerWire {
    /// Ask `[price, whole lot volume, lot volume]`.
    pub a: Vec<Num>,
    /// Bid `[price, whole lot volume, lot volume]`.
    pub b: Vec<Num>,
    /// Last trade `[price, volume]`.
    pub c: Vec<Num>,
}

impl TickerWire {
    /// Best bid/ask and last price.
    pub fn to_ticker(&self) -> Result<Ticker, WireError> {
        let first = |v: &[Num], what: &str| {
            v.first()
                .map(|n| n.0)
                .ok_or_else(|| WireError::Shape(format!("ticker {what} is empty")))
        };
        Ok(Ticker {
            ask: first(&self.a, "a")?,
            bid: first(&self.b, "b")?,
            last: first(&self.c, "c")?,
        })
    }
}

/// `Ticker` result.
pub type TickerResult = BTreeMap<String, TickerWire>;

/// Parses an `OHLC` result: one array-valued key (the pair) plus `last`.
pub fn parse_ohlc(result: &Value) -> Result<Vec<Candle>, WireError> {
    let obj = result
        .as_object()
        .ok_or_else(|| WireError::Shape("OHLC result is not an object".into()))?;
    let rows = obj
        .iter()
        .find_map(|(k, v)| (k != "last").then(|| v.as_array()).flatten())
        .ok_or_else(|| WireError::Shape("OHLC result has no candle array".into()))?;
    rows.iter()
        .map(|row| {
            let (t, o, h, l, c, _vwap, v, _count): (i64, Num, Num, Num, Num, Num, Num, Value) =
                serde_json::from_value(row.clone())
                    .map_err(|e| WireError::Shape(format!("OHLC row: {e}")))?;
            Ok(Candle {
                time: t,
                open: o.0,
                high: h.0,
                low: l.0,
                close: c.0,
                volume: v.0,
            })
        })
        .collect()
}

/// `Balance` result.
pub type BalanceResult = BTreeMap<String, Num>;

/// One pair's fee in `TradeVolume`.
#[derive(Debug, Clone, Deserialize)]
pub struct FeeWire {
    /// Current fee in percent.
    pub fee: Num,
}

/// `TradeVolume` result.
#[derive(Debug, Clone, Deserialize)]
pub struct TradeVolumeResult {
    /// Fee volume currency.
    #[serde(default)]
    pub currency: String,
    /// 30-day volume.
    #[serde(default)]
    pub volume: Option<Num>,
    /// Taker fees per pair.
    #[serde(default)]
    pub fees: BTreeMap<String, FeeWire>,
    /// Maker fees per pair (absent for pairs without a maker schedule).
    #[serde(default)]
    pub fees_maker: BTreeMap<String, FeeWire>,
}

/// `AddOrder` result: `txid` is absent when `validate=true`.
#[derive(Debug, Clone, Deserialize)]
pub struct AddOrderResult {
    /// Order ids (Kraken sends an array).
    #[serde(default)]
    pub txid: Option<TxidList>,
    /// Human-readable description.
    #[serde(default)]
    pub descr: Option<Value>,
}

/// `CancelOrder` / `CancelAll` result.
#[derive(Debug, Clone, Deserialize)]
pub struct CancelResult {
    /// Number of orders cancelled.
    pub count: Num,
    /// True if the cancel is pending.
    #[serde(default)]
    pub pending: Option<bool>,
}

/// An order's description block.
#[derive(Debug, Clone, Deserialize)]
pub struct DescrWire {
    /// Pair name.
    pub pair: String,
    /// `buy` or `sell`.
    #[serde(rename = "type")]
    pub side: String,
    /// Order type (`limit`, `market`, `stop-loss`, ...).
    pub ordertype: String,
    /// Primary price; may be text such as `+1.0000%` for trailing stops.
    #[serde(default)]
    pub price: Value,
}

/// One order as returned by `QueryOrders`, `OpenOrders`, `ClosedOrders`.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderWire {
    /// User reference (number, numeric string or null).
    #[serde(default)]
    pub userref: Option<Num>,
    /// Client order id.
    #[serde(default)]
    pub cl_ord_id: Option<String>,
    /// Status text.
    pub status: String,
    /// Cancel/expiry reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Open time, unix seconds.
    pub opentm: Num,
    /// Close time, unix seconds.
    #[serde(default)]
    pub closetm: Option<Num>,
    /// Description.
    pub descr: DescrWire,
    /// Ordered volume.
    pub vol: Num,
    /// Executed volume.
    pub vol_exec: Num,
    /// Executed cost.
    pub cost: Num,
    /// Fee paid.
    pub fee: Num,
    /// Average price (0 or absent when nothing executed).
    #[serde(default)]
    pub price: Option<Num>,
    /// Comma-separated flags (`post`, `fciq`, ...).
    #[serde(default)]
    pub oflags: String,
}

fn parse_side(s: &str) -> Result<Side, WireError> {
    match s {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(WireError::Shape(format!("unknown side {other:?}"))),
    }
}

impl OrderWire {
    /// Converts to the exchange-neutral form. The average price is `price`
    /// when positive, else `cost / vol_exec`, else absent.
    pub fn into_info(self, txid: String) -> Result<OrderInfo, WireError> {
        let status = OrderStatus::parse(&self.status)
            .ok_or_else(|| WireError::Shape(format!("unknown status {:?}", self.status)))?;
        let side = parse_side(&self.descr.side)?;
        let order_type = match self.descr.ordertype.as_str() {
            "limit" => OrderType::Limit,
            "market" => OrderType::Market,
            other => OrderType::Other(other.to_owned()),
        };
        let descr_price = match &self.descr.price {
            Value::String(s) => parse_decimal(s),
            Value::Number(n) => parse_decimal(&n.to_string()),
            _ => None,
        };
        let limit_price = (order_type == OrderType::Limit)
            .then_some(descr_price)
            .flatten();
        let vol_exec = self.vol_exec.0;
        let avg_price = match self.price.map(|n| n.0) {
            Some(p) if p > Decimal::ZERO && vol_exec > Decimal::ZERO => Some(p),
            // Checked: an absurd cost over a tiny volume overflows.
            _ if vol_exec > Decimal::ZERO && self.cost.0 > Decimal::ZERO => {
                self.cost.0.checked_div(vol_exec)
            }
            _ => None,
        };
        let userref = self.userref.and_then(|n| n.0.to_i32()).unwrap_or_default();
        Ok(OrderInfo {
            txid,
            pair: self.descr.pair,
            status,
            side,
            order_type,
            limit_price,
            post_only: self.oflags.split(',').any(|f| f.trim() == "post"),
            volume: self.vol.0,
            vol_exec,
            cost: self.cost.0,
            fee: self.fee.0,
            avg_price,
            userref,
            cl_ord_id: self.cl_ord_id.filter(|s| !s.is_empty()),
            opened_at: seconds_to_ms(self.opentm),
            closed_at: self.closetm.map(seconds_to_ms).filter(|&t| t > 0),
            reason: self.reason,
        })
    }
}

/// Converts a txid → order map to a list, oldest first.
pub fn orders_from_map(map: BTreeMap<String, OrderWire>) -> Result<Vec<OrderInfo>, WireError> {
    let mut v = map
        .into_iter()
        .map(|(txid, o)| o.into_info(txid))
        .collect::<Result<Vec<_>, _>>()?;
    v.sort_by_key(|o| o.opened_at);
    Ok(v)
}

/// `QueryOrders` result.
pub type QueryOrdersResult = BTreeMap<String, OrderWire>;

/// `OpenOrders` result.
#[derive(Debug, Clone, Deserialize)]
pub struct OpenOrdersResult {
    /// Open orders by txid.
    pub open: BTreeMap<String, OrderWire>,
}

/// `ClosedOrders` result.
#[derive(Debug, Clone, Deserialize)]
pub struct ClosedOrdersResult {
    /// Closed orders by txid.
    pub closed: BTreeMap<String, OrderWire>,
    /// Total number of matching orders (for paging).
    #[serde(default)]
    pub count: Option<Num>,
}

/// One trade of `TradesHistory`.
#[derive(Debug, Clone, Deserialize)]
pub struct TradeWire {
    /// Order that executed.
    pub ordertxid: String,
    /// Pair.
    pub pair: String,
    /// Time, unix seconds.
    pub time: Num,
    /// `buy` or `sell`.
    #[serde(rename = "type")]
    pub side: String,
    /// Order type.
    pub ordertype: String,
    /// Price.
    pub price: Num,
    /// Cost.
    pub cost: Num,
    /// Fee.
    pub fee: Num,
    /// Volume.
    pub vol: Num,
    /// Maker flag (absent in older payloads).
    #[serde(default)]
    pub maker: Option<bool>,
}

impl TradeWire {
    /// Converts to the exchange-neutral form; without a `maker` flag, a
    /// limit order's trade is assumed to be maker.
    pub fn into_trade(self, trade_id: String) -> Result<Trade, WireError> {
        Ok(Trade {
            trade_id,
            order_txid: self.ordertxid,
            pair: self.pair,
            side: parse_side(&self.side)?,
            price: self.price.0,
            volume: self.vol.0,
            cost: self.cost.0,
            fee: self.fee.0,
            maker: self.maker.unwrap_or(self.ordertype == "limit"),
            time: seconds_to_ms(self.time),
        })
    }
}

/// `TradesHistory` result.
#[derive(Debug, Clone, Deserialize)]
pub struct TradesHistoryResult {
    /// Trades by id.
    pub trades: BTreeMap<String, TradeWire>,
    /// Total matching trades (for paging).
    #[serde(default)]
    pub count: Option<Num>,
}

/// Formats unix milliseconds as Kraken's fractional seconds.
#[must_use]
pub fn ms_to_seconds(ms: UnixMillis) -> Decimal {
    Decimal::new(ms, 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn numbers_parse_from_strings_and_numbers() {
        let v: Vec<Num> = serde_json::from_str(r#"["1.5", 2, 1688148493.7708, "1e-3"]"#).unwrap();
        assert_eq!(
            v.iter().map(|n| n.0).collect::<Vec<_>>(),
            vec![dec!(1.5), dec!(2), dec!(1688148493.7708), dec!(0.001)]
        );
        assert!(serde_json::from_str::<Num>(r#""abc""#).is_err());
    }

    #[test]
    fn errors_without_result_and_non_json_bodies() {
        let e = parse_envelope::<BalanceResult>(r#"{"error":["EAPI:Invalid nonce"]}"#).unwrap_err();
        assert_eq!(e, WireError::Api(vec!["EAPI:Invalid nonce".into()]));
        let e = parse_envelope::<BalanceResult>(r#"{"error":["EAPI:Invalid key"],"result":{}}"#)
            .unwrap_err();
        assert!(matches!(e, WireError::Api(_)));
        assert!(matches!(
            parse_envelope::<BalanceResult>("<html>502 Bad Gateway</html>"),
            Err(WireError::NotJson(_))
        ));
        assert_eq!(
            parse_envelope::<BalanceResult>(r#"{"error":[]}"#).unwrap_err(),
            WireError::MissingResult
        );
    }

    #[test]
    fn classify_maps_every_documented_error() {
        use super::super::super::error::ErrorKind as K;
        let cases = [
            ("EAPI:Invalid nonce", K::Retryable),
            ("EAPI:Rate limit exceeded", K::RateLimited),
            ("EOrder:Rate limit exceeded", K::RateLimited),
            ("EOrder:Insufficient funds", K::InsufficientFunds),
            ("EOrder:Unknown order", K::UnknownOrder),
            ("EOrder:Invalid order", K::UnknownOrder),
            ("EOrder:Orders limit exceeded", K::OrdersLimitExceeded),
            ("EGeneral:Invalid arguments:volume", K::InvalidRequest),
            ("EService:Unavailable", K::Retryable),
            ("EService:Busy", K::Retryable),
            ("EGeneral:Temporary lockout", K::RateLimited),
            ("EAPI:Invalid key", K::Auth),
            ("EOrder:Post only order", K::PostOnlyWouldCross),
            ("EOrder:Duplicate order", K::DuplicateOrder),
            ("EQuery:Unknown asset pair", K::InvalidRequest),
            ("ESomething:New", K::InvalidRequest),
        ];
        for (msg, kind) in cases {
            assert_eq!(classify(&[msg.to_owned()]).kind(), kind, "{msg}");
        }
        assert_eq!(
            classify(&["EGeneral:Temporary lockout".into()]).retry_after(),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn closed_order_with_zero_price_uses_cost_over_volume() {
        let o: OrderWire = serde_json::from_value(serde_json::json!({
            "userref": "12", "status": "closed", "opentm": "1700000000.5",
            "closetm": 1700000100, "descr": {"pair": "XDGUSD", "type": "sell",
            "ordertype": "limit", "price": "0.1000000"}, "vol": "100",
            "vol_exec": "100", "cost": "10.1", "fee": "0.02525", "price": "0",
            "oflags": "fciq,post", "cl_ord_id": "c-1"
        }))
        .unwrap();
        let info = o.into_info("OX".into()).unwrap();
        assert_eq!(info.avg_price, Some(dec!(0.101)));
        assert_eq!(info.userref, 12);
        assert!(info.post_only);
        assert_eq!(info.limit_price, Some(dec!(0.1)));
        assert_eq!(info.opened_at, 1_700_000_000_500);
        assert_eq!(info.closed_at, Some(1_700_000_100_000));
        assert_eq!(info.cl_ord_id.as_deref(), Some("c-1"));
    }

    /// Proves: a reply with times or figures beyond what a decimal can
    /// scale (both panicked in the `kraken_reply` fuzz target, whose seed
    /// corpus keeps these bodies) is read without a panic: the time becomes
    /// 0 and the average price stays unknown.
    #[test]
    fn absurd_times_and_figures_do_not_panic() {
        let trades: TradesHistoryResult = parse_envelope(
            r#"{"error":[],"result":{"trades":{"T":{"ordertxid":"O","pair":"P",
            "time":"1e27","type":"buy","ordertype":"limit","price":1,"cost":1,
            "fee":0,"vol":1}}}}"#,
        )
        .unwrap();
        let (id, t) = trades.trades.into_iter().next().unwrap();
        assert_eq!(t.into_trade(id).unwrap().time, 0);
        let orders: QueryOrdersResult = parse_envelope(
            r#"{"error":[],"result":{"O":{"status":"closed","opentm":1,
            "descr":{"pair":"P","type":"buy","ordertype":"limit"},"vol":1,
            "vol_exec":"0.0000000000000000000000000001",
            "cost":"79228162514264337593543950335","fee":0}}}"#,
        )
        .unwrap();
        let info = orders_from_map(orders).unwrap();
        assert_eq!(info[0].avg_price, None);
        assert_eq!(info[0].opened_at, 1000);
    }

    #[test]
    fn txid_accepts_string_or_array() {
        let a: AddOrderResult = serde_json::from_str(r#"{"txid":["OA"]}"#).unwrap();
        let b: AddOrderResult = serde_json::from_str(r#"{"txid":"OB"}"#).unwrap();
        assert_eq!(a.txid.unwrap().0, vec!["OA"]);
        assert_eq!(b.txid.unwrap().0, vec!["OB"]);
    }
}
