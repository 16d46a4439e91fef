//! The trader's store at the end of a run, as `trader-service store-audit`
//! prints it, and the rules that hold it against the exchange and the
//! ledger: what the trader would resume with must be what really is.

use std::collections::{BTreeMap, BTreeSet};

use healgrid_proto::ledger::v1 as lpb;
use rust_decimal::Decimal;

use super::{Column, Counts, SimOrder};

/// One order the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOrder {
    /// Exchange id, once placed.
    pub txid: Option<String>,
    /// `grid` or `churner`.
    pub owner: String,
    /// `Entry` or `Exit`.
    pub role: String,
    /// The slot.
    pub slot: u32,
}

/// The store's facts the checker reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreEnd {
    /// Every order of the working slots and churners, then the exits of
    /// adopted positions (owner `adopted`).
    pub orders: Vec<StoreOrder>,
    /// The trader's subsidy view per slot.
    pub subsidy: BTreeMap<u32, Decimal>,
    /// Filled churner inventory with neither exit nor closed position.
    pub naked_churner_inventory: Decimal,
    /// Ledger writes not yet acknowledged.
    pub outbox_pending: u64,
    /// Ledger writes the ledger refused.
    pub outbox_parked: u64,
    /// Placements whose outcome the trader still does not know.
    pub unresolved_placements: u64,
}

impl StoreEnd {
    /// An empty store (nothing held, nothing owed).
    pub const EMPTY: Self = Self {
        orders: Vec::new(),
        subsidy: BTreeMap::new(),
        naked_churner_inventory: Decimal::ZERO,
        outbox_pending: 0,
        outbox_parked: 0,
        unresolved_placements: 0,
    };

    /// Parses `trader-service store-audit`'s JSON.
    ///
    /// # Errors
    /// When the text is not that shape.
    pub fn parse(json: &str) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("store-audit: {e}"))?;
        let decimal = |v: &serde_json::Value, what: &str| {
            v.as_str()
                .ok_or_else(|| format!("store-audit: {what} is not a decimal string"))?
                .parse::<Decimal>()
                .map_err(|e| format!("store-audit: {what}: {e}"))
        };
        let count = |k: &str| {
            v[k].as_u64()
                .ok_or_else(|| format!("store-audit: {k} is not a count"))
        };
        let mut orders = Vec::new();
        for o in v["orders"].as_array().ok_or("store-audit: no orders")? {
            let text = |k: &str| o[k].as_str().unwrap_or_default().to_owned();
            orders.push(StoreOrder {
                txid: o["txid"].as_str().map(str::to_owned),
                owner: text("owner"),
                role: text("role"),
                slot: o["slot"]
                    .as_u64()
                    .and_then(|s| u32::try_from(s).ok())
                    .ok_or("store-audit: an order has no slot")?,
            });
        }
        for o in v["adopted_exits"]
            .as_array()
            .ok_or("store-audit: no adopted_exits")?
        {
            orders.push(StoreOrder {
                txid: o["txid"].as_str().map(str::to_owned),
                owner: "adopted".into(),
                role: "Exit".into(),
                slot: 0,
            });
        }
        let mut subsidy = BTreeMap::new();
        for (slot, b) in v["subsidy"].as_object().ok_or("store-audit: no subsidy")? {
            let slot = slot
                .parse::<u32>()
                .map_err(|e| format!("store-audit: subsidy slot {slot}: {e}"))?;
            subsidy.insert(slot, decimal(b, "a subsidy balance")?);
        }
        Ok(Self {
            orders,
            subsidy,
            naked_churner_inventory: decimal(
                &v["naked_churner_inventory"],
                "naked_churner_inventory",
            )?,
            outbox_pending: count("outbox_pending")?,
            outbox_parked: count("outbox_parked")?,
            unresolved_placements: count("unresolved_placements")?,
        })
    }

    /// True when the store holds the order `txid`.
    pub fn holds(&self, txid: &str) -> bool {
        self.orders.iter().any(|o| o.txid.as_deref() == Some(txid))
    }
}

/// The store against the exchange and the ledger, after the outbox
/// drained on a frozen market:
/// - every write reached the ledger (nothing pending or parked);
/// - every ambiguous placement was resolved (found, or placed again once
///   the stale window passed);
/// - no churner inventory without an exit, by the store's own account;
/// - the trader's subsidy view is never negative and equals the ledger's
///   balance, slot by slot;
/// - every order the store holds as placed is open on the exchange, and
///   every open order of ours on the exchange is one the store holds (an
///   order the trader forgot would trade unbooked).
pub(super) fn check_store(
    c: &mut Counts,
    sim: &[SimOrder],
    ledger_subsidy: &[lpb::SubsidyBalance],
    store: &StoreEnd,
) {
    if store.outbox_pending + store.outbox_parked > 0 {
        let detail = format!(
            "lost: the store still holds {} pending and {} parked ledger writes",
            store.outbox_pending, store.outbox_parked
        );
        c.record(
            Column::Lost,
            store.outbox_pending + store.outbox_parked,
            detail,
        );
    }
    if store.unresolved_placements > 0 {
        let detail = format!(
            "the store still holds {} placements of unknown outcome",
            store.unresolved_placements
        );
        c.record(Column::None, 1, detail);
    }
    if store.naked_churner_inventory > Decimal::ZERO {
        let detail = format!(
            "naked: the store holds {} of churner inventory without an exit",
            store.naked_churner_inventory
        );
        c.record(Column::Naked, 1, detail);
    }

    let ledger: BTreeMap<u32, Decimal> = ledger_subsidy
        .iter()
        .map(|s| (s.slot_id, s.balance.parse().unwrap_or_default()))
        .collect();
    let slots: BTreeSet<u32> = ledger.keys().chain(store.subsidy.keys()).copied().collect();
    for slot in slots {
        let ours = store.subsidy.get(&slot).copied().unwrap_or_default();
        let theirs = ledger.get(&slot).copied().unwrap_or_default();
        if ours < Decimal::ZERO {
            let detail = format!("the store's subsidy of slot {slot} is negative: {ours}");
            c.record(Column::None, 1, detail);
        }
        if ours != theirs {
            let detail = format!(
                "subsidy of slot {slot}: the trader's store says {ours}, the ledger {theirs}"
            );
            c.record(Column::None, 1, detail);
        }
    }

    let by_txid: BTreeMap<&str, &SimOrder> = sim.iter().map(|o| (o.txid.as_str(), o)).collect();
    for o in &store.orders {
        let Some(txid) = o.txid.as_deref() else {
            continue;
        };
        let status = by_txid.get(txid).map_or("unknown", |s| s.status.as_str());
        if status != "open" {
            let detail = format!(
                "the store holds {} {} {txid} of slot {} as working; the exchange says {status}",
                o.owner, o.role, o.slot
            );
            c.record(Column::None, 1, detail);
        }
    }
    for o in sim
        .iter()
        .filter(|o| o.status == "open" && !o.cl_ord_id.is_empty())
    {
        if !store.holds(&o.txid) {
            let detail = format!(
                "orphan: order {} ({}) is open on the exchange and not in the trader's store",
                o.txid, o.cl_ord_id
            );
            c.record(Column::None, 1, detail);
        }
    }
}
