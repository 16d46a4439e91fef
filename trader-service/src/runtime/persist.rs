//! Making a loop durable: the commit of state, bookkeeping, queued
//! ledger writes and the regime detector's records to the trader store in
//! one transaction, the outbox drain that delivers those writes to the
//! ledger, the bounded flush at shutdown, and the ledger ids restored
//! from the store after a crash.
//! Split from the loop itself so that the loop reads as the order of
//! its steps and this file as how each step is kept.

use crate::engine::{Event, OrderId};
use crate::exchange::Exchange;
use crate::runtime::book::{PersistedState, STATE_VERSION, position_key};
use crate::runtime::ledger::LedgerApi;
use crate::runtime::outbox::DrainEnd;
use crate::runtime::sink::{LedgerAck, LedgerSink};
use crate::runtime::store::{StateJson, StepCommit};
use crate::runtime::time::UnixMillis;
use crate::runtime::writes::LedgerWriteRequest;

use super::r#loop::{Runtime, RuntimeError};

/// What a delivered ack taught the runtime (see [`Runtime::apply_open_ack`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenAck {
    /// An engine exit learnt its ledger id; `acted` if the engine changed.
    Exit { acted: bool },
    /// A churner round trip learnt its ledger id.
    RoundTrip,
    /// Nothing to learn from this ack.
    Nothing,
}

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Gives a ledger `Opened` ack's position id to whoever placed the
    /// position: the engine exit it names, else the churner round trip of
    /// its open key. The one routing both the drain and the shutdown flush
    /// use.
    fn apply_open_ack(&mut self, ack: &LedgerAck) -> OpenAck {
        let LedgerAck::Opened {
            exit_order_id,
            open_key,
            position_id,
            ..
        } = ack
        else {
            return OpenAck::Nothing;
        };
        match exit_order_id {
            Some(exit) => match exit.parse::<OrderId>() {
                Ok(order_id) => OpenAck::Exit {
                    acted: self.apply(&Event::PositionOpened {
                        order_id,
                        position_id: position_id.clone(),
                    }),
                },
                Err(_) => OpenAck::Nothing,
            },
            None if self.book.churn.set_position_id(open_key, position_id) => OpenAck::RoundTrip,
            None => OpenAck::Nothing,
        }
    }

    /// Commits state + bookkeeping + queued writes if anything changed.
    pub(crate) async fn commit(&mut self, now_ms: i64) -> Result<bool, RuntimeError> {
        let lease = self
            .exchange
            .nonce_mark()
            .and_then(|mark| super::nonce_lease::renewal(mark, self.nonce_lease));
        if !self.dirty && self.pending.is_empty() && !self.market.needs_commit() && lease.is_none()
        {
            return Ok(false);
        }
        let state = PersistedState {
            version: STATE_VERSION,
            engine: std::borrow::Cow::Borrowed(&self.engine),
            book: std::borrow::Cow::Borrowed(&self.book),
        };
        let value =
            StateJson::encode(&state).map_err(|e| RuntimeError::CorruptState(e.to_string()))?;
        let entries = std::mem::take(&mut self.pending);
        if !entries.is_empty() {
            self.outbox_dirty = true;
        }
        let mut meta = std::mem::take(&mut self.pending_meta);
        if let Some(l) = lease {
            meta.push((
                super::nonce_lease::NONCE_LEASE_META_KEY.to_owned(),
                l.to_string(),
            ));
        }
        if std::mem::take(&mut self.throughput_dirty) {
            let json = serde_json::to_string(&self.throughput)
                .map_err(|e| RuntimeError::CorruptState(e.to_string()))?;
            meta.push((super::operator::THROUGHPUT_META_KEY.to_owned(), json));
        }
        let regime = self
            .market
            .regime_meta()
            .map_err(|e| RuntimeError::CorruptState(e.to_string()))?;
        let regime_total = regime.map(|r| {
            meta.extend(r.entries);
            r.checkpoint_total
        });
        self.step_no += 1;
        let report = self
            .store
            .commit_step(StepCommit {
                step: self.step_no,
                state: value,
                at: UnixMillis(now_ms),
                entries,
                meta,
            })
            .await?;
        tracing::debug!(
            step = self.step_no,
            queued = report.queued,
            "step committed"
        );
        self.dirty = false;
        self.acks_uncommitted = false;
        if let Some(l) = lease {
            self.nonce_lease = l;
        }
        if let Some(total) = regime_total {
            self.market.regime_saved(total);
        }
        Ok(true)
    }

    /// Drains the outbox once (bounded) and feeds acks to the engine.
    pub(super) async fn drain(&mut self, now_ms: i64) -> Result<usize, RuntimeError> {
        if std::mem::take(&mut self.retry_parked) {
            let n = self.outbox.retry_parked(UnixMillis(now_ms)).await?;
            tracing::info!(requeued = n, "parked ledger writes sent again");
            self.outbox_dirty |= n > 0;
        }
        if !self.outbox_dirty {
            return Ok(0);
        }
        let sink = LedgerSink::new(&self.ledger, &self.store, &self.cfg.bot_id);
        let report = self.outbox.drain_once(&sink, UnixMillis(now_ms)).await?;
        for p in &report.parked {
            tracing::error!(key = %p.entry.key, reason = %p.reason, "ledger rejected a write: parked");
            if let Ok(LedgerWriteRequest::Reprice(w)) =
                serde_json::from_value::<LedgerWriteRequest>(p.entry.payload.clone())
            {
                self.halt_subsidy(w.slot, &p.reason);
            }
        }
        match &report.end {
            DrainEnd::Empty => self.outbox_dirty = false,
            DrainEnd::Failed {
                key,
                attempts,
                error,
                ..
            } => {
                tracing::warn!(%key, attempts, %error, "ledger unavailable: outbox holds, trading goes on");
            }
            DrainEnd::Waiting { .. } | DrainEnd::BatchLimit => {}
        }
        let n = report.delivered.len();
        // Position ids are bookkeeping, not trading state: they ride along
        // with the next real commit instead of costing one of their own. A
        // crash before that re-feeds them from the store's `position:`
        // metadata (written before the ack was recorded) on restore.
        let was_dirty = self.dirty;
        let mut acted = false;
        for d in report.delivered {
            match self.apply_open_ack(&d.ack) {
                OpenAck::Exit { acted: a } => {
                    acted |= a;
                    self.acks_uncommitted = true;
                }
                OpenAck::RoundTrip => self.acks_uncommitted = true,
                OpenAck::Nothing => {}
            }
        }
        self.dirty = was_dirty || acted;
        Ok(n)
    }

    /// Flushes the outbox (shutdown), bounded by `shutdown_flush`.
    ///
    /// # Errors
    /// [`RuntimeError`] if the store fails.
    pub async fn flush(&mut self, now_ms: i64) -> Result<(), RuntimeError> {
        self.dirty |= self.acks_uncommitted;
        self.market.save_all_next();
        self.commit(now_ms).await?;
        let sink = LedgerSink::new(&self.ledger, &self.store, &self.cfg.bot_id);
        match tokio::time::timeout(
            self.cfg.shutdown_flush,
            self.outbox.flush(&sink, UnixMillis(now_ms)),
        )
        .await
        {
            Ok(r) => {
                let r = r?;
                tracing::info!(delivered = r.delivered.len(), end = ?r.end, "outbox flushed");
                for d in r.delivered {
                    if self.apply_open_ack(&d.ack) == OpenAck::RoundTrip {
                        self.dirty = true;
                    }
                }
            }
            Err(_) => {
                tracing::warn!("outbox flush timed out; entries stay queued for the next start")
            }
        }
        self.commit(now_ms).await?;
        Ok(())
    }

    /// Re-feeds ledger ids known in the store's metadata to engine exits
    /// and churner round trips that lack them (an ack recorded just before
    /// a crash).
    pub(super) async fn restore_position_ids(&mut self) -> Result<(), RuntimeError> {
        let exits: Vec<(OrderId, String)> = self
            .engine
            .open_exits()
            .filter(|x| x.position_id.is_none())
            .filter_map(|x| {
                let key = position_key(x.id.slot, x.id.trade, x.id.cycle);
                self.book
                    .positions
                    .get(&key)
                    .map(|p| (x.id, p.open_key.clone()))
            })
            .collect();
        for (order_id, open_key) in exits {
            if let Some(position_id) = self
                .store
                .get_meta(&crate::runtime::sink::position_meta_key(&open_key))
                .await?
            {
                self.apply(&Event::PositionOpened {
                    order_id,
                    position_id,
                });
            }
        }
        let churn_keys: Vec<String> = self
            .book
            .churn
            .open_keys_without_id()
            .map(str::to_owned)
            .collect();
        for open_key in churn_keys {
            if let Some(position_id) = self
                .store
                .get_meta(&crate::runtime::sink::position_meta_key(&open_key))
                .await?
            {
                self.book.churn.set_position_id(&open_key, &position_id);
            }
        }
        Ok(())
    }
}
