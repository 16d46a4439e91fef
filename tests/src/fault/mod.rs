//! The fault-injection suite: each scenario runs the real ledger, trader
//! (self-healing stage D, the Kraken client) and Kraken simulator on
//! loopback, injects one kind of fault again and again at seeded random
//! moments while the market moves, then freezes the market and counts what
//! the checker finds. The counts are the product's reliability figures:
//! every line must read zero lost, duplicated, duplicate orders and naked.
//!
//! Long counts are split into rounds of at most [`ROUND`] faults, each on a
//! fresh rig and a fresh ledger database: the market must be frozen before
//! the simulated clock runs more than a day ahead of the wall clock (the
//! ledger refuses later times), which bounds how long one rig may trade.
//!
//! The ledger runs on SQLite, except in the PostgreSQL scenarios: two
//! replicas on one schema of the shared server (`DATABASE_URL`), and one
//! ledger on a private cluster whose server the scenario restarts. Those
//! are skipped with a notice when PostgreSQL is missing, unless CI=true or
//! HEALGRID_REQUIRE_POSTGRES=1 (see [`crate::pg::skip`]). The trader of
//! the clock-step-back scenario runs on a wall clock the suite steps back
//! (libfaketime, see [`faketime`]); it is skipped the same way when the
//! library is missing, unless CI=true or HEALGRID_REQUIRE_FAKETIME=1.

pub mod backend;
pub mod check;
pub mod crash;
pub mod faketime;
pub mod injections;
pub mod market;
pub mod replicas;
pub mod rig;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::pg::cluster::StopMode;
use backend::{Backend, BackendKind};
use check::Counts;
use crash::{CrashTarget, FAST_BANDS, inject_crash, inject_ledger_crash};
use faketime::FakeClock;
use injections::{CallFault, ClockFault, inject_call, inject_clock};
pub use market::Market;
use rig::{Rig, RigError};

/// Most faults injected into one rig.
pub const ROUND: u32 = 5;
/// Milliseconds between two market steps per simulated minute (one 60 s
/// candle each; a 5-minute candle gets five times as long): 375x, so a
/// day of market lasts 3.7 minutes, longer than a round of five
/// ambiguous placements that each wait a minute of real time to resolve
/// (the ledger refuses times more than a day ahead, and a replayed window
/// freezes after 23 hours).
const STEP_MS: u64 = 160;
/// Aimed trader kills: most per rig, and the market's step. Each waits up
/// to 45 s for its point and restarts the trader twice, so the market
/// moves slower still (250x) and a round stays within the day the ledger
/// lets the simulated clock run ahead.
const CRASH_ROUND: u32 = 2;
const CRASH_STEP_MS: u64 = 240;

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
    /// The ledger SIGKILLs itself at a batch crash point (written but not
    /// committed, committed but not answered), restarted on the same
    /// database.
    LedgerCrash,
    /// SIGKILL one of two ledger replicas sharing a PostgreSQL schema (the
    /// trader writes to both) under load, restart it.
    LedgerKillPg2,
    /// Restart the ledger's PostgreSQL server under load, the ledger and
    /// the trader running on: by turns `pg_ctl restart -m immediate`,
    /// `-m fast`, and an immediate stop held down for 2 to 10 s.
    PostgresRestart,
    /// SIGKILL the trader under load, restart it on the same store.
    TraderKill,
    /// The trader SIGKILLs itself at an armed crash point (see
    /// [`crash`]), restarted on the same store.
    TraderCrash(CrashTarget),
    /// A fault of the exchange on order placement.
    Exchange(ExchangeFault),
    /// A fault of the exchange on other calls, or on its fills.
    Call(CallFault),
    /// A fault of time: a slow exchange, a wall clock stepping back.
    Clock(ClockFault),
}

impl Scenario {
    /// The database server the ledger runs on.
    fn backend(self) -> BackendKind {
        match self {
            Self::LedgerKillPg2 => BackendKind::SharedPostgres,
            Self::PostgresRestart => BackendKind::PrivateCluster,
            Self::LedgerKill
            | Self::LedgerCrash
            | Self::TraderKill
            | Self::TraderCrash(_)
            | Self::Exchange(_)
            | Self::Call(_)
            | Self::Clock(_) => BackendKind::Sqlite,
        }
    }

