-- The bot journal: operator actions on a bot as a whole (a forced regime,
-- the churner reserve), which no position carries. Append-only and never
-- compacted; (bot_id, event_key) is the idempotency key, and request_hash
-- tells a retry from a reuse of the key for other content.

CREATE TABLE bot_journal (
    bot_journal_id INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id         TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    action         TEXT    NOT NULL CHECK (action IN (
        'regime_override', 'regime_override_cleared', 'churner_reserve')),
    detail         TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    operator       TEXT    NOT NULL,
    event_key      TEXT    NOT NULL,
    request_hash   TEXT    NOT NULL,
    UNIQUE (bot_id, event_key)
);

CREATE INDEX bot_journal_bot ON bot_journal (bot_id, bot_journal_id);

CREATE TRIGGER bot_journal_no_update
BEFORE UPDATE ON bot_journal
BEGIN
    SELECT RAISE(ABORT, 'bot_journal is append-only');
END;

CREATE TRIGGER bot_journal_no_delete
BEFORE DELETE ON bot_journal
BEGIN
    SELECT RAISE(ABORT, 'bot_journal is append-only');
END;
