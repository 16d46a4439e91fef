//! The end-of-run checker: compares the simulator's order book (every order
//! it ever accepted, with what each executed), the ledger's positions and
//! journal, and the trader's view (its status during the run, its store at
//! the end), once the market is frozen and every fill is journaled. Pure: the caller collects the three views, this counts the
//! violations, so the rules can be tested on hand-made books.

use std::collections::{BTreeMap, BTreeSet};

use healgrid_proto::ledger::v1 as lpb;
use rust_decimal::Decimal;

mod store;
pub use store::{StoreEnd, StoreOrder};

/// One order as the simulator's `GET /sim/orders` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    /// Exchange id.
    pub txid: String,
    /// Client order id (the trader's local order id); empty when none.
    pub cl_ord_id: String,
    /// `open`, `closed`, `canceled` or `expired`.
    pub status: String,
    /// Volume ordered.
    pub volume: Decimal,
    /// Volume executed so far.
    pub vol_exec: Decimal,
}

impl SimOrder {
    /// True when any of it executed: a fill the ledger must know about.
    pub fn filled(&self) -> bool {
        self.vol_exec > Decimal::ZERO
    }

    /// The intent an order id stands for: the local id without its trailing
    /// placement sequence (`slot:A|B:cycle:en|ex`), so two placements of
    /// one intent share it.
    pub fn intent(&self) -> Option<&str> {
        let (intent, _seq) = self.cl_ord_id.rsplit_once(':')?;
        Some(intent)
    }

    /// True when the whole order executed.
    pub fn complete(&self) -> bool {
        self.vol_exec > Decimal::ZERO && self.vol_exec >= self.volume
    }

    /// The intent of the exit that books the position this order entered:
    /// `slot:A|B:cycle:ex` for the entry `slot:A|B:cycle:en:seq` of a grid
    /// slot, `ch:slot:cycle:ex` for a churner entry; `None` for any other
    /// order (an exit, a stray exit, a foreign order).
    pub fn exit_intent(&self) -> Option<String> {
        let parts: Vec<&str> = self.cl_ord_id.split(':').collect();
        match parts.as_slice() {
            ["ch", slot, cycle, "en", _seq] => Some(format!("ch:{slot}:{cycle}:ex")),
            [slot, trade, cycle, "en", _seq] => Some(format!("{slot}:{trade}:{cycle}:ex")),
            _ => None,
        }
    }

    /// True for a grid entry still resting with part of it executed: not a
    /// position yet, as the engine opens one for the executed volume only
    /// once the entry fills or leaves the book.
    pub fn entry_in_flight(&self) -> bool {
        self.status == "open"
            && self.filled()
            && self.vol_exec < self.volume
            && self.exit_intent().is_some()
    }
}

/// The exchange id of a position's entry: its open key, less the churner's
/// `churn:` prefix.
fn entry_txid(p: &lpb::Position) -> &str {
    p.open_key
        .strip_prefix("churn:")
        .unwrap_or(p.open_key.as_str())
}

/// Parses the body of `GET /sim/orders` (`{"open": {txid: order}, "closed":
/// {txid: order}}`).
///
/// # Errors
/// When the body is not that shape.
pub fn parse_sim_orders(body: &str) -> Result<Vec<SimOrder>, String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("/sim/orders: {e}"))?;
    let sections = v.as_object().ok_or("/sim/orders: not an object")?;
    let mut out = Vec::new();
    for orders in sections.values() {
        let orders = orders.as_object().ok_or("/sim/orders: section")?;
        for (txid, o) in orders {
            let text = |k: &str| o[k].as_str().unwrap_or_default().to_owned();
            let number = |k: &str| {
                text(k)
                    .parse::<Decimal>()
                    .map_err(|e| format!("{k} of {txid}: {e}"))
            };
            out.push(SimOrder {
                txid: txid.clone(),
                cl_ord_id: text("cl_ord_id"),
                status: text("status"),
                volume: number("vol")?,
                vol_exec: number("vol_exec")?,
            });
        }
    }
    Ok(out)
}

