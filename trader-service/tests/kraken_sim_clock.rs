//! One clock: `kraken-sim` replaying 2022 candles at 3000× must report
//! every time (orders, fills, candles, public trades, spreads, `Time`) on
//! one simulated clock that starts at the present, never the candles' own
//! dates, and a fill is never stamped before its order was opened.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{KEY, SECRET, limit, private_raw, public_raw};
use rust_decimal_macros::dec;
use serde_json::Value;
use trader_service::exchange::kraken::{KrakenClient, KrakenConfig};
use trader_service::exchange::{Clock, Exchange, SystemClock};
use trader_service::pair::Side;

/// Kills the simulator even when an assertion fails first.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// 2022-01-01T00:00:00Z.
const CSV_T0: i64 = 1_640_995_200;
const SPEED: i64 = 3000;

fn write_csv() -> std::path::PathBuf {
    let mut csv = std::env::temp_dir();
    csv.push(format!("healgrid-sim-clock-{}.csv", std::process::id()));
    let mut f = std::fs::File::create(&csv).unwrap();
    writeln!(f, "time,open,high,low,close,volume").unwrap();
    for i in 0..5000 {
        // Swings of up to ±0.4 % around 0.1, so resting orders fill.
        let swing = f64::from(i % 5) * 0.0001;
        writeln!(
            f,
            "{},0.1,{:.7},{:.7},0.1,100000",
            CSV_T0 + i64::from(i) * 60,
            0.1 + swing,
            0.1 - swing
        )
        .unwrap();
    }
    csv
}

fn secs_to_ms(v: &Value) -> i64 {
    (v.as_f64().unwrap_or_else(|| panic!("{v} is not a number")) * 1000.0).round() as i64
}

#[tokio::test]
async fn a_fast_csv_replay_reports_one_clock_near_the_present() {
    let csv = write_csv();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let launched = SystemClock.now_ms();
    let real_start = Instant::now();
    let _child = Child(
        Command::new(env!("CARGO_BIN_EXE_trader-service"))
            .args(["kraken-sim", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--api-key", KEY, "--api-secret", SECRET])
            .args(["--speed", &SPEED.to_string(), "--tier", "pro"])
            .args(["--market", &format!("csv:{}", csv.display())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let client = KrakenClient::new(KrakenConfig::new(&url, KEY, SECRET).unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.ticker("XDGUSD").await.is_err() {
        assert!(Instant::now() < deadline, "simulator did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Resting orders either side (they fill within a few candles), one far
    // away that stays open, and one cancelled.
    let mut txids = Vec::new();
    for (i, (side, price)) in [
        (Side::Buy, dec!(0.0998)),
        (Side::Sell, dec!(0.1002)),
        (Side::Buy, dec!(0.0997)),
        (Side::Sell, dec!(0.1003)),
        (Side::Buy, dec!(0.05)),
    ]
    .into_iter()
    .enumerate()
    {
        let ack = client
            .add_order(&limit(side, price, dec!(100), 1, &format!("clock-{i}")))
            .await
            .unwrap();
        txids.push(ack.txid);
    }
    let ack = client
        .add_order(&limit(Side::Buy, dec!(0.06), dec!(100), 1, "clock-cancel"))
        .await
        .unwrap();
    client.cancel_order(&ack.txid).await.unwrap();
    // 1.5 s at 3000× is 75 simulated minutes: 75 candles.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut seen: Vec<(String, i64)> = Vec::new();
    let open = private_raw(&url, "OpenOrders", &[]).await;
    for (id, o) in open["result"]["open"].as_object().unwrap() {
        seen.push((format!("open {id} opentm"), secs_to_ms(&o["opentm"])));
    }
    let closed = private_raw(&url, "ClosedOrders", &[]).await;
    let closed = closed["result"]["closed"].as_object().unwrap();
    assert!(closed.len() >= 5, "four fills and a cancel: {closed:?}");
    let mut opened_at = std::collections::HashMap::new();
    for (id, o) in closed {
        let (open_ms, close_ms) = (secs_to_ms(&o["opentm"]), secs_to_ms(&o["closetm"]));
        assert!(close_ms >= open_ms, "{id}: closed before it opened");
        opened_at.insert(id.clone(), open_ms);
        seen.push((format!("closed {id} opentm"), open_ms));
        seen.push((format!("closed {id} closetm"), close_ms));
    }
    let trades = private_raw(&url, "TradesHistory", &[]).await;
    let trades = trades["result"]["trades"].as_object().unwrap();
    assert!(trades.len() >= 4, "{trades:?}");
    for (id, t) in trades {
        let at = secs_to_ms(&t["time"]);
        let order = t["ordertxid"].as_str().unwrap();
        assert!(
            at >= opened_at[order],
            "fill {id} at {at} precedes its order's open {}",
            opened_at[order]
        );
        seen.push((format!("trade {id}"), at));
    }
    let ohlc = public_raw(&url, "OHLC", &[("pair", "XDGUSD")]).await;
    let rows = ohlc["result"]["XDGUSD"].as_array().unwrap();
    assert!(rows.len() >= 50, "candles were played: {}", rows.len());
    for r in rows {
        seen.push(("OHLC row".into(), r[0].as_i64().unwrap() * 1000));
    }
    seen.push((
        "OHLC last".into(),
        ohlc["result"]["last"].as_i64().unwrap() * 1000,
    ));
    let public_trades = public_raw(&url, "Trades", &[("pair", "XDGUSD")]).await;
    for r in public_trades["result"]["XDGUSD"].as_array().unwrap() {
        seen.push(("public trade".into(), secs_to_ms(&r[2])));
    }
    let spread = public_raw(&url, "Spread", &[("pair", "XDGUSD")]).await;
    for r in spread["result"]["XDGUSD"].as_array().unwrap() {
        seen.push(("spread".into(), r[0].as_i64().unwrap() * 1000));
    }
    let depth = public_raw(&url, "Depth", &[("pair", "XDGUSD"), ("count", "5")]).await;
    seen.push((
        "depth level".into(),
        depth["result"]["XDGUSD"]["bids"][0][2].as_i64().unwrap() * 1000,
    ));
    let time = public_raw(&url, "Time", &[]).await;
    let now_ms = time["result"]["unixtime"].as_i64().unwrap() * 1000;
    let real_ms = i64::try_from(real_start.elapsed().as_millis()).unwrap();

    // The clock started at the present and ran at about 3000×.
    let start_ms = launched - launched.rem_euclid(1000);
    assert!(
        now_ms >= start_ms + 60 * 60_000,
        "ran for an hour: {now_ms}"
    );
    assert!(
        now_ms <= launched + (real_ms + 1000) * SPEED,
        "no faster than 3000×: {now_ms}"
    );
    // Every reported time lies on that clock: after its start (never in
    // 2022), and not after the `Time` it last reported (+1 s: `Time` is
    // whole seconds).
    for (what, at) in &seen {
        assert!(
            *at >= start_ms - 1000 && *at <= now_ms + 1000,
            "{what} at {at} is outside the clock's range [{start_ms}, {now_ms}]"
        );
    }
    let _ = std::fs::remove_file(&csv);
}
