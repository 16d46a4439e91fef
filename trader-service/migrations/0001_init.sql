-- The trader's durable local store: the engine snapshot, the ordered outbox
-- of ledger writes, and a small key/value table for runtime metadata.

-- Exactly one row: the engine state after the last committed step.
CREATE TABLE engine_snapshot (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    step        INTEGER NOT NULL CHECK (step >= 0),
    state       TEXT    NOT NULL CHECK (json_valid(state)),
    updated_at  INTEGER NOT NULL -- unix milliseconds
);

-- Ledger writes not yet acknowledged (and a bounded tail of acknowledged
-- ones). AUTOINCREMENT guarantees a seq is never reused, even after pruning
-- the newest delivered row, so seq order is commit order forever.
CREATE TABLE outbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key  TEXT    NOT NULL UNIQUE CHECK (length(idempotency_key) > 0),
    kind             TEXT    NOT NULL,
    payload          TEXT    NOT NULL CHECK (json_valid(payload)),
    created_at       INTEGER NOT NULL, -- unix milliseconds
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  INTEGER NOT NULL, -- unix milliseconds
    last_error       TEXT,
    state            TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'parked'))
);

CREATE INDEX outbox_by_state_seq ON outbox (state, seq);

-- Runtime metadata (last seen trade time, nonce high-water marks,
-- order_key -> txid, ...). Values are opaque text chosen by the runtime.
CREATE TABLE runtime_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
