-- healgrid ledger schema (PostgreSQL). Decimals are NUMERIC, times TIMESTAMPTZ.

CREATE TABLE position_ledger (
    position_id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id               TEXT        NOT NULL,
    slot_id              BIGINT      NOT NULL,
    trade_id             TEXT        NOT NULL CHECK (trade_id IN ('a', 'b')),
    slot_mode            TEXT        NOT NULL CHECK (slot_mode IN ('legacy', 'sticky', 'churner')),
    cycle                BIGINT      NOT NULL,
    open_key             TEXT        NOT NULL,
    open_hash            TEXT        NOT NULL,
    entry_price          NUMERIC     NOT NULL,
    entry_cost           NUMERIC     NOT NULL,
    entry_fee            NUMERIC     NOT NULL,
    entry_volume         NUMERIC     NOT NULL,
    entry_time           TIMESTAMPTZ NOT NULL,
    entry_regime         TEXT        NOT NULL,
    entry_volatility     NUMERIC     NOT NULL,
    original_exit_price  NUMERIC     NOT NULL,
    target_profit_pct    NUMERIC     NOT NULL,
    current_exit_price   NUMERIC     NOT NULL,
    exit_txid            TEXT        NOT NULL,
    times_repriced       INTEGER     NOT NULL DEFAULT 0,
    status               TEXT        NOT NULL CHECK (status IN ('open', 'closed')),
    exit_price           NUMERIC,
    exit_cost            NUMERIC,
    exit_fee             NUMERIC,
    exit_time            TIMESTAMPTZ,
    exit_regime          TEXT,
    net_profit           NUMERIC,
    close_reason         TEXT,
    UNIQUE (bot_id, open_key),
    CHECK ((status = 'open') = (close_reason IS NULL))
);

CREATE INDEX position_ledger_open ON position_ledger (bot_id, slot_id, status);
CREATE INDEX position_ledger_closed ON position_ledger (bot_id, status, exit_time);

-- Write-once columns stay write-once even against hand-written SQL.
CREATE FUNCTION position_ledger_write_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'closed'
       OR (NEW.bot_id, NEW.slot_id, NEW.trade_id, NEW.open_key, NEW.entry_price,
           NEW.entry_cost, NEW.entry_fee, NEW.entry_volume, NEW.entry_time,
           NEW.entry_regime, NEW.entry_volatility, NEW.original_exit_price,
           NEW.target_profit_pct)
          IS DISTINCT FROM
          (OLD.bot_id, OLD.slot_id, OLD.trade_id, OLD.open_key, OLD.entry_price,
           OLD.entry_cost, OLD.entry_fee, OLD.entry_volume, OLD.entry_time,
           OLD.entry_regime, OLD.entry_volatility, OLD.original_exit_price,
           OLD.target_profit_pct) THEN
        RAISE EXCEPTION 'position_ledger: write-once column changed or position closed';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER position_ledger_write_once BEFORE UPDATE ON position_ledger
    FOR EACH ROW EXECUTE FUNCTION position_ledger_write_once();

-- Per-slot lock row, sequence counter and compaction watermark.
CREATE TABLE ledger_slots (
    bot_id                     TEXT    NOT NULL,
    slot_id                    BIGINT  NOT NULL,
    last_seq                   BIGINT  NOT NULL,
    watermark_churner_profit   NUMERIC NOT NULL DEFAULT 0,
    watermark_over_performance NUMERIC NOT NULL DEFAULT 0,
    watermark_subsidy          NUMERIC NOT NULL DEFAULT 0,
    watermark_operator         NUMERIC NOT NULL DEFAULT 0,
    snapshot_seq               BIGINT  NOT NULL DEFAULT 0,
    snapshot_churner_profit    NUMERIC NOT NULL DEFAULT 0,
    snapshot_over_performance  NUMERIC NOT NULL DEFAULT 0,
    snapshot_subsidy           NUMERIC NOT NULL DEFAULT 0,
    snapshot_operator          NUMERIC NOT NULL DEFAULT 0,
    PRIMARY KEY (bot_id, slot_id)
);

CREATE TABLE position_journal (
    journal_id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position_id        BIGINT      NOT NULL REFERENCES position_ledger (position_id),
    bot_id             TEXT        NOT NULL,
    slot_id            BIGINT      NOT NULL,
    slot_seq           BIGINT      NOT NULL,
    at                 TIMESTAMPTZ NOT NULL,
    event_type         TEXT        NOT NULL CHECK (event_type IN (
        'created', 'repriced', 'filled', 'written_off', 'cancelled', 'churner_profit',
        'over_performance', 'operator_action', 'keep_holding', 'handed_over',
        'soft_closed', 'exchange_cancelled')),
    details            JSONB       NOT NULL,
    event_key          TEXT        NOT NULL,
    affects_subsidy    BOOLEAN     NOT NULL,
    delta_churner_profit   NUMERIC,
    delta_over_performance NUMERIC,
    delta_subsidy          NUMERIC,
    delta_operator         NUMERIC,
    cum_churner_profit     NUMERIC,
    cum_over_performance   NUMERIC,
    cum_subsidy            NUMERIC,
    cum_operator           NUMERIC,
    UNIQUE (bot_id, slot_id, slot_seq)
);

CREATE INDEX position_journal_position ON position_journal (position_id, journal_id);
CREATE INDEX position_journal_slot ON position_journal (bot_id, slot_id, journal_id);
CREATE INDEX position_journal_subsidy ON position_journal (bot_id, slot_id, slot_seq)
    WHERE affects_subsidy;

-- The journal is append-only; only compaction deletes (folding rows into the
-- slot watermark in the same transaction).
CREATE FUNCTION position_journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'position_journal is append-only';
END $$;

CREATE TRIGGER position_journal_append_only BEFORE UPDATE ON position_journal
    FOR EACH ROW EXECUTE FUNCTION position_journal_append_only();

-- Idempotency keys of journal writes; kept after compaction so a late retry
-- is still recognised.
CREATE TABLE ledger_event_keys (
    bot_id        TEXT   NOT NULL,
    event_key     TEXT   NOT NULL,
    request_hash  TEXT   NOT NULL,
    position_id   BIGINT NOT NULL,
    journal_id    BIGINT NOT NULL,
    PRIMARY KEY (bot_id, event_key)
);
