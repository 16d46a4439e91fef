//! One run of the suite: the real simulator, ledger replicas and trader on
//! loopback, a market stepped by the rig (so it can be frozen), and the
//! end-of-run audit that collects the three views for the checker.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use healgrid_proto::ledger::v1::{self as lpb, ledger_service_client::LedgerServiceClient};
use healgrid_proto::trader::v1::{self as pb, trader_service_client::TraderServiceClient};
use tonic::transport::Channel;

use super::check::{self, Counts, StoreEnd, TraderEnd};
use super::faketime::FakeClock;
use super::replicas::Replicas;
use crate::audit::ledger_view;
use crate::http;
use crate::pg::cluster::ClusterError;
use crate::process::{RunArgs, SimProcess, Stepper, TraderProcess};

/// Grid slots the trader runs.
pub const SLOTS: u32 = 3;
/// The trader's bot id.
pub const BOT: &str = "fault-suite";

/// A failure of the rig itself (not of the system under test).
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    /// A wait ran out.
    #[error("timed out after {secs}s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        secs: u64,
    },
    /// A call to one of the services failed.
    #[error("{0}")]
    Call(String),
    /// The private PostgreSQL cluster could not be driven.
    #[error("PostgreSQL cluster: {0}")]
    Cluster(#[from] ClusterError),
}

/// Running processes of one run, plus the market stepper.
pub struct Rig {
    /// Where the databases and logs live.
    pub dir: PathBuf,
    /// The exchange.
    pub sim: SimProcess,
    /// The ledger's replicas.
    pub ledgers: Replicas,
    /// The trader, `None` while killed.
    pub trader: Option<TraderProcess>,
    /// The wall clock the trader runs on, when the scenario steps it;
    /// `None`: the machine's.
    pub clock: Option<FakeClock>,
    /// Flags added to the trader's own (a scenario's settings).
    pub trader_extra: Vec<String>,
    /// Operator requests the trader accepted: each must leave exactly one
    /// journal row, whatever crashed in between.
    pub operator_requests: Vec<String>,
    /// Negative subsidy balances seen in any status read of the run.
    negative_subsidy: std::sync::Mutex<Vec<String>>,
    stepper: Option<Stepper>,
}

impl Rig {
    /// Starts the simulator (manual clock, stepped every `step_ms`, `sim_args`
    /// appended to its flags), its log in `dir`, and `replicas` ledger
    /// processes on `database_url`; the trader is started by
    /// [`Rig::start_trader`].
    ///
    /// # Panics
    /// When a process does not come up (see [`crate::process`]).
    pub async fn start(
        dir: &Path,
        database_url: &str,
        replicas: usize,
        seed: u64,
        step_ms: u64,
        sim_args: &[String],
    ) -> Self {
        let sim_args: Vec<&str> = sim_args.iter().map(String::as_str).collect();
        let sim = SimProcess::start_manual_with(seed, &sim_args, &dir.join("sim.log")).await;
        let ledgers = Replicas::start(database_url, replicas).await;
        let stepper = sim.step_every(Duration::from_millis(step_ms));
        Self {
            dir: dir.to_owned(),
            sim,
            ledgers,
            trader: None,
            clock: None,
            trader_extra: Vec::new(),
            operator_requests: Vec::new(),
            negative_subsidy: std::sync::Mutex::default(),
            stepper: Some(stepper),
        }
    }

    /// `trader-service run` against the simulator and the ledger, at
    /// self-healing stage D (subsidy, churners, auto-reprice of stuck
    /// positions), on the same store across restarts, writing to every
    /// ledger replica.
    fn trader_args(&self) -> Vec<String> {
        let ledger = self.ledgers.ledger_url();
        let run = RunArgs {
            bot: BOT,
            store: &self.dir.join("trader.db"),
            ledger_url: &ledger,
            slots: SLOTS,
        };
        // Entries and churner orders of 15 USD: above the pair minimum (50
        // DOGE) up to a price of 0.30, so a replay of real history never
        // leaves the trader below it (DOGE/USDT reached 0.23 in 2024).
        let mut more = vec![
            "--order-size-usd",
            "15",
            "--churner-order-size-usd",
            "15",
            "--profit-pct",
            "0.5",
            "--poll-interval-sec",
            "5",
            "--subsidy-enabled",
            "true",
            "--churner-enabled",
            "true",
            "--subsidy-auto-reprice-band",
            "stuck",
        ];
        more.extend(self.trader_extra.iter().map(String::as_str));
        run.kraken(&self.sim, &more)
    }

