//! How the PostgreSQL backend appends a batch's journal rows and records
//! their keys: one statement over arrays (`unnest`), inside the batch's
//! transaction ([`PgTx::append_all`]) or, guarded by the slots' versions,
//! as a transaction of its own ([`append_if_unchanged`]).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, postgres::PgArguments, query::Query};

use crate::domain::SubsidyTotals;
use crate::store::{KeyedRow, SlotClaim, StoreError, StoreResult, to_i64, to_u64};

use super::{
    PgTx,
    batch::{STATEMENT_BYTES, claim_params, statement_ranges},
    rows::get,
};

/// Bytes a row's fixed-size parameters take on the wire at most (ids,
/// sequence, time, flags, eight decimals, array element headers).
const FIXED_ROW_BYTES: usize = 320;

/// Appends the rows `$1` to `$18` (see [`RowParams`]) that table `t`
/// yields and records their keys, returning each row's ordinal and
/// journal id. `$ctes` come first (each ending in `, `); `$filter` is
/// the `WHERE` clause of `t`, if any.
macro_rules! append_rows {
    ($ctes:literal, $filter:literal) => {
        concat!(
            "WITH ",
            $ctes,
            "t AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], \
                 $4::bigint[], $5::timestamptz[], $6::text[], $7::text[], $8::text[], \
                 $9::bool[], $10::numeric[], $11::numeric[], $12::numeric[], $13::numeric[], \
                 $14::numeric[], $15::numeric[], $16::numeric[], $17::numeric[], $18::text[]) \
                 WITH ORDINALITY AS t(position_id, bot_id, slot_id, slot_seq, at, event_type, \
                   details, event_key, affects_subsidy, d0, d1, d2, d3, c0, c1, c2, c3, \
                   request_hash, ord)",
            $filter,
            "), \
             j AS (INSERT INTO position_journal (position_id, bot_id, slot_id, slot_seq, at, \
                 event_type, details, event_key, affects_subsidy, delta_churner_profit, \
                 delta_over_performance, delta_subsidy, delta_operator, cum_churner_profit, \
                 cum_over_performance, cum_subsidy, cum_operator) \
               SELECT position_id, bot_id, slot_id, slot_seq, at, event_type, details::jsonb, \
                 event_key, affects_subsidy, d0, d1, d2, d3, c0, c1, c2, c3 FROM t ORDER BY ord \
               RETURNING journal_id, bot_id, slot_id, slot_seq), \
             k AS (INSERT INTO ledger_event_keys (bot_id, event_key, request_hash, \
                 position_id, journal_id) \
               SELECT t.bot_id, t.event_key, t.request_hash, t.position_id, j.journal_id \
               FROM t JOIN j ON j.bot_id = t.bot_id AND j.slot_id = t.slot_id \
                 AND j.slot_seq = t.slot_seq) \
             SELECT t.ord, j.journal_id FROM t JOIN j ON j.bot_id = t.bot_id \
               AND j.slot_id = t.slot_id AND j.slot_seq = t.slot_seq ORDER BY t.ord"
        )
    };
}

/// The rows of a batch, inside its transaction.
const APPEND: &str = append_rows!("", "");

