//! The trader's Prometheus metrics (served on `--metrics-listen`): loops
//! and their duration, fills, reprices by kind, churner cycles, outbox
//! depth, exchange errors by call and kind, and the private-call budget.
//!
//! Counts the runtime already keeps (its [`RunStats`], the reprice and
//! churner counters of the status snapshot) are mirrored after each loop
//! rather than counted a second time, so the two can never disagree.

use std::sync::Arc;
use std::time::Duration;

use healgrid_metrics::{Counter, Gauge, Histogram, Registry};

use crate::exchange::ErrorKind;
use crate::runtime::{RunStats, StatusSnapshot};

/// Upper bounds of the loop-duration buckets, seconds: a paper loop takes
/// milliseconds, a Kraken loop with a full call budget several seconds.
const LOOP_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every metric of one trader process.
#[derive(Debug)]
pub struct TraderMetrics {
    registry: Arc<Registry>,
    loops: Arc<Counter>,
    loop_duration: Arc<Histogram>,
    fills: Arc<Counter>,
    reprices: Arc<Counter>,
    churner_cycles: Arc<Counter>,
    outbox_depth: Arc<Gauge>,
    outbox_parked: Arc<Gauge>,
    exchange_errors: Arc<Counter>,
    budget_used: Arc<Gauge>,
    budget_limit: Arc<Gauge>,
    budget_deferred: Arc<Gauge>,
}

impl TraderMetrics {
    /// Fresh metrics on their own registry.
    #[must_use]
    pub fn new() -> Arc<Self> {
        let r = Arc::new(Registry::default());
        Arc::new(Self {
            loops: r.register(Counter::new(
                "trader_loops_total",
                "Trading loops run.",
                &[],
            )),
            loop_duration: r.register(Histogram::new(
                "trader_loop_duration_seconds",
                "Wall-clock duration of one trading loop.",
                &[],
                LOOP_BUCKETS,
            )),
            fills: r.register(Counter::new(
                "trader_fills_total",
                "Executions fed to the engine.",
                &[],
            )),
            reprices: r.register(Counter::new(
                "trader_reprices_total",
                "Exit reprices that took effect, by kind.",
                &["kind"],
            )),
            churner_cycles: r.register(Counter::new(
                "trader_churner_cycles_total",
                "Churner round trips completed.",
                &[],
            )),
            outbox_depth: r.register(Gauge::new(
                "trader_outbox_depth",
                "Ledger writes not yet acknowledged.",
                &[],
            )),
            outbox_parked: r.register(Gauge::new(
                "trader_outbox_parked",
                "Ledger writes the ledger refused for good (need an operator).",
                &[],
            )),
            exchange_errors: r.register(Counter::new(
                "trader_exchange_errors_total",
                "Failed exchange calls, by call and error kind.",
                &["call", "kind"],
            )),
            budget_used: r.register(Gauge::new(
                "trader_call_budget_used",
                "Private exchange calls made in the last loop.",
                &[],
            )),
            budget_limit: r.register(Gauge::new(
                "trader_call_budget_limit",
                "Private exchange calls allowed per loop.",
                &[],
            )),
            budget_deferred: r.register(Gauge::new(
                "trader_call_budget_deferred",
                "Placements and cancels the last loop left for the next for want of budget.",
                &[],
            )),
            registry: r,
        })
    }

    /// The registry to serve.
    #[must_use]
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// One loop took `duration`; `stats` are the runtime's totals after it.
    pub fn record_loop(&self, duration: Duration, stats: &RunStats) {
        self.loop_duration.observe(&[], duration.as_secs_f64());
        self.loops.set_total(&[], stats.loops);
        self.fills.set_total(&[], stats.fills);
    }

    /// Mirrors the snapshot published after a loop.
    pub fn record_status(&self, snap: &StatusSnapshot) {
        let r = &snap.healing.reprices;
        for (kind, n) in [
            ("tighten", r.tighten),
            ("subsidized_full", r.subsidized_full),
            ("subsidized_partial", r.subsidized_partial),
            ("loss_funded", r.loss_funded),
            ("operator", r.operator),
        ] {
            self.reprices.set_total(&[kind], n);
        }
        self.churner_cycles
            .set_total(&[], snap.healing.churner.stats.cycles);
        self.outbox_depth.set(&[], snap.outbox.depth as f64);
        self.outbox_parked.set(&[], snap.outbox.parked as f64);
        self.budget_used.set(&[], f64::from(snap.budget.used));
        self.budget_limit.set(&[], f64::from(snap.budget.limit));
        self.budget_deferred
            .set(&[], f64::from(snap.budget.deferred));
    }

    /// An exchange call (`add_order`, `ticker`, ...) failed with `kind`.
    pub fn exchange_error(&self, call: &str, kind: ErrorKind) {
        self.exchange_errors.inc(&[call, &format!("{kind:?}")]);
    }
}
