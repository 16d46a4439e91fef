//! `fault-suite`: the fault-injection suite with counted results, over the
//! real ledger, trader and Kraken simulator on loopback.
//!
//! ```text
//! fault-suite [--long] [--release] [--seed N] [--only NAME] [--keep] [--jobs N]
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
//! runs that many scenarios at once (default 1).

use std::process::ExitCode;

use healgrid_tests::fault::{HEADER, run_suite};

fn usage() -> ExitCode {
    eprintln!(
        "usage: fault-suite [--long] [--release] [--seed N] [--only NAME] [--keep] [--jobs N]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let (mut long, mut seed, mut only, mut keep, mut jobs) = (false, 1_u64, None, false, 1);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--long" => long = true,
            "--release" => healgrid_tests::process::use_release_binaries(),
            "--keep" => keep = true,
            "--seed" => match args.next().and_then(|s| s.parse().ok()) {
                Some(s) => seed = s,
                None => return usage(),
            },
            "--jobs" => match args.next().and_then(|s| s.parse().ok()) {
                Some(j) => jobs = j,
                None => return usage(),
            },
            "--only" => match args.next() {
                Some(o) => only = Some(o),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    println!("{HEADER}");
    let summaries = run_suite(long, seed, only.as_deref(), keep, jobs).await;
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
