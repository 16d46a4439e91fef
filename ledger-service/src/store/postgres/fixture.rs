//! What the PostgreSQL backend's own tests start from.

use healgrid_tests::pg::TestSchema;

use crate::{Ledger, domain::position::tests::open_command, store::SlotClaim};

use super::PgStore;

/// A fresh schema named for `test` with one open position (bot `bot`,
/// slot 0): the schema (dropped with it), the store and the position's
/// id. `None` when no PostgreSQL is configured.
pub(super) async fn one_position(test: &str) -> Option<(TestSchema, PgStore, u64)> {
    let schema = TestSchema::create(test).await?;
    let store = PgStore::connect_with(&schema.url, 4)
        .await
        .expect("open postgres store");
    let opened = Ledger::new(store.clone())
        .open_position(open_command("bot", 0, "open-0"))
        .await
        .expect("open a position");
    Some((schema, store, opened.position.position_id))
}

/// A claim of one row in that position's slot.
pub(super) fn slot_claims() -> Vec<SlotClaim> {
    vec![SlotClaim {
        bot_id: "bot".into(),
        slot_id: 0,
        rows: 1,
    }]
}
