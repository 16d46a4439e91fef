//! The trader's settings: arbitrary `KEY=VALUE` lines (one per line; a key
//! is an environment variable name such as `SLOTS` or a flag name such as
//! `slots`) become the `run` command line and go through the validation the
//! process runs at start-up, then into every configuration derived from it.
//! Any input must end in a clear error or clamped settings, never a panic.
#![no_main]

use clap::{CommandFactory, Parser};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use trader_service::pair::PairSpec;
use trader_service::service::RunArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
}

/// The flag of an environment variable name, or the key itself as a flag.
fn flag(cmd: &clap::Command, key: &str) -> String {
    cmd.get_arguments()
        .find(|a| a.get_env().is_some_and(|e| e == key))
        .and_then(|a| a.get_long())
        .map_or_else(|| format!("--{key}"), |long| format!("--{long}"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cmd = Cli::command();
    let mut args = vec!["trader".to_owned()];
    for line in text.lines() {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        args.push(format!("{}={value}", flag(&cmd, key)));
    }
    let Ok(cli) = Cli::try_parse_from(args) else {
        return;
    };
    let Ok(plan) = cli.run.plan() else {
        return;
    };
    let fee = Decimal::new(8, 1);
    let _ = plan.healing.churner_config(fee);
    let _ = plan
        .healing
        .reprice_config(fee, plan.trading.poll_interval_sec);
    let _ = plan.healing.profile();
    let pair = PairSpec {
        symbol: plan.trading.pair.clone(),
        price_decimals: 7,
        lot_decimals: 8,
        ordermin: Decimal::new(50, 0),
        costmin: Decimal::new(5, 1),
    };
    let _ = plan.trading.engine_config(&plan.healing, pair);
});