/// What the trader reported at the end of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraderEnd {
    /// True when it was still trading (running, not halted) before the
    /// audit's pause.
    pub trading: bool,
    /// Why not, when it was not.
    pub mode_reason: String,
    /// Its store, read after the run (`trader-service store-audit`).
    pub store: StoreEnd,
    /// Negative subsidy balances it reported at any time of the run
    /// (`slot N: balance`); none is allowed.
    pub negative_subsidy: Vec<String>,
}

/// The counted outcome of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Simulator fills of the trader's orders missing from the ledger.
    pub lost: u64,
    /// Positions or journal events the ledger holds more than once.
    pub duplicated: u64,
    /// Orders sharing a client order id, or live/filled orders sharing an
    /// intent.
    pub duplicate_orders: u64,
    /// Open positions without a live exit on the exchange.
    pub naked: u64,
    /// Simulator fills checked against the ledger (evidence the run
    /// traded).
    pub fills_checked: u64,
    /// Grid entries still resting part executed at the end (see
    /// [`SimOrder::entry_in_flight`]): not yet due in the ledger, so not
    /// counted lost; reported so a run shows partial fills reached it.
    pub entries_in_flight: u64,
    /// Every violation, spelled out (including the ones without a column:
    /// negative subsidy, a halted trader, an imported foreign order).
    pub details: Vec<String>,
}

impl Counts {
    /// True when nothing was violated.
    pub fn clean(&self) -> bool {
        self.details.is_empty()
    }

    /// Adds another run's counts.
    pub fn add(&mut self, other: Counts) {
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.duplicate_orders += other.duplicate_orders;
        self.naked += other.naked;
        self.fills_checked += other.fills_checked;
        self.entries_in_flight += other.entries_in_flight;
        self.details.extend(other.details);
    }
}

/// The column of [`Counts`] a violation counts in.
#[derive(Debug, Clone, Copy)]
enum Column {
    Lost,
    Duplicated,
    DuplicateOrders,
    Naked,
    /// Spelled out in the details only.
    None,
}

impl Counts {
    /// Counts one violation `n` times in `column` and spells it out.
    fn record(&mut self, column: Column, n: u64, detail: String) {
        match column {
            Column::Lost => self.lost += n,
            Column::Duplicated => self.duplicated += n,
            Column::DuplicateOrders => self.duplicate_orders += n,
            Column::Naked => self.naked += n,
            Column::None => {}
        }
        self.details.push(detail);
    }

    /// Counts every item of `items` seen more than once in `column`, as
    /// many times as it is extra, spelled out by `say(item, extra)`.
    fn record_extras<'a>(
        &mut self,
        column: Column,
        items: impl IntoIterator<Item = &'a str>,
        say: impl Fn(&str, u64) -> String,
    ) {
        for (item, n) in extras(items) {
            self.record(column, n, say(item, n));
        }
    }
}

/// Every item seen more than once, with how many extra times.
fn extras<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, u64> {
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for i in items {
        *seen.entry(i).or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(i, n)| (i, n - 1))
        .collect()
}

