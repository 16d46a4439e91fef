-- Journal writes are checked by the ledger's Rust rules in group-committed
-- batches; the server-side append that repeated those rules is retired, so
-- each rule lives in one place.
DROP FUNCTION IF EXISTS ledger_append_event;
