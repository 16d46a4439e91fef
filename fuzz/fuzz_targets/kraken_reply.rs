//! Kraken REST replies: any body goes through the client's decoding chain
//! (envelope, then every result shape the client asks for, then the
//! conversions to exchange-neutral types). A hostile or broken exchange
//! must produce errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde_json::Value;
use trader_service::exchange::kraken::wire::{
    self, AddOrderResult, AssetPairsResult, BalanceResult, CancelResult, ClosedOrdersResult,
    OpenOrdersResult, QueryOrdersResult, SystemStatus, TickerResult, TimeResult, TradeVolumeResult,
    TradesHistoryResult, WireError,
};

/// The client's second step: the envelope's `result` as the reply type.
fn shape<T: DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

fuzz_target!(|data: &[u8]| {
    // The client reads bodies as text, replacing invalid UTF-8.
    let body = String::from_utf8_lossy(data);
    let v = match wire::parse_envelope::<Value>(&body) {
        Ok(v) => v,
        Err(WireError::Api(errors)) => {
            let _ = wire::classify(&errors);
            return;
        }
        Err(_) => return,
    };
    if let Some(r) = shape::<AddOrderResult>(&v) {
        let _ = r.txid.and_then(|t| t.0.into_iter().next());
    }
    if let Some(r) = shape::<QueryOrdersResult>(&v) {
        let _ = wire::orders_from_map(r);
    }
    if let Some(r) = shape::<OpenOrdersResult>(&v) {
        let _ = wire::orders_from_map(r.open);
    }
    if let Some(r) = shape::<ClosedOrdersResult>(&v) {
        let _ = wire::orders_from_map(r.closed);
    }
    if let Some(r) = shape::<TradesHistoryResult>(&v) {
        for (id, t) in r.trades {
            let _ = t.into_trade(id);
        }
    }
    if let Some(r) = shape::<TickerResult>(&v) {
        for t in r.values() {
            let _ = t.to_ticker();
        }
    }
    if let Some(r) = shape::<AssetPairsResult>(&v) {
        for (k, p) in r {
            let _ = p.into_pair_info(&k);
        }
    }
    let _ = shape::<BalanceResult>(&v);
    let _ = shape::<TradeVolumeResult>(&v);
    let _ = shape::<CancelResult>(&v);
    let _ = shape::<TimeResult>(&v);
    let _ = shape::<SystemStatus>(&v);
    let _ = wire::parse_ohlc(&v);
});
