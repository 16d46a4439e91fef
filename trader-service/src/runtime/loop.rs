//! [`Runtime`]: the imperative shell around the pure engine. One
//! [`Runtime::step`] is one trading loop: price, order polls turned into
//! fills, engine ticks, placements and cancels within a private-call budget
//! (write-ahead committed), ledger writes committed with the state, then an
//! outbox drain whose acks go back to the engine.
//!
//! Crash safety rests on three rules:
//! 1. every state change and the ledger writes it implies are committed
//!    together ([`TraderStore::commit_step`]);
//! 2. a placement is committed as *intended* before the exchange is called;
//!    an intent whose outcome is unknown is looked up by `cl_ord_id` (open
//!    and closed orders) and placed again only after the stale window
//!    ([`crate::runtime::intents`]); stray copies are accounted for;
//! 3. fills are derived from the exchange's cumulative figures against what
//!    was already delivered (persisted), so replays never duplicate.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use thiserror::Error;

use crate::engine::{Action, EngineConfig, EngineState, Event, Notice, transition};
use crate::exchange::{Clock, Exchange};
use crate::runtime::book::{CallBudget, RuntimeBook, any_pending, position_key};
use crate::runtime::entry::NewOutboxEntry;
use crate::runtime::intents::StalePolicy;
use crate::runtime::ledger::LedgerApi;
use crate::runtime::outbox::{Outbox, OutboxPolicy};
use crate::runtime::stats::{RunStats, StepReport};
use crate::runtime::status::{
    BudgetStatusView, ControlCommand, HandleEnds, RuntimeHandle, RuntimeMode, StatusSnapshot,
};
use crate::runtime::store::{StoreError, TraderStore};
use crate::runtime::writes::{LedgerWriteRequest, TrackedPosition, cycle_writes, open_write};

/// Kraken's QueryOrders accepts at most 50 txids per call.
pub const QUERY_BATCH: usize = 50;

/// Tunables of the runtime (never persisted: they come from the
/// configuration on every start).
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The ledger's `bot_id`.
    pub bot_id: String,
    /// Validated engine configuration (pair, slots, percentages).
    pub engine: EngineConfig,
    /// Private exchange calls per loop (placements, cancels, lookups; order
    /// polls always run but count).
    pub call_budget: u32,
    /// `userref` put on every order (groups the bot's orders on Kraken).
    pub userref: i32,
    /// Place limit orders post-only (maker fee guaranteed).
    pub post_only: bool,
    /// Outbox back-off and batch size.
    pub outbox: OutboxPolicy,
    /// Longest the final outbox flush may take on shutdown.
    pub shutdown_flush: Duration,
    /// Ledger coverage reconciliation runs every this many loops (and on
    /// start) when the outbox is empty; 0 = only on start. The stray scan
    /// runs with it.
    pub reconcile_every: u64,
    /// What self-healing may reprice (all off: the sticky grid, stage A).
    pub reprice: crate::healing::RepriceConfig,
    /// The rollout stage the settings amount to (shown in the status).
    pub stage: crate::config::RolloutStage,
    /// Regime detector and profit-target windows.
    pub market: crate::healing::HealingConfig,
    /// How long an ambiguous placement may still appear on the exchange
    /// before it may be placed again.
    pub placement_stale: StalePolicy,
    /// Open orders the exchange allows the account (the churner's
    /// headroom is this less what we hold).
    pub open_order_limit: u32,
}

impl RuntimeConfig {
    /// Defaults around an engine configuration: budget 30, post-only off,
    /// 10 s shutdown flush, reconcile every 20 loops.
    #[must_use]
    pub fn new(bot_id: &str, engine: EngineConfig) -> Self {
        Self {
            bot_id: bot_id.to_owned(),
            engine,
            call_budget: 30,
            userref: 0,
            post_only: false,
            outbox: OutboxPolicy::default(),
            shutdown_flush: Duration::from_secs(10),
            reconcile_every: 20,
            reprice: crate::healing::RepriceConfig::off(),
            stage: crate::config::RolloutStage::A,
            market: crate::healing::HealingConfig::default(),
            placement_stale: StalePolicy::default(),
            // Kraken's limit at the intermediate verification tier.
            open_order_limit: 225,
        }
    }
}

