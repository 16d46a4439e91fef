//! Start-up and periodic reconciliation (SPEC §9).
//!
//! - **Restore**: [`super::r#loop::Runtime::new`] reloads the engine and the
//!   runtime book; unresolved placement intents are looked up by
//!   `cl_ord_id` before any re-placement (see the loop); fills missed while
//!   down come through the normal poll path (cumulative figures against
//!   what was already delivered).
//! - **Legacy import**: an open order on our pair that the engine does not
//!   hold and that is not one of our own entries (an exit of a pre-ledger
//!   run) becomes a `legacy` ledger position (`migration: true`, entry
//!   context estimated from the exit price and the profit target), keyed
//!   `legacy:<txid>` so re-running never duplicates, and is tracked until it
//!   fills (close `filled`) or vanishes (close `exchange_cancelled`).
//! - **Strays** (copies of our orders the runtime never tracked) are the
//!   scan's (`strays.rs`), which runs first and shares its open orders.
//! - **Ledger coverage** (only when the outbox is empty, so in-flight writes
//!   are not mistaken for gaps): every open ledger position must be worked
//!   by a live exit we track; one that is not is closed
//!   `exchange_cancelled` with an explicit note, unless a write for it is
//!   parked (the ledger refused it): that one waits for the operator.

use std::collections::BTreeSet;

use healgrid_proto::ledger::v1 as pb;
use rust_decimal::Decimal;

use crate::engine::{OrderId, OrderRole, TradeId};
use crate::exchange::{Exchange, OrderInfo, OrderStatus};
use crate::pair::Side;
use crate::runtime::book::{CallBudget, LegacyOrder, held_orders};
use crate::runtime::fills::Executed;
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::{Runtime, RuntimeError};
use crate::runtime::sink::position_meta_key;
use crate::runtime::writes::{CloseKind, CloseWrite, LedgerWriteRequest, OpenWrite, SlotModeKind};

/// Ledger slot id of imported legacy positions: above every engine slot
/// (the engine allows at most 1000, ids `0..1000`), so their subsidy never
/// mixes with a real slot's.
pub const LEGACY_SLOT_ID: u32 = 1000;

