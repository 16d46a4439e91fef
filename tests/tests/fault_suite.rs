//! The short fault-injection suite (the CI counts): every scenario must
//! inject its faults, survive each, and leave nothing lost, duplicated,
//! placed twice or naked. `fault-suite --long` runs the full counts. Four
//! scenarios run at a time (each mostly waits on the trader's 5 s loop, so
//! the eighteen fit in about five minutes on two cores). The
//! PostgreSQL scenarios skip with a notice where PostgreSQL is missing,
//! unless CI=true or HEALGRID_REQUIRE_POSTGRES=1 (then they fail); the
//! clock-step-back scenario likewise where libfaketime is missing, unless
//! CI=true or HEALGRID_REQUIRE_FAKETIME=1. The simulators replay real
//! candles from the file `HEALGRID_FAULT_CANDLES` names (CI names the real
//! DOGE/USDT history), else the synthetic market.

use healgrid_tests::fault::{HEADER, Market, SuiteOptions, run_suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_fault_suite_counts_no_violation() {
    let market = Market::from_env().expect("HEALGRID_FAULT_CANDLES names a usable file");
    eprintln!("market: {market}");
    eprintln!("{HEADER}");
    let summaries = run_suite(SuiteOptions {
        jobs: 4,
        ..SuiteOptions::short(market)
    })
    .await;
    let lines: Vec<String> = summaries.iter().map(ToString::to_string).collect();
    for s in &summaries {
        if s.skipped {
            continue;
        }
        assert!(s.injected > 0, "nothing injected: {s}");
        assert!(
            s.clean(),
            "violations (details above):\n{HEADER}\n{}",
            lines.join("\n")
        );
    }
}