/// Why a loop failed (exchange and ledger trouble never does: it is logged
/// and retried; only the local store can fail a loop).
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The trader's own store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored state cannot be read by this build.
    #[error("stored runtime state is unreadable: {0}")]
    CorruptState(String),
}

/// The trader runtime over an exchange and a ledger.
pub struct Runtime<E, L> {
    pub(crate) cfg: RuntimeConfig,
    pub(crate) exchange: E,
    pub(crate) ledger: L,
    pub(crate) store: TraderStore,
    pub(crate) outbox: Outbox,
    pub(crate) engine: EngineState,
    pub(crate) book: RuntimeBook,
    pub(crate) step_no: u64,
    pub(crate) pending: Vec<NewOutboxEntry>,
    pub(crate) dirty: bool,
    pub(crate) market_at_ms: Option<i64>,
    pub(crate) halted: Option<String>,
    pub(crate) stats: RunStats,
    pub(crate) last_budget: BudgetStatusView,
    pub(crate) last_loop_ms: i64,
    pub(crate) poll_next: bool,
    pub(crate) reconciled: bool,
    pub(crate) outbox_dirty: bool,
    /// The operator asked to send the parked writes again (next drain).
    pub(crate) retry_parked: bool,
    /// Next time the repricing planner runs.
    pub(crate) next_heal_at: i64,
    /// Subsidy still needed per slot, from the last plan.
    pub(crate) pending_need: std::collections::BTreeMap<crate::engine::SlotId, Decimal>,
    /// Bars, returns and the regime detector (healing's market model).
    pub(crate) market: crate::runtime::heal::MarketModel,
    pub(crate) acks_uncommitted: bool,
    pub(crate) handle: Option<HandleEnds>,
    /// When the last exchange scan ran (not persisted: the first scan after
    /// a start looks back further).
    pub(crate) last_scan_ms: Option<i64>,
    /// When handled txids past their retention were last forgotten (not
    /// persisted: the first loop after a start prunes).
    pub(crate) known_pruned_ms: i64,
    /// Scan every loop until then (a stale window after a resolution).
    pub(crate) watch_until: i64,
    /// Store metadata to commit with the next step (operator answers).
    pub(crate) pending_meta: Vec<(String, String)>,
    /// The exchange nonce lease last stored (see
    /// [`crate::runtime::nonce_lease`]); 0 until this process stored one.
    pub(crate) nonce_lease: u64,
    /// Throughput statistics (SPEC §7), persisted as store metadata when
    /// a round trip completes rather than with every step.
    pub(crate) throughput: crate::healing::throughput::ThroughputSizer,
    /// The statistics changed since the last commit.
    pub(crate) throughput_dirty: bool,
    /// Where loops are recorded for Prometheus, when anywhere.
    pub(crate) metrics: Option<Arc<crate::metrics::TraderMetrics>>,
}

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Restores the runtime from `store` (or starts fresh). The engine
    /// configuration always comes from `cfg`, never from the store; only the
    /// state (orders, positions, bookkeeping) is restored.
    ///
    /// # Errors
    /// [`RuntimeError`] if the store cannot be read.
    pub async fn new(
        cfg: RuntimeConfig,
        exchange: E,
        ledger: L,
        store: TraderStore,
    ) -> Result<Self, RuntimeError> {
        let (engine, book, step_no) = match store.load_state().await? {
            Some(snap) => {
                let step = snap.step;
                let (engine, book) =
                    crate::runtime::book::decode_state(snap).map_err(RuntimeError::CorruptState)?;
                tracing::info!(
                    step,
                    slots = engine.slots.len(),
                    intents = book.placing.len(),
                    "runtime state restored"
                );
                (engine, book, step)
            }
            None => (
                EngineState::new(cfg.engine.slots),
                RuntimeBook::default(),
                0,
            ),
        };
        let market = crate::runtime::heal::MarketModel::new(cfg.market.clone());
        let mut rt = Self {
            outbox: Outbox::new(store.clone(), cfg.outbox),
            cfg,
            exchange,
            ledger,
            store,
            engine,
            book,
            step_no,
            pending: Vec::new(),
            dirty: false,
            market_at_ms: None,
            halted: None,
            stats: RunStats::default(),
            last_budget: BudgetStatusView::default(),
            last_loop_ms: 0,
            poll_next: true,
            reconciled: false,
            outbox_dirty: true,
            retry_parked: false,
            next_heal_at: i64::MIN,
            pending_need: Default::default(),
            market,
            acks_uncommitted: false,
            handle: None,
            last_scan_ms: None,
            known_pruned_ms: i64::MIN,
            watch_until: 0,
            pending_meta: Vec::new(),
            nonce_lease: 0,
            throughput: Default::default(),
            throughput_dirty: false,
            metrics: None,
        };
        rt.engine.ensure_slots(rt.cfg.engine.slots);
        rt.restore_position_ids().await?;
        rt.restore_regime().await?;
        rt.restore_operator_state().await?;
        Ok(rt)
    }

    /// The engine state (read-only; tests, backtest sampling).
    #[must_use]
    pub fn engine(&self) -> &EngineState {
        &self.engine
    }

    /// The trader's subsidy view.
    #[must_use]
    pub fn subsidy(&self) -> &crate::healing::SubsidyView {
        &self.book.subsidy
    }

    /// The churner's state.
    #[must_use]
    pub fn churn_book(&self) -> &crate::healing::ChurnBook {
        &self.book.churn
    }

    /// Repricing counters.
    #[must_use]
    pub fn reprice_stats(&self) -> &crate::healing::RepriceStats {
        &self.book.heal_stats
    }

    /// Counters over the runtime's life.
    #[must_use]
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// The exchange (tests, backtests).
    #[must_use]
    pub fn exchange(&self) -> &E {
        &self.exchange
    }

    /// The engine configuration in force.
    #[must_use]
    pub fn engine_config(&self) -> &EngineConfig {
        &self.cfg.engine
    }

    /// Whether the operator paused trading.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.book.paused
    }

    /// A handle for the control API; status is published after every loop.
    pub fn handle(&mut self) -> RuntimeHandle {
        let (h, ends) = RuntimeHandle::channel(StatusSnapshot::starting(
            &self.cfg.bot_id,
            &self.cfg.engine.pair.symbol,
        ));
        self.handle = Some(ends);
        h
    }

    /// Applies an operator command (between loops).
    pub fn apply_command(&mut self, cmd: ControlCommand) {
        match cmd {
            ControlCommand::Pause => {
                tracing::info!(
                    "paused by operator: no entries or cancels; fills still processed and their exits placed"
                );
                self.book.paused = true;
            }
            ControlCommand::Resume => {
                tracing::info!(was_halted = ?self.halted, "resumed by operator");
                self.book.paused = false;
                self.halted = None;
            }
            ControlCommand::RetryParked => {
                tracing::info!("operator asked to retry every parked ledger write");
                self.retry_parked = true;
            }
        }
        self.dirty = true;
    }

    /// Whether the next candle needs a full step even without fills (work
    /// is pending, something was placed last loop, or writes wait).
    #[must_use]
    pub fn has_work(&self) -> bool {
        self.poll_next
            || self.dirty
            || !self.pending.is_empty()
            || self.outbox_dirty
            || self.retry_parked
            || !self.book.placing.is_empty()
            || !self.book.stray_exits.is_empty()
            || any_pending(&self.engine)
            || crate::runtime::book::churn_pending(&self.book)
    }

    /// The backtest's cheap path: feeds one price to the engine without any
    /// exchange or store I/O. Returns `true` if the engine asked for
    /// something (then a full [`Self::step`] must follow at the same time).
    pub fn quiet_tick(&mut self, price: Decimal, now_ms: i64) -> bool {
        self.market_at_ms = Some(now_ms);
        let before = self.pending.len();
        let now = now_ms.div_euclid(1000);
        let acted = self.apply(&Event::PriceTick { price, now });
        self.observe_market(now, price);
        let healed = self.heal_if_due(now, self.cfg.call_budget);
        acted || healed || self.pending.len() != before || self.churn_wants_step(now, price)
    }

    /// Feeds one event; routes its actions. Returns whether any action came
    /// out (which implies a state change worth committing).
    pub(crate) fn apply(&mut self, event: &Event) -> bool {
        let actions = transition(&mut self.engine, event, &self.cfg.engine);
        if let Some((order_id, txid)) = event.placement_answer() {
            self.release_awaiting_exit(&order_id.to_string(), txid);
        }
        // Ticks, a new profit target and a new entry hold change state worth
        // keeping but not worth a commit of its own: they ride along with
        // the next one (either, lost in a crash, is recomputed within one
        // healing pass).
        let is_tick = matches!(
            event,
            Event::PriceTick { .. }
                | Event::TimerTick { .. }
                | Event::ProfitTarget { .. }
                | Event::EntryHold { .. }
        );
        if !is_tick {
            self.dirty = true;
        }
        if actions.is_empty() {
            return false;
        }
        self.dirty = true;
        for a in actions {
            self.on_action(a);
        }
        true
    }

    fn on_action(&mut self, action: Action) {
        match action {
            Action::Place(req) => {
                tracing::debug!(order_id = %req.id, side = ?req.side, price = %req.price,
                    volume = %req.volume, "engine wants an order placed");
            }
            Action::Cancel { order_id, txid } => {
                tracing::debug!(%order_id, ?txid, "engine wants an order cancelled");
            }
            Action::OpenPosition(intent) => {
                let w = open_write(&intent);
                tracing::info!(open_key = %w.open_key, slot = intent.slot, trade = ?intent.trade,
                    cycle = intent.cycle, entry_price = %intent.entry_price,
                    exit_price = %intent.exit_price, volume = %intent.entry_volume,
                    "entry filled: position opened, ledger write waits for the exit's txid");
                self.book.positions.insert(
                    position_key(intent.slot, intent.trade, intent.cycle),
                    TrackedPosition {
                        open_key: w.open_key.clone(),
                        trade: intent.trade,
                        exit_target: intent.exit_price,
                        close_note: None,
                    },
                );
                self.book
                    .opens_awaiting_exit
                    .insert(intent.exit_order_id.to_string(), w);
            }
            Action::BookCycle(b) => {
                self.record_cycle(&b);
                if b.written_off {
                    self.count_write_off(&b);
                }
                self.stats.completed_cycles += 1;
                self.stats.net_pnl += b.net;
                if b.net < Decimal::ZERO {
                    self.stats.realized_loss -= b.net;
                }
                let key = position_key(b.slot, b.trade, b.cycle);
                let Some(pos) = self.book.positions.remove(&key) else {
                    tracing::error!(%key, "booked a cycle of an untracked position; ledger not told");
                    return;
                };
                tracing::info!(open_key = %pos.open_key, slot = b.slot, trade = ?b.trade,
                    cycle = b.cycle, exit_price = %b.exit_price, net = %b.net,
                    "cycle booked: position closes filled");
                for w in cycle_writes(&b, &pos) {
                    if let LedgerWriteRequest::OverPerformance(o) = &w {
                        self.credit_subsidy(b.slot, o.excess);
                    }
                    self.pending.push(w.to_entry());
                }
            }
            Action::Repriced(b) => self.on_repriced(&b),
            Action::Notice(n) => match n {
                Notice::MarketCloseFailed { order_id, .. } => {
                    let now = self.engine.now;
                    self.on_market_close_failed(order_id, now);
                }
                Notice::SlotHalted { slot, violation } => {
                    tracing::error!(slot, ?violation, "slot halted by the engine (others go on)");
                }
                Notice::ClockSkew {
                    order_id,
                    entry_time,
                    reported_exit_time,
                } => {
                    tracing::warn!(%order_id, entry_time, reported_exit_time,
                        "exchange reported an exit before its entry (its clocks disagree): \
                         the exit time is clamped to the entry time for the ledger");
                }
                Notice::EntryBelowMinimum {
                    slot,
                    trade,
                    price,
                    detail,
                } => {
                    self.stats.entries_below_minimum += 1;
                    tracing::warn!(slot, trade = trade.as_str(), %price,
                        order_size = %self.cfg.engine.order_size, %detail,
                        "entry waits: the order size misses the pair minimum at this price \
                         (raise ORDER_SIZE_USD or leave it unset for the pair minimum)");
                }
                other => tracing::debug!(notice = ?other, "engine notice"),
            },
        }
    }

    /// Queues the `OpenPosition` of a position, or the `RepricePosition`
    /// of a reprice, once its exit's placement is resolved: placed, with
    /// the exit's txid (the ledger's exit intent); refused, without one, so
    /// a position whose exit the exchange will not take is still in the
    /// ledger for the operator. Until then (budget, pause, an ambiguous
    /// answer being looked up) the write waits in the persisted book, so a
    /// restart loses nothing.
    pub(crate) fn release_awaiting_exit(&mut self, order_id: &str, txid: Option<&str>) {
        if let Some(mut w) = self.book.opens_awaiting_exit.remove(order_id) {
            if txid.is_none() {
                tracing::warn!(open_key = %w.open_key, exit_order_id = %order_id,
                    "exit refused by the exchange: position recorded without an exit txid");
            }
            w.exit_txid = txid.map(str::to_owned);
            self.dirty = true;
            self.pending.push(LedgerWriteRequest::Open(w).to_entry());
        }
        if let Some(mut w) = self.book.reprices_awaiting_exit.remove(order_id) {
            if txid.is_none() {
                tracing::warn!(open_key = %w.open_key, exit_order_id = %order_id,
                    "repriced exit refused by the exchange: reprice recorded without its txid; \
                     the exit is retried");
            }
            w.new_txid = txid.map(str::to_owned);
            self.dirty = true;
            self.pending.push(LedgerWriteRequest::Reprice(w).to_entry());
        }
    }

    /// One trading loop at `now_ms` (unix milliseconds).
    ///
    /// # Errors
    /// [`RuntimeError`] only if the local store fails; exchange and ledger
    /// trouble is logged and retried next loop.
    pub async fn step(&mut self, now_ms: i64) -> Result<StepReport, RuntimeError> {
        let now = now_ms.div_euclid(1000);
        let mut budget = CallBudget::new(self.cfg.call_budget);
        self.stats.loops += 1;
        let scanned = !self.reconciled || self.reconcile_due();
        if scanned {
            self.reconcile(now_ms, &mut budget).await?;
        }

        // 1. Market price (public call: not budgeted).
        let symbol = self.cfg.engine.pair.symbol.clone();
        let price = match self.exchange.ticker(&symbol).await {
            Ok(t) if t.last > Decimal::ZERO => Some(t.last),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "ticker failed: no trading this loop");
                None
            }
        };

        // 2. Fills and gone orders of everything we hold.
        self.poll_all(now_ms, &mut budget).await;
        self.poll_next = false;

        // 2b. Unresolved placements and late copies (unless the
        // reconciliation just scanned).
        if !scanned && self.scan_needed(now_ms) {
            self.scan(now_ms, &mut budget).await?;
        }
        self.prune_known_if_due(now_ms);

        // 3. Engine clock.
        match price {
            Some(p) => {
                self.market_at_ms = Some(now_ms);
                self.apply(&Event::PriceTick { price: p, now });
                self.observe_market(now, p);
            }
            None => {
                self.apply(&Event::TimerTick { now });
            }
        }

        // 4. Self-healing: reprice decisions become engine cancels and
        //    re-placements, carried out with the rest below.
        if price.is_some() {
            self.heal_if_due(now, budget.left());
        }

        // 5. Cancels and placements within the budget (write-ahead).
        let deferred = if price.is_some() {
            self.execute(now_ms, &mut budget).await?
        } else {
            0
        };

        // 5b. The churner: its polls, plan, cancels and placements.
        if let Some(p) = price {
            self.churn(now_ms, p, &mut budget).await?;
        }

        // 6. Commit, then deliver ledger writes.
        let committed = self.commit(now_ms).await?;
        let delivered = self.drain(now_ms).await?;
        if self.dirty {
            self.commit(now_ms).await?;
        }
        self.last_budget = BudgetStatusView {
            used: budget.used(),
            limit: budget.limit(),
            deferred,
        };
        self.stats.deferred += u64::from(deferred);
        self.last_loop_ms = now_ms;
        self.publish(now_ms).await?;
        Ok(StepReport {
            calls: budget.used(),
            deferred,
            committed,
            delivered,
        })
    }

    fn reconcile_due(&self) -> bool {
        self.cfg.reconcile_every > 0 && self.stats.loops.is_multiple_of(self.cfg.reconcile_every)
    }

    /// The current mode.
    #[must_use]
    pub fn mode(&self) -> RuntimeMode {
        match (&self.halted, self.book.paused) {
            (Some(reason), _) => RuntimeMode::Halted {
                reason: reason.clone(),
            },
            (None, true) => RuntimeMode::Paused,
            (None, false) => RuntimeMode::Running,
        }
    }

    /// Runs loops every `poll_interval` until `shutdown` resolves; then
    /// finishes the current loop, flushes the outbox (bounded) and returns.
    /// Never cancels resting orders. Commands from [`Self::handle`]s are
    /// applied between loops. "Now" is `clock` plus the exchange's offset
    /// ([`super::exchange_clock`]), so ages run on the exchange's clock.
    ///
    /// # Errors
    /// [`RuntimeError`] if the local store fails.
    pub async fn run_forever<C: Clock>(
        &mut self,
        clock: &C,
        poll_interval: Duration,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), RuntimeError> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut commands = self
            .handle
            .as_mut()
            .map(|h| std::mem::replace(&mut h.commands, tokio::sync::mpsc::channel(1).1));
        let mut xclock = super::exchange_clock::ExchangeClock::new();
        loop {
            if let Some(rx) = commands.as_mut() {
                while let Ok(msg) = rx.try_recv() {
                    self.on_control(msg, xclock.now(clock.now_ms())).await;
                }
            }
            let now_ms = xclock.loop_now(&self.exchange, clock).await;
            let started = std::time::Instant::now();
            if let Err(e) = self.step(now_ms).await {
                tracing::error!(error = %e, "loop failed (local store); retrying next loop");
            }
            self.observe_loop(started.elapsed());
            let sleep = tokio::time::sleep(poll_interval);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut shutdown => {
                        tracing::info!("shutdown: flushing the outbox, resting orders stay");
                        return self.flush(xclock.now(clock.now_ms())).await;
                    }
                    () = &mut sleep => break,
                    Some(msg) = async {
                        match commands.as_mut() {
                            Some(rx) => rx.recv().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        self.on_control(msg, xclock.now(clock.now_ms())).await;
                        self.publish(xclock.now(clock.now_ms())).await?;
                    }
                }
            }
        }
    }

    /// Builds and publishes the status snapshot (when a handle exists).
    pub(crate) async fn publish(&mut self, now_ms: i64) -> Result<(), RuntimeError> {
        if self.handle.is_none() {
            return Ok(());
        }
        let snap = self.status(now_ms).await?;
        if let Some(h) = &self.handle {
            h.status.send_replace(Arc::new(snap));
        }
        Ok(())
    }
}