/// Counts every violation of the suite's invariants.
pub fn check(
    sim: &[SimOrder],
    positions: &[lpb::Position],
    journal: &[lpb::JournalEntry],
    subsidy: &[lpb::SubsidyBalance],
    trader: &TraderEnd,
) -> Counts {
    let mut c = Counts::default();

    // Every fill is in the ledger: as the entry of a position (its open key
    // is the entry's txid), as the exit that closed or works one, or named
    // by a journal event (churner round trips). A grid entry the trader
    // still holds, resting part executed, is the one exception: the engine
    // books it once it fills or leaves the book.
    let mut known: BTreeSet<&str> = BTreeSet::new();
    for p in positions {
        known.insert(entry_txid(p));
        known.insert(p.exit_txid.as_str());
    }
    let journal_text: Vec<String> = journal.iter().map(|e| format!("{:?}", e.details)).collect();
    for o in sim.iter().filter(|o| o.filled()) {
        if o.entry_in_flight() && trader.store.holds(&o.txid) {
            c.entries_in_flight += 1;
            continue;
        }
        c.fills_checked += 1;
        let found =
            known.contains(o.txid.as_str()) || journal_text.iter().any(|t| t.contains(&o.txid));
        if !found {
            let detail = format!(
                "lost: fill of {} ({}, {}) is not in the ledger",
                o.txid, o.cl_ord_id, o.status
            );
            c.record(Column::Lost, 1, detail);
        }
    }

    // Exactly once: no position and no journal event twice.
    let journaled = |what: &'static str| {
        move |key: &str, n: u64| format!("duplicated: {what} {key} journaled {n} extra time(s)")
    };
    let open_keys = positions.iter().map(|p| p.open_key.as_str());
    c.record_extras(Column::Duplicated, open_keys, journaled("position"));
    let event_keys = journal.iter().map(|e| e.event_key.as_str());
    c.record_extras(Column::Duplicated, event_keys, journaled("journal event"));
    for p in positions
        .iter()
        .filter(|p| p.open_key.starts_with("legacy:"))
    {
        let detail = format!(
            "imported: the trader lost track of its own order {}",
            p.open_key
        );
        c.record(Column::None, 1, detail);
    }

    // No double placement: one order per client order id, and one live or
    // wholly executed order per intent. An intent may leave partly executed
    // orders behind (each re-placed for what remains), but together its
    // orders never execute more than it asked for.
    let placed = |what: &'static str| {
        move |key: &str, n: u64| format!("duplicate order: {what} {key} placed {n} extra time(s)")
    };
    let ids = sim
        .iter()
        .filter(|o| !o.cl_ord_id.is_empty())
        .map(|o| o.cl_ord_id.as_str());
    c.record_extras(Column::DuplicateOrders, ids, placed("client order id"));
    let live_or_complete = sim.iter().filter(|o| o.status == "open" || o.complete());
    let intents: Vec<&str> = live_or_complete.filter_map(SimOrder::intent).collect();
    let counted = extras(intents.iter().copied());
    c.record_extras(Column::DuplicateOrders, intents, placed("intent"));
    let mut by_intent: BTreeMap<&str, (Decimal, Decimal)> = BTreeMap::new();
    for o in sim {
        if let Some(i) = o.intent() {
            let (asked, executed) = by_intent.entry(i).or_default();
            *asked = (*asked).max(o.volume);
            *executed += o.vol_exec;
        }
    }
    for (intent, (asked, executed)) in by_intent {
        // Two complete copies already counted above.
        if executed > asked && !counted.contains_key(intent) {
            let detail = format!(
                "duplicate order: intent {intent} executed {executed} of the {asked} it asked for"
            );
            c.record(Column::DuplicateOrders, 1, detail);
        }
    }

    check_volumes(&mut c, sim, positions);

    // No naked inventory: every open position's exit rests on the exchange:
    // the one the ledger names, or (while a repriced exit's new txid is not
    // yet journaled) a live exit of the same intent as the position's entry.
    let live: BTreeSet<&str> = sim
        .iter()
        .filter(|o| o.status == "open")
        .map(|o| o.txid.as_str())
        .collect();
    let live_intents: BTreeSet<&str> = sim
        .iter()
        .filter(|o| o.status == "open")
        .filter_map(SimOrder::intent)
        .collect();
    let by_txid: BTreeMap<&str, &SimOrder> = sim.iter().map(|o| (o.txid.as_str(), o)).collect();
    for p in positions
        .iter()
        .filter(|p| p.status == lpb::PositionStatus::Open as i32)
    {
        let exit_of_entry = by_txid
            .get(entry_txid(p))
            .and_then(|e| e.exit_intent())
            .is_some_and(|i| live_intents.contains(i.as_str()));
        if !live.contains(p.exit_txid.as_str()) && !exit_of_entry {
            let detail = format!(
                "naked: position {} (slot {}, entry {}) has no live exit (exit txid `{}`)",
                p.position_id, p.slot_id, p.open_key, p.exit_txid
            );
            c.record(Column::Naked, 1, detail);
        }
    }

    let open_entries: BTreeSet<&str> = positions
        .iter()
        .filter(|p| p.status == lpb::PositionStatus::Open as i32)
        .map(entry_txid)
        .collect();
    check_churner_exits(&mut c, sim, &open_entries);

    for s in subsidy {
        let negative = s
            .balance
            .parse::<Decimal>()
            .is_ok_and(|b| b < Decimal::ZERO);
        if negative {
            let detail = format!("subsidy of slot {} is negative: {}", s.slot_id, s.balance);
            c.record(Column::None, 1, detail);
        }
    }
    check_subsidy_sums(&mut c, journal, subsidy);
    store::check_store(&mut c, sim, subsidy, &trader.store);
    for n in &trader.negative_subsidy {
        let detail = format!("the trader's view of subsidy went negative: {n}");
        c.record(Column::None, 1, detail);
    }
    if !trader.trading {
        let detail = format!("the trader stopped trading: {}", trader.mode_reason);
        c.record(Column::None, 1, detail);
    }
    c
}

