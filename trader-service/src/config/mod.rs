//! Trader configuration: command-line flags and environment variables (flags
//! win), with every default of SPEC §10 in `--help`.
//!
//! Two kinds of bad value are told apart on purpose:
//! - nonsense that cannot be traded safely (zero slots, a negative order size,
//!   an unparsable URL, an empty pair) is a [`ConfigError`]: the process says
//!   what is wrong and exits non-zero before touching the exchange;
//! - a tunable outside its safe range (a 2 s poll interval, a band threshold
//!   below 60 s) is clamped to the nearest safe value and reported as a
//!   [`ConfigWarning`], so a typo never takes a running bot down.
//!
//! Feature flags come only from here (and explicit operator overrides at run
//! time), never from persisted state.

mod env;
mod healing;
mod stage;
mod trading;
mod validation;

pub use crate::engine::{BandThresholds, ConfigWarning, OrderSize};
pub use env::{AutoRepriceBand, HealingArgs, TradingArgs};
pub use healing::HealingSettings;
pub use stage::RolloutStage;
pub use trading::TradingSettings;
pub use validation::{ConfigError, check_http_url};

/// The flags as `trader-service run` flattens them, for the tests of every
/// part of the configuration.
#[cfg(test)]
mod fixture {
    use clap::Parser;

    use super::{HealingArgs, TradingArgs};

    #[derive(Parser)]
    pub(super) struct Cli {
        #[command(flatten)]
        pub(super) trading: TradingArgs,
        #[command(flatten)]
        pub(super) healing: HealingArgs,
    }

    pub(super) fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("trader").chain(args.iter().copied())).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::parse;
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn defaults_match_the_spec() {
        let cli = parse(&[]);
        let (t, tw) = cli.trading.resolve().unwrap();
        let (h, hw) = cli.healing.resolve(&t).unwrap();
        assert!(tw.is_empty() && hw.is_empty());
        assert_eq!(t.slots, 3);
        assert_eq!(t.order_size, OrderSize::PairMinimum);
        assert_eq!(t.grid_spacing_pct, dec!(0.5));
        assert_eq!(t.entry_pct, dec!(0.2));
        assert_eq!(t.poll_interval_sec, 30);
        assert_eq!(
            h.bands,
            BandThresholds {
                fresh_sec: 21_600,
                aging_sec: 86_400,
                stale_sec: 259_200,
                stuck_sec: 604_800
            }
        );
        assert_eq!(h.churner_order_size, OrderSize::PairMinimum);
        assert_eq!(h.stage(), RolloutStage::A);
        assert_eq!(h.churner_profit_pct(dec!(0.50)).0, dec!(0.60));
    }

    #[test]
    fn nonsense_is_an_error_naming_the_setting() {
        for (args, name) in [
            (&["--slots", "0"][..], "SLOTS"),
            (&["--order-size-usd=-1"][..], "ORDER_SIZE_USD"),
            (&["--pair", ""][..], "PAIR"),
            (&["--pair", "XDG/USD"][..], "PAIR"),
        ] {
            let err = parse(args).trading.resolve().unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
        let cli = parse(&["--churner-reserve-usd=-5"]);
        let t = cli.trading.resolve().unwrap().0;
        assert!(
            cli.healing
                .resolve(&t)
                .unwrap_err()
                .to_string()
                .starts_with("CHURNER_RESERVE_USD")
        );
    }

    #[test]
    fn tunables_are_clamped_with_warnings() {
        let cli = parse(&[
            "--poll-interval-sec",
            "1",
            "--age-band-fresh-sec",
            "10",
            "--age-band-aging-sec",
            "10",
            "--churner-timeout-sec",
            "5",
            "--churner-exit-timeout-sec",
            "30",
            "--position-journal-local-limit",
            "3",
            "--churner-hit-window",
            "0",
            "--churner-min-hit-pct",
            "150",
            "--churner-cooloff-sec",
            "5",
        ]);
        let (t, tw) = cli.trading.resolve().unwrap();
        assert_eq!(t.poll_interval_sec, 5);
        assert_eq!(tw.len(), 1);
        let (h, hw) = cli.healing.resolve(&t).unwrap();
        assert_eq!(h.bands.fresh_sec, 60);
        assert_eq!(h.bands.aging_sec, 61);
        assert_eq!(h.churner_timeout_sec, 60);
        assert_eq!(h.churner_exit_timeout_sec, 60);
        assert_eq!(h.journal_local_limit, 50);
        assert_eq!(
            h.churner_hit_gate,
            crate::healing::HitGate {
                window: 1,
                min_hit_pct: 100,
                cooloff_sec: 600,
            }
        );
        assert_eq!(h.churner_config(dec!(0.5)).hit_gate, h.churner_hit_gate);
        assert_eq!(hw.len(), 8, "{hw:?}");
    }
}