/// The rows of a batch as a transaction of their own, written only if
/// every claimed slot (`$19` bots, `$20` slots) still has the `last_seq`
/// the batch read (`$21`) and no row's key is recorded; each slot then
/// reserves its claim's rows (`$22`).
///
/// `c` locks the slots, in the order every batch locks them (bot id in
/// byte order, then slot), so it never deadlocks with a batch holding
/// locks. A slot another transaction moved after this statement's
/// snapshot fails the `last_seq` check when PostgreSQL re-reads the row it
/// locked (READ COMMITTED re-checks a locked row's newest version), and
/// one moved before it fails the check at once. Either way `ok` is false,
/// nothing is reserved or appended, and the statement returns no row.
///
/// The key check lets a batch built from a slot's remembered state (which
/// assumes its keys are new) meet a retried key without failing: the
/// writes then run again and are answered as replays. A key another
/// process records after this statement's snapshot still fails the
/// key's primary key, as with the read batch. Each key is one index probe
/// (`LIMIT 1` keeps the planner from hashing the whole key table).
const APPEND_IF_UNCHANGED: &str = append_rows!(
    "c AS (SELECT s.bot_id FROM ledger_slots s \
       JOIN unnest($19::text[], $20::bigint[], $21::bigint[]) AS c(b, sl, seen) \
         ON s.bot_id = c.b AND s.slot_id = c.sl AND s.last_seq = c.seen \
       ORDER BY s.bot_id COLLATE \"C\", s.slot_id FOR UPDATE OF s), \
     ok AS (SELECT count(*) = cardinality($19::text[]) \
         AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $8::text[]) AS e(b, key) \
           WHERE (SELECT 1 FROM ledger_event_keys k \
             WHERE k.bot_id = e.b AND k.event_key = e.key LIMIT 1) IS NOT NULL) AS ok FROM c), \
     u AS (UPDATE ledger_slots s SET last_seq = s.last_seq + c.n \
       FROM unnest($19::text[], $20::bigint[], $22::bigint[]) AS c(b, sl, n) \
       WHERE s.bot_id = c.b AND s.slot_id = c.sl AND (SELECT ok FROM ok)), ",
    " WHERE (SELECT ok FROM ok)"
);

/// The arrays `$1` to `$18` of [`append_rows`], one element per row.
struct RowParams<'r> {
    position_id: Vec<i64>,
    bot_id: Vec<&'r str>,
    slot_id: Vec<i64>,
    slot_seq: Vec<i64>,
    at: Vec<DateTime<Utc>>,
    event_type: Vec<&'static str>,
    details: Vec<String>,
    event_key: Vec<&'r str>,
    affects: Vec<bool>,
    deltas: [Vec<Option<Decimal>>; 4],
    cums: [Vec<Option<Decimal>>; 4],
    hashes: Vec<&'r str>,
}

impl<'r> RowParams<'r> {
    fn new(rows: &[KeyedRow<'r>]) -> Self {
        let n = rows.len();
        let mut p = Self {
            position_id: Vec::with_capacity(n),
            bot_id: Vec::with_capacity(n),
            slot_id: Vec::with_capacity(n),
            slot_seq: Vec::with_capacity(n),
            at: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            details: Vec::with_capacity(n),
            event_key: Vec::with_capacity(n),
            affects: Vec::with_capacity(n),
            deltas: Default::default(),
            cums: Default::default(),
            hashes: Vec::with_capacity(n),
        };
        let parts = |t: Option<SubsidyTotals>| {
            [
                t.map(|t| t.churner_profit),
                t.map(|t| t.over_performance),
                t.map(|t| t.subsidy),
                t.map(|t| t.operator),
            ]
        };
        for r in rows {
            let row = &r.row;
            p.position_id.push(to_i64(row.position_id));
            p.bot_id.push(row.bot_id);
            p.slot_id.push(i64::from(row.slot_id));
            p.slot_seq.push(row.slot_seq);
            p.at.push(row.at);
            p.event_type.push(row.details.event_type().as_str());
            p.details.push(row.details.to_json());
            p.event_key.push(row.event_key);
            p.affects.push(row.subsidy.is_some());
            let (d, c) = row.subsidy.unzip();
            for (k, v) in parts(d).into_iter().enumerate() {
                p.deltas[k].push(v);
            }
            for (k, v) in parts(c).into_iter().enumerate() {
                p.cums[k].push(v);
            }
            p.hashes.push(r.request_hash);
        }
        p
    }

    /// Parameter bytes of each row.
    fn sizes(&self) -> Vec<usize> {
        (0..self.details.len())
            .map(|i| {
                FIXED_ROW_BYTES
                    + self.bot_id[i].len()
                    + self.event_key[i].len()
                    + self.hashes[i].len()
                    + self.details[i].len()
            })
            .collect()
    }

    /// Binds the rows `range` as `$1` to `$18`, borrowing the arrays.
    fn bind<'q>(
        &'q self,
        range: std::ops::Range<usize>,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        let [d0, d1, d2, d3] = self.deltas.each_ref().map(|v| &v[range.clone()]);
        let [c0, c1, c2, c3] = self.cums.each_ref().map(|v| &v[range.clone()]);
        query
            .bind(&self.position_id[range.clone()])
            .bind(&self.bot_id[range.clone()])
            .bind(&self.slot_id[range.clone()])
            .bind(&self.slot_seq[range.clone()])
            .bind(&self.at[range.clone()])
            .bind(&self.event_type[range.clone()])
            .bind(&self.details[range.clone()])
            .bind(&self.event_key[range.clone()])
            .bind(&self.affects[range.clone()])
            .bind(d0)
            .bind(d1)
            .bind(d2)
            .bind(d3)
            .bind(c0)
            .bind(c1)
            .bind(c2)
            .bind(c3)
            .bind(&self.hashes[range])
    }
}