/// Best-effort entry price of a legacy exit: the price from which the exit
/// would be `profit_pct` away.
#[must_use]
pub fn estimated_entry(
    side: Side,
    exit_price: Decimal,
    profit_pct: Decimal,
    decimals: u32,
) -> Decimal {
    let f = profit_pct / Decimal::ONE_HUNDRED;
    let raw = match side {
        // A sell exit closes a long bought lower.
        Side::Sell => exit_price / (Decimal::ONE + f),
        // A buy exit closes a short sold higher.
        Side::Buy => exit_price / (Decimal::ONE - f).max(Decimal::new(1, 2)),
    };
    raw.round_dp(decimals)
}

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Imports foreign exits and checks ledger coverage. Exchange or ledger
    /// failures only postpone it (retried next loop).
    pub(crate) async fn reconcile(
        &mut self,
        now_ms: i64,
        budget: &mut CallBudget,
    ) -> Result<(), RuntimeError> {
        self.reconciled = true;
        let Some(open) = self.scan(now_ms, budget).await? else {
            tracing::warn!("reconciliation: exchange unavailable; retried next loop");
            self.reconciled = false;
            return Ok(());
        };
        self.import_legacy(&open);
        if self.pending.is_empty() && self.outbox.depth().await? == 0 {
            self.check_coverage(now_ms).await?;
            self.sync_subsidy().await;
        }
        Ok(())
    }

    fn import_legacy(&mut self, open: &[OrderInfo]) {
        let held: BTreeSet<String> = held_orders(&self.engine)
            .into_iter()
            .flat_map(|h| [Some(h.id.to_string()), h.txid])
            .flatten()
            .collect();
        let mut open: Vec<&OrderInfo> = open.iter().collect();
        open.sort_by(|a, b| a.txid.cmp(&b.txid));
        for o in open {
            if o.pair != self.cfg.engine.pair.symbol
                || held.contains(&o.txid)
                || self.book.legacy.contains_key(&o.txid)
                || !o.status.is_live()
            {
                continue;
            }
            let cl = o.cl_ord_id.as_deref().unwrap_or_default();
            if held.contains(cl)
                || cl.starts_with(crate::healing::churner::ORDER_PREFIX)
                || self.book.placing.contains_key(cl)
                || self.book.stray_exits.contains_key(cl)
                || self.book.known.contains_key(&o.txid)
            {
                continue;
            }
            // Our own entries, and exits duplicating one the engine knows,
            // are strays: the scan cancels them and adopts their fills.
            if let Ok(id) = cl.parse::<OrderId>()
                && (id.role == OrderRole::Entry || self.duplicates_engine_exit(id))
            {
                continue;
            }
            let Some(limit) = o.limit_price else { continue };
            let volume = o.remaining();
            if volume <= Decimal::ZERO {
                continue;
            }
            let entry_price = estimated_entry(
                o.side,
                limit,
                self.cfg.engine.profit_pct,
                self.cfg.engine.pair.price_decimals,
            );
            if entry_price <= Decimal::ZERO {
                continue;
            }
            self.book.legacy_seq += 1;
            let open_key = format!("legacy:{}", o.txid);
            let trade = match o.side {
                Side::Sell => TradeId::B,
                Side::Buy => TradeId::A,
            };
            tracing::warn!(txid = %o.txid, %open_key, side = ?o.side, price = %limit, %volume,
                "foreign exit on our pair: imported as a legacy position (migration)");
            self.pending.push(
                LedgerWriteRequest::Open(OpenWrite {
                    open_key: open_key.clone(),
                    exit_order_id: None,
                    slot: LEGACY_SLOT_ID,
                    trade,
                    cycle: self.book.legacy_seq,
                    slot_mode: SlotModeKind::Legacy,
                    entry_price,
                    entry_cost: entry_price * volume,
                    entry_fee: Decimal::ZERO,
                    entry_volume: volume,
                    entry_time: o.opened_at.div_euclid(1000),
                    exit_price: limit,
                    target_profit_pct: self.cfg.engine.profit_pct,
                    exit_txid: Some(o.txid.clone()),
                    migration: true,
                })
                .to_entry(),
            );
            self.book.legacy.insert(
                o.txid.clone(),
                LegacyOrder {
                    open_key,
                    side: o.side,
                    entry_price,
                    exit_price: limit,
                    seen: Executed {
                        order_id: o.txid.clone(),
                        volume: o.vol_exec,
                        cost: o.cost,
                        fee: o.fee,
                    },
                },
            );
            self.dirty = true;
        }
    }

    async fn check_coverage(&mut self, now_ms: i64) -> Result<(), RuntimeError> {
        let resp = match self
            .ledger
            .list_open_positions(pb::ListOpenPositionsRequest {
                bot_id: self.cfg.bot_id.clone(),
                slot_id: None,
            })
            .await
        {
            Ok(r) => r,
            Err(s) => {
                tracing::warn!(code = ?s.code(), "reconciliation: ledger unavailable; coverage checked later");
                return Ok(());
            }
        };
        let tracked: BTreeSet<&str> = self
            .book
            .positions
            .values()
            .map(|p| p.open_key.as_str())
            .chain(self.book.legacy.values().map(|l| l.open_key.as_str()))
            .chain(self.book.churn.open_keys())
            .collect();
        // A position with a parked write is the operator's: the ledger
        // refused what the trader knows happened (a fill, say), so closing
        // it `exchange_cancelled` would record something else, and under
        // the parked write's own key at that.
        let parked: BTreeSet<String> = self
            .outbox
            .parked()
            .await?
            .into_iter()
            .filter_map(|e| serde_json::from_value::<LedgerWriteRequest>(e.payload).ok())
            .filter_map(|w| w.open_key().map(str::to_owned))
            .collect();
        let orphans: Vec<pb::Position> = resp
            .positions
            .into_iter()
            .filter(|p| !tracked.contains(p.open_key.as_str()))
            .filter(|p| {
                let held = parked.contains(&p.open_key);
                if held {
                    tracing::warn!(position_id = p.position_id, open_key = %p.open_key,
                        "ledger position has no live exit but a write for it is parked: left to the operator");
                }
                !held
            })
            .collect();
        for p in orphans {
            tracing::warn!(position_id = p.position_id, open_key = %p.open_key,
                "ledger position has no live exit: closing exchange_cancelled");
            self.store
                .put_meta(&position_meta_key(&p.open_key), &p.position_id.to_string())
                .await?;
            self.pending.push(
                LedgerWriteRequest::Close(CloseWrite {
                    open_key: p.open_key.clone(),
                    reason: CloseKind::ExchangeCancelled,
                    exit_price: None,
                    exit_cost: None,
                    exit_fee: None,
                    exit_time: now_ms.div_euclid(1000),
                    net_profit: None,
                    note: "exit no longer on the exchange (reconciliation)".into(),
                    exit_txid: None,
                })
                .to_entry(),
            );
            self.dirty = true;
        }
        Ok(())
    }

    /// A polled legacy exit: closes its position when it fills completely
    /// (`filled`, best-effort net) or leaves the book (`exchange_cancelled`).
    pub(crate) fn absorb_legacy(&mut self, info: &OrderInfo, now_ms: i64) {
        if info.status.is_live() {
            return;
        }
        let Some(l) = self.book.legacy.remove(&info.txid) else {
            return;
        };
        self.dirty = true;
        let vol = info.vol_exec - l.seen.volume;
        let cost = info.cost - l.seen.cost;
        let fee = info.fee - l.seen.fee;
        let at = info.closed_at.unwrap_or(now_ms).div_euclid(1000);
        let close = if info.status == OrderStatus::Closed && vol > Decimal::ZERO {
            let gross = match l.side {
                Side::Sell => cost - l.entry_price * vol,
                Side::Buy => l.entry_price * vol - cost,
            };
            tracing::info!(open_key = %l.open_key, txid = %info.txid, net = %(gross - fee),
                "legacy exit filled: position closes");
            CloseWrite {
                open_key: l.open_key,
                reason: CloseKind::Filled,
                exit_price: Some((cost / vol).normalize()),
                exit_cost: Some(cost),
                exit_fee: Some(fee),
                exit_time: at,
                net_profit: Some(gross - fee),
                note: format!("legacy exit {} filled", info.txid),
                exit_txid: Some(info.txid.clone()),
            }
        } else {
            tracing::warn!(open_key = %l.open_key, txid = %info.txid, status = ?info.status,
                "legacy exit left the book: position closes exchange_cancelled");
            CloseWrite {
                open_key: l.open_key,
                reason: CloseKind::ExchangeCancelled,
                exit_price: None,
                exit_cost: None,
                exit_fee: None,
                exit_time: at,
                net_profit: None,
                note: format!(
                    "legacy exit {} {:?} on the exchange",
                    info.txid, info.status
                ),
                exit_txid: None,
            }
        };
        self.pending
            .push(LedgerWriteRequest::Close(close).to_entry());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// Proves: the entry estimate puts the exit `profit_pct` away on the
    /// right side.
    #[test]
    fn legacy_entry_estimate() {
        assert_eq!(
            estimated_entry(Side::Sell, dec!(0.101), dec!(1), 7),
            dec!(0.1)
        );
        assert_eq!(
            estimated_entry(Side::Buy, dec!(0.099), dec!(1), 7),
            dec!(0.1)
        );
    }
}
