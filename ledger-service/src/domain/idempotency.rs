//! Canonical content hashes for idempotent writes.
//!
//! A retry is recognised by its key; whether it is the *same* request is
//! decided by comparing a hash of its content. Decimals are normalized
//! before hashing so `1.50` and `1.5` are the same content.

use std::fmt::Write as _;

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::{
    bot_journal::BotJournalCommand,
    journal::{EventCommand, EventDetails, RepriceCommand},
    position::{CloseCommand, OpenCommand},
};

/// Accumulates fields in a fixed order and hashes them.
struct Canonical(String);

impl Canonical {
    fn new(kind: &str) -> Self {
        Self(format!("healgrid.ledger.v1/{kind}"))
    }

    fn field(mut self, value: impl std::fmt::Display) -> Self {
        // A unit separator cannot occur in validated fields.
        let _ = write!(self.0, "\u{1f}{value}");
        self
    }

    fn decimal(self, value: Decimal) -> Self {
        self.field(value.normalize())
    }

    fn opt_decimal(self, value: Option<Decimal>) -> Self {
        match value {
            Some(v) => self.decimal(v),
            None => self.field("-"),
        }
    }

    fn finish(self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        digest.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

/// Hash of an open request.
pub fn open_hash(c: &OpenCommand) -> String {
    Canonical::new("open")
        .field(&c.bot_id)
        .field(c.slot_id)
        .field(c.trade_id)
        .field(c.slot_mode)
        .field(c.cycle)
        .field(&c.open_key)
        .decimal(c.entry.price)
        .decimal(c.entry.cost)
        .decimal(c.entry.fee)
        .decimal(c.entry.volume)
        .field(c.entry.time.timestamp_micros())
        .field(c.entry.regime)
        .decimal(c.entry.volatility)
        .decimal(c.original_exit_price)
        .decimal(c.target_profit_pct)
        .field(&c.exit_txid)
        .field(c.migration)
        .finish()
}

/// Hash of a journal-event request.
pub fn event_hash(c: &EventCommand) -> String {
    // The details are plain data in a fixed field order, so their JSON is canonical.
    let details = normalized(&c.details).to_json();
    Canonical::new("event")
        .field(c.position_id)
        .field(c.at.timestamp_micros())
        .field(details)
        .finish()
}

/// Hash of a close request. The exit txid counts only when given, so a
/// close recorded before the field existed hashes as it did.
pub fn close_hash(c: &CloseCommand) -> String {
    let o = &c.outcome;
    let h = Canonical::new("close")
        .field(c.position_id)
        .field(o.close_reason)
        .opt_decimal(o.exit_price)
        .opt_decimal(o.exit_cost)
        .opt_decimal(o.exit_fee)
        .field(o.exit_time.timestamp_micros())
        .field(o.exit_regime)
        .opt_decimal(o.net_profit)
        .field(&c.reason);
    if c.exit_txid.is_empty() {
        h.finish()
    } else {
        h.field(&c.exit_txid).finish()
    }
}

/// Hash of a reprice request.
pub fn reprice_hash(c: &RepriceCommand) -> String {
    Canonical::new("reprice")
        .field(c.position_id)
        .decimal(c.new_price)
        .field(&c.new_txid)
        .field(c.reason)
        .decimal(c.subsidy_consumed)
        .field(c.at.timestamp_micros())
        .finish()
}

/// Hash of a bot-journal append.
pub fn bot_journal_hash(c: &BotJournalCommand) -> String {
    Canonical::new("bot_journal")
        .field(&c.bot_id)
        .field(c.at.timestamp_micros())
        .field(c.action.as_str())
        .field(&c.detail)
        .field(&c.reason)
        .field(&c.operator)
        .finish()
}

/// The details with every decimal normalized, so scale does not change the hash.
fn normalized(details: &EventDetails) -> EventDetails {
    let mut d = details.clone();
    match &mut d {
        EventDetails::ChurnerProfit(c) => c.net_profit = c.net_profit.normalize(),
        EventDetails::OverPerformance(o) => {
            o.expected_profit = o.expected_profit.normalize();
            o.actual_profit = o.actual_profit.normalize();
            o.excess = o.excess.normalize();
        }
        _ => {}
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::position::tests::open_command;
    use rust_decimal_macros::dec;

    #[test]
    fn equal_content_hashes_equal() {
        let a = open_command("b", 1, "k");
        let mut b = a.clone();
        b.entry.price = dec!(0.1000);
        assert_eq!(open_hash(&a), open_hash(&b));
        b.entry.price = dec!(0.1001);
        assert_ne!(open_hash(&a), open_hash(&b));
        assert_eq!(open_hash(&a).len(), 64);
    }
}