/// The journal ids of an append's result rows (see [`append_rows`]).
fn journal_ids(done: &[sqlx::postgres::PgRow], expected: usize) -> StoreResult<Vec<u64>> {
    if done.len() != expected {
        return Err(StoreError::corrupt(
            "position_journal",
            format!("appended {} rows of {expected}", done.len()),
        ));
    }
    done.iter()
        .map(|row| to_u64("position_journal", get(row, "journal_id")?))
        .collect()
}

impl PgTx {
    /// Appends every row and records its key, in as few statements as
    /// [`STATEMENT_BYTES`] allows; returns the journal ids in the rows'
    /// order.
    pub(super) async fn append_all(&mut self, rows: &[KeyedRow<'_>]) -> StoreResult<Vec<u64>> {
        let params = RowParams::new(rows);
        let mut ids = Vec::with_capacity(rows.len());
        for range in statement_ranges(params.sizes()) {
            let n = range.len();
            let done = params
                .bind(range, sqlx::query(APPEND))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(StoreError::db("append journal rows"))?;
            ids.extend(journal_ids(&done, n)?);
        }
        Ok(ids)
    }
}

/// Bytes a claim's fixed-size parameters take at most (slot, seen,
/// count, array element headers).
const FIXED_CLAIM_BYTES: usize = 48;

/// [`crate::store::Store::append_if_unchanged`]: one statement
/// ([`APPEND_IF_UNCHANGED`]), one round trip with its own commit. A batch
/// too large for one statement ([`STATEMENT_BYTES`]) is not written here
/// (no ids): split, it would pay a commit per statement, where the locked
/// path pays one (measured: 8% fewer calls at 256 writers).
pub(super) async fn append_if_unchanged(
    pool: &PgPool,
    claims: &[SlotClaim],
    seen: &[i64],
    rows: &[KeyedRow<'_>],
) -> StoreResult<Vec<Option<u64>>> {
    let params = RowParams::new(rows);
    let bytes: usize = claims
        .iter()
        .map(|c| FIXED_CLAIM_BYTES + c.bot_id.len())
        .chain(params.sizes())
        .sum();
    if bytes > STATEMENT_BYTES || claims.len() != seen.len() {
        return Ok(vec![None; rows.len()]);
    }
    let (bots, slots, counts) = claim_params(claims);
    let done = params
        .bind(0..rows.len(), sqlx::query(APPEND_IF_UNCHANGED))
        .bind(bots)
        .bind(slots)
        .bind(seen.to_vec())
        .bind(counts)
        .fetch_all(pool)
        .await
        .map_err(StoreError::db("append journal rows if no slot moved"))?;
    if done.is_empty() {
        return Ok(vec![None; rows.len()]);
    }
    Ok(journal_ids(&done, rows.len())?
        .into_iter()
        .map(Some)
        .collect())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{
        domain::EventDetails,
        store::{
            ContextQuery, KeyedRow, NewJournalRow, PgStore, Store, StoreTx, UnlockedRead,
            postgres::fixture::{one_position, slot_claims as claims},
        },
    };

    async fn read(store: &PgStore, position_id: u64, key: &str) -> UnlockedRead {
        let query = ContextQuery {
            bot_id: "bot",
            slot_id: 0,
            event_key: key,
            position_id,
        };
        store
            .read_unlocked(&claims(), &[query])
            .await
            .expect("read without locks")
            .expect("a one-slot batch is read without locks")
    }

    /// Appends one row under `key` at the sequence `read` reserved.
    async fn append(
        store: &PgStore,
        position_id: u64,
        key: &str,
        read: &UnlockedRead,
    ) -> Option<u64> {
        let details = EventDetails::from_json(
            r#"{"churner_profit":{"net_profit":"0.25","churner_cycle_id":"c"}}"#,
        )
        .expect("details");
        let row = KeyedRow {
            row: NewJournalRow {
                position_id,
                bot_id: "bot",
                slot_id: 0,
                slot_seq: read.heads[0].seq,
                at: chrono::Utc::now(),
                details: &details,
                event_key: key,
                subsidy: None,
            },
            request_hash: "hash",
        };
        let ids = store
            .append_if_unchanged(&claims(), &read.seen, &[row])
            .await
            .expect("append");
        assert_eq!(ids.len(), 1, "one id per row");
        ids[0]
    }

    async fn last_seq(store: &PgStore) -> i64 {
        sqlx::query_scalar("SELECT last_seq FROM ledger_slots WHERE bot_id = 'bot' AND slot_id = 0")
            .fetch_one(store.pool())
            .await
            .expect("read last_seq")
    }

    /// A batch read without locks writes only if its slot did not move
    /// meanwhile; otherwise nothing at all (no row, no key, no reserved
    /// number), and a fresh read then writes.
    #[tokio::test]
    async fn an_unlocked_batch_writes_nothing_once_its_slot_moved() {
        let Some((_schema, store, position_id)) = one_position("unlocked_slot_moved").await else {
            return;
        };
        let stale = read(&store, position_id, "late").await;
        let first = read(&store, position_id, "first").await;
        assert_eq!(stale.seen, first.seen);
        assert_eq!(first.heads[0].seq, first.seen[0] + 1);
        let id = append(&store, position_id, "first", &first).await;
        assert!(id.is_some(), "an unchanged slot is written");
        let moved = last_seq(&store).await;
        assert_eq!(moved, first.seen[0] + 1);

        assert_eq!(append(&store, position_id, "late", &stale).await, None);
        assert_eq!(last_seq(&store).await, moved, "nothing reserved");
        assert!(
            store
                .event_key("bot", "late")
                .await
                .expect("read key")
                .is_none(),
            "nothing appended"
        );

        let fresh = read(&store, position_id, "late").await;
        assert!(append(&store, position_id, "late", &fresh).await.is_some());
    }

    /// A batch built from a slot's remembered state takes its keys as new.
    /// A retried key must make it write nothing, and fail nothing, so that
    /// the write runs again and is answered as a replay.
    #[tokio::test]
    async fn an_unlocked_batch_writes_nothing_when_a_key_is_recorded() {
        let Some((_schema, store, position_id)) = one_position("unlocked_key_recorded").await
        else {
            return;
        };
        let first = read(&store, position_id, "retried").await;
        assert!(
            append(&store, position_id, "retried", &first)
                .await
                .is_some()
        );
        let moved = last_seq(&store).await;

        // The slot did not move since this read; only the key is taken.
        let unchanged = read(&store, position_id, "other").await;
        assert_eq!(unchanged.seen[0], moved);
        assert_eq!(
            append(&store, position_id, "retried", &unchanged).await,
            None
        );
        assert_eq!(last_seq(&store).await, moved, "nothing reserved");
    }

    /// A slot locked by another transaction when the append comes: the
    /// append waits for the lock and, the holder having moved the slot,
    /// writes nothing. Under READ COMMITTED the check re-reads the row it
    /// waited for; a check on the statement's snapshot would pass and
    /// write on a state the rules never saw.
    #[tokio::test]
    async fn an_unlocked_batch_that_waited_for_a_lock_sees_the_slot_moved() {
        let Some((_schema, store, position_id)) = one_position("unlocked_waited").await else {
            return;
        };
        let before = read(&store, position_id, "batch").await;
        let mut holder = store.begin().await.expect("begin");
        holder.lock_slots(&claims()).await.expect("lock the slot");

        let waiting = {
            let store = store.clone();
            tokio::spawn(async move { append(&store, position_id, "batch", &before).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "the append did not wait for the lock"
        );
        holder.commit().await.expect("commit the holder");

        assert_eq!(waiting.await.expect("join"), None);
        assert!(
            store
                .event_key("bot", "batch")
                .await
                .expect("read key")
                .is_none()
        );
    }
}
