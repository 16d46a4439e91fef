//! The `kraken-sim` subcommand as an operator runs it: bad flags give a
//! clear message and a non-zero exit (no panic), and a running simulator
//! serves a Kraken client over HTTP.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{KEY, SECRET, limit};
use rust_decimal_macros::dec;
use trader_service::exchange::Exchange;
use trader_service::exchange::kraken::{KrakenClient, KrakenConfig};
use trader_service::pair::Side;

/// Kills the simulator even when an assertion fails first.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trader-service"))
}

#[test]
fn bad_flags_fail_cleanly() {
    let csv = candle_file("bad-flags", 5, |_| "0.1".to_owned());
    let market = format!("csv:{}", csv.display());
    let cases: [(&[&str], &str); 8] = [
        (
            &["--api-secret", SECRET, "--replay-skip", "3"],
            "need --market csv",
        ),
        (
            &["--api-secret", SECRET, "--replay-hours", "2"],
            "need --market csv",
        ),
        (
            &[
                "--api-secret",
                SECRET,
                "--market",
                &market,
                "--replay-hours",
                "0",
            ],
            "between 1 and 8760",
        ),
        (
            &[
                "--api-secret",
                SECRET,
                "--market",
                &market,
                "--replay-skip",
                "5",
            ],
            "leaves none of 5",
        ),
        (&["--api-secret", "not base64!"], "--api-secret"),
        (&["--api-secret", SECRET, "--market", "random"], "synthetic"),
        (
            &["--api-secret", SECRET, "--market", "csv:/nonexistent.csv"],
            "nonexistent",
        ),
        (&["--api-secret", SECRET, "--tier", "gold"], "--tier"),
    ];
    for (args, needle) in cases {
        let out = bin()
            .args(["kraken-sim", "--listen", "127.0.0.1:0", "--api-key", KEY])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_file(&csv);
}

/// A CSV of `n` one-minute candles whose close is `close(i)`, in the
/// temporary directory.
fn candle_file(name: &str, n: i64, close: impl Fn(i64) -> String) -> std::path::PathBuf {
    let mut csv = std::env::temp_dir();
    csv.push(format!("healgrid-sim-{name}-{}.csv", std::process::id()));
    let mut f = std::fs::File::create(&csv).unwrap();
    writeln!(f, "time,open,high,low,close,volume").unwrap();
    for i in 0..n {
        let c = close(i);
        writeln!(f, "{},{c},{c},{c},{c},1000", 1_700_000_040 + i * 60).unwrap();
    }
    csv
}

/// A simulator on a free port replaying `csv` (stepped by hand), with
/// `extra` flags; its URL.
fn replay(csv: &std::path::Path, extra: &[&str]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Child(
        bin()
            .args(["kraken-sim", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--api-key", KEY, "--api-secret", SECRET, "--speed", "0"])
            .args(["--market", &format!("csv:{}", csv.display())])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (child, format!("http://127.0.0.1:{port}"))
}

/// A Kraken client of the simulator at `url`, once it answers.
async fn client_when_up(url: &str) -> KrakenClient {
    let client = KrakenClient::new(KrakenConfig::new(url, KEY, SECRET).unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.ticker("XDGUSD").await {
            Ok(_) => return client,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("simulator did not come up: {e}"),
        }
    }
}

/// `--replay-skip` and `--replay-hours` play one stretch of a long file:
/// the first price is the first kept candle's, and the market freezes once
/// the hours asked for are played.
#[tokio::test]
async fn replays_the_window_asked_for() {
    // Candle i closes at 0.1 + i/1000 (0.100 .. 0.279), one a minute.
    let csv = candle_file("window", 180, |i| format!("0.{}", 100 + i));
    let (_child, url) = replay(&csv, &["--replay-skip", "10", "--replay-hours", "1"]);
    let client = client_when_up(&url).await;
    assert_eq!(client.ticker("XDGUSD").await.unwrap().last, dec!(0.110));
    let http = reqwest::Client::new();
    for _ in 0..80 {
        let step = http.post(format!("{url}/sim/step")).send().await.unwrap();
        assert!(step.status().is_success());
    }
    // One hour from candle 10 is candles 10..=69: frozen at the last.
    assert_eq!(client.ticker("XDGUSD").await.unwrap().last, dec!(0.169));
    let _ = std::fs::remove_file(&csv);
}

#[tokio::test]
async fn serves_a_kraken_client_from_a_csv_replay() {
    let mut csv = std::env::temp_dir();
    csv.push(format!("healgrid-sim-{}.csv", std::process::id()));
    let mut f = std::fs::File::create(&csv).unwrap();
    writeln!(f, "time,open,high,low,close,volume").unwrap();
    for i in 0..50 {
        writeln!(f, "{},0.1,0.101,0.099,0.1,1000", 1_700_000_040 + i * 60).unwrap();
    }
    drop(f);
    let (_child, url) = replay(&csv, &[]);
    let client = client_when_up(&url).await;
    let ticker = client.ticker("XDGUSD").await.unwrap();
    assert_eq!(ticker.last, dec!(0.1));
    let ack = client
        .add_order(&limit(Side::Buy, dec!(0.0995), dec!(100), 9, "cli-1"))
        .await
        .unwrap();
    // Advance the replay by hand: the next candle trades down to 0.099.
    let step = reqwest::Client::new()
        .post(format!("{url}/sim/step"))
        .send()
        .await
        .unwrap();
    assert!(step.status().is_success());
    let order = &client.query_orders(&[ack.txid]).await.unwrap()[0];
    assert_eq!(order.vol_exec, dec!(100));
    let _ = std::fs::remove_file(&csv);
}
