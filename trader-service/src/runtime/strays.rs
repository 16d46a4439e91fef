//! The exchange scan: one look at our open and recently closed orders that
//! (1) resolves ambiguous placements by `cl_ord_id` under the rule of
//! [`crate::runtime::intents`], and (2) accounts for **strays**: orders
//! carrying one of our client ids (`slot:trade:cycle:role:seq`) whose txid
//! the runtime never tracked, such as a late copy of an ambiguous
//! placement that Kraken executed after its `EService:Busy`.
//!
//! A resting stray is cancelled. Whatever a stray executed (filled, or
//! partly filled before the cancel) is real inventory, so it becomes a
//! position of its slot, kept *beside* the engine the way reconciliation
//! keeps imported legacy exits (SPEC §9): the ledger gets a `created` with
//! `migration: true` under `stray:<txid>`, an exit is placed for exactly
//! the executed volume at the engine's exit price rule, and the runtime
//! tracks that exit until it fills (`filled`) or leaves the book. The
//! engine's own slot state, and so its invariants, never change.
//!
//! The scan runs with every reconciliation (start-up and periodic), every
//! loop while a placement or a stray exit is unresolved, and for one stale
//! window after each resolution, when a late copy is most likely.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use crate::engine::pricing::exit_price;
use crate::engine::{OrderId, OrderRole, TradeId, TradeWork};
use crate::exchange::{Exchange, ExchangeError, OrderInfo, OrderKind, OrderRequest};
use crate::pair::Side;
use crate::runtime::book::{CallBudget, LegacyOrder, StrayExit, held_orders};
use crate::runtime::fills::Executed;
use crate::runtime::intents::{IntentDecision, PlacementIntent, decide, lookup_since};
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::{Runtime, RuntimeError};
use crate::runtime::writes::{LedgerWriteRequest, OpenWrite, SlotModeKind};

/// How long a handled txid is remembered after it was last live.
pub const KNOWN_RETENTION_MS: i64 = 6 * 3_600_000;

/// How often (in loop time) handled txids past the retention are
/// forgotten. On its own schedule, not the scan's: with the periodic scan
/// off (a backtest) the set would otherwise grow with every order ever
/// placed, and the state committed on every step with it.
pub const KNOWN_PRUNE_EVERY_MS: i64 = 10 * 60_000;

/// The scan never looks further back than this (well inside the
/// retention, so an order we tracked is never mistaken for a stray),
/// except to reach an unresolved placement's send time.
pub const SCAN_LOOKBACK_CAP_MS: i64 = 3 * 3_600_000;

/// Prefix of the client order ids of stray-fill exits (short: Kraken
/// allows free-text ids of up to 18 characters).
pub const STRAY_EXIT_PREFIX: &str = "sx:";

/// The ledger open key of an adopted stray fill.
#[must_use]
pub fn stray_open_key(txid: &str) -> String {
    format!("stray:{txid}")
}

/// Our engine's order id in a client order id, if it carries one.
fn our_id(o: &OrderInfo) -> Option<OrderId> {
    o.cl_ord_id.as_deref()?.parse().ok()
}

