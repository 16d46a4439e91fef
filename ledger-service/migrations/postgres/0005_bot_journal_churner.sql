-- A churner spawned or killed on a slot that holds no open position has no
-- position journal to be recorded in: the bot journal takes it.
ALTER TABLE bot_journal DROP CONSTRAINT bot_journal_action_check;
ALTER TABLE bot_journal ADD CONSTRAINT bot_journal_action_check CHECK (action IN (
    'regime_override', 'regime_override_cleared', 'churner_reserve',
    'churner_spawn', 'churner_kill'));