/// Every execution booked exactly once, by volume (what partial fills put
/// to the test): a slot position's entry volume is what its entry order
/// executed, and what its exits executed is the entry volume once closed,
/// never more while open. Less booked than executed counts as lost, more
/// as duplicated.
fn check_volumes(c: &mut Counts, sim: &[SimOrder], positions: &[lpb::Position]) {
    let by_txid: BTreeMap<&str, &SimOrder> = sim.iter().map(|o| (o.txid.as_str(), o)).collect();
    let mut exit_executed: BTreeMap<&str, Decimal> = BTreeMap::new();
    for o in sim {
        if let Some(i) = o.intent() {
            *exit_executed.entry(i).or_default() += o.vol_exec;
        }
    }
    for p in positions {
        let Some(entry) = by_txid.get(entry_txid(p)) else {
            continue;
        };
        let Some(exit_intent) = entry.exit_intent() else {
            continue;
        };
        let Ok(booked) = p.entry_volume.parse::<Decimal>() else {
            let detail = format!(
                "position {} has an unreadable entry volume `{}`",
                p.position_id, p.entry_volume
            );
            c.record(Column::None, 1, detail);
            continue;
        };
        let column = |less: bool| {
            if less {
                Column::Lost
            } else {
                Column::Duplicated
            }
        };
        if booked != entry.vol_exec {
            let detail = format!(
                "{}: position {} books entry volume {booked}, its entry {} executed {}",
                if booked < entry.vol_exec {
                    "lost"
                } else {
                    "duplicated"
                },
                p.position_id,
                entry.txid,
                entry.vol_exec
            );
            c.record(column(booked < entry.vol_exec), 1, detail);
        }
        let exited = exit_executed
            .get(exit_intent.as_str())
            .copied()
            .unwrap_or_default();
        let closed = p.status == lpb::PositionStatus::Closed as i32;
        let booked_ok = if closed {
            exited == booked
        } else {
            exited <= booked
        };
        if !booked_ok {
            let detail = format!(
                "{}: position {} ({}) of entry volume {booked}: its exits {exit_intent} \
                 executed {exited}",
                if exited > booked {
                    "duplicated"
                } else {
                    "lost"
                },
                p.position_id,
                if closed { "closed" } else { "open" },
            );
            c.record(column(exited < booked), 1, detail);
        }
    }
}

