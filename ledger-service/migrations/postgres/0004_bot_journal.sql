-- The bot journal: operator actions on a bot as a whole (a forced regime,
-- the churner reserve), which no position carries. Append-only and never
-- compacted; (bot_id, event_key) is the idempotency key, and request_hash
-- tells a retry from a reuse of the key for other content.

CREATE TABLE bot_journal (
    bot_journal_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id         TEXT        NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    action         TEXT        NOT NULL CHECK (action IN (
        'regime_override', 'regime_override_cleared', 'churner_reserve')),
    detail         TEXT        NOT NULL,
    reason         TEXT        NOT NULL,
    operator       TEXT        NOT NULL,
    event_key      TEXT        NOT NULL,
    request_hash   TEXT        NOT NULL,
    UNIQUE (bot_id, event_key)
);

CREATE INDEX bot_journal_bot ON bot_journal (bot_id, bot_journal_id);

CREATE FUNCTION bot_journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bot_journal is append-only';
END $$;

CREATE TRIGGER bot_journal_append_only BEFORE UPDATE OR DELETE ON bot_journal
    FOR EACH ROW EXECUTE FUNCTION bot_journal_append_only();
