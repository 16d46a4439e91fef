//! The fault-injection suite: each scenario runs the real ledger, trader
//! (self-healing stage D, the Kraken client) and Kraken simulator on
//! loopback, injects one kind of fault again and again at seeded random
//! moments while the market moves, then freezes the market and counts what
//! the checker finds. The counts are the product's reliability figures:
//! every line must read zero lost, duplicated, duplicate orders and naked.
//!
//! Long counts are split into rounds of at most [`ROUND`] faults, each on a
//! fresh rig: the market must be frozen before the simulated clock runs
//! more than a day ahead of the wall clock (the ledger refuses later
//! times), which bounds how long one rig may trade.

pub mod check;
pub mod rig;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use check::Counts;
use rig::{Rig, RigError};

/// Most faults injected into one rig.
pub const ROUND: u32 = 5;
/// Milliseconds between two market steps (one 60 s candle each).
const STEP_MS: u64 = 80;

/// A fault the simulator injects into `AddOrder`, by its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeFault {
    /// Accepted, response lost (the client times out).
    LostResponse,
    /// HTTP 502 with an HTML body, not processed.
    Http5xx,
    /// `EOrder:Rate limit exceeded`, not processed.
    RateLimited,
    /// `EService:Unavailable`, not processed.
    ServiceUnavailable,
    /// `EService:Busy` now, accepted seconds later (stale lookup).
    DelayedAccept,
}

impl ExchangeFault {
    /// Every kind, in report order.
    pub const ALL: [Self; 5] = [
        Self::LostResponse,
        Self::Http5xx,
        Self::RateLimited,
        Self::ServiceUnavailable,
        Self::DelayedAccept,
    ];

    /// The simulator's name for it (`POST /sim/faults`).
    pub fn wire(self) -> &'static str {
        match self {
            Self::LostResponse => "lost_response",
            Self::Http5xx => "http5xx_html",
            Self::RateLimited => "rate_limited",
            Self::ServiceUnavailable => "service_unavailable",
            Self::DelayedAccept => "delayed_accept",
        }
    }
}

/// One scenario of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// SIGKILL the ledger under load, restart it on the same database.
    LedgerKill,
    /// SIGKILL the trader under load, restart it on the same store.
    TraderKill,
    /// A fault of the exchange on order placement.
    Exchange(ExchangeFault),
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LedgerKill => f.write_str("ledger-kill"),
            Self::TraderKill => f.write_str("trader-kill"),
            Self::Exchange(e) => write!(f, "exchange-{}", e.wire()),
        }
    }
}

/// Every scenario with how many faults it injects.
pub fn plan(long: bool) -> Vec<(Scenario, u32)> {
    let (ledger, trader, exchange) = if long { (20, 10, 50) } else { (3, 3, 3) };
    let mut p = vec![
        (Scenario::LedgerKill, ledger),
        (Scenario::TraderKill, trader),
    ];
    p.extend(
        ExchangeFault::ALL
            .iter()
            .map(|e| (Scenario::Exchange(*e), exchange)),
    );
    p
}

/// The counted outcome of one scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Which scenario.
    pub scenario: String,
    /// Faults that took effect.
    pub injected: u32,
    /// Faults after which the system traded on.
    pub survived: u32,
    /// What the checker counted.
    pub counts: Counts,
}

impl Summary {
    /// True when the scenario found nothing wrong.
    pub fn clean(&self) -> bool {
        self.counts.clean() && self.survived == self.injected
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        write!(
            f,
            "{}, {}, {}, {}, {}, {}, {}",
            self.scenario,
            self.injected,
            self.survived,
            c.lost,
            c.duplicated,
            c.duplicate_orders,
            c.naked
        )
    }
}

/// Header of the summary lines.
pub const HEADER: &str = "scenario, injected, survived, lost, duplicated, duplicate_orders, naked";

/// A small seeded generator (SplitMix64): the same seed gives the same
/// fault moments, so a failing run can be replayed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration between `lo_ms` and `hi_ms` milliseconds.
    pub fn millis(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        Duration::from_millis(lo_ms + self.next_u64() % (hi_ms - lo_ms + 1))
    }
}

