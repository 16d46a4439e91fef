//! Carrying out the engine's orders on the exchange: cancels first (they
//! free funds), then placements, within the loop's private-call budget.
//!
//! Placements are **write-ahead**: every placement of a round is committed
//! as intended (`RuntimeBook::placing`) before the exchange hears of it. An
//! intent still unresolved when it comes up again (a crash, an ambiguous
//! answer) is looked up by `cl_ord_id` (open orders, then the orders of
//! recent trades) and adopted if found, so an order is never placed twice.

use crate::engine::{Event, GoneReason, PlaceFailReason};
use crate::exchange::{Exchange, ExchangeError, OrderKind, OrderRequest};
use crate::runtime::book::{CallBudget, HeldOrder, held_orders};
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::{QUERY_BATCH, Runtime, RuntimeError};

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
            self.settle_unplaced_cancels(budget).await;
            let held = held_orders(&self.engine);
            let cancels: Vec<HeldOrder> = held
                .iter()
                .filter(|h| h.cancel_requested && h.txid.is_some())
                .cloned()
                .collect();
            let places: Vec<HeldOrder> = held.into_iter().filter(|h| h.pending_placement).collect();
            let wanted = u32::try_from(cancels.len() + places.len()).unwrap_or(u32::MAX);
            if wanted == 0 {
                return Ok(0);
            }
            if self.book.paused || self.halted.is_some() {
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
            let unresolved: std::collections::BTreeSet<String> =
                self.book.placing.keys().cloned().collect();
            let chosen: Vec<HeldOrder> = places.into_iter().take(budget.left() as usize).collect();
            for p in &chosen {
                self.book.placing.entry(p.id.to_string()).or_insert(now_ms);
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
                if !self
                    .place_one(p, budget, unresolved.contains(&p.id.to_string()))
                    .await
                {
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
    /// was never attempted is gone at once, locally; one with an unresolved
    /// placement intent may exist on the exchange, so it is looked up by
    /// `cl_ord_id` first: found, it is adopted (and cancelled by the normal
    /// path in the same loop); not found, it is gone.
    async fn settle_unplaced_cancels(&mut self, budget: &mut CallBudget) {
        let unplaced: Vec<HeldOrder> = held_orders(&self.engine)
            .into_iter()
            .filter(|h| h.cancel_requested && h.txid.is_none())
            .collect();
        for h in unplaced {
            let id = h.id.to_string();
            if let Some(&intent_at) = self.book.placing.get(&id) {
                if self.book.paused || self.halted.is_some() {
                    continue;
                }
                match self.lookup(&id, intent_at, budget).await {
                    Ok(Some(txid)) => {
                        tracing::warn!(order_id = %id, %txid,
                            "cancel of an unresolved placement: found by cl_ord_id, cancelling it");
                        self.book.placing.remove(&id);
                        self.apply(&Event::Placed {
                            order_id: h.id,
                            txid,
                        });
                        continue;
                    }
                    Ok(None) => {
                        self.book.placing.remove(&id);
                    }
                    Err(e) => {
                        tracing::warn!(order_id = %id, error = %e,
                            "cl_ord_id lookup failed; cancel of unplaced entry waits");
                        continue;
                    }
                }
            }
            tracing::info!(order_id = %id, "entry never reached the exchange: cancelled locally");
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

    /// Places one order (after a `cl_ord_id` lookup if an earlier attempt
    /// is unresolved). Returns `false` when placing should stop this loop.
    async fn place_one(
        &mut self,
        p: &HeldOrder,
        budget: &mut CallBudget,
        unresolved: bool,
    ) -> bool {
        let id = p.id.to_string();
        let earlier = self.book.placing.get(&id).copied().filter(|_| unresolved);
        if let Some(intent_at) = earlier {
            match self.lookup(&id, intent_at, budget).await {
                Ok(Some(txid)) => {
                    tracing::warn!(order_id = %id, %txid,
                        "unresolved placement found on the exchange by cl_ord_id: not placing again");
                    self.book.placing.remove(&id);
                    self.apply(&Event::Placed {
                        order_id: p.id,
                        txid,
                    });
                    self.poll_next = true;
                    return true;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(order_id = %id, error = %e, "cl_ord_id lookup failed; placement waits");
                    return false;
                }
            }
        }
        let req = OrderRequest {
            pair: self.cfg.engine.pair.symbol.clone(),
            side: p.side,
            kind: OrderKind::Limit {
                price: p.price,
                post_only: self.cfg.post_only,
            },
            volume: p.volume,
            userref: self.cfg.userref,
            client_order_id: id.clone(),
        };
        match self.exchange.add_order(&req).await {
            Ok(ack) => {
                self.stats.placements += 1;
                self.book.placing.remove(&id);
                self.poll_next = true;
                tracing::info!(order_id = %id, txid = %ack.txid, side = ?p.side, price = %p.price,
                    volume = %p.volume, role = ?p.role, "placed");
                self.apply(&Event::Placed {
                    order_id: p.id,
                    txid: ack.txid,
                });
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
            ExchangeError::Ambiguous { .. } | ExchangeError::DuplicateOrder { .. } => {
                // Keep the intent: the next attempt looks it up first.
                tracing::warn!(order_id = %id, error = %e, "placement outcome unknown; looked up next loop");
                self.poll_next = true;
                return false;
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

    /// Finds an order by `cl_ord_id`: open orders first, then the orders of
    /// trades since the intent (an order may have filled already).
    pub(crate) async fn lookup(
        &self,
        cl_ord_id: &str,
        intent_at: i64,
        budget: &mut CallBudget,
    ) -> Result<Option<String>, ExchangeError> {
        budget.force(1);
        let open = self.exchange.open_orders().await?;
        if let Some(o) = open
            .iter()
            .find(|o| o.cl_ord_id.as_deref() == Some(cl_ord_id))
        {
            return Ok(Some(o.txid.clone()));
        }
        budget.force(1);
        let trades = self.exchange.trades_since(intent_at - 60_000).await?;
        let mut txids: Vec<String> = trades.into_iter().map(|t| t.order_txid).collect();
        txids.sort();
        txids.dedup();
        for chunk in txids.chunks(QUERY_BATCH) {
            budget.force(1);
            let infos = self.exchange.query_orders(chunk).await?;
            if let Some(o) = infos
                .iter()
                .find(|o| o.cl_ord_id.as_deref() == Some(cl_ord_id))
            {
                return Ok(Some(o.txid.clone()));
            }
        }
        Ok(None)
    }
}
