//! Wire-format conformance: every fixture parses with the parser the client
//! uses for its endpoint. The repo's own fixtures always run; the real Kraken
//! payloads in the shared fixture directory run when
//! `HEALGRID_SHARED_FIXTURES` points at it (CI sets it and sets `CI=true`,
//! which turns a missing directory into a failure instead of a skip).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde_json::Value;
use trader_service::exchange::ErrorKind;
use trader_service::exchange::OrderInfo;
use trader_service::exchange::kraken::sign::{decode_secret, sign};
use trader_service::exchange::kraken::wire::{
    self, AddOrderResult, AssetPairsResult, AssetWire, BalanceResult, CancelResult,
    ClosedOrdersResult, Num, OpenOrdersResult, QueryOrdersResult, SystemStatus, TickerResult,
    TimeResult, TradeVolumeResult, TradesHistoryResult, WireError,
};

fn env<T: serde::de::DeserializeOwned>(body: &str, file: &str) -> T {
    wire::parse_envelope(body).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn check_orders(orders: &[OrderInfo], file: &str) {
    assert!(!orders.is_empty(), "{file}: no orders");
    for o in orders {
        assert!(o.vol_exec <= o.volume, "{file}: {}", o.txid);
        if o.vol_exec > Decimal::ZERO && o.cost > Decimal::ZERO {
            assert!(
                o.avg_price.is_some_and(|p| p > Decimal::ZERO),
                "{file}: {}",
                o.txid
            );
        } else {
            assert_eq!(o.avg_price, None, "{file}: {}", o.txid);
        }
        assert!(o.opened_at > 0, "{file}: {}", o.txid);
    }
}

fn expected_error_kind(name: &str) -> Option<ErrorKind> {
    Some(match name {
        "invalid_nonce" | "service_unavailable" | "service_busy" => ErrorKind::Retryable,
        "api_rate_limit" | "order_rate_limit" | "temporary_lockout" | "batch_line_rate_limited" => {
            ErrorKind::RateLimited
        }
        "insufficient_funds" => ErrorKind::InsufficientFunds,
        "unknown_order" | "invalid_order_on_cancel" => ErrorKind::UnknownOrder,
        "orders_limit_exceeded" => ErrorKind::OrdersLimitExceeded,
        "invalid_key" | "invalid_key_docs" => ErrorKind::Auth,
        "unknown_asset_pair"
        | "order_minimum_not_met"
        | "invalid_arguments_volume"
        | "invalid_price_decimals" => ErrorKind::InvalidRequest,
        _ => return None,
    })
}

fn check_errors(body: &str, file: &str) {
    let doc: Value = serde_json::from_str(body).unwrap();
    let cases = doc["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no cases"));
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let text = case["body"].to_string();
        let errors = match wire::parse_envelope::<Value>(&text) {
            Err(WireError::Api(errors)) => errors,
            // A batch reply: the envelope is fine, a line carries the error.
            Ok(result) => result["orders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|line| line["error"].as_str().map(str::to_owned))
                .collect(),
            Err(e) => panic!("{file}/{name}: {e}"),
        };
        assert!(!errors.is_empty(), "{file}/{name}: no error found");
        let kind = wire::classify(&errors).kind();
        if let Some(expected) = expected_error_kind(name) {
            assert_eq!(kind, expected, "{file}/{name}");
        }
    }
}

