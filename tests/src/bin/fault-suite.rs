//! `fault-suite`: the fault-injection suite with counted results, over the
//! real ledger, trader and Kraken simulator on loopback.
//!
//! ```text
//! fault-suite [--long] [--release] [--seed N] [--only NAME] [--keep] [--jobs N]
//!             [--candles FILE]
//! ```
//!
//! Prints one line per scenario (`scenario, injected, survived, lost,
//! duplicated, duplicate_orders, naked`; `scenario, skipped` when it needs
//! PostgreSQL and none is here) and exits 1 on any violation. The
//! PostgreSQL scenarios read `DATABASE_URL` and Debian's server programs.
//! The default counts are short (CI); `--long` runs the full counts
//! (ledger kills 20 at random and 10 in a group commit, replica kills on
//! PostgreSQL 20, PostgreSQL restarts
//! 10, trader kills 10 at random and 10 or 20 aimed at each crash point
//! target, 50 per exchange fault, 10 per clock fault). `--release` runs
//! release builds of the services (built first), as an operator runs
//! them; the default is the debug builds the tests use. The
//! clock-step-back scenario needs Debian's libfaketime (`apt-get install
//! faketime`) and skips without it unless CI=true. `--only`
//! runs the scenarios whose name contains NAME; `--keep` keeps every
//! run's databases and logs (a failing run's are always kept); `--jobs`
//! runs that many scenarios at once (default 1). `--candles FILE` (or
//! `HEALGRID_FAULT_CANDLES`) replays real candles from FILE
//! (`time,open,high,low,close,volume`), each rig a seeded 23-hour window
//! of it; without one, the simulator's seeded synthetic market.

use std::process::ExitCode;

use healgrid_tests::fault::market::CandleFile;
use healgrid_tests::fault::{HEADER, Market, SuiteOptions, run_suite};

fn usage() -> ExitCode {
    eprintln!(
        "usage: fault-suite [--long] [--release] [--seed N] [--only NAME] [--keep] [--jobs N] \
         [--candles FILE]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let market = match Market::from_env() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("fault-suite: {e}");
            return ExitCode::from(2);
        }
    };
    let mut o = SuiteOptions::short(market);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--long" => o.long = true,
            "--release" => healgrid_tests::process::use_release_binaries(),
            "--keep" => o.keep = true,
            "--seed" => match args.next().and_then(|s| s.parse().ok()) {
                Some(s) => o.seed = s,
                None => return usage(),
            },
            "--jobs" => match args.next().and_then(|s| s.parse().ok()) {
                Some(j) => o.jobs = j,
                None => return usage(),
            },
            "--only" => match args.next() {
                Some(name) => o.only = Some(name),
                None => return usage(),
            },
            "--candles" => match args.next().map(|p| CandleFile::open(p.as_ref())) {
                Some(Ok(file)) => o.market = Market::Replay(file),
                Some(Err(e)) => {
                    eprintln!("fault-suite: --candles: {e}");
                    return ExitCode::from(2);
                }
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    eprintln!("market: {}", o.market);
    println!("{HEADER}");
    let summaries = run_suite(o).await;
    if summaries.is_empty() {
        eprintln!("no scenario matched");
        return ExitCode::from(2);
    }
    if summaries.iter().all(|s| s.clean()) {
        ExitCode::SUCCESS
    } else {
        eprintln!("fault suite: violations found (see above)");
        ExitCode::FAILURE
    }
}
