//! The end-of-run checker: compares the simulator's order book (every order
//! it ever accepted, with what each executed), the ledger's positions and
//! journal, and the trader's view, once the market is frozen and every fill
//! is journaled. Pure: the caller collects the three views, this counts the
//! violations, so the rules can be tested on hand-made books.

use std::collections::{BTreeMap, BTreeSet};

use healgrid_proto::ledger::v1 as lpb;
use rust_decimal::Decimal;

/// One order as the simulator's `GET /sim/orders` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    /// Exchange id.
    pub txid: String,
    /// Client order id (the trader's local order id); empty when none.
    pub cl_ord_id: String,
    /// `open`, `closed`, `canceled` or `expired`.
    pub status: String,
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
            let vol_exec = text("vol_exec")
                .parse::<Decimal>()
                .map_err(|e| format!("vol_exec of {txid}: {e}"))?;
            out.push(SimOrder {
                txid: txid.clone(),
                cl_ord_id: text("cl_ord_id"),
                status: text("status"),
                vol_exec,
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
    // by a journal event (churner round trips).
    let mut known: BTreeSet<&str> = BTreeSet::new();
    for p in positions {
        known.insert(p.open_key.as_str());
        known.insert(p.exit_txid.as_str());
    }
    let journal_text: Vec<String> = journal.iter().map(|e| format!("{:?}", e.details)).collect();
    for o in sim.iter().filter(|o| o.filled()) {
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
    // filled order per intent.
    let placed = |what: &'static str| {
        move |key: &str, n: u64| format!("duplicate order: {what} {key} placed {n} extra time(s)")
    };
    let ids = sim
        .iter()
        .filter(|o| !o.cl_ord_id.is_empty())
        .map(|o| o.cl_ord_id.as_str());
    c.record_extras(Column::DuplicateOrders, ids, placed("client order id"));
    let live_or_filled = sim.iter().filter(|o| o.status == "open" || o.filled());
    let intents = live_or_filled.filter_map(SimOrder::intent);
    c.record_extras(Column::DuplicateOrders, intents, placed("intent"));

    // No naked inventory: every open position's exit rests on the exchange.
    let live: BTreeSet<&str> = sim
        .iter()
        .filter(|o| o.status == "open")
        .map(|o| o.txid.as_str())
        .collect();
    for p in positions
        .iter()
        .filter(|p| p.status == lpb::PositionStatus::Open as i32)
    {
        if !live.contains(p.exit_txid.as_str()) {
            let detail = format!(
                "naked: position {} (slot {}, entry {}) has no live exit (exit txid `{}`)",
                p.position_id, p.slot_id, p.open_key, p.exit_txid
            );
            c.record(Column::Naked, 1, detail);
        }
    }

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
    if !trader.trading {
        let detail = format!("the trader stopped trading: {}", trader.mode_reason);
        c.record(Column::None, 1, detail);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(txid: &str, cl: &str, status: &str, vol_exec: i64) -> SimOrder {
        SimOrder {
            txid: txid.into(),
            cl_ord_id: cl.into(),
            status: status.into(),
            vol_exec: Decimal::from(vol_exec),
        }
    }

    fn position(id: u64, open_key: &str, exit_txid: &str, open: bool) -> lpb::Position {
        let status = if open {
            lpb::PositionStatus::Open
        } else {
            lpb::PositionStatus::Closed
        };
        lpb::Position {
            position_id: id,
            open_key: open_key.into(),
            exit_txid: exit_txid.into(),
            status: status as i32,
            ..Default::default()
        }
    }

    const TRADING: TraderEnd = TraderEnd {
        trading: true,
        mode_reason: String::new(),
    };

    #[test]
    fn a_consistent_book_is_clean() {
        let sim = [
            order("E1", "0:A:1:en:1", "closed", 100),
            order("X1", "0:A:1:ex:1", "closed", 100),
            order("E2", "0:B:1:en:1", "closed", 100),
            order("X2", "0:B:1:ex:1", "open", 0),
            order("E3", "1:A:1:en:1", "canceled", 0),
            order("E4", "1:A:1:en:2", "open", 0),
        ];
        let positions = [
            position(1, "E1", "X1", false),
            position(2, "E2", "X2", true),
        ];
        let c = check(&sim, &positions, &[], &[], &TRADING);
        assert!(c.clean(), "{:?}", c.details);
    }

    #[test]
    fn every_violation_is_counted() {
        let sim = [
            order("E1", "0:A:1:en:1", "closed", 100),
            order("E2", "0:A:1:en:1", "open", 0),
            order("E3", "0:B:1:en:1", "closed", 100),
            order("E4", "0:B:1:en:2", "closed", 100),
        ];
        let positions = [
            position(1, "E1", "gone", true),
            position(2, "E1", "gone", true),
            position(3, "E3", "", true),
        ];
        let subsidy = [lpb::SubsidyBalance {
            balance: "-0.01".into(),
            ..Default::default()
        }];
        let halted = TraderEnd {
            trading: false,
            mode_reason: "halted".into(),
        };
        let c = check(&sim, &positions, &[], &subsidy, &halted);
        assert_eq!(c.lost, 1, "E4 is nowhere in the ledger");
        assert_eq!(c.duplicated, 1, "E1 journaled twice");
        // One reused client order id, whose two orders (one filled, one
        // live) also share an intent, and two filled orders of intent
        // 0:B:1:en.
        assert_eq!(c.duplicate_orders, 3);
        assert_eq!(c.naked, 3);
        assert_eq!(c.details.len(), 1 + 1 + 3 + 3 + 2);
    }

    #[test]
    fn sim_orders_parse_from_both_sections() {
        let body = r#"{"open":{"O1":{"cl_ord_id":"0:A:1:ex:1","status":"open","vol_exec":"0"}},
            "closed":{"O2":{"status":"closed","vol_exec":"120.5"}}}"#;
        let mut orders = parse_sim_orders(body).unwrap();
        orders.sort_by(|a, b| a.txid.cmp(&b.txid));
        assert_eq!(orders[0].intent(), Some("0:A:1:ex"));
        assert!(!orders[0].filled());
        assert!(orders[1].filled());
        assert_eq!(orders[1].intent(), None);
    }
}
