//! What a trader's store holds, read without running the trader
//! (`trader-service store-audit --store PATH`): the orders its slots and
//! churners hold, the exits of positions it adopted, the subsidy view, the
//! outbox, and the placements whose outcome is still unknown. An operator reads it to see what a stopped
//! trader will resume with; the fault suite's checker compares it with the
//! exchange and the ledger.
//!
//! It decodes the state exactly as a restart does
//! ([`crate::runtime::book::decode_state`]), so
//! what it shows is what the next `run` would restore.

use std::collections::BTreeMap;
use std::path::Path;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::{EngineState, OrderRole, SlotId};
use crate::healing::churner::ChurnStage;
use crate::pair::Side;
use crate::runtime::book::{RuntimeBook, decode_state, held_orders};
use crate::runtime::entry::OutboxState;
use crate::runtime::status::OrderStatusView;
use crate::runtime::store::{StoreError, TraderStore};

/// Why a store cannot be audited.
#[derive(Debug, Error)]
pub enum AuditError {
    /// No store file at the path (an audit never creates one).
    #[error("no trader store at {0}")]
    Missing(String),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored state does not decode: the next `run` would refuse it too.
    #[error("the stored state does not decode: {0}")]
    Corrupt(String),
}

/// Who holds an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderOwner {
    /// A grid slot's trade (entry or exit).
    Grid,
    /// A slot's churner (its entry, its exit, or a handed-over round trip's
    /// exit).
    Churner,
}

/// One order the store holds: who holds it, and the order as the status
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOrder {
    /// Grid or churner.
    pub owner: OrderOwner,
    /// The slot.
    pub slot: SlotId,
    /// The order.
    #[serde(flatten)]
    pub order: OrderStatusView,
}

/// An exit the trader tracks until it fills without a slot or churner
/// holding it: an imported legacy exit, or the exit it placed for a stray
/// fill it adopted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptedExit {
    /// Exchange id.
    pub txid: String,
    /// The ledger position it closes.
    pub open_key: String,
    /// Buy or sell.
    pub side: Side,
    /// Limit price.
    pub exit_price: Decimal,
    /// Volume it executed so far.
    pub executed: Decimal,
}

/// The audit of one store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreAudit {
    /// The last committed step (0 and nothing else on a store never run).
    pub step: u64,
    /// When it was committed, unix ms.
    pub committed_at_ms: i64,
    /// The operator's pause.
    pub paused: bool,
    /// Every order of the working grid slots (as the loop sees them; a
    /// halted slot's are left to the operator) and of the churners.
    pub orders: Vec<AuditOrder>,
    /// Exits of adopted positions (legacy imports, stray fills).
    pub adopted_exits: Vec<AdoptedExit>,
    /// Open positions the runtime tracks, by `slot:trade:cycle`.
    pub open_positions: usize,
    /// The trader's subsidy view per slot (SPEC §6): never negative.
    pub subsidy: BTreeMap<SlotId, Decimal>,
    /// Slots whose subsidized repricing stopped on a refused debit.
    pub subsidy_halted: Vec<SlotId>,
    /// Filled churner inventory without an exit or a closed position:
    /// always zero.
    pub naked_churner_inventory: Decimal,
    /// Placements (grid, churner, stray exits) whose outcome is not known
    /// yet: the next run looks them up before it may place again.
    pub unresolved_placements: usize,
    /// Ledger writes not yet acknowledged.
    pub outbox_pending: u64,
    /// Ledger writes the ledger refused, waiting for an operator.
    pub outbox_parked: u64,
}

/// Audits the store file at `path`, read only.
///
/// # Errors
/// [`AuditError`] when there is no store there, it cannot be read, or its
/// state does not decode.
pub async fn audit_file(path: &Path) -> Result<StoreAudit, AuditError> {
    if !path.is_file() {
        return Err(AuditError::Missing(path.display().to_string()));
    }
    let store = TraderStore::open_read_only(path).await?;
    let audit = audit(&store).await;
    store.close().await;
    audit
}