/// No churner inventory without an exit: every churner round trip
/// (`ch:SLOT:CYCLE:en|ex:SEQ`) whose entries executed more than its exits
/// has an exit resting on the exchange. A round trip whose entry still
/// rests, part executed, is not yet inventory (the churner's exit follows
/// the entry's end), as with the grid's entries. A round trip the ledger
/// holds open is left to the open-position check (counted once).
fn check_churner_exits(c: &mut Counts, sim: &[SimOrder], open_entries: &BTreeSet<&str>) {
    #[derive(Default)]
    struct RoundTrip {
        entered: Decimal,
        exited: Decimal,
        exit_live: bool,
        entry_live: bool,
        in_ledger: bool,
    }
    let mut trips: BTreeMap<String, RoundTrip> = BTreeMap::new();
    for o in sim {
        let parts: Vec<&str> = o.cl_ord_id.split(':').collect();
        let ["ch", slot, cycle, role, _seq] = parts.as_slice() else {
            continue;
        };
        let t = trips.entry(format!("ch:{slot}:{cycle}")).or_default();
        let live = o.status == "open";
        match *role {
            "en" => {
                t.entered += o.vol_exec;
                t.entry_live |= live;
                t.in_ledger |= open_entries.contains(o.txid.as_str());
            }
            "ex" => {
                t.exited += o.vol_exec;
                t.exit_live |= live;
            }
            _ => {}
        }
    }
    for (trip, t) in trips {
        if t.entered > t.exited && !t.exit_live && !t.entry_live && !t.in_ledger {
            let detail = format!(
                "naked: churner round trip {trip} entered {} and exited {} with no exit on \
                 the exchange",
                t.entered, t.exited
            );
            c.record(Column::Naked, 1, detail);
        }
    }
}

/// The journal's subsidy adds up: for every slot, the ledger's balance,
/// credits and debits equal the sums of its journal rows (credits:
/// churner profit and over-performance; debits: the subsidy consumed by
/// subsidized and operator reprices), re-derived here independently of
/// the ledger's running totals.
fn check_subsidy_sums(
    c: &mut Counts,
    journal: &[lpb::JournalEntry],
    subsidy: &[lpb::SubsidyBalance],
) {
    use lpb::event_details::Kind;
    let amount = |s: &str| s.parse::<Decimal>().unwrap_or_default();
    let mut sums: BTreeMap<u32, (Decimal, Decimal)> = BTreeMap::new();
    for e in journal {
        let Some(kind) = e.details.as_ref().and_then(|d| d.kind.as_ref()) else {
            continue;
        };
        let (earned, consumed) = sums.entry(e.slot_id).or_default();
        match kind {
            Kind::ChurnerProfit(d) => *earned += amount(&d.net_profit),
            Kind::OverPerformance(d) => *earned += amount(&d.excess),
            Kind::Repriced(d)
                if d.reason == lpb::RepriceReason::Subsidy as i32
                    || d.reason == lpb::RepriceReason::Operator as i32 =>
            {
                *consumed += amount(&d.subsidy_consumed);
            }
            _ => {}
        }
    }
    for s in subsidy {
        let (earned, consumed) = sums.remove(&s.slot_id).unwrap_or_default();
        let said = (amount(&s.earned), amount(&s.consumed), amount(&s.balance));
        if said != (earned, consumed, earned - consumed) {
            let detail = format!(
                "subsidy of slot {}: the ledger says earned {} consumed {} balance {}, its \
                 journal adds up to {earned} - {consumed} = {}",
                s.slot_id,
                s.earned,
                s.consumed,
                s.balance,
                earned - consumed
            );
            c.record(Column::None, 1, detail);
        }
    }
    for (slot, (earned, consumed)) in sums {
        if !(earned.is_zero() && consumed.is_zero()) {
            let detail = format!(
                "subsidy of slot {slot}: journal rows add up to {earned} - {consumed}, the \
                 ledger reports no balance for it"
            );
            c.record(Column::None, 1, detail);
        }
    }
}

#[cfg(test)]
mod tests;
