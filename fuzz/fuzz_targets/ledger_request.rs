//! The ledger's request validation: the first byte picks a write RPC
//! (open, close, reprice, bot journal, journal event), the rest is decoded
//! as its protobuf request exactly as the gRPC server decodes it, parsed
//! into a domain command and validated as the ledger does before storing.
//! A valid command's subsidy contribution is then applied to a slot that
//! already holds the same contribution, as a second identical credit or
//! debit would be. Any request must be refused with an
//! error naming the field, never a panic.
#![no_main]

use chrono::{DateTime, Utc};
use healgrid_proto::ledger::v1 as pb;
use ledger_service::{SubsidyTotals, wire};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// A fixed "now", so a crash reproduces.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default()
}

/// A slot's totals after `delta` arrives twice, through the ledger's one
/// rule for applying subsidy.
fn apply_twice(delta: SubsidyTotals) {
    if let Ok(once) = SubsidyTotals::default().apply(&delta, "bot", 0) {
        let _ = once.apply(&delta, "bot", 0);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Ok(r) = pb::OpenPositionRequest::decode(body)
                && let Ok(cmd) = wire::open_command(r)
            {
                let _ = cmd.validated(now());
            }
        }
        1 => {
            if let Ok(r) = pb::ClosePositionRequest::decode(body)
                && let Ok(cmd) = wire::close_command(r)
            {
                let _ = cmd.validated(now());
            }
        }
        2 => {
            if let Ok(r) = pb::RepricePositionRequest::decode(body)
                && let Ok(cmd) = wire::reprice_command(r)
                && let Ok(cmd) = cmd.validated(now())
            {
                // A slot that earned the debit once and already spent it.
                let debit = SubsidyTotals {
                    subsidy: cmd.subsidy_consumed,
                    ..SubsidyTotals::default()
                };
                let held = SubsidyTotals {
                    churner_profit: cmd.subsidy_consumed,
                    ..debit
                };
                let _ = held.apply(&debit, "bot", 0);
            }
        }
        3 => {
            if let Ok(r) = pb::AppendBotJournalRequest::decode(body)
                && let Ok(cmd) = wire::bot_journal_command(r)
            {
                let _ = cmd.validated(now());
            }
        }
        _ => {
            if let Ok(r) = pb::JournalEventRequest::decode(body)
                && let Ok(cmd) = wire::event_command(r)
                && let Ok(cmd) = cmd.validated(now())
            {
                apply_twice(cmd.details.subsidy_delta());
            }
        }
    }
});