/// Runs `scenario` with `faults` faults in rounds; `keep` keeps every
/// round's directory (databases, logs), otherwise only a failing round's.
pub async fn run_scenario(scenario: Scenario, faults: u32, seed: u64, keep: bool) -> Summary {
    let mut rng = Rng::new(seed);
    let mut summary = Summary {
        scenario: scenario.to_string(),
        ..Summary::default()
    };
    let mut left = faults;
    while left > 0 {
        let n = left.min(ROUND);
        left -= n;
        let tmp = tempfile::Builder::new()
            .prefix(&format!("healgrid-{scenario}-"))
            .tempdir()
            .expect("a temporary directory");
        let rig = Rig::start(tmp.path(), rng.next_u64() % 1000, STEP_MS).await;
        let (injected, survived, outcome) = round(rig, scenario, n, &mut rng).await;
        summary.injected += injected;
        summary.survived += survived;
        let counts = outcome.unwrap_or_else(|e| Counts {
            details: vec![format!("run failed: {e}")],
            ..Counts::default()
        });
        let failed = !counts.clean() || survived < injected;
        if failed || keep {
            let kept = tmp.keep();
            eprintln!("{scenario}: files kept in {}", kept.display());
        }
        eprintln!(
            "{scenario}: round of {n}: {injected} injected, {} fills checked",
            counts.fills_checked
        );
        for d in &counts.details {
            eprintln!("{scenario}: {d}");
        }
        summary.counts.add(counts);
    }
    summary
}

/// One rig: start trading, inject `n` faults, audit. Returns (injected,
/// survived, the checker's counts or why the rig failed).
async fn round(
    mut rig: Rig,
    scenario: Scenario,
    n: u32,
    rng: &mut Rng,
) -> (u32, u32, Result<Counts, RigError>) {
    rig.start_trader().await;
    if let Err(e) = rig.wait_trading(1, 60).await {
        return (0, 0, Err(e));
    }
    let (mut injected, mut survived) = (0, 0);
    for _ in 0..n {
        match inject_one(&mut rig, scenario, rng).await {
            Ok(false) => {}
            Ok(true) => {
                injected += 1;
                if rig.wait_trading(1, 60).await.is_ok() {
                    survived += 1;
                }
            }
            Err(e) => return (injected, survived, Err(e)),
        }
    }
    if let Err(e) = rig.wait_trading(2, 60).await {
        return (injected, survived, Err(e));
    }
    (injected, survived, rig.audit().await)
}

/// Injects one fault at a random moment; false when it never took effect
/// (an exchange fault the trader never ran into).
async fn inject_one(rig: &mut Rig, scenario: Scenario, rng: &mut Rng) -> Result<bool, RigError> {
    match scenario {
        Scenario::LedgerKill => {
            tokio::time::sleep(rng.millis(500, 5000)).await;
            rig.kill_ledger();
            tokio::time::sleep(rng.millis(200, 3000)).await;
            rig.start_ledger().await;
            Ok(true)
        }
        Scenario::TraderKill => {
            tokio::time::sleep(rng.millis(200, 6000)).await;
            rig.kill_trader();
            rig.start_trader().await;
            Ok(true)
        }
        Scenario::Exchange(fault) => {
            tokio::time::sleep(rng.millis(500, 3000)).await;
            rig.inject("AddOrder", fault.wire(), 1).await?;
            let consumed = async {
                while rig.pending_faults().await? > 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok::<_, RigError>(())
            };
            match tokio::time::timeout(Duration::from_secs(45), consumed).await {
                Ok(r) => r.map(|()| true),
                // No placement in time: not counted (should it still hit
                // a later placement, that one goes uncounted).
                Err(_) => Ok(false),
            }
        }
    }
}

/// Runs the whole plan, `jobs` scenarios at a time (each on its own
/// processes and ports), printing each summary line as its scenario ends;
/// returns them in plan order. Seeds derive from `seed`, so the fault
/// moments are reproducible.
pub async fn run_suite(
    long: bool,
    seed: u64,
    only: Option<&str>,
    keep: bool,
    jobs: usize,
) -> Vec<Summary> {
    let limit = Arc::new(Semaphore::new(jobs.max(1)));
    let mut set = JoinSet::new();
    for (i, (scenario, faults)) in plan(long).into_iter().enumerate() {
        if only.is_some_and(|o| !scenario.to_string().contains(o)) {
            continue;
        }
        let limit = Arc::clone(&limit);
        let seed = seed.wrapping_add(i as u64);
        set.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore open");
            let s = run_scenario(scenario, faults, seed, keep).await;
            println!("{s}");
            (i, s)
        });
    }
    let mut out: Vec<(usize, Summary)> = set.join_all().await.into_iter().collect();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, s)| s).collect()
}
