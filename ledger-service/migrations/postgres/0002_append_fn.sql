-- One-call journal append for JournalEvent, RepricePosition and ClosePosition.
--
-- The write path used to take five round trips (BEGIN, slot lock, read of
-- key/position/subsidy, insert, COMMIT). This function performs the same
-- steps inside one statement, so a caller in autocommit mode pays a single
-- round trip. Each statement of a VOLATILE plpgsql function takes a fresh
-- snapshot under READ COMMITTED, so the reads after the slot lock see every
-- write the previous lock holder committed, exactly as the multi-statement
-- transaction did.
--
-- Refusals use custom SQLSTATEs with a JSON DETAIL that the Rust store maps
-- to its error enum in one place (store/postgres/append.rs):
--   HL001  position not found             {"position_id"}
--   HL002  event key reused, other content {"event_key"}
--   HL003  position closed                 {"position_id"}
--   HL004  debit beyond the balance        {"bot_id","slot_id", current totals}
-- A unique violation on the key (a concurrent writer on another slot of the
-- same bot) surfaces as SQLSTATE 23505, as before.

CREATE FUNCTION ledger_append_event(
    p_position_id      BIGINT,
    p_at               TIMESTAMPTZ,
    p_event_type       TEXT,
    p_details          JSONB,
    p_event_key        TEXT,
    p_request_hash     TEXT,
    p_require_open     BOOLEAN,
    -- Subsidy contribution; all NULL when the event moves no subsidy.
    p_delta_churner_profit   NUMERIC,
    p_delta_over_performance NUMERIC,
    p_delta_subsidy          NUMERIC,
    p_delta_operator         NUMERIC,
    -- New exit intent of a reprice; NULL for other events. The old price
    -- and txid are read under the lock and written into the `repriced`
    -- details, which is why they cannot come from the caller.
    p_new_exit_price   NUMERIC,
    p_new_exit_txid    TEXT,
    -- Outcome of a close; all NULL for other events.
    p_close_reason     TEXT,
    p_exit_price       NUMERIC,
    p_exit_cost        NUMERIC,
    p_exit_fee         NUMERIC,
    p_exit_time        TIMESTAMPTZ,
    p_exit_regime      TEXT,
    p_net_profit       NUMERIC
) RETURNS TABLE (
    replayed              BOOLEAN,
    journal_id            BIGINT,
    key_position_id       BIGINT,
    cum_churner_profit    NUMERIC,
    cum_over_performance  NUMERIC,
    cum_subsidy           NUMERIC,
    cum_operator          NUMERIC,
    old_exit_price        NUMERIC,
    old_exit_txid         TEXT,
    position_id           BIGINT,
    bot_id                TEXT,
    slot_id               BIGINT,
    trade_id              TEXT,
    slot_mode             TEXT,
    cycle                 BIGINT,
    open_key              TEXT,
    entry_price           NUMERIC,
    entry_cost            NUMERIC,
    entry_fee             NUMERIC,
    entry_volume          NUMERIC,
    entry_time            TIMESTAMPTZ,
    entry_regime          TEXT,
    entry_volatility      NUMERIC,
    original_exit_price   NUMERIC,
    target_profit_pct     NUMERIC,
    current_exit_price    NUMERIC,
    exit_txid             TEXT,
    times_repriced        INTEGER,
    status                TEXT,
    exit_price            NUMERIC,
    exit_cost             NUMERIC,
    exit_fee              NUMERIC,
    exit_time             TIMESTAMPTZ,
    exit_regime           TEXT,
    net_profit            NUMERIC,
    close_reason          TEXT
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_slot      ledger_slots%ROWTYPE;
    v_key       ledger_event_keys%ROWTYPE;
    v_pos       position_ledger%ROWTYPE;
    v_newest    position_journal%ROWTYPE;
    v_cur_cp    NUMERIC;
    v_cur_op    NUMERIC;
    v_cur_sub   NUMERIC;
    v_cur_opr   NUMERIC;
    v_subsidy   BOOLEAN := p_delta_churner_profit IS NOT NULL;
    v_details   JSONB := p_details;
    v_journal   BIGINT;
BEGIN
    -- 1. Slot lock: bump the sequence, holding the row lock until commit.
    INSERT INTO ledger_slots AS s (bot_id, slot_id, last_seq)
        SELECT p.bot_id, p.slot_id, 1 FROM position_ledger p
        WHERE p.position_id = p_position_id
    ON CONFLICT ON CONSTRAINT ledger_slots_pkey DO UPDATE SET last_seq = s.last_seq + 1
    RETURNING s.* INTO v_slot;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'HL001',
            MESSAGE = format('position %s not found', p_position_id),
            DETAIL = json_build_object('position_id', p_position_id)::text;
    END IF;

    -- 2. Idempotency: a retry returns the original ids; the sequence number
    --    reserved above is handed back so replays leave no gap.
    SELECT k.* INTO v_key FROM ledger_event_keys k
        WHERE k.bot_id = v_slot.bot_id AND k.event_key = p_event_key;
    IF FOUND THEN
        IF v_key.request_hash <> p_request_hash THEN
            RAISE EXCEPTION USING ERRCODE = 'HL002',
                MESSAGE = format('event_key %L was already used with different content', p_event_key),
                DETAIL = json_build_object('event_key', p_event_key)::text;
        END IF;
        UPDATE ledger_slots s SET last_seq = s.last_seq - 1
            WHERE s.bot_id = v_slot.bot_id AND s.slot_id = v_slot.slot_id;
        RETURN QUERY SELECT true, v_key.journal_id, v_key.position_id,
            NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric, NULL::text,
            p.position_id, p.bot_id, p.slot_id, p.trade_id, p.slot_mode, p.cycle, p.open_key,
            p.entry_price, p.entry_cost, p.entry_fee, p.entry_volume, p.entry_time,
            p.entry_regime, p.entry_volatility, p.original_exit_price, p.target_profit_pct,
            p.current_exit_price, p.exit_txid, p.times_repriced, p.status, p.exit_price,
            p.exit_cost, p.exit_fee, p.exit_time, p.exit_regime, p.net_profit, p.close_reason
            FROM position_ledger p WHERE p.position_id = p_position_id;
        RETURN;
    END IF;

    -- 3. Position state, as committed by every earlier holder of the lock.
    SELECT p.* INTO v_pos FROM position_ledger p WHERE p.position_id = p_position_id;
    IF p_require_open AND v_pos.status <> 'open' THEN
        RAISE EXCEPTION USING ERRCODE = 'HL003',
            MESSAGE = format('position %s is closed', p_position_id),
            DETAIL = json_build_object('position_id', p_position_id)::text;
    END IF;

    -- 4. Current lifetime totals: the newest surviving subsidy row, or the
    --    compaction snapshot when that row was folded away.
    SELECT j.* INTO v_newest FROM position_journal j
        WHERE j.bot_id = v_slot.bot_id AND j.slot_id = v_slot.slot_id AND j.affects_subsidy
        ORDER BY j.slot_seq DESC LIMIT 1;
    IF FOUND AND v_newest.slot_seq >= v_slot.snapshot_seq THEN
        v_cur_cp := v_newest.cum_churner_profit;
        v_cur_op := v_newest.cum_over_performance;
        v_cur_sub := v_newest.cum_subsidy;
        v_cur_opr := v_newest.cum_operator;
    ELSE
        v_cur_cp := v_slot.snapshot_churner_profit;
        v_cur_op := v_slot.snapshot_over_performance;
        v_cur_sub := v_slot.snapshot_subsidy;
        v_cur_opr := v_slot.snapshot_operator;
    END IF;

    -- 5. A debit may not leave the balance negative (never clamped).
    IF v_subsidy THEN
        IF p_delta_subsidy + p_delta_operator <> 0
           AND (v_cur_cp + p_delta_churner_profit + v_cur_op + p_delta_over_performance)
             - (v_cur_sub + p_delta_subsidy + v_cur_opr + p_delta_operator) < 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'HL004',
                MESSAGE = format('insufficient subsidy for bot %s slot %s', v_slot.bot_id, v_slot.slot_id),
                DETAIL = json_build_object('bot_id', v_slot.bot_id, 'slot_id', v_slot.slot_id,
                    'churner_profit', v_cur_cp::text, 'over_performance', v_cur_op::text,
                    'subsidy', v_cur_sub::text, 'operator', v_cur_opr::text)::text;
        END IF;
        v_cur_cp := v_cur_cp + p_delta_churner_profit;
        v_cur_op := v_cur_op + p_delta_over_performance;
        v_cur_sub := v_cur_sub + p_delta_subsidy;
        v_cur_opr := v_cur_opr + p_delta_operator;
    END IF;

    -- 6. A reprice records the exit it replaced.
    IF p_new_exit_price IS NOT NULL THEN
        v_details := jsonb_set(jsonb_set(v_details,
            '{repriced,old_price}', to_jsonb(v_pos.current_exit_price::text)),
            '{repriced,old_txid}', to_jsonb(v_pos.exit_txid));
    END IF;

    -- 7. The journal row and its key, then the position change: a
    --    reprice moves the exit intent, a close writes the outcome.
    INSERT INTO position_journal AS j (position_id, bot_id, slot_id, slot_seq, at, event_type,
        details, event_key, affects_subsidy, delta_churner_profit, delta_over_performance,
        delta_subsidy, delta_operator, cum_churner_profit, cum_over_performance, cum_subsidy,
        cum_operator)
    VALUES (p_position_id, v_slot.bot_id, v_slot.slot_id, v_slot.last_seq, p_at, p_event_type,
        v_details, p_event_key, v_subsidy, p_delta_churner_profit, p_delta_over_performance,
        p_delta_subsidy, p_delta_operator,
        CASE WHEN v_subsidy THEN v_cur_cp END, CASE WHEN v_subsidy THEN v_cur_op END,
        CASE WHEN v_subsidy THEN v_cur_sub END, CASE WHEN v_subsidy THEN v_cur_opr END)
    RETURNING j.journal_id INTO v_journal;
    INSERT INTO ledger_event_keys AS k (bot_id, event_key, request_hash, position_id, journal_id)
        VALUES (v_slot.bot_id, p_event_key, p_request_hash, p_position_id, v_journal);

    IF p_new_exit_price IS NOT NULL THEN
        UPDATE position_ledger p SET current_exit_price = p_new_exit_price,
            exit_txid = p_new_exit_txid, times_repriced = p.times_repriced + 1
            WHERE p.position_id = p_position_id;
    END IF;
    -- The open check above ran under the lock, so the position is open.
    IF p_close_reason IS NOT NULL THEN
        UPDATE position_ledger p SET status = 'closed', close_reason = p_close_reason,
            exit_price = p_exit_price, exit_cost = p_exit_cost, exit_fee = p_exit_fee,
            exit_time = p_exit_time, exit_regime = p_exit_regime, net_profit = p_net_profit
            WHERE p.position_id = p_position_id AND p.status = 'open';
    END IF;

    RETURN QUERY SELECT false, v_journal, p_position_id,
        v_cur_cp, v_cur_op, v_cur_sub, v_cur_opr, v_pos.current_exit_price, v_pos.exit_txid,
        p.position_id, p.bot_id, p.slot_id, p.trade_id, p.slot_mode, p.cycle, p.open_key,
        p.entry_price, p.entry_cost, p.entry_fee, p.entry_volume, p.entry_time,
        p.entry_regime, p.entry_volatility, p.original_exit_price, p.target_profit_pct,
        p.current_exit_price, p.exit_txid, p.times_repriced, p.status, p.exit_price,
        p.exit_cost, p.exit_fee, p.exit_time, p.exit_regime, p.net_profit, p.close_reason
        FROM position_ledger p WHERE p.position_id = p_position_id;
END $$;
