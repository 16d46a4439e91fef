//! Audits shared by the kill tests: what the trader's own store says was
//! delivered to the ledger, and what the ledger holds, so a test can demand
//! that they agree exactly (every position once, every event once).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use healgrid_proto::ledger::v1::{
    self as pb, get_journal_request::Scope, ledger_service_client::LedgerServiceClient,
};
use sqlx::{Connection, Row, sqlite::SqliteConnectOptions};

/// The outbox of a trader store, by state.
#[derive(Debug, Default)]
pub struct TraderOutbox {
    /// Idempotency keys per state (`pending`, `delivered`, `parked`).
    pub keys_by_state: BTreeMap<String, BTreeSet<String>>,
    /// Open keys of every `open_position` write.
    pub opened: BTreeSet<String>,
    /// Open keys of every `close_position` write.
    pub closed: BTreeSet<String>,
    /// Every idempotency key that is not an open (journal event keys).
    pub event_keys: BTreeSet<String>,
}

/// Reads the outbox of the trader store at `path` (read-only, so it can be
/// done while a trader runs).
///
/// # Panics
/// When the store cannot be read.
pub async fn trader_outbox(path: &Path) -> TraderOutbox {
    let opts = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts)
        .await
        .expect("opening the trader store read-only");
    let rows = sqlx::query("SELECT idempotency_key, kind, payload, state FROM outbox ORDER BY seq")
        .fetch_all(&mut conn)
        .await
        .expect("reading the outbox");
    let mut out = TraderOutbox::default();
    for r in rows {
        let key: String = r.get("idempotency_key");
        let kind: String = r.get("kind");
        let payload: String = r.get("payload");
        let state: String = r.get("state");
        let open_key = payload_open_key(&payload);
        out.keys_by_state
            .entry(state)
            .or_default()
            .insert(key.clone());
        match kind.as_str() {
            "open_position" => {
                assert!(out.opened.insert(open_key), "open written twice: {key}");
            }
            "close_position" => {
                assert!(out.closed.insert(open_key), "close written twice: {key}");
                out.event_keys.insert(key);
            }
            _ => {
                out.event_keys.insert(key);
            }
        }
    }
    out
}

/// The `open_key` field of an outbox payload (plain JSON; parsed by hand
/// to keep this crate free of serde).
fn payload_open_key(payload: &str) -> String {
    let marker = "\"open_key\":\"";
    let start = payload.find(marker).expect("payload names its open_key") + marker.len();
    let end = payload[start..].find('"').expect("terminated open_key") + start;
    payload[start..end].to_owned()
}

/// What the ledger holds for one bot.
#[derive(Debug, Default)]
pub struct LedgerView {
    /// Every position (open and closed).
    pub positions: Vec<pb::Position>,
    /// Every journal row of the bot's slots.
    pub journal: Vec<pb::JournalEntry>,
}

impl LedgerView {
    /// Open keys of every position (duplicates kept, to be checked).
    pub fn open_keys(&self) -> Vec<String> {
        self.positions.iter().map(|p| p.open_key.clone()).collect()
    }

    /// Open keys of the closed positions.
    pub fn closed_keys(&self) -> BTreeSet<String> {
        self.positions
            .iter()
            .filter(|p| p.status == pb::PositionStatus::Closed as i32)
            .map(|p| p.open_key.clone())
            .collect()
    }

    /// Open positions.
    pub fn open_positions(&self) -> Vec<&pb::Position> {
        self.positions
            .iter()
            .filter(|p| p.status == pb::PositionStatus::Open as i32)
            .collect()
    }

    /// Journal event keys (duplicates kept, to be checked).
    pub fn event_keys(&self) -> Vec<String> {
        self.journal.iter().map(|e| e.event_key.clone()).collect()
    }

    /// Journal rows of one type.
    pub fn count(&self, t: pb::EventType) -> usize {
        self.journal
            .iter()
            .filter(|e| e.event_type == t as i32)
            .count()
    }
}

/// Reads every position and the journal of `slots` slots of `bot` from
/// the ledger at `endpoint`.
///
/// # Panics
/// When the ledger cannot be reached.
pub async fn ledger_view(endpoint: &str, bot: &str, slots: u32) -> LedgerView {
    let mut c = LedgerServiceClient::connect(endpoint.to_owned())
        .await
        .expect("connecting to the ledger");
    let mut positions = c
        .list_open_positions(pb::ListOpenPositionsRequest {
            bot_id: bot.into(),
            slot_id: None,
        })
        .await
        .expect("ListOpenPositions")
        .into_inner()
        .positions;
    let closed = c
        .get_position_history(pb::GetPositionHistoryRequest {
            bot_id: bot.into(),
            slot_id: None,
            limit: 1000,
            position_id: None,
        })
        .await
        .expect("GetPositionHistory")
        .into_inner()
        .positions;
    assert!(closed.len() < 1000, "history truncated; raise the limit");
    positions.extend(closed);
    let mut journal = Vec::new();
    for slot_id in 0..slots {
        let mut after = 0;
        loop {
            let page = c
                .get_journal(pb::GetJournalRequest {
                    scope: Some(Scope::Slot(pb::SlotRef {
                        bot_id: bot.into(),
                        slot_id,
                    })),
                    after_journal_id: after,
                    limit: 1000,
                })
                .await
                .expect("GetJournal")
                .into_inner();
            journal.extend(page.entries);
            if page.next_after_journal_id == 0 {
                break;
            }
            after = page.next_after_journal_id;
        }
    }
    LedgerView { positions, journal }
}

/// Panics with the duplicates if `items` holds any.
pub fn assert_unique(what: &str, items: &[String]) {
    let mut seen = BTreeSet::new();
    let dups: Vec<&String> = items.iter().filter(|i| !seen.insert(*i)).collect();
    assert!(dups.is_empty(), "duplicate {what}: {dups:?}");
}

/// Asserts the ledger holds exactly what the trader's store says it
/// delivered: nothing left pending or parked, every position the trader
/// opened once and nothing else, every close once, every journal event once.
///
/// # Panics
/// On the first disagreement, saying what differs.
pub fn assert_delivered_exactly(outbox: &TraderOutbox, view: &LedgerView) {
    for state in ["pending", "parked"] {
        assert!(
            outbox
                .keys_by_state
                .get(state)
                .is_none_or(BTreeSet::is_empty),
            "{state} outbox entries left: {:?}",
            outbox.keys_by_state.get(state)
        );
    }
    let open_keys = view.open_keys();
    assert_unique("position open_key", &open_keys);
    assert_eq!(
        open_keys.into_iter().collect::<BTreeSet<_>>(),
        outbox.opened,
        "every position the trader opened is in the ledger exactly once, and nothing else"
    );
    assert_eq!(
        view.closed_keys(),
        outbox.closed,
        "every close exactly once"
    );
    let event_keys = view.event_keys();
    assert_unique("journal event_key", &event_keys);
    for k in &outbox.event_keys {
        assert!(
            event_keys.contains(k),
            "event {k} delivered by the trader is missing from the journal"
        );
    }
    assert_eq!(view.count(pb::EventType::Created), outbox.opened.len());
    assert_eq!(view.count(pb::EventType::Filled), outbox.closed.len());
}
