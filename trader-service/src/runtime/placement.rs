//! Carrying out the engine's orders on the exchange: cancels first (they
//! free funds), then placements, within the loop's private-call budget.
//!
//! Placements are **write-ahead**: every placement of a round is committed
//! as intended (`RuntimeBook::placing`) before the exchange hears of it. An
//! intent whose outcome is unknown (an ambiguous answer, a crash in
//! between) is not placed here at all: the exchange scan (`strays.rs`)
//! looks it up by `cl_ord_id` and decides by the rule of
//! [`crate::runtime::intents`] whether it is adopted or may be placed
//! again. Meanwhile every other order keeps trading.

use crate::crash_point::CrashPoint;
use crate::engine::{Event, GoneReason, OrderId, OrderRole, PlaceFailReason};
use crate::exchange::{Exchange, ExchangeError, OrderKind, OrderRequest};
use crate::runtime::book::{CallBudget, HeldOrder, held_orders};
use crate::runtime::intents::PlacementIntent;
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::{Runtime, RuntimeError};
use healgrid_proto::crash::reached_at;

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Carries out cancels, then placements, within the budget. Returns how
    /// many were deferred to the next loop.
    pub(crate) async fn execute(
        &mut self,
        now_ms: i64,
        budget: &mut CallBudget,
    ) -> Result<u32, RuntimeError> {
        // A refresh is cancel -> gone -> replacement: a few rounds per loop.
        for _round in 0..4 {
            self.settle_unplaced_cancels();
            let held = held_orders(&self.engine);
            let cancels: Vec<HeldOrder> = held
                .iter()
                .filter(|h| h.cancel_requested && h.txid.is_some())
                .cloned()
                .collect();
            // Unresolved intents wait for the scan; the rest go ahead.
            let places: Vec<HeldOrder> = held
                .into_iter()
                .filter(|h| h.pending_placement)
                .filter(|h| !self.book.placing.contains_key(&h.id.to_string()))
                .collect();
            let wanted = u32::try_from(cancels.len() + places.len()).unwrap_or(u32::MAX);
            if wanted == 0 {
                return Ok(0);
            }
            if self.halted.is_some() {
                tracing::debug!(wanted, mode = ?self.mode(), "not trading: actions wait");
                return Ok(wanted);
            }
            // Paused: no entries and no cancels, but the exit of a filled
            // entry is still placed. Filled inventory is never left without
            // its exit, and the fill reaches the ledger (its open is written
            // with the exit's txid) while the pause lasts.
            let (cancels, places) = if self.book.paused {
                let exits: Vec<HeldOrder> = places
                    .into_iter()
                    .filter(|h| h.role == OrderRole::Exit)
                    .collect();
                (Vec::new(), exits)
            } else {
                (cancels, places)
            };
            if cancels.is_empty() && places.is_empty() {
                tracing::debug!(wanted, mode = ?self.mode(), "not trading: actions wait");
                return Ok(wanted);
            }
            let mut did = 0u32;
            for c in &cancels {
                // cancel + confirming query
                if !budget.try_take(2) {
                    break;
                }
                did += 1;
                self.cancel_one(c, now_ms).await;
            }
            // Write-ahead: every placement of this round is committed as
            // intended before the exchange hears of it.
            let chosen: Vec<HeldOrder> = places.into_iter().take(budget.left() as usize).collect();
            for p in &chosen {
                self.book
                    .placing
                    .insert(p.id.to_string(), PlacementIntent::sent(now_ms));
                self.dirty = true;
            }
            if !chosen.is_empty() {
                self.commit(now_ms).await?;
            }
            for p in &chosen {
                if !budget.try_take(1) {
                    break;
                }
                did += 1;
                if p.role == OrderRole::Exit {
                    reached_at(CrashPoint::ExitSending);
                }
                if !self.place_one(p, now_ms).await {
                    break;
                }
            }
            if did == 0 {
                tracing::info!(
                    deferred = wanted,
                    used = budget.used(),
                    "private-call budget exhausted: actions deferred to next loop"
                );
                return Ok(wanted);
            }
        }
        Ok(0)
    }

    /// Settles cancels the engine asked for on entries that have no txid
    /// (a refresh requested while the entry was still waiting to be placed:
    /// paused, deferred by the budget, or retrying a failed placement).
    ///
    /// Such an entry never gets a txid to cancel, so without this step its
    /// trade would wait forever for an `OrderGone`. An entry whose placement
    /// was never attempted (or whose intent the scan found stale) is gone at
    /// once, locally; one with an unresolved placement intent may exist on
    /// the exchange, so it waits for the scan: adopted, it is cancelled by
    /// the normal path.
    fn settle_unplaced_cancels(&mut self) {
        let unplaced: Vec<HeldOrder> = held_orders(&self.engine)
            .into_iter()
            .filter(|h| h.cancel_requested && h.txid.is_none())
            .filter(|h| !self.book.placing.contains_key(&h.id.to_string()))
            .collect();
        for h in unplaced {
            tracing::info!(order_id = %h.id, "entry never reached the exchange: cancelled locally");
            self.apply(&Event::OrderGone {
                order_id: h.id,
                reason: GoneReason::CancelledByEngine,
            });
        }
    }

    async fn cancel_one(&mut self, c: &HeldOrder, now_ms: i64) {
        let Some(txid) = c.txid.clone() else { return };
        match self.exchange.cancel_order(&txid).await {
            Ok(()) | Err(ExchangeError::UnknownOrder { .. }) => {
                self.stats.cancels += 1;
                tracing::info!(order_id = %c.id, %txid, "cancelled (refresh)");
                if c.role == OrderRole::Exit {
                    reached_at(CrashPoint::ExitCancelled);
                }
                // Confirm and pick up any racing fill before OrderGone.
                match self
                    .exchange
                    .query_orders(std::slice::from_ref(&txid))
                    .await
                {
                    Ok(infos) => {
                        if let Some(info) = infos.iter().find(|i| i.txid == txid) {
                            self.absorb(info, now_ms);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, %txid, "cancel confirm query failed"),
                }
            }
            Err(e) => {
                tracing::warn!(order_id = %c.id, %txid, error = %e, "cancel failed; retried next loop")
            }
        }
    }

    /// Records that the engine's order `order_id` is on the exchange under
    /// `txid` (acknowledged or adopted): the one path every tracked txid
    /// takes, so the stray scan knows it.
    pub(crate) fn placed(&mut self, order_id: OrderId, txid: String, now_ms: i64) {
        self.book.placing.remove(&order_id.to_string());
        self.book.known.insert(txid.clone(), now_ms);
        self.poll_next = true;
        self.apply(&Event::Placed { order_id, txid });
    }

    /// Places one order whose intent is committed. Returns `false` when
    /// placing should stop this loop.
    async fn place_one(&mut self, p: &HeldOrder, now_ms: i64) -> bool {
        let id = p.id.to_string();
        let req = OrderRequest {
            pair: self.cfg.engine.pair.symbol.clone(),
            side: p.side,
            kind: if p.market {
                OrderKind::Market
            } else {
                OrderKind::Limit {
                    price: p.price,
                    post_only: self.cfg.post_only,
                }
            },
            volume: p.volume,
            userref: self.cfg.userref,
            client_order_id: id.clone(),
        };
        match self.exchange.add_order(&req).await {
            Ok(ack) => {
                self.stats.placements += 1;
                tracing::info!(order_id = %id, txid = %ack.txid, side = ?p.side, price = %p.price,
                    volume = %p.volume, role = ?p.role, "placed");
                self.placed(p.id, ack.txid, now_ms);
                true
            }
            Err(e) => self.place_failed(p, &id, e),
        }
    }

    fn place_failed(&mut self, p: &HeldOrder, id: &str, e: ExchangeError) -> bool {
        let reason = match &e {
            ExchangeError::InsufficientFunds { .. } => PlaceFailReason::InsufficientFunds,
            ExchangeError::PostOnlyWouldCross { .. } => PlaceFailReason::WouldCross,
            ExchangeError::OrdersLimitExceeded { .. } => PlaceFailReason::OrdersLimit,
            ExchangeError::InvalidRequest { message } if message.contains("minimum") => {
                PlaceFailReason::BelowMinimum
            }
            ExchangeError::InvalidRequest { message } => PlaceFailReason::Other(message.clone()),
            ExchangeError::Auth { message } => {
                tracing::error!(error = %message, "exchange authentication failed: trading halted");
                self.book.placing.remove(id);
                self.halted = Some(format!("exchange authentication failed: {message}"));
                return false;
            }
            ExchangeError::Ambiguous { .. } => {
                // The intent stays (sent at this loop's time): the scan looks
                // it up; other orders keep trading meanwhile.
                tracing::warn!(order_id = %id, error = %e,
                    "placement outcome unknown: not placed again until found or stale");
                self.poll_next = true;
                return true;
            }
            ExchangeError::DuplicateOrder { .. } => {
                if let Some(i) = self.book.placing.get_mut(id) {
                    i.exists = true;
                }
                tracing::warn!(order_id = %id, error = %e,
                    "exchange says the order already exists: adopted by lookup, never placed again");
                self.poll_next = true;
                return true;
            }
            _ => {
                tracing::warn!(order_id = %id, error = %e, "placement failed transiently; retried next loop");
                self.book.placing.remove(id);
                return false;
            }
        };
        tracing::warn!(order_id = %id, ?reason, "placement refused");
        self.book.placing.remove(id);
        self.apply(&Event::PlaceFailed {
            order_id: p.id,
            reason,
        });
        true
    }
}