fn check_signatures(body: &str, file: &str) {
    let doc: Value = serde_json::from_str(body).unwrap();
    let vectors = doc["vectors"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no vectors"));
    assert!(!vectors.is_empty());
    for v in vectors {
        let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{file}: {k}"));
        let secret = decode_secret(s("secret_b64")).unwrap();
        assert_eq!(
            sign(&secret, s("uri_path"), s("nonce"), s("post_body")),
            s("api_sign"),
            "{file}: {}",
            s("name")
        );
    }
}

/// Parses one fixture with the parser for its endpoint (chosen by the file
/// name's stem); an unrecognised name fails, so new fixtures cannot be
/// silently skipped.
fn check_fixture(path: &Path) {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let body = std::fs::read_to_string(path).unwrap();
    let stem = file.trim_end_matches(".json");
    let is = |p: &str| stem == p || stem.starts_with(&format!("{p}_"));
    if is("auth_test_vectors") {
        check_signatures(&body, &file);
    } else if is("errors") {
        check_errors(&body, &file);
    } else if is("time") {
        assert!(env::<TimeResult>(&body, &file).unixtime > 0);
    } else if is("system_status") {
        assert_eq!(env::<SystemStatus>(&body, &file).status, "online");
    } else if is("assets") {
        assert!(!env::<BTreeMap<String, AssetWire>>(&body, &file).is_empty());
    } else if is("asset_pairs") {
        let pairs: AssetPairsResult = env(&body, &file);
        assert!(!pairs.is_empty());
        for (k, p) in pairs {
            let info = p.into_pair_info(&k);
            assert!(info.spec.ordermin > Decimal::ZERO, "{file}: {k}");
            if k == "XDGUSD" {
                assert_eq!((info.spec.price_decimals, info.spec.lot_decimals), (7, 8));
                assert_eq!(info.spec.ordermin, Decimal::from(50));
                assert_eq!(info.spec.costmin, Decimal::new(5, 1));
            }
        }
    } else if is("ticker") {
        for t in env::<TickerResult>(&body, &file).values() {
            let t = t.to_ticker().unwrap();
            assert!(t.bid <= t.ask && t.last > Decimal::ZERO, "{file}");
        }
    } else if is("ohlc") {
        let candles = wire::parse_ohlc(&env::<Value>(&body, &file)).unwrap();
        assert!(!candles.is_empty());
        assert!(candles.iter().all(|c| c.low <= c.high), "{file}");
    } else if is("balance") {
        assert!(!env::<BalanceResult>(&body, &file).is_empty());
    } else if is("trade_balance") {
        assert!(!env::<BTreeMap<String, Num>>(&body, &file).is_empty());
    } else if is("trade_volume") {
        let r: TradeVolumeResult = env(&body, &file);
        assert!(!r.fees.is_empty(), "{file}");
    } else if is("add_order") {
        let r: AddOrderResult = env(&body, &file);
        let validate_only = stem.contains("validate");
        assert_eq!(r.txid.is_none(), validate_only, "{file}");
    } else if is("cancel_all_orders_after") {
        assert!(env::<Value>(&body, &file)["triggerTime"].is_string());
    } else if is("cancel") {
        assert!(env::<CancelResult>(&body, &file).count.0 >= Decimal::ZERO);
    } else if is("open_orders") {
        let r: OpenOrdersResult = env(&body, &file);
        check_orders(&wire::orders_from_map(r.open).unwrap(), &file);
    } else if is("closed_orders") {
        let r: ClosedOrdersResult = env(&body, &file);
        check_orders(&wire::orders_from_map(r.closed).unwrap(), &file);
    } else if is("query_orders") {
        let doc: Value = serde_json::from_str(&body).unwrap();
        // Either one envelope, or several named envelopes in one file.
        let envelopes: Vec<String> = if doc.get("error").is_some() {
            vec![body.clone()]
        } else {
            doc.as_object()
                .unwrap()
                .values()
                .filter(|v| v.get("error").is_some())
                .map(Value::to_string)
                .collect()
        };
        assert!(!envelopes.is_empty(), "{file}");
        for e in envelopes {
            let r: QueryOrdersResult = env(&e, &file);
            check_orders(&wire::orders_from_map(r).unwrap(), &file);
        }
    } else if is("trades_history") {
        let r: TradesHistoryResult = env(&body, &file);
        assert!(!r.trades.is_empty());
        for (id, t) in r.trades {
            let t = t.into_trade(id).unwrap();
            assert!(t.time > 0 && t.volume > Decimal::ZERO, "{file}");
        }
    } else {
        panic!("{file}: no parser registered for this fixture");
    }
}

fn check_dir(dir: &Path) -> usize {
    let mut n = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for p in entries {
        check_fixture(&p);
        n += 1;
    }
    n
}

#[test]
fn repo_fixtures_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kraken");
    assert!(check_dir(&dir) >= 15);
}

#[test]
fn repo_fixture_details() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kraken");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    // A closed order reporting price 0: average price from cost / volume.
    let closed: ClosedOrdersResult = wire::parse_envelope(&read("closed_orders.json")).unwrap();
    let closed = wire::orders_from_map(closed.closed).unwrap();
    let filled = closed
        .iter()
        .find(|o| o.txid == "OW7T2P-LKQ9S-AB3CDE")
        .unwrap();
    assert_eq!(filled.avg_price, Some(Decimal::new(19, 2)));
    assert_eq!(filled.closed_at, Some(1_761_395_000_250));
    // Numbers as strings, foreign order types kept verbatim.
    let q: QueryOrdersResult = wire::parse_envelope(&read("query_orders.json")).unwrap();
    let q = wire::orders_from_map(q).unwrap();
    let market = q.iter().find(|o| o.txid == "OM3RKT-8XQ2W-LP5NUV").unwrap();
    assert_eq!(market.userref, 7);
    assert_eq!(market.avg_price, Some(Decimal::new(182, 3)));
    let trailing = q.iter().find(|o| o.txid == "OT5TRL-QW3ER-TY6UIO").unwrap();
    assert_eq!(trailing.limit_price, None);
    let open: OpenOrdersResult = wire::parse_envelope(&read("open_orders.json")).unwrap();
    let open = wire::orders_from_map(open.open).unwrap();
    assert_eq!(open[0].cl_ord_id.as_deref(), Some("slot-1042-7"));
    assert!(open[0].post_only);
}

fn resolve(dir: &str) -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        PathBuf::from(dir),
        manifest.join(dir),
        manifest.join("..").join(dir),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

#[test]
fn every_real_kraken_fixture_parses() {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Ok(dir) = std::env::var("HEALGRID_SHARED_FIXTURES") else {
        assert!(!in_ci, "CI=true but HEALGRID_SHARED_FIXTURES is not set");
        eprintln!("SKIP: set HEALGRID_SHARED_FIXTURES to the real Kraken fixtures to check them");
        return;
    };
    let path = resolve(&dir)
        .unwrap_or_else(|| panic!("HEALGRID_SHARED_FIXTURES={dir} is not a directory"));
    let n = check_dir(&path);
    assert!(n >= 20, "only {n} fixtures found in {}", path.display());
    eprintln!("checked {n} real Kraken fixtures in {}", path.display());
}
