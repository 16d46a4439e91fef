//! The `trader-service backtest` command as a user runs it: the binary, a
//! CSV of candles, the JSON report and what it says on stderr.

#![allow(missing_docs)]

use std::process::Command;

/// Proves: a backtest whose order size cannot meet the pair minimum says so
/// on stderr and counts the waits in its report, and `--compare` writes one
/// report per stage; an unknown stage is a clear CLI error.
#[test]
fn backtest_reports_below_minimum_sizes_and_compares_stages() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("c.csv");
    let mut text = String::from("time,open,high,low,close,volume\n");
    for i in 0..300i64 {
        let p = 0.1 + 0.002 * ((i as f64) / 7.0).sin();
        text += &format!(
            "{},{p:.6},{:.6},{:.6},{p:.6},100\n",
            1_700_000_000 + 60 * i,
            p * 1.001,
            p * 0.999
        );
    }
    std::fs::write(&csv, text).unwrap();
    let out = dir.path().join("r.json");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_trader-service"))
            .args(["backtest", "--no-progress", "--candles"])
            .arg(&csv)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .env_clear()
            .output()
            .unwrap()
    };
    let small = run(&["--order-size-usd", "2"]);
    assert!(small.status.success());
    let stderr = String::from_utf8_lossy(&small.stderr);
    assert!(stderr.contains("placed no order"), "{stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["placements"], 0);
    assert!(r["entries_below_minimum"].as_u64().unwrap() > 0, "{r}");

    let cmp = run(&["--compare", "A,D"]);
    assert!(
        cmp.status.success(),
        "{}",
        String::from_utf8_lossy(&cmp.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(
        r["A"]["placements"].as_u64().unwrap() > 0,
        "the default size trades"
    );
    assert_eq!(r["D"]["stage"], "D");
    assert!(String::from_utf8_lossy(&cmp.stderr).contains("stuck_capital_hours"));

    let bad = run(&["--stage", "Z"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--stage"));
}

/// Proves: at stage E (`SUBSIDY_WRITE_OFF_AUTO`) the write-off policy
/// closes positions a fall left far behind and the report counts them,
/// with their realized loss: more write-offs than the legs of released
/// locked pairs, so the policy itself acted. Stage A closes none.
#[test]
fn stage_e_reports_its_auto_write_offs() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("fall.csv");
    // A day of range, a 25 % fall over three days, a month low.
    let mut text = String::from("time,open,high,low,close,volume\n");
    for i in 0..34 * 1440_i64 {
        let x = i as f64;
        let p = match i {
            0..1440 => 0.1 + 0.0008 * (x / 37.0).sin(),
            1440..5760 => 0.1 * (1.0 - 0.25 * (x - 1440.0) / 4320.0) + 0.0005 * (x / 23.0).sin(),
            _ => 0.075 + 0.0006 * (x / 41.0).sin(),
        };
        text += &format!(
            "{},{p:.6},{:.6},{:.6},{p:.6},100\n",
            1_700_000_000 + 60 * i,
            p * 1.0008,
            p * 0.9992
        );
    }
    std::fs::write(&csv, text).unwrap();
    let report = |stage: &str| -> serde_json::Value {
        let out = dir.path().join(format!("{stage}.json"));
        let run = Command::new(env!("CARGO_BIN_EXE_trader-service"))
            .args(["backtest", "--no-progress", "--stage", stage, "--candles"])
            .arg(&csv)
            .arg("--out")
            .arg(&out)
            .env_clear()
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
    };
    let e = report("E");
    let offs = e["auto_write_offs"].as_u64().unwrap();
    let pairs = e["locked_pairs_released"].as_u64().unwrap();
    assert!(offs > 2 * pairs, "the policy wrote off positions: {e}");
    let loss: f64 = e["auto_write_off_loss_usd"].as_str().map_or_else(
        || e["auto_write_off_loss_usd"].as_f64().unwrap(),
        |s| s.parse().unwrap(),
    );
    assert!(loss > 0.0, "{e}");
    let a = report("A");
    assert_eq!(a["auto_write_offs"], 0);
}

/// Proves: `synth` writes a reproducible candle CSV the backtest replays
/// (same seed, same bytes; another seed, another path), and refuses bad
/// arguments with a clear message and a failing exit code.
#[test]
fn synth_writes_a_reproducible_market_the_backtest_replays() {
    let dir = tempfile::tempdir().unwrap();
    let synth = |name: &str, extra: &[&str]| {
        let path = dir.path().join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_trader-service"))
            .args(["synth", "--candles", "2000", "--out"])
            .arg(&path)
            .args(extra)
            .env_clear()
            .output()
            .unwrap();
        (path, out)
    };
    let (a, out) = synth("a.csv", &["--seed", "5"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrote 2000 candles"));
    let (b, _) = synth("b.csv", &["--seed", "5"]);
    let (c, _) = synth("c.csv", &["--seed", "6"]);
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text.lines().count(), 2001, "header plus 2000 rows");
    assert_eq!(text, std::fs::read_to_string(&b).unwrap());
    assert_ne!(text, std::fs::read_to_string(&c).unwrap());

    let report = dir.path().join("r.json");
    let run = Command::new(env!("CARGO_BIN_EXE_trader-service"))
        .args(["backtest", "--no-progress", "--candles"])
        .arg(&a)
        .arg("--out")
        .arg(&report)
        .env_clear()
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["candles"], 2000);

    let (_, bad) = synth("d.csv", &["--start-price", "0"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--start-price must be positive"));
}