    /// Starts (or restarts) the trader and waits until it serves.
    ///
    /// # Panics
    /// When it does not come up.
    pub async fn start_trader(&mut self) {
        self.start_trader_armed(None).await;
    }

    /// [`Rig::start_trader`] with a crash point armed (`--crash-at`); it
    /// may have killed itself already when this returns.
    ///
    /// # Panics
    /// When it neither comes up nor ends.
    pub async fn start_trader_armed(&mut self, crash_at: Option<&str>) {
        let mut args = self.trader_args();
        if let Some(at) = crash_at {
            args.extend(["--crash-at".to_owned(), at.to_owned()]);
        }
        let log = self.dir.join("trader.log");
        let clock_env = self.clock.as_ref().map(FakeClock::env).unwrap_or_default();
        let mut env = SimProcess::CREDENTIALS.to_vec();
        env.extend(clock_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // Armed, it may reach its point before it serves.
        self.trader = Some(if crash_at.is_some() {
            TraderProcess::start_or_end(&args, &env, &log).await
        } else {
            TraderProcess::start(&args, &env, &log).await
        });
    }

    /// SIGKILLs the trader.
    pub fn kill_trader(&mut self) {
        if let Some(mut t) = self.trader.take() {
            t.sigkill();
        }
    }

    /// SIGKILLs ledger replica `i`.
    pub fn kill_ledger(&mut self, i: usize) {
        self.ledgers.kill(i);
    }

    /// Restarts ledger replica `i` on its port and database, where the
    /// trader expects it.
    ///
    /// # Panics
    /// When it does not come up.
    pub async fn start_ledger(&mut self, i: usize) {
        self.ledgers.restart(i).await;
    }

    /// Queues `count` faults of kind `fault` (snake case, see the
    /// simulator's `Fault`) on `method`; returns the faults still pending.
    ///
    /// # Errors
    /// When the simulator does not answer.
    pub async fn inject(&self, method: &str, fault: &str, count: u32) -> Result<u64, RigError> {
        self.inject_json(method, &format!("\"{fault}\""), count)
            .await
    }

    /// [`Rig::inject`] with the fault as JSON (`{"slow_reply":{"ms":6000}}`
    /// for a fault with fields).
    ///
    /// # Errors
    /// When the simulator does not answer, or refuses the rule.
    pub async fn inject_json(
        &self,
        method: &str,
        fault: &str,
        count: u32,
    ) -> Result<u64, RigError> {
        let body = format!(r#"{{"method":"{method}","fault":{fault},"count":{count}}}"#);
        let reply = http::post_json(&self.sim.addr, "/sim/faults", &body)
            .await
            .map_err(|e| RigError::Call(format!("POST /sim/faults: {e}")))?;
        let v: serde_json::Value = serde_json::from_str(&reply)
            .map_err(|e| RigError::Call(format!("POST /sim/faults {body}: {e}: {reply}")))?;
        Ok(v["pending"].as_u64().unwrap_or_default())
    }

    /// Faults queued and not yet consumed.
    ///
    /// # Errors
    /// When the simulator does not answer.
    pub async fn pending_faults(&self) -> Result<u64, RigError> {
        self.inject("AddOrder", "service_unavailable", 0).await
    }

    /// Waits until every queued fault was consumed: true when they were
    /// within `secs`, false when the trader never ran into them (they are
    /// then not counted; should one still hit later, it goes uncounted).
    ///
    /// # Errors
    /// When the simulator does not answer.
    pub async fn wait_consumed(&self, secs: u64) -> Result<bool, RigError> {
        let consumed = async {
            while self.pending_faults().await? > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok::<_, RigError>(())
        };
        match tokio::time::timeout(Duration::from_secs(secs), consumed).await {
            Ok(r) => r.map(|()| true),
            Err(_) => Ok(false),
        }
    }

    pub(super) async fn client(&self) -> Result<TraderServiceClient<Channel>, RigError> {
        let t = self
            .trader
            .as_ref()
            .ok_or_else(|| RigError::Call("the trader is not running".into()))?;
        TraderServiceClient::connect(t.endpoint.clone())
            .await
            .map_err(|e| RigError::Call(format!("connecting to the trader: {e}")))
    }

    /// The trader's status.
    ///
    /// # Errors
    /// When the trader does not answer.
    pub async fn status(&self) -> Result<pb::GetStatusResponse, RigError> {
        let mut c = self.client().await?;
        let s = c
            .get_status(pb::GetStatusRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|e| RigError::Call(format!("GetStatus: {e}")))?;
        // The trader's view of subsidy (acknowledged plus queued writes)
        // must never go negative, whenever it is read.
        let negative = s
            .healing
            .iter()
            .flat_map(|h| &h.subsidy)
            .filter(|v| v.balance.starts_with('-'))
            .map(|v| format!("slot {}: {}", v.slot_id, v.balance));
        if let Ok(mut seen) = self.negative_subsidy.lock() {
            seen.extend(negative);
        }
        Ok(s)
    }

    /// Polls the trader's status until `f` holds.
    ///
    /// # Errors
    /// When it does not within `secs`, or the trader stops answering.
    pub async fn wait_for(
        &self,
        what: &str,
        secs: u64,
        mut f: impl FnMut(&pb::GetStatusResponse) -> bool,
    ) -> Result<pb::GetStatusResponse, RigError> {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(s) = self.status().await
                && f(&s)
            {
                return Ok(s);
            }
            if Instant::now() >= end {
                return Err(RigError::Timeout {
                    what: what.into(),
                    secs,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the trader completes `loops` more loops while running:
    /// how the suite tells it survived a fault.
    ///
    /// # Errors
    /// When it does not within `secs`.
    pub async fn wait_trading(&self, loops: u64, secs: u64) -> Result<(), RigError> {
        let from = self.status().await.map(|s| s.loops).unwrap_or(0);
        self.wait_for("the trader to trade on", secs, |s| {
            s.mode == pb::Mode::Running as i32 && s.loops >= from + loops
        })
        .await
        .map(|_| ())
    }

    /// [`Rig::wait_trading`], and the outbox empty again (nothing pending
    /// or parked): every write queued while the ledger was out of reach
    /// got through. How the suite tells the system survived a fault of the
    /// ledger or its database.
    ///
    /// # Errors
    /// When it does not within `secs`.
    pub async fn wait_delivered(&self, loops: u64, secs: u64) -> Result<(), RigError> {
        let from = self.status().await.map(|s| s.loops).unwrap_or(0);
        self.wait_for("the trader to trade on, its outbox drained", secs, |s| {
            s.mode == pb::Mode::Running as i32
                && s.loops >= from + loops
                && s.outbox.is_some_and(|o| o.depth == 0 && o.parked == 0)
        })
        .await
        .map(|_| ())
    }

    /// Freezes the market, lets every fill reach the ledger, pauses the
    /// trader and checks the three views against each other.
    ///
    /// # Errors
    /// When the trader does not settle; the caller counts that as a failed
    /// run with the reason.
    pub async fn audit(mut self) -> Result<Counts, RigError> {
        // An ambiguous placement (a kill between commit and send, a lost
        // answer) resolves once its stale window passed on the exchange's
        // clock, which moves only with the market: let it resolve before
        // the market freezes. Whatever is left unresolved is counted.
        let end = Instant::now() + Duration::from_secs(120);
        while self.store_audit().await?.unresolved_placements > 0 && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if let Some(s) = self.stepper.take() {
            s.stop().await;
        }
        // A fill of the last step may still be on its way in: let the
        // trader place its exit (the position is journaled with it) before
        // the pause, which stops placements.
        let still = self.status().await?;
        let settled = self
            .wait_for("every position journaled on the frozen market", 90, |s| {
                s.loops >= still.loops + 2
                    && s.positions.iter().all(|p| !p.position_id.is_empty())
                    && s.outbox.is_some_and(|o| o.depth == 0 && o.parked == 0)
            })
            .await?;
        let (trading, mode_reason) = (
            settled.mode == pb::Mode::Running as i32,
            format!("mode {} {}", settled.mode, settled.mode_reason),
        );
        let mut c = self.client().await?;
        c.pause(pb::PauseRequest {
            reason: "audit".into(),
        })
        .await
        .map_err(|e| RigError::Call(format!("Pause: {e}")))?;
        let frozen = self.status().await?;
        self.wait_for("two quiet loops, outbox drained", 60, |s| {
            s.mode == pb::Mode::Paused as i32
                && s.loops >= frozen.loops + 2
                && s.outbox.is_some_and(|o| o.depth == 0 && o.parked == 0)
        })
        .await?;

        let body = http::request(&self.sim.addr, "GET", "/sim/orders")
            .await
            .map_err(|e| RigError::Call(format!("GET /sim/orders: {e}")))?;
        let sim = check::parse_sim_orders(&body).map_err(RigError::Call)?;
        let endpoints = self.ledgers.endpoints();
        let endpoint = endpoints[0].clone();
        let view = ledger_view(&endpoint, BOT, SLOTS).await;
        let subsidy = LedgerServiceClient::connect(endpoint.clone())
            .await
            .map_err(|e| RigError::Call(format!("connecting to the ledger: {e}")))?
            .get_subsidy_summary(lpb::GetSubsidySummaryRequest { bot_id: BOT.into() })
            .await
            .map_err(|e| RigError::Call(format!("GetSubsidySummary: {e}")))?
            .into_inner()
            .slots;
        // What a restart would resume with: the store of the stopped
        // trader, read by the product's own reader.
        self.kill_trader();
        let trader = TraderEnd {
            trading,
            mode_reason,
            store: self.store_audit().await?,
            negative_subsidy: self
                .negative_subsidy
                .lock()
                .map(|n| n.clone())
                .unwrap_or_default(),
        };
        let mut counts = check::check(&sim, &view.positions, &view.journal, &subsidy, &trader);
        if counts.fills_checked == 0 {
            counts
                .details
                .push("nothing filled: the run proved nothing".into());
        }
        let bot_keys = bot_journal_keys(&endpoint).await?;
        for request in &self.operator_requests {
            let key = format!("operator:{request}");
            let rows = view
                .journal
                .iter()
                .map(|e| &e.event_key)
                .chain(&bot_keys)
                .filter(|k| k.ends_with(&key))
                .count();
            if rows != 1 {
                if rows == 0 {
                    counts.lost += 1;
                } else {
                    counts.duplicated += 1;
                }
                counts.details.push(format!(
                    "operator request {request}: {rows} journal rows, not one"
                ));
            }
        }
        // Replicas share one database: each must answer with the same
        // positions and journal.
        for (i, other) in endpoints.iter().enumerate().skip(1) {
            let theirs = ledger_view(other, BOT, SLOTS).await;
            if theirs.positions != view.positions || theirs.journal != view.journal {
                counts.details.push(format!(
                    "ledger replica {i} disagrees with replica 0: {} positions and {} journal \
                     rows against {} and {}",
                    theirs.positions.len(),
                    theirs.journal.len(),
                    view.positions.len(),
                    view.journal.len()
                ));
            }
        }
        Ok(counts)
    }
}

impl Rig {
    /// `trader-service store-audit` of the trader's store (read only, so
    /// also while the trader runs).
    async fn store_audit(&self) -> Result<StoreEnd, RigError> {
        let out = tokio::process::Command::new(crate::process::trader_binary())
            .arg("store-audit")
            .arg("--store")
            .arg(self.dir.join("trader.db"))
            .output()
            .await
            .map_err(|e| RigError::Call(format!("store-audit: {e}")))?;
        if !out.status.success() {
            return Err(RigError::Call(format!(
                "store-audit failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        StoreEnd::parse(&String::from_utf8_lossy(&out.stdout)).map_err(RigError::Call)
    }
}

/// Event keys of every row of the bot's own journal (actions no position
/// carries: a regime override, the churner reserve, a churner command on a
/// slot with no position).
async fn bot_journal_keys(endpoint: &str) -> Result<Vec<String>, RigError> {
    let mut c = LedgerServiceClient::connect(endpoint.to_owned())
        .await
        .map_err(|e| RigError::Call(format!("connecting to the ledger: {e}")))?;
    let mut keys = Vec::new();
    let mut after = 0;
    loop {
        let page = c
            .get_bot_journal(lpb::GetBotJournalRequest {
                bot_id: BOT.into(),
                after_bot_journal_id: after,
                limit: 1000,
            })
            .await
            .map_err(|e| RigError::Call(format!("GetBotJournal: {e}")))?
            .into_inner();
        keys.extend(page.entries.into_iter().map(|e| e.event_key));
        if page.next_after_bot_journal_id == 0 {
            return Ok(keys);
        }
        after = page.next_after_bot_journal_id;
    }
}
