//! Polling the orders we hold and feeding what the exchange reports to the
//! engine: new executions as fills (cumulative figures against what was
//! already delivered, so replays never duplicate), then `OrderGone` for
//! orders that left the book. Kept apart from the loop so each file stays
//! about one job.

use std::collections::BTreeMap;

use crate::engine::{Event, GoneReason, OrderId, OrderRole};
use crate::exchange::{Exchange, OrderInfo, OrderStatus};
use crate::runtime::book::{CallBudget, find_by_txid, find_held, held_orders};
use crate::runtime::fills::{Executed, advance};
use crate::runtime::ledger::LedgerApi;
use crate::runtime::r#loop::{QUERY_BATCH, Runtime};

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Feeds one polled order to the engine: new executions as fills, then
    /// `OrderGone` if it left the book and the engine still holds it.
    pub(crate) fn absorb(&mut self, info: &OrderInfo, now_ms: i64) {
        if self.book.legacy.contains_key(&info.txid) {
            self.absorb_legacy(info, now_ms);
            return;
        }
        let Some(order_id) = self
            .book
            .seen
            .get(&info.txid)
            .and_then(|s| s.order_id.parse::<OrderId>().ok())
            .or_else(|| self.held_by_txid(&info.txid))
        else {
            return;
        };
        let seen = self
            .book
            .seen
            .entry(info.txid.clone())
            .or_insert_with(|| Executed {
                order_id: order_id.to_string(),
                ..Executed::default()
            });
        let at = info.closed_at.unwrap_or(now_ms).div_euclid(1000);
        if let Some(d) = advance(seen, info.vol_exec, info.cost, info.fee, info.avg_price) {
            self.dirty = true;
            self.stats.fills += 1;
            self.stats.fees_paid += d.fee;
            tracing::info!(%order_id, txid = %info.txid, price = %d.price, volume = %d.volume,
                fee = %d.fee, "fill");
            self.apply(&Event::Fill {
                order_id,
                txid: info.txid.clone(),
                price: d.price,
                volume: d.volume,
                cost: d.cost,
                fee: d.fee,
                at,
            });
        }
        if !info.status.is_live() {
            self.book.seen.remove(&info.txid);
            self.book.known.insert(info.txid.clone(), now_ms);
            self.dirty = true;
            if let Some((role, cancel_requested)) = find_held(&self.engine, order_id) {
                let reason = match info.status {
                    OrderStatus::Expired => GoneReason::Expired,
                    _ if cancel_requested => GoneReason::CancelledByEngine,
                    _ => GoneReason::Cancelled,
                };
                if role == OrderRole::Exit && reason == GoneReason::CancelledByEngine {
                    // Our own cancel (a reprice or a close): expected, not an alarm.
                    tracing::debug!(%order_id, txid = %info.txid, "exit cancelled as requested");
                } else if role == OrderRole::Exit {
                    tracing::warn!(%order_id, txid = %info.txid, status = ?info.status,
                        "exit left the book unfilled: sticky exit is re-placed, position stays open");
                } else {
                    tracing::info!(%order_id, status = ?info.status, "entry left the book");
                }
                self.apply(&Event::OrderGone { order_id, reason });
            }
        }
    }

    fn held_by_txid(&self, txid: &str) -> Option<OrderId> {
        find_by_txid(&self.engine, txid)
    }

    /// Polls every order we hold (engine + legacy) in batches.
    pub(crate) async fn poll_all(&mut self, now_ms: i64, budget: &mut CallBudget) {
        let mut txids: Vec<String> = held_orders(&self.engine)
            .into_iter()
            .filter_map(|h| h.txid)
            .collect();
        txids.extend(self.book.legacy.keys().cloned());
        txids.sort();
        txids.dedup();
        for chunk in txids.chunks(QUERY_BATCH) {
            budget.force(1);
            match self.exchange.query_orders(chunk).await {
                Ok(infos) => {
                    let by_txid: BTreeMap<&str, &OrderInfo> =
                        infos.iter().map(|i| (i.txid.as_str(), i)).collect();
                    for t in chunk {
                        if let Some(info) = by_txid.get(t.as_str()) {
                            self.absorb(info, now_ms);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "order poll failed; fills are picked up next loop");
                    return;
                }
            }
        }
    }
}