/// Audits an open store.
///
/// # Errors
/// As [`audit_file`].
pub async fn audit(store: &TraderStore) -> Result<StoreAudit, AuditError> {
    let outbox_pending = store.pending_count().await?;
    let outbox_parked = store.entries_in(OutboxState::Parked).await?.len() as u64;
    let Some(snap) = store.load_state().await? else {
        return Ok(StoreAudit {
            step: 0,
            committed_at_ms: 0,
            paused: false,
            orders: Vec::new(),
            adopted_exits: Vec::new(),
            open_positions: 0,
            subsidy: BTreeMap::new(),
            subsidy_halted: Vec::new(),
            naked_churner_inventory: Decimal::ZERO,
            unresolved_placements: 0,
            outbox_pending,
            outbox_parked,
        });
    };
    let (step, committed_at_ms) = (snap.step, snap.updated_at.0);
    let (engine, book) = decode_state(snap).map_err(AuditError::Corrupt)?;
    Ok(StoreAudit {
        step,
        committed_at_ms,
        paused: book.paused,
        orders: orders(&engine, &book),
        adopted_exits: book
            .legacy
            .iter()
            .map(|(txid, l)| AdoptedExit {
                txid: txid.clone(),
                open_key: l.open_key.clone(),
                side: l.side,
                exit_price: l.exit_price,
                executed: l.seen.volume,
            })
            .collect(),
        open_positions: book.positions.len(),
        subsidy: book.subsidy.balance.clone(),
        subsidy_halted: book.subsidy.halted.iter().copied().collect(),
        naked_churner_inventory: book.churn.naked_inventory(),
        unresolved_placements: book.placing.len()
            + book.churn_intents.len()
            + book.stray_exits.len(),
        outbox_pending,
        outbox_parked,
    })
}

/// The grid's orders (as the loop sees them) then the churners'.
fn orders(engine: &EngineState, book: &RuntimeBook) -> Vec<AuditOrder> {
    let grid = held_orders(engine).into_iter().map(|h| AuditOrder {
        owner: OrderOwner::Grid,
        slot: h.id.slot,
        order: OrderStatusView {
            order_id: h.id.to_string(),
            role: h.role,
            side: h.side,
            price: h.price,
            volume: h.volume,
            txid: h.txid,
        },
    });
    let churn = book.churn.slots.values().filter_map(|s| {
        let role = match &s.stage {
            ChurnStage::Idle => return None,
            ChurnStage::Entry { .. } => OrderRole::Entry,
            ChurnStage::Exit { .. } | ChurnStage::HandedOver { .. } => OrderRole::Exit,
        };
        let o = s.stage.order()?;
        Some(AuditOrder {
            owner: OrderOwner::Churner,
            slot: o.slot,
            order: OrderStatusView {
                order_id: o.id.clone(),
                role,
                side: o.side,
                price: o.price,
                volume: o.volume,
                txid: o.txid.clone(),
            },
        })
    });
    grid.chain(churn).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::store::{StateJson, StepCommit, StoreLocation};
    use crate::runtime::time::UnixMillis;

    /// Proves: a store never run audits as empty; a state this build
    /// cannot decode is refused (as a restart would refuse it); adopted
    /// exits are listed; an audit never creates a store.
    #[tokio::test]
    async fn empty_corrupt_and_missing_stores() {
        let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
        let empty = audit(&store).await.unwrap();
        assert_eq!((empty.step, empty.orders.len()), (0, 0));

        store
            .commit_step(StepCommit {
                step: 1,
                state: StateJson::encode(&serde_json::json!({"version": 1})).unwrap(),
                at: UnixMillis(1),
                entries: Vec::new(),
                meta: Vec::new(),
            })
            .await
            .unwrap();
        assert!(matches!(audit(&store).await, Err(AuditError::Corrupt(_))));

        // An adopted exit (a legacy import or a stray fill's exit) is listed.
        let mut book = RuntimeBook::default();
        book.legacy.insert(
            "TX9".into(),
            crate::runtime::book::LegacyOrder {
                open_key: "legacy:TX9".into(),
                side: Side::Sell,
                entry_price: Decimal::ONE,
                exit_price: Decimal::TWO,
                seen: crate::runtime::fills::Executed::default(),
            },
        );
        let state = crate::runtime::book::PersistedState {
            version: crate::runtime::book::STATE_VERSION,
            engine: std::borrow::Cow::Owned(EngineState::new(1)),
            book: std::borrow::Cow::Owned(book),
        };
        store
            .commit_step(StepCommit {
                step: 2,
                state: StateJson::encode(&state).unwrap(),
                at: UnixMillis(2),
                entries: Vec::new(),
                meta: Vec::new(),
            })
            .await
            .unwrap();
        let a = audit(&store).await.unwrap();
        assert_eq!(a.adopted_exits.len(), 1);
        assert_eq!(a.adopted_exits[0].txid, "TX9");
        assert_eq!(a.adopted_exits[0].exit_price, Decimal::TWO);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.db");
        let err = audit_file(&path).await.unwrap_err();
        assert!(err.to_string().starts_with("no trader store at"), "{err}");
        assert!(!path.exists(), "an audit never creates a store");
        std::fs::write(&path, b"not a database").unwrap();
        assert!(audit_file(&path).await.is_err());
    }
}
