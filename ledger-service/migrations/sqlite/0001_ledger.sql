-- healgrid ledger schema (SQLite). Decimals are TEXT (SQLite has no decimal
-- type; values are parsed back with rust_decimal), times are INTEGER unix
-- microseconds so they order and compare correctly.

CREATE TABLE position_ledger (
    position_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id               TEXT    NOT NULL,
    slot_id              INTEGER NOT NULL,
    trade_id             TEXT    NOT NULL CHECK (trade_id IN ('a', 'b')),
    slot_mode            TEXT    NOT NULL CHECK (slot_mode IN ('legacy', 'sticky', 'churner')),
    cycle                INTEGER NOT NULL,
    open_key             TEXT    NOT NULL,
    open_hash            TEXT    NOT NULL,
    entry_price          TEXT    NOT NULL,
    entry_cost           TEXT    NOT NULL,
    entry_fee            TEXT    NOT NULL,
    entry_volume         TEXT    NOT NULL,
    entry_time           INTEGER NOT NULL,
    entry_regime         TEXT    NOT NULL,
    entry_volatility     TEXT    NOT NULL,
    original_exit_price  TEXT    NOT NULL,
    target_profit_pct    TEXT    NOT NULL,
    current_exit_price   TEXT    NOT NULL,
    exit_txid            TEXT    NOT NULL,
    times_repriced       INTEGER NOT NULL DEFAULT 0,
    status               TEXT    NOT NULL CHECK (status IN ('open', 'closed')),
    exit_price           TEXT,
    exit_cost            TEXT,
    exit_fee             TEXT,
    exit_time            INTEGER,
    exit_regime          TEXT,
    net_profit           TEXT,
    close_reason         TEXT,
    UNIQUE (bot_id, open_key),
    CHECK ((status = 'open') = (close_reason IS NULL))
);

CREATE INDEX position_ledger_open ON position_ledger (bot_id, slot_id, status);
CREATE INDEX position_ledger_closed ON position_ledger (bot_id, status, exit_time);

-- Write-once columns stay write-once even against hand-written SQL.
CREATE TRIGGER position_ledger_write_once
BEFORE UPDATE ON position_ledger
WHEN NEW.bot_id IS NOT OLD.bot_id OR NEW.slot_id IS NOT OLD.slot_id
  OR NEW.trade_id IS NOT OLD.trade_id OR NEW.open_key IS NOT OLD.open_key
  OR NEW.entry_price IS NOT OLD.entry_price OR NEW.entry_cost IS NOT OLD.entry_cost
  OR NEW.entry_fee IS NOT OLD.entry_fee OR NEW.entry_volume IS NOT OLD.entry_volume
  OR NEW.entry_time IS NOT OLD.entry_time OR NEW.entry_regime IS NOT OLD.entry_regime
  OR NEW.entry_volatility IS NOT OLD.entry_volatility
  OR NEW.original_exit_price IS NOT OLD.original_exit_price
  OR NEW.target_profit_pct IS NOT OLD.target_profit_pct
  OR OLD.status = 'closed'
BEGIN
    SELECT RAISE(ABORT, 'position_ledger: write-once column changed or position closed');
END;

-- Per-slot lock row, sequence counter and compaction watermark.
CREATE TABLE ledger_slots (
    bot_id                    TEXT    NOT NULL,
    slot_id                   INTEGER NOT NULL,
    last_seq                  INTEGER NOT NULL,
    watermark_churner_profit  TEXT    NOT NULL DEFAULT '0',
    watermark_over_performance TEXT   NOT NULL DEFAULT '0',
    watermark_subsidy         TEXT    NOT NULL DEFAULT '0',
    watermark_operator        TEXT    NOT NULL DEFAULT '0',
    snapshot_seq              INTEGER NOT NULL DEFAULT 0,
    snapshot_churner_profit   TEXT    NOT NULL DEFAULT '0',
    snapshot_over_performance TEXT    NOT NULL DEFAULT '0',
    snapshot_subsidy          TEXT    NOT NULL DEFAULT '0',
    snapshot_operator         TEXT    NOT NULL DEFAULT '0',
    PRIMARY KEY (bot_id, slot_id)
);

CREATE TABLE position_journal (
    journal_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    position_id        INTEGER NOT NULL REFERENCES position_ledger (position_id),
    bot_id             TEXT    NOT NULL,
    slot_id            INTEGER NOT NULL,
    slot_seq           INTEGER NOT NULL,
    at                 INTEGER NOT NULL,
    event_type         TEXT    NOT NULL CHECK (event_type IN (
        'created', 'repriced', 'filled', 'written_off', 'cancelled', 'churner_profit',
        'over_performance', 'operator_action', 'keep_holding', 'handed_over',
        'soft_closed', 'exchange_cancelled')),
    details            TEXT    NOT NULL,
    event_key          TEXT    NOT NULL,
    affects_subsidy    INTEGER NOT NULL,
    delta_churner_profit   TEXT,
    delta_over_performance TEXT,
    delta_subsidy          TEXT,
    delta_operator         TEXT,
    cum_churner_profit     TEXT,
    cum_over_performance   TEXT,
    cum_subsidy            TEXT,
    cum_operator           TEXT,
    UNIQUE (bot_id, slot_id, slot_seq)
);

CREATE INDEX position_journal_position ON position_journal (position_id, journal_id);
CREATE INDEX position_journal_slot ON position_journal (bot_id, slot_id, journal_id);
CREATE INDEX position_journal_subsidy ON position_journal (bot_id, slot_id, slot_seq)
    WHERE affects_subsidy = 1;

-- The journal is append-only; only compaction (which folds rows into the
-- slot watermark in the same transaction) deletes.
CREATE TRIGGER position_journal_append_only
BEFORE UPDATE ON position_journal
BEGIN
    SELECT RAISE(ABORT, 'position_journal is append-only');
END;

-- Idempotency keys of journal writes; kept after compaction so a late retry
-- is still recognised.
CREATE TABLE ledger_event_keys (
    bot_id        TEXT    NOT NULL,
    event_key     TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    position_id   INTEGER NOT NULL,
    journal_id    INTEGER NOT NULL,
    PRIMARY KEY (bot_id, event_key)
);