    /// Flags the simulator needs for it.
    fn sim_args(self) -> &'static [&'static str] {
        match self {
            Self::Call(f) => f.sim_args(),
            _ => &[],
        }
    }

    /// Flags the trader needs for it: aimed kills need exits that age
    /// within a round.
    fn trader_args(self) -> Vec<String> {
        match self {
            Self::TraderCrash(_) => FAST_BANDS.iter().map(|a| (*a).to_owned()).collect(),
            _ => Vec::new(),
        }
    }

    /// Most faults of it injected into one rig.
    fn round_size(self) -> u32 {
        match self {
            Self::TraderCrash(_) => CRASH_ROUND,
            _ => ROUND,
        }
    }

    /// Milliseconds between two market steps of its rigs.
    fn step_ms(self) -> u64 {
        match self {
            Self::TraderCrash(_) => CRASH_STEP_MS,
            _ => STEP_MS,
        }
    }

    /// Whether the trader runs on a wall clock the scenario steps.
    fn fake_clock(self) -> bool {
        self == Self::Clock(ClockFault::StepBack)
    }

    /// How many ledger replicas the trader writes to.
    fn replicas(self) -> usize {
        if self == Self::LedgerKillPg2 { 2 } else { 1 }
    }

    /// Whether the fault takes the ledger (or its database) out of reach:
    /// then surviving it also means the trader's outbox drains again.
    fn hits_ledger(self) -> bool {
        matches!(
            self,
            Self::LedgerKill | Self::LedgerCrash | Self::LedgerKillPg2 | Self::PostgresRestart
        )
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LedgerKill => f.write_str("ledger-kill"),
            Self::LedgerCrash => f.write_str("ledger-kill-append"),
            Self::LedgerKillPg2 => f.write_str("ledger-kill-pg2"),
            Self::PostgresRestart => f.write_str("postgres-restart"),
            Self::TraderKill => f.write_str("trader-kill"),
            Self::TraderCrash(t) => write!(f, "trader-kill-{}", t.name()),
            Self::Exchange(e) => write!(f, "exchange-{}", e.wire()),
            Self::Call(e) => write!(f, "exchange-{}", e.wire()),
            Self::Clock(c) => write!(f, "clock-{}", c.name()),
        }
    }
}

/// Every scenario with how many faults it injects.
pub fn plan(long: bool) -> Vec<(Scenario, u32)> {
    let (ledger, pg2, pg_restart, trader, exchange, clock) = if long {
        (20, 20, 10, 10, 50, 10)
    } else {
        (3, 3, 3, 3, 3, 3)
    };
    let mut p = vec![
        (Scenario::LedgerKill, ledger),
        (Scenario::LedgerCrash, if long { 10 } else { 2 }),
        (Scenario::LedgerKillPg2, pg2),
        (Scenario::PostgresRestart, pg_restart),
        (Scenario::TraderKill, trader),
    ];
    p.extend(CrashTarget::ALL.map(|t| {
        let n = if long {
            t.long_count(trader)
        } else {
            t.short_count()
        };
        (Scenario::TraderCrash(t), n)
    }));
    p.extend(
        ExchangeFault::ALL
            .iter()
            .map(|e| (Scenario::Exchange(*e), exchange)),
    );
    p.extend(CallFault::ALL.map(|e| (Scenario::Call(e), exchange)));
    p.extend(ClockFault::ALL.map(|c| (Scenario::Clock(c), clock)));
    p
}

/// The counted outcome of one scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Which scenario.
    pub scenario: String,
    /// True when it did not run: what it needs (PostgreSQL) is missing
    /// here, and the environment allows skipping.
    pub skipped: bool,
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
        if self.skipped {
            return write!(f, "{}, skipped", self.scenario);
        }
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

    /// A number between `lo` and `hi` (inclusive).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A duration between `lo_ms` and `hi_ms` milliseconds.
    pub fn millis(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        Duration::from_millis(self.between(lo_ms, hi_ms))
    }

    /// An index below `len` (which must not be zero).
    pub fn index(&mut self, len: usize) -> usize {
        (self.next_u64() % len as u64) as usize
    }
}

