//! The batch primitives of the PostgreSQL backend: each one statement over
//! arrays (`unnest`), so a batch of any size costs the same round trips.

use std::collections::HashMap;

use sqlx::{PgPool, postgres::PgRow};
use tracing::debug;

use crate::store::{
    ContextQuery, EventKeyRecord, SlotClaim, SlotHead, StoreError, StoreResult, UnlockedRead,
    WriteContext, to_i64, to_u32, to_u64,
};

use super::{PgTx, rows::*};

/// Bot and slot of each existing position of `ids`.
pub(super) async fn position_slots(
    pool: &PgPool,
    ids: &[u64],
) -> StoreResult<HashMap<u64, (String, u32)>> {
    let ids: Vec<i64> = ids.iter().map(|&id| to_i64(id)).collect();
    let rows = sqlx::query(
        "SELECT position_id, bot_id, slot_id FROM position_ledger WHERE position_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
    .map_err(StoreError::db("read position slots"))?;
    rows.iter()
        .map(|row| {
            Ok((
                to_u64("position_ledger", get(row, "position_id")?)?,
                (
                    get(row, "bot_id")?,
                    to_u32("position_ledger", get(row, "slot_id")?)?,
                ),
            ))
        })
        .collect()
}

/// The columns of the write-context read (see [`context_from_row`]).
macro_rules! context_columns {
    () => {
        "t.ord, k.request_hash, k.position_id AS key_position_id, \
         k.journal_id AS key_journal_id, p.*, j.slot_seq AS newest_seq, \
         j.cum_churner_profit, j.cum_over_performance, j.cum_subsidy, j.cum_operator"
    };
}

/// The lookups of the write-context read, one row per query (`$1` to `$4`:
/// bots, slots, event keys, position ids).
///
/// Each lookup is a `LATERAL ... LIMIT 1` subquery so it stays one index
/// probe per write whatever the table statistics say: as plain joins, a
/// young table's stale statistics let the planner hash-join a sequential
/// scan of every key ever recorded, once per batch (`tests` below).
macro_rules! context_lookups {
    () => {
        "unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) \
           WITH ORDINALITY AS t(bot, slot, ekey, pid, ord) \
         LEFT JOIN LATERAL (SELECT request_hash, position_id, journal_id \
           FROM ledger_event_keys WHERE bot_id = t.bot AND event_key = t.ekey LIMIT 1) k \
           ON true \
         LEFT JOIN LATERAL (SELECT * FROM position_ledger WHERE position_id = t.pid LIMIT 1) p \
           ON true \
         LEFT JOIN LATERAL (SELECT slot_seq, cum_churner_profit, cum_over_performance, \
             cum_subsidy, cum_operator FROM position_journal \
           WHERE bot_id = t.bot AND slot_id = t.slot AND affects_subsidy \
           ORDER BY slot_seq DESC LIMIT 1) j ON true"
    };
}

/// Locks the claimed slots (bots, slots, rows to reserve: the three given
/// parameters) in one upsert, in byte order of the bot id, then slot, as
/// the ledger sorts its claims (`COLLATE "C"` keeps the database's order
/// the same), and returns each slot's head.
macro_rules! claim_slots {
    ($bots:literal, $slots:literal, $rows:literal) => {
        concat!(
            "INSERT INTO ledger_slots (bot_id, slot_id, last_seq) \
             SELECT b, s, n FROM unnest(",
            $bots,
            "::text[], ",
            $slots,
            "::bigint[], ",
            $rows,
            "::bigint[]) AS c(b, s, n) \
             ORDER BY b COLLATE \"C\", s \
             ON CONFLICT (bot_id, slot_id) DO UPDATE \
             SET last_seq = ledger_slots.last_seq + EXCLUDED.last_seq \
             RETURNING bot_id, slot_id, last_seq, watermark_churner_profit, \
               watermark_over_performance, watermark_subsidy, watermark_operator, snapshot_seq, \
               snapshot_churner_profit, snapshot_over_performance, snapshot_subsidy, \
               snapshot_operator"
        )
    };
}

/// A slot's head (`l`), as [`slot_head`] reads it.
macro_rules! head_columns {
    () => {
        "l.last_seq, l.watermark_churner_profit, l.watermark_over_performance, \
         l.watermark_subsidy, l.watermark_operator, l.snapshot_seq, l.snapshot_churner_profit, \
         l.snapshot_over_performance, l.snapshot_subsidy, l.snapshot_operator"
    };
}

/// The write contexts of a batch: per write its event key, position and
/// the newest subsidy row of its slot, in the writes' order.
const CONTEXTS: &str = concat!(
    "SELECT ",
    context_columns!(),
    " FROM ",
    context_lookups!(),
    " ORDER BY t.ord"
);

/// The slot locks of a batch (`$1` to `$3`).
const CLAIMS: &str = claim_slots!("$1", "$2", "$3");

/// [`CLAIMS`] (`$5` to `$7`) and [`CONTEXTS`] in one statement, each
/// context row with its slot's head and the slot's `last_seq` as the
/// statement's snapshot saw it (`seen_seq`).
///
/// The reads share the statement's snapshot, taken before the locks: a
/// batch of another transaction that committed to a slot while this one
/// waited for its lock is not in them. It did move the slot's `last_seq`,
/// though (every write to a slot reserves numbers under its lock), so
/// `seen_seq + reserved != last_seq` tells a stale read apart, and
/// [`PgTx::lock_and_read`] then reads again under the locks.
const CLAIMS_AND_CONTEXTS: &str = concat!(
    "WITH l AS (",
    claim_slots!("$5", "$6", "$7"),
    ") SELECT ",
    context_columns!(),
    ", ",
    head_columns!(),
    ", (SELECT s.last_seq FROM ledger_slots s WHERE s.bot_id = t.bot AND s.slot_id = t.slot) \
         AS seen_seq FROM ",
    context_lookups!(),
    " JOIN l ON l.bot_id = t.bot AND l.slot_id = t.slot ORDER BY t.ord"
);

/// [`CONTEXTS`] with each write's slot head, read without locks in one
/// snapshot (see [`read_unlocked`]).
const UNLOCKED: &str = concat!(
    "SELECT ",
    context_columns!(),
    ", ",
    head_columns!(),
    " FROM ",
    context_lookups!(),
    " JOIN ledger_slots l ON l.bot_id = t.bot AND l.slot_id = t.slot ORDER BY t.ord"
);

/// Most bytes of parameters one batch statement should carry.
///
/// sqlx hands a statement to a TLS connection as one plaintext write, which
/// rustls cuts into records of 16 KiB, each written to the socket on its
/// own; sqlx leaves Nagle's algorithm on, so a second record waits for the
/// server's delayed ACK (40 ms on Linux). A batch of a hundred writes in
/// one statement thus stalled every batch and halved the ledger's
/// throughput under load (`ledger-bench`, 256 clients). Statements kept
/// under one record never wait; the rest of the record is headroom for the
/// estimate below.
pub(super) const STATEMENT_BYTES: usize = 12 * 1024;

/// Bytes a write context query's fixed-size parameters take at most (slot,
/// position id, ordinal, array element headers).
const FIXED_QUERY_BYTES: usize = 48;

/// Splits `0..sizes.len()` into consecutive ranges whose summed sizes stay
/// within [`STATEMENT_BYTES`]; a range holds at least one item.
pub(super) fn statement_ranges(
    sizes: impl IntoIterator<Item = usize>,
) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes, mut n) = (0, 0, 0);
    for size in sizes {
        if n > start && bytes + size > STATEMENT_BYTES {
            ranges.push(start..n);
            start = n;
            bytes = 0;
        }
        bytes += size;
        n += 1;
    }
    if n > start {
        ranges.push(start..n);
    }
    ranges
}

