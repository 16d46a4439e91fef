-- A churner spawned or killed on a slot that holds no open position has no
-- position journal to be recorded in: the bot journal takes it. SQLite
-- cannot change a CHECK constraint, so the table is rebuilt with every row
-- (ids kept), its index and its append-only triggers.

CREATE TABLE bot_journal_next (
    bot_journal_id INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id         TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    action         TEXT    NOT NULL CHECK (action IN (
        'regime_override', 'regime_override_cleared', 'churner_reserve',
        'churner_spawn', 'churner_kill')),
    detail         TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    operator       TEXT    NOT NULL,
    event_key      TEXT    NOT NULL,
    request_hash   TEXT    NOT NULL,
    UNIQUE (bot_id, event_key)
);

INSERT INTO bot_journal_next
    (bot_journal_id, bot_id, at, action, detail, reason, operator, event_key, request_hash)
SELECT bot_journal_id, bot_id, at, action, detail, reason, operator, event_key, request_hash
FROM bot_journal;

DROP TRIGGER bot_journal_no_update;
DROP TRIGGER bot_journal_no_delete;
DROP TABLE bot_journal;
ALTER TABLE bot_journal_next RENAME TO bot_journal;

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