/// Runs `scenario` with `faults` faults in rounds; `keep` keeps every
/// round's directory and database (databases, logs), otherwise only a
/// failing round's. Prints how long it took.
///
/// # Panics
/// When PostgreSQL is missing but required (see [`crate::pg::skip`]), or a
/// process of the rig does not come up.
pub async fn run_scenario(
    scenario: Scenario,
    faults: u32,
    seed: u64,
    keep: bool,
    market: &Market,
) -> Summary {
    let started = Instant::now();
    let name = scenario.to_string();
    let mut summary = Summary {
        scenario: name.clone(),
        ..Summary::default()
    };
    let faketime = if scenario.fake_clock() {
        match faketime::library_or_skip(&name) {
            Some(lib) => Some(lib),
            None => {
                summary.skipped = true;
                return summary;
            }
        }
    } else {
        None
    };
    let Some(mut backend) = Backend::prepare(scenario.backend(), &name).await else {
        summary.skipped = true;
        return summary;
    };
    let mut rng = Rng::new(seed);
    let mut left = faults;
    let mut kept = keep;
    while left > 0 {
        let n = left.min(scenario.round_size());
        // The scenario's own count of faults so far: kinds that take turns
        // (the operator steps, the crash points) turn across rounds.
        let first = faults - left;
        left -= n;
        let tmp = tempfile::Builder::new()
            .prefix(&format!("healgrid-{scenario}-"))
            .tempdir()
            .expect("a temporary directory");
        let database = backend.round_database(tmp.path(), &name).await;
        let replicas = scenario.replicas();
        let draw = rng.next_u64();
        let mut sim_args = market.sim_args(draw);
        sim_args.extend(scenario.sim_args().iter().map(|a| (*a).to_owned()));
        let mut rig = Rig::start(
            tmp.path(),
            &database.url,
            replicas,
            draw % 1000,
            market.step_ms(scenario.step_ms()),
            &sim_args,
        )
        .await;
        rig.clock = faketime.clone().map(|lib| FakeClock::new(lib, tmp.path()));
        rig.trader_extra = scenario.trader_args();
        let (injected, survived, outcome) =
            round(rig, scenario, &mut backend, first..first + n, &mut rng).await;
        summary.injected += injected;
        summary.survived += survived;
        let counts = outcome.unwrap_or_else(|e| Counts {
            details: vec![format!("run failed: {e}")],
            ..Counts::default()
        });
        let failed = !counts.clean() || survived < injected;
        if failed || keep {
            let dir = tmp.keep();
            eprintln!("{scenario}: files kept in {}", dir.display());
            database.keep(&name);
            kept = true;
        }
        eprintln!(
            "{scenario}: round of {n}: {injected} injected, {} fills checked, {} entries \
             resting part filled",
            counts.fills_checked, counts.entries_in_flight
        );
        for d in &counts.details {
            eprintln!("{scenario}: {d}");
        }
        summary.counts.add(counts);
    }
    if kept {
        backend.keep(&name);
    }
    eprintln!(
        "{scenario}: {faults} faults in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    summary
}

/// One rig: start trading, inject the scenario's faults numbered `nths`,
/// audit. Returns (injected, survived, the checker's counts or why the rig
/// failed).
async fn round(
    mut rig: Rig,
    scenario: Scenario,
    backend: &mut Backend,
    nths: std::ops::Range<u32>,
    rng: &mut Rng,
) -> (u32, u32, Result<Counts, RigError>) {
    rig.start_trader().await;
    if let Err(e) = rig.wait_trading(1, 60).await {
        return (0, 0, Err(e));
    }
    let (mut injected, mut survived) = (0, 0);
    for nth in nths {
        match inject_one(&mut rig, scenario, backend, nth, rng).await {
            Ok(false) => {}
            Ok(true) => {
                injected += 1;
                let recovered = if scenario.hits_ledger() {
                    rig.wait_delivered(1, 60).await
                } else {
                    rig.wait_trading(1, 60).await
                };
                if recovered.is_ok() {
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

/// Injects the `nth` fault of a round at a random moment; false when it
/// never took effect (an exchange fault the trader never ran into).
async fn inject_one(
    rig: &mut Rig,
    scenario: Scenario,
    backend: &mut Backend,
    nth: u32,
    rng: &mut Rng,
) -> Result<bool, RigError> {
    match scenario {
        Scenario::LedgerKill | Scenario::LedgerKillPg2 => {
            tokio::time::sleep(rng.millis(500, 5000)).await;
            let victim = rng.index(rig.ledgers.len());
            rig.kill_ledger(victim);
            tokio::time::sleep(rng.millis(200, 3000)).await;
            rig.start_ledger(victim).await;
            Ok(true)
        }
        Scenario::LedgerCrash => inject_ledger_crash(rig, nth, rng).await,
        Scenario::PostgresRestart => {
            tokio::time::sleep(rng.millis(500, 5000)).await;
            let cluster = backend
                .cluster()
                .expect("postgres-restart runs on a private cluster");
            match nth % 3 {
                0 => cluster.restart(StopMode::Immediate).await?,
                1 => cluster.restart(StopMode::Fast).await?,
                _ => {
                    // A restart takes a fraction of a second, which the
                    // ledger's pool rides out unseen; down for longer than
                    // the trader's ledger deadline (5 s), writes time out
                    // in flight, some committing behind the timeout, and
                    // are sent again.
                    cluster.stop(StopMode::Immediate).await?;
                    tokio::time::sleep(rng.millis(2000, 10_000)).await;
                    cluster.start().await?;
                }
            }
            Ok(true)
        }
        Scenario::TraderKill => {
            tokio::time::sleep(rng.millis(200, 6000)).await;
            rig.kill_trader();
            rig.start_trader().await;
            Ok(true)
        }
        Scenario::TraderCrash(target) => {
            let tag = rng.next_u64() % 1_000_000;
            inject_crash(rig, target, nth, tag, rng).await
        }
        Scenario::Exchange(fault) => {
            tokio::time::sleep(rng.millis(500, 3000)).await;
            rig.inject("AddOrder", fault.wire(), 1).await?;
            // No placement in time: not counted.
            rig.wait_consumed(45).await
        }
        Scenario::Call(fault) => inject_call(rig, fault, nth, rng).await,
        Scenario::Clock(fault) => inject_clock(rig, fault, nth, rng).await,
    }
}

/// How the suite runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteOptions {
    /// The full counts (`--long`) instead of the short ones.
    pub long: bool,
    /// Every seed derives from it, so the fault moments and the market
    /// windows are reproducible.
    pub seed: u64,
    /// Only the scenarios whose name contains it.
    pub only: Option<String>,
    /// Keep every round's files, not only a failing one's.
    pub keep: bool,
    /// Scenarios run at once.
    pub jobs: usize,
    /// What the simulators play.
    pub market: Market,
}

impl SuiteOptions {
    /// The short counts, seed 1, one scenario at a time, on `market`.
    pub fn short(market: Market) -> Self {
        Self {
            long: false,
            seed: 1,
            only: None,
            keep: false,
            jobs: 1,
            market,
        }
    }
}

/// Runs the whole plan, `jobs` scenarios at a time (each on its own
/// processes and ports), printing each summary line as its scenario ends;
/// returns them in plan order.
pub async fn run_suite(options: SuiteOptions) -> Vec<Summary> {
    let limit = Arc::new(Semaphore::new(options.jobs.max(1)));
    let market = Arc::new(options.market);
    let mut set = JoinSet::new();
    for (i, (scenario, faults)) in plan(options.long).into_iter().enumerate() {
        if options
            .only
            .as_deref()
            .is_some_and(|o| !scenario.to_string().contains(o))
        {
            continue;
        }
        let limit = Arc::clone(&limit);
        let market = Arc::clone(&market);
        let seed = options.seed.wrapping_add(i as u64);
        let keep = options.keep;
        set.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore open");
            let s = run_scenario(scenario, faults, seed, keep, &market).await;
            println!("{s}");
            (i, s)
        });
    }
    let mut out: Vec<(usize, Summary)> = set.join_all().await.into_iter().collect();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, s)| s).collect()
}