/// The parameters of [`CLAIMS`]: bots, slots and rows to reserve (at
/// least one each).
pub(super) fn claim_params(claims: &[SlotClaim]) -> (Vec<&str>, Vec<i64>, Vec<i64>) {
    (
        claims.iter().map(|c| c.bot_id.as_str()).collect(),
        claims.iter().map(|c| i64::from(c.slot_id)).collect(),
        claims.iter().map(|c| i64::from(c.rows.max(1))).collect(),
    )
}

/// The head of each claim, in the claims' order, taken from the locked
/// rows by `take`, with `seq` moved from the last reserved number (what the
/// upsert returns) to the first of the claim's.
fn reserved_heads<'c>(
    claims: &'c [SlotClaim],
    reserved: &[i64],
    mut take: impl FnMut(&'c SlotClaim) -> Option<SlotHead>,
) -> StoreResult<Vec<SlotHead>> {
    claims
        .iter()
        .zip(reserved)
        .map(|(c, n)| {
            let mut head = take(c)
                .ok_or_else(|| StoreError::corrupt("ledger_slots", "claimed slot not locked"))?;
            head.seq = head.seq - n + 1;
            Ok(head)
        })
        .collect()
}

/// The parameters of [`CONTEXTS`]: bots, slots, event keys, position ids.
fn query_params<'q>(
    queries: &[ContextQuery<'q>],
) -> (Vec<&'q str>, Vec<i64>, Vec<&'q str>, Vec<i64>) {
    (
        queries.iter().map(|q| q.bot_id).collect(),
        queries.iter().map(|q| i64::from(q.slot_id)).collect(),
        queries.iter().map(|q| q.event_key).collect(),
        queries.iter().map(|q| to_i64(q.position_id)).collect(),
    )
}