/// The order to adopt among copies carrying one client id: a live one
/// first, then the one that executed most (ties by txid, deterministic).
fn best_copy<'a>(copies: &[&'a OrderInfo]) -> Option<&'a OrderInfo> {
    copies.iter().copied().max_by(|a, b| {
        (a.status.is_live(), a.vol_exec, std::cmp::Reverse(&a.txid)).cmp(&(
            b.status.is_live(),
            b.vol_exec,
            std::cmp::Reverse(&b.txid),
        ))
    })
}

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Whether this loop must scan even without a reconciliation.
    pub(crate) fn scan_needed(&self, now_ms: i64) -> bool {
        !self.book.placing.is_empty()
            || !self.book.stray_exits.is_empty()
            || now_ms < self.watch_until
    }

    /// Scans open and recently closed orders: resolves intents, handles
    /// strays. Returns the open orders (for the legacy import), or `None`
    /// when the exchange could not be read (everything waits a loop).
    pub(crate) async fn scan(
        &mut self,
        now_ms: i64,
        budget: &mut CallBudget,
    ) -> Result<Option<Vec<OrderInfo>>, RuntimeError> {
        let since = self.scan_since(now_ms);
        budget.force(2);
        let open = match self.exchange.open_orders().await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "scan: open orders unavailable; retried next loop");
                return Ok(None);
            }
        };
        let closed = match self.exchange.closed_orders(since).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "scan: closed orders unavailable; retried next loop");
                return Ok(None);
            }
        };
        self.last_scan_ms = Some(now_ms);
        let symbol = self.cfg.engine.pair.symbol.clone();
        let mut ours: Vec<OrderInfo> = open
            .iter()
            .chain(&closed)
            .filter(|o| o.pair == symbol && o.cl_ord_id.is_some())
            .cloned()
            .collect();
        ours.sort_by(|a, b| a.txid.cmp(&b.txid));
        ours.dedup_by(|a, b| a.txid == b.txid);
        self.resolve_intents(&ours, now_ms);
        self.resolve_stray_exits(&ours, now_ms).await?;
        self.handle_strays(&ours, now_ms, budget).await?;
        Ok(Some(open))
    }

    pub(crate) fn scan_since(&self, now_ms: i64) -> i64 {
        let window = self.cfg.placement_stale.window_ms;
        // Without any remembered txid (a fresh or pre-upgrade state) only
        // the last window is scanned, so old orders of ours are not
        // mistaken for strays.
        let base = match self.last_scan_ms {
            Some(t) => t - window,
            None if self.book.known.is_empty() => now_ms - window,
            None => now_ms - SCAN_LOOKBACK_CAP_MS,
        }
        .max(now_ms - SCAN_LOOKBACK_CAP_MS);
        // An unresolved placement is looked up from its send time, even
        // past the cap: a lookup that starts after the order was accepted
        // cannot find it once it has filled, and the placement would be
        // declared absent and sent twice. (Seen against the simulator at
        // 750x, where three hours of its clock pass in fifteen seconds.)
        // Never past the txid retention, where our own old orders could no
        // longer be told from strays.
        self.book
            .placing
            .values()
            .chain(self.book.stray_exits.values().map(|s| &s.intent))
            .map(|i| lookup_since(*i, self.cfg.placement_stale))
            .fold(base, i64::min)
            .max(now_ms - KNOWN_RETENTION_MS)
    }

    /// Decides every unresolved engine placement from the scan.
    fn resolve_intents(&mut self, ours: &[OrderInfo], now_ms: i64) {
        let intents: Vec<(String, PlacementIntent)> = self
            .book
            .placing
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (id, intent) in intents {
            let copies: Vec<&OrderInfo> = ours
                .iter()
                .filter(|o| o.cl_ord_id.as_deref() == Some(id.as_str()))
                .collect();
            let found = best_copy(&copies).map(|o| o.txid.clone());
            let order_id = id.parse::<OrderId>().ok();
            let pending = order_id.filter(|oid| {
                held_orders(&self.engine)
                    .iter()
                    .any(|h| h.id == *oid && h.txid.is_none())
            });
            match decide(intent, found.as_deref(), now_ms, self.cfg.placement_stale) {
                IntentDecision::Adopt(txid) => {
                    self.watch_until = now_ms + self.cfg.placement_stale.window_ms;
                    match pending {
                        Some(oid) => {
                            tracing::warn!(order_id = %id, %txid, copies = copies.len(),
                                "unresolved placement found on the exchange by cl_ord_id: adopted");
                            self.placed(oid, txid, now_ms);
                        }
                        None => {
                            tracing::warn!(order_id = %id, %txid,
                                "unresolved placement found, but the engine no longer wants it: handled as a stray");
                            self.book.placing.remove(&id);
                        }
                    }
                }
                IntentDecision::Wait(next) => {
                    tracing::info!(order_id = %id, lookups = next.empty_lookups,
                        exists = next.exists, "unresolved placement not found yet: waiting");
                    self.book.placing.insert(id, next);
                }
                IntentDecision::PlaceAgain => {
                    tracing::warn!(order_id = %id,
                        "unresolved placement not found across the stale window: may be placed again");
                    self.watch_until = now_ms + self.cfg.placement_stale.window_ms;
                    self.book.placing.remove(&id);
                }
            }
            self.dirty = true;
        }
    }

    /// Whether a resting exit of ours duplicates one the engine knows (its
    /// cycle is being worked or already booked); if not, the engine lost
    /// track of that position and the legacy import keeps it working.
    pub(crate) fn duplicates_engine_exit(&self, id: OrderId) -> bool {
        let Some(slot) = self.engine.slots.get(&id.slot) else {
            return false;
        };
        let t = slot.trade(id.trade);
        t.cycle > id.cycle || (t.cycle == id.cycle && matches!(t.work, TradeWork::Exit(_)))
    }

    /// Cancels resting strays and adopts what any stray executed.
    async fn handle_strays(
        &mut self,
        ours: &[OrderInfo],
        now_ms: i64,
        budget: &mut CallBudget,
    ) -> Result<(), RuntimeError> {
        let tracked: BTreeSet<String> = held_orders(&self.engine)
            .into_iter()
            .filter_map(|h| h.txid)
            .chain(self.book.seen.keys().cloned())
            .chain(self.book.legacy.keys().cloned())
            .chain(self.book.known.keys().cloned())
            .collect();
        for o in ours {
            let Some(id) = our_id(o) else { continue };
            if tracked.contains(&o.txid) || self.book.placing.contains_key(&id.to_string()) {
                continue;
            }
            if o.status.is_live() && id.role == OrderRole::Exit && !self.duplicates_engine_exit(id)
            {
                continue;
            }
            tracing::warn!(txid = %o.txid, cl_ord_id = %id, status = ?o.status,
                vol_exec = %o.vol_exec, side = ?o.side,
                "stray order of ours on the exchange (untracked copy): accounting for it");
            if self.book.paused || self.halted.is_some() {
                tracing::info!(txid = %o.txid, "not trading: stray handled when trading resumes");
                continue;
            }
            let final_state = if o.status.is_live() {
                budget.force(2);
                match self.exchange.cancel_order(&o.txid).await {
                    Ok(()) | Err(ExchangeError::UnknownOrder { .. }) => {}
                    Err(e) => {
                        tracing::warn!(txid = %o.txid, error = %e, "stray cancel failed; retried next scan");
                        continue;
                    }
                }
                let confirmed = match self
                    .exchange
                    .query_orders(std::slice::from_ref(&o.txid))
                    .await
                {
                    Ok(v) => v.into_iter().find(|i| i.txid == o.txid),
                    Err(e) => {
                        tracing::warn!(txid = %o.txid, error = %e, "stray confirm failed; retried next scan");
                        continue;
                    }
                };
                match confirmed {
                    Some(c) if !c.status.is_live() => {
                        tracing::warn!(txid = %o.txid, cl_ord_id = %id, "resting stray cancelled");
                        self.stats.strays_cancelled += 1;
                        c
                    }
                    _ => continue,
                }
            } else {
                o.clone()
            };
            self.book.known.insert(o.txid.clone(), now_ms);
            self.dirty = true;
            if final_state.vol_exec > Decimal::ZERO {
                self.adopt_stray_fill(&final_state, id, now_ms).await?;
            }
        }
        Ok(())
    }

    /// A stray's executed volume becomes a position of its slot with an
    /// exit for exactly that volume (write-ahead, then placed).
    async fn adopt_stray_fill(
        &mut self,
        info: &OrderInfo,
        id: OrderId,
        now_ms: i64,
    ) -> Result<(), RuntimeError> {
        let volume = info.vol_exec;
        let entry_price = info.avg_price.unwrap_or(info.cost / volume);
        // A stray buy is long inventory (trade B's shape), a sell short (A's).
        let trade = match info.side {
            Side::Buy => TradeId::B,
            Side::Sell => TradeId::A,
        };
        let cfg = &self.cfg.engine;
        let price = exit_price(
            cfg,
            trade,
            entry_price,
            self.engine.market,
            cfg.profit_pct,
            cfg.entry_pct,
        );
        let open = OpenWrite {
            open_key: stray_open_key(&info.txid),
            exit_order_id: None,
            slot: id.slot,
            trade,
            cycle: id.cycle,
            slot_mode: SlotModeKind::Legacy,
            entry_price,
            entry_cost: info.cost,
            entry_fee: info.fee,
            entry_volume: volume,
            entry_time: info.closed_at.unwrap_or(info.opened_at).div_euclid(1000),
            exit_price: price,
            target_profit_pct: cfg.profit_pct,
            exit_txid: None,
            migration: true,
        };
        self.book.legacy_seq += 1;
        let cl = format!("{STRAY_EXIT_PREFIX}{}", self.book.legacy_seq);
        tracing::warn!(txid = %info.txid, cl_ord_id = ?info.cl_ord_id, open_key = %open.open_key,
            %volume, %entry_price, exit_price = %price, exit_cl_ord_id = %cl,
            "stray fill adopted as a position of its slot: exit placed for the executed volume");
        self.stats.strays_adopted += 1;
        self.book.stray_exits.insert(
            cl.clone(),
            StrayExit {
                open,
                side: trade.exit_side(),
                price,
                volume,
                intent: PlacementIntent::sent(now_ms),
            },
        );
        self.dirty = true;
        self.commit(now_ms).await?;
        self.place_stray_exit(&cl, now_ms).await;
        Ok(())
    }

    /// Sends a stray exit's placement (its intent already committed).
    async fn place_stray_exit(&mut self, cl: &str, now_ms: i64) {
        let Some(sx) = self.book.stray_exits.get(cl).cloned() else {
            return;
        };
        let req = OrderRequest {
            pair: self.cfg.engine.pair.symbol.clone(),
            side: sx.side,
            kind: OrderKind::Limit {
                price: sx.price,
                post_only: self.cfg.post_only,
            },
            volume: sx.volume,
            userref: self.cfg.userref,
            client_order_id: cl.to_owned(),
        };
        match self.exchange.add_order(&req).await {
            Ok(ack) => self.finish_stray_exit(cl, Some(ack.txid), now_ms),
            Err(ExchangeError::Ambiguous { message }) => {
                tracing::warn!(cl_ord_id = cl, error = %message, "stray exit outcome unknown: looked up");
            }
            Err(ExchangeError::DuplicateOrder { .. }) => {
                if let Some(s) = self.book.stray_exits.get_mut(cl) {
                    s.intent.exists = true;
                }
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(cl_ord_id = cl, error = %e, "stray exit not placed; retried after the stale window");
            }
            Err(e) => {
                tracing::error!(cl_ord_id = cl, error = %e,
                    "stray exit refused: position journaled without an exit, for the operator");
                self.finish_stray_exit(cl, None, now_ms);
            }
        }
        self.dirty = true;
    }

    /// The stray exit's fate is known: the position goes to the ledger
    /// (with the exit's txid when it exists) and the exit is tracked like a
    /// legacy exit until it fills or leaves the book.
    fn finish_stray_exit(&mut self, cl: &str, txid: Option<String>, now_ms: i64) {
        let Some(sx) = self.book.stray_exits.remove(cl) else {
            return;
        };
        let mut open = sx.open;
        if let Some(t) = &txid {
            self.book.known.insert(t.clone(), now_ms);
            self.book.legacy.insert(
                t.clone(),
                LegacyOrder {
                    open_key: open.open_key.clone(),
                    side: sx.side,
                    entry_price: open.entry_price,
                    exit_price: sx.price,
                    seen: Executed {
                        order_id: t.clone(),
                        ..Executed::default()
                    },
                },
            );
            self.poll_next = true;
        }
        open.exit_txid = txid;
        self.pending.push(LedgerWriteRequest::Open(open).to_entry());
        self.dirty = true;
    }

    /// Resolves stray exits whose placement is unresolved or pending.
    async fn resolve_stray_exits(
        &mut self,
        ours: &[OrderInfo],
        now_ms: i64,
    ) -> Result<(), RuntimeError> {
        let waiting: Vec<(String, PlacementIntent)> = self
            .book
            .stray_exits
            .iter()
            .map(|(k, v)| (k.clone(), v.intent))
            .collect();
        for (cl, intent) in waiting {
            let copies: Vec<&OrderInfo> = ours
                .iter()
                .filter(|o| o.cl_ord_id.as_deref() == Some(cl.as_str()))
                .collect();
            let found = best_copy(&copies).map(|o| o.txid.clone());
            match decide(intent, found.as_deref(), now_ms, self.cfg.placement_stale) {
                IntentDecision::Adopt(txid) => {
                    tracing::warn!(cl_ord_id = %cl, %txid, "stray exit found by cl_ord_id: tracked");
                    self.finish_stray_exit(&cl, Some(txid), now_ms);
                }
                IntentDecision::Wait(next) => {
                    if let Some(s) = self.book.stray_exits.get_mut(&cl) {
                        s.intent = next;
                    }
                }
                IntentDecision::PlaceAgain => {
                    if self.book.paused || self.halted.is_some() {
                        continue;
                    }
                    if let Some(s) = self.book.stray_exits.get_mut(&cl) {
                        s.intent = PlacementIntent::sent(now_ms);
                    }
                    self.dirty = true;
                    self.commit(now_ms).await?;
                    self.place_stray_exit(&cl, now_ms).await;
                }
            }
            self.dirty = true;
        }
        Ok(())
    }

    /// Forgets handled txids past the retention, at most once per
    /// [`KNOWN_PRUNE_EVERY_MS`].
    pub(crate) fn prune_known_if_due(&mut self, now_ms: i64) {
        if now_ms.saturating_sub(self.known_pruned_ms) < KNOWN_PRUNE_EVERY_MS {
            return;
        }
        self.known_pruned_ms = now_ms;
        self.prune_known(now_ms);
    }

    /// Forgets handled txids that are no longer held and older than the
    /// retention.
    fn prune_known(&mut self, now_ms: i64) {
        let held: BTreeSet<String> = held_orders(&self.engine)
            .into_iter()
            .filter_map(|h| h.txid)
            .chain(self.book.legacy.keys().cloned())
            .collect();
        let before = self.book.known.len();
        self.book
            .known
            .retain(|t, at| held.contains(t) || *at >= now_ms - KNOWN_RETENTION_MS);
        if self.book.known.len() != before {
            self.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{OrderStatus, OrderType};
    use rust_decimal_macros::dec;

    fn info(txid: &str, status: OrderStatus, vol_exec: Decimal) -> OrderInfo {
        OrderInfo {
            txid: txid.into(),
            pair: "XDGUSD".into(),
            status,
            side: Side::Buy,
            order_type: OrderType::Limit,
            limit_price: Some(dec!(0.1)),
            post_only: false,
            volume: dec!(100),
            vol_exec,
            cost: Decimal::ZERO,
            fee: Decimal::ZERO,
            avg_price: None,
            userref: 0,
            cl_ord_id: Some("0:A:1:en:1".into()),
            opened_at: 0,
            closed_at: None,
            reason: None,
        }
    }

    /// Proves: among copies of one client id a live one is adopted first,
    /// then the one that executed most; ids parse only in our form.
    #[test]
    fn best_copy_prefers_live_then_executed() {
        let a = info("T1", OrderStatus::Closed, dec!(100));
        let b = info("T2", OrderStatus::Open, dec!(0));
        let c = info("T3", OrderStatus::Canceled, dec!(10));
        assert_eq!(best_copy(&[&a, &b, &c]).unwrap().txid, "T2");
        assert_eq!(best_copy(&[&a, &c]).unwrap().txid, "T1");
        assert!(best_copy(&[]).is_none());
        assert!(our_id(&a).is_some());
        let mut foreign = a.clone();
        foreign.cl_ord_id = Some("sx:1".into());
        assert!(our_id(&foreign).is_none());
        assert_eq!(stray_open_key("T9"), "stray:T9");
    }

    /// Proves: the scan reaches back to an unresolved placement's send time
    /// even past its usual three-hour cap (else an order accepted and
    /// filled since would be missed, declared absent and placed twice), but
    /// never past the txid retention.
    #[cfg(feature = "local-ledger")]
    #[tokio::test]
    async fn the_scan_reaches_an_unresolved_placement_within_the_retention() {
        use crate::exchange::SimClock;
        use crate::exchange::paper::PaperExchange;
        use crate::runtime::RuntimeConfig;
        use crate::runtime::ledger::LocalLedger;
        use crate::runtime::store::{StoreLocation, TraderStore};

        let paper = crate::exchange::paper::test_config();
        let exchange = PaperExchange::new(paper.clone(), SimClock::new(0));
        let engine = crate::engine::EngineConfig::defaults(paper.pair.spec.clone());
        let cfg = RuntimeConfig::new("since", engine.validate().0);
        let window = cfg.placement_stale.window_ms;
        let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
        let ledger = LocalLedger::new(ledger_service::Ledger::memory());
        let mut rt = Runtime::new(cfg, exchange, ledger, store).await.unwrap();
        let now = 100 * 3_600_000;
        rt.last_scan_ms = Some(now - 5_000);
        assert_eq!(rt.scan_since(now), now - 5_000 - window, "the last scan");
        let hours_ago = |h: i64| PlacementIntent::sent(now - h * 3_600_000);
        rt.book.placing.insert("0:A:1:ex:9".into(), hours_ago(4));
        assert_eq!(
            rt.scan_since(now),
            now - 4 * 3_600_000 - window,
            "back to the send time, past the 3 h cap"
        );
        rt.book.placing.insert("0:B:1:ex:9".into(), hours_ago(9));
        assert_eq!(
            rt.scan_since(now),
            now - KNOWN_RETENTION_MS,
            "never past the retention"
        );
    }

    /// Proves that without the periodic exchange scan (a backtest sets
    /// `reconcile_every = 0`) the handled txids are still forgotten after
    /// their retention: over a day of fills the set holds only what is
    /// live or recent, instead of every order ever placed.
    #[cfg(feature = "local-ledger")]
    #[tokio::test]
    async fn handled_txids_are_pruned_without_the_scan() {
        use crate::exchange::paper::{PaperConfig, PaperExchange};
        use crate::exchange::{Clock, SimClock};
        use crate::pair::Candle;
        use crate::runtime::RuntimeConfig;
        use crate::runtime::ledger::LocalLedger;
        use crate::runtime::store::{StoreLocation, TraderStore};

        let start = 1_640_995_200_i64;
        let clock = SimClock::new(start * 1000);
        let paper = PaperConfig {
            initial_base: dec!(100000),
            initial_quote: dec!(10000),
            ..crate::exchange::paper::test_config()
        };
        let exchange = PaperExchange::new(paper.clone(), clock.clone());
        let mut engine = crate::engine::EngineConfig::defaults(paper.pair.spec.clone());
        engine.slots = 3;
        let mut cfg = RuntimeConfig::new("prune", engine.validate().0);
        cfg.reconcile_every = 0;
        let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
        let ledger = LocalLedger::new(ledger_service::Ledger::memory());
        let mut rt = Runtime::new(cfg, exchange.clone(), ledger, store)
            .await
            .unwrap();
        // A 2 % swing every 40 minutes: entries and exits fill all along.
        let mut peak_known = 0;
        for i in 0..(24 * 60) {
            let phase = (i / 20) % 2 == 0;
            let close = if phase { dec!(0.1000) } else { dec!(0.1020) };
            let candle = Candle {
                time: start + i * 60,
                open: close,
                high: dec!(0.1025),
                low: dec!(0.0995),
                close,
                volume: dec!(1000000),
            };
            exchange.step(&candle);
            let now_ms = clock.now_ms();
            rt.step(now_ms).await.unwrap();
            let held: BTreeSet<String> = held_orders(&rt.engine)
                .into_iter()
                .filter_map(|h| h.txid)
                .collect();
            for (txid, at) in &rt.book.known {
                assert!(
                    held.contains(txid)
                        || *at >= now_ms - KNOWN_RETENTION_MS - KNOWN_PRUNE_EVERY_MS,
                    "{txid} kept past its retention"
                );
            }
            peak_known = peak_known.max(rt.book.known.len());
        }
        assert!(
            rt.stats().fills > 100,
            "the market traded: {}",
            rt.stats().fills
        );
        assert!(
            peak_known < usize::try_from(rt.stats().fills).unwrap(),
            "the set stays bounded: peak {peak_known} of {} fills",
            rt.stats().fills
        );
    }
}