/// The parameter bytes of each context query.
fn query_sizes<'a>(queries: &'a [ContextQuery<'_>]) -> impl Iterator<Item = usize> + 'a {
    queries
        .iter()
        .map(|q| FIXED_QUERY_BYTES + q.bot_id.len() + q.event_key.len())
}

/// Whether the heads of `claims` and the contexts of `queries` can be
/// read in one statement: it fits [`STATEMENT_BYTES`], and every claimed
/// slot has a write (the statement finds each head on a write's row).
fn in_one_statement(claims: &[SlotClaim], queries: &[ContextQuery<'_>]) -> bool {
    let bytes: usize = claims
        .iter()
        .map(|c| FIXED_QUERY_BYTES + c.bot_id.len())
        .chain(query_sizes(queries))
        .sum();
    let written: std::collections::HashSet<(&str, u32)> =
        queries.iter().map(|q| (q.bot_id, q.slot_id)).collect();
    bytes <= STATEMENT_BYTES
        && !claims.is_empty()
        && claims
            .iter()
            .all(|c| written.contains(&(c.bot_id.as_str(), c.slot_id)))
}

/// Most writes a batch may have to run without locks (read unlocked, or
/// staged from remembered slots): about as many rows as one unlocked
/// append may carry (a journal row takes some 500 bytes of parameters). A
/// larger batch would be read or staged for nothing, its append being too
/// large for one statement, and that read costs the database as much as
/// the locked one (measured: a quarter fewer calls at 64 writers when
/// every large batch read twice).
pub(super) const UNLOCKED_MAX_WRITES: usize = STATEMENT_BYTES / 512;

/// [`crate::store::Store::read_unlocked`]: [`UNLOCKED`], one round trip
/// outside any transaction. `None` when the batch has more than
/// [`UNLOCKED_MAX_WRITES`] writes, does not fit one statement, or a
/// claimed slot has no row yet.
pub(super) async fn read_unlocked(
    pool: &PgPool,
    claims: &[SlotClaim],
    queries: &[ContextQuery<'_>],
) -> StoreResult<Option<UnlockedRead>> {
    if queries.len() > UNLOCKED_MAX_WRITES || !in_one_statement(claims, queries) {
        return Ok(None);
    }
    let (bots, slots, keys, ids) = query_params(queries);
    let rows = sqlx::query(UNLOCKED)
        .bind(bots)
        .bind(slots)
        .bind(keys)
        .bind(ids)
        .fetch_all(pool)
        .await
        .map_err(StoreError::db("read write contexts without locks"))?;
    if rows.len() != queries.len() {
        return Ok(None);
    }
    let mut by_slot = per_slot(queries, &rows, slot_head)?;
    // Nothing is reserved yet: a claim's first number is `last_seq + 1`.
    let mut seen = Vec::with_capacity(claims.len());
    let heads = reserved_heads(claims, &vec![0; claims.len()], |c| {
        let head = by_slot.remove(&(c.bot_id.as_str(), c.slot_id))?;
        seen.push(head.seq);
        Some(head)
    })?;
    let contexts = rows
        .iter()
        .map(context_from_row)
        .collect::<StoreResult<_>>()?;
    Ok(Some(UnlockedRead {
        heads,
        seen,
        contexts,
    }))
}

/// `read` of the first of `rows` (one per query, in order) of each slot:
/// the slot's columns, which every row of the slot repeats.
fn per_slot<'q, T>(
    queries: &[ContextQuery<'q>],
    rows: &[PgRow],
    read: impl Fn(&PgRow) -> StoreResult<T>,
) -> StoreResult<HashMap<(&'q str, u32), T>> {
    let mut by_slot = HashMap::new();
    for (q, row) in queries.iter().zip(rows) {
        if let std::collections::hash_map::Entry::Vacant(slot) =
            by_slot.entry((q.bot_id, q.slot_id))
        {
            slot.insert(read(row)?);
        }
    }
    Ok(by_slot)
}

/// One row of [`CONTEXTS`] (or of [`CLAIMS_AND_CONTEXTS`]).
fn context_from_row(row: &PgRow) -> StoreResult<WriteContext> {
    let key = match get::<Option<i64>>(row, "key_journal_id")? {
        Some(journal_id) => Some(EventKeyRecord {
            request_hash: get(row, "request_hash")?,
            position_id: to_u64("ledger_event_keys", get(row, "key_position_id")?)?,
            journal_id: to_u64("ledger_event_keys", journal_id)?,
        }),
        None => None,
    };
    let position = match get::<Option<i64>>(row, "position_id")? {
        Some(_) => Some(position_from_row(row)?),
        None => None,
    };
    let newest = newest_subsidy(row)?;
    Ok(WriteContext {
        key,
        position,
        newest,
    })
}

impl PgTx {
    /// Locks the claimed slots in one upsert ([`CLAIMS`]), reserving
    /// `rows` sequence numbers in each.
    pub(super) async fn lock_claims(&mut self, claims: &[SlotClaim]) -> StoreResult<Vec<SlotHead>> {
        let (bots, slots, counts) = claim_params(claims);
        let rows = sqlx::query(CLAIMS)
            .bind(bots)
            .bind(slots)
            .bind(&counts)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(StoreError::db("lock slots"))?;
        let mut by_slot: HashMap<(String, u32), SlotHead> = HashMap::new();
        for row in &rows {
            let key = (
                get::<String>(row, "bot_id")?,
                to_u32("ledger_slots", get(row, "slot_id")?)?,
            );
            by_slot.insert(key, slot_head(row)?);
        }
        reserved_heads(claims, &counts, |c| {
            by_slot.remove(&(c.bot_id.clone(), c.slot_id))
        })
    }

    /// [`PgTx::lock_claims`] then [`PgTx::contexts`], in one round trip
    /// ([`CLAIMS_AND_CONTEXTS`]) when the batch fits one statement and no
    /// other transaction wrote to its slots while it waited for their
    /// locks; otherwise the contexts are read again, under the locks.
    pub(super) async fn lock_and_read(
        &mut self,
        claims: &[SlotClaim],
        queries: &[ContextQuery<'_>],
    ) -> StoreResult<(Vec<SlotHead>, Vec<WriteContext>)> {
        if !in_one_statement(claims, queries) {
            let heads = self.lock_claims(claims).await?;
            return Ok((heads, self.contexts(queries).await?));
        }
        let (bots, slots, counts) = claim_params(claims);
        let (q_bots, q_slots, q_keys, q_ids) = query_params(queries);
        let rows = sqlx::query(CLAIMS_AND_CONTEXTS)
            .bind(q_bots)
            .bind(q_slots)
            .bind(q_keys)
            .bind(q_ids)
            .bind(bots)
            .bind(slots)
            .bind(&counts)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(StoreError::db("lock slots and read write contexts"))?;
        if rows.len() != queries.len() {
            return Err(StoreError::corrupt(
                "ledger_slots",
                format!("{} write contexts for {} writes", rows.len(), queries.len()),
            ));
        }
        let mut by_slot = per_slot(queries, &rows, |row| {
            Ok((slot_head(row)?, get::<Option<i64>>(row, "seen_seq")?))
        })?;
        let fresh = claims.iter().zip(&counts).all(|(c, n)| {
            by_slot
                .get(&(c.bot_id.as_str(), c.slot_id))
                .is_some_and(|(head, seen)| seen.unwrap_or(0) + n == head.seq)
        });
        let heads = reserved_heads(claims, &counts, |c| {
            by_slot
                .remove(&(c.bot_id.as_str(), c.slot_id))
                .map(|(head, _)| head)
        })?;
        let contexts = if fresh {
            rows.iter()
                .map(context_from_row)
                .collect::<StoreResult<_>>()?
        } else {
            debug!("a slot moved while the batch waited for its lock; reading its writes again");
            self.contexts(queries).await?
        };
        Ok((heads, contexts))
    }

    /// Every query's key, position and the newest subsidy row of its slot,
    /// in statements run after the locks (one per [`STATEMENT_BYTES`]), so READ COMMITTED gives it a
    /// snapshot with every earlier write of those slots.
    pub(super) async fn contexts(
        &mut self,
        queries: &[ContextQuery<'_>],
    ) -> StoreResult<Vec<WriteContext>> {
        let mut contexts = Vec::with_capacity(queries.len());
        for range in statement_ranges(query_sizes(queries)) {
            contexts.extend(self.contexts_in_one(&queries[range]).await?);
        }
        Ok(contexts)
    }

    /// [`PgTx::contexts`] of queries that fit one statement.
    async fn contexts_in_one(
        &mut self,
        queries: &[ContextQuery<'_>],
    ) -> StoreResult<Vec<WriteContext>> {
        let (bots, slots, keys, ids) = query_params(queries);
        let rows = sqlx::query(CONTEXTS)
            .bind(bots)
            .bind(slots)
            .bind(keys)
            .bind(ids)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(StoreError::db("read write contexts"))?;
        rows.iter().map(context_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use healgrid_tests::pg::TestSchema;

    use super::CONTEXTS;
    use crate::store::PgStore;

    #[test]
    fn statements_stay_under_one_tls_record() {
        use super::{STATEMENT_BYTES, statement_ranges};
        assert!(statement_ranges([]).is_empty());
        assert_eq!(statement_ranges([10, 20, 30]), vec![0..3]);
        let half = STATEMENT_BYTES / 2;
        assert_eq!(statement_ranges([half, half, 1, half]), vec![0..2, 2..4]);
        // An item over the budget still goes, alone.
        assert_eq!(
            statement_ranges([1, STATEMENT_BYTES * 2, 1]),
            vec![0..1, 1..2, 2..3]
        );
    }

    /// The one-statement lock and read takes its snapshot before it waits
    /// for a slot's lock: a batch that waited must still see what the
    /// lock's holder committed (its subsidy row, its reserved numbers).
    #[tokio::test]
    async fn a_batch_that_waited_for_a_slot_reads_what_the_holder_wrote() {
        use std::time::Duration;

        use crate::store::{
            ContextQuery, Store, StoreTx,
            postgres::fixture::{one_position, slot_claims},
        };

        let Some((_schema, store, position_id)) = one_position("batch_waited_for_slot").await
        else {
            return;
        };
        let claims = slot_claims();

        // The holder locks the slot and writes a subsidy row under it.
        let mut holder = store.begin().await.expect("begin");
        let heads = holder.lock_slots(&claims).await.expect("lock the slot");
        let holder_seq = heads[0].seq;
        sqlx::query(
            "INSERT INTO position_journal (position_id, bot_id, slot_id, slot_seq, at, \
               event_type, details, event_key, affects_subsidy, delta_churner_profit, \
               delta_over_performance, delta_subsidy, delta_operator, cum_churner_profit, \
               cum_over_performance, cum_subsidy, cum_operator) \
             VALUES ($1, 'bot', 0, $2, now(), 'churner_profit', \
               '{\"churner_profit\":{\"net_profit\":\"0.25\",\"churner_cycle_id\":\"c\"}}', \
               'holder', true, 0.25, 0, 0, 0, 0.25, 0, 0, 0)",
        )
        .bind(i64::try_from(position_id).expect("id"))
        .bind(holder_seq)
        .execute(&mut *holder.tx)
        .await
        .expect("write under the lock");

        // The batch claims the same slot and waits for the holder.
        let waiting = {
            let store = store.clone();
            let claims = claims.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.expect("begin");
                let queries = [ContextQuery {
                    bot_id: "bot",
                    slot_id: 0,
                    event_key: "batch-key",
                    position_id,
                }];
                let read = tx.lock_and_read(&claims, &queries).await;
                tx.commit().await.expect("commit");
                read
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "the batch did not wait for the lock"
        );
        holder.commit().await.expect("commit the holder");

        let (heads, contexts) = waiting.await.expect("join").expect("lock and read");
        assert_eq!(heads[0].seq, holder_seq + 1, "reserved after the holder");
        let newest = contexts[0].newest.expect("the holder's subsidy row");
        assert_eq!(newest.slot_seq, holder_seq);
        assert_eq!(
            newest.totals.churner_profit,
            rust_decimal::Decimal::new(25, 2)
        );
        assert!(contexts[0].key.is_none());
        assert_eq!(
            contexts[0].position.as_ref().map(|p| p.position_id),
            Some(position_id)
        );
    }

    /// A fresh ledger's tables have no statistics; the batch read must
    /// still probe each write's rows by index, not scan whole tables.
    #[tokio::test]
    async fn a_young_ledger_reads_a_batch_by_index() {
        let Some(schema) = TestSchema::create("batch_contexts_plan").await else {
            return;
        };
        let store = PgStore::connect_with(&schema.url, 1)
            .await
            .expect("open postgres store");
        for writes in [1_i64, 16, 128] {
            let slots: Vec<i64> = (0..writes).collect();
            let keys: Vec<String> = slots.iter().map(|n| format!("k-{n}")).collect();
            let bots: Vec<&str> = slots.iter().map(|_| "bot").collect();
            let ids: Vec<i64> = (1..=writes).collect();
            let lines: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {CONTEXTS}")))
                    .bind(bots)
                    .bind(slots)
                    .bind(keys)
                    .bind(ids)
                    .fetch_all(store.pool())
                    .await
                    .expect("explain the batch read");
            let plan = lines.join("\n");
            assert!(
                !plan.contains("Seq Scan"),
                "{writes} writes: the batch read scans a table:\n{plan}"
            );
        }
    }
}
