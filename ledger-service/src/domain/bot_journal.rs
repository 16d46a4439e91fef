//! The bot journal: operator actions that concern a bot as a whole (a
//! forced regime, the churner reserve), which no position carries.
//!
//! Rows are append-only and never compacted; like every ledger write, an
//! append is idempotent on (`bot_id`, `event_key`).

use chrono::{DateTime, Utc};

use super::{LedgerError, validate};

/// What an operator did to the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BotAction {
    /// A regime was forced until a deadline.
    RegimeOverride,
    /// A forced regime was lifted.
    RegimeOverrideCleared,
    /// The churner capital reserve was set.
    ChurnerReserve,
    /// A slot's churner was spawned by hand on a slot without an open
    /// position (with one, the position's journal records it).
    ChurnerSpawn,
    /// A slot's churner was killed by hand, likewise.
    ChurnerKill,
}

impl BotAction {
    /// Every action, for parsing and exhaustive tests.
    pub const ALL: [Self; 5] = [
        Self::RegimeOverride,
        Self::RegimeOverrideCleared,
        Self::ChurnerReserve,
        Self::ChurnerSpawn,
        Self::ChurnerKill,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RegimeOverride => "regime_override",
            Self::RegimeOverrideCleared => "regime_override_cleared",
            Self::ChurnerReserve => "churner_reserve",
            Self::ChurnerSpawn => "churner_spawn",
            Self::ChurnerKill => "churner_kill",
        }
    }

    /// Parses a stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for BotAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An append to a bot's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotJournalCommand {
    /// The bot acted on.
    pub bot_id: String,
    /// Idempotency key, unique per bot.
    pub event_key: String,
    /// When the action was accepted.
    pub at: DateTime<Utc>,
    /// What was done.
    pub action: BotAction,
    /// What was set (regime and expiry, reserve amount).
    pub detail: String,
    /// The operator's reason.
    pub reason: String,
    /// Who acted.
    pub operator: String,
}

impl BotJournalCommand {
    /// Checks every field (ids, free text, a plausible time) and truncates
    /// the time to the precision the stores keep.
    pub fn validated(mut self, now: DateTime<Utc>) -> Result<Self, LedgerError> {
        validate::id("bot_id", &self.bot_id)?;
        validate::id("event_key", &self.event_key)?;
        validate::text("detail", &self.detail)?;
        validate::text("reason", &self.reason)?;
        validate::text("operator", &self.operator)?;
        self.at = validate::time("at", self.at, now)?;
        Ok(self)
    }

    /// The row this command appends, once the store gave it an id.
    pub fn to_entry(&self, bot_journal_id: u64) -> BotJournalEntry {
        BotJournalEntry {
            bot_journal_id,
            bot_id: self.bot_id.clone(),
            at: self.at,
            action: self.action,
            detail: self.detail.clone(),
            reason: self.reason.clone(),
            operator: self.operator.clone(),
            event_key: self.event_key.clone(),
        }
    }
}

/// One immutable row of a bot's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotJournalEntry {
    /// Row id, increasing in append order.
    pub bot_journal_id: u64,
    /// The bot.
    pub bot_id: String,
    /// When the action was accepted.
    pub at: DateTime<Utc>,
    /// What was done.
    pub action: BotAction,
    /// What was set.
    pub detail: String,
    /// The operator's reason.
    pub reason: String,
    /// Who acted.
    pub operator: String,
    /// Its idempotency key.
    pub event_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_their_spelling() {
        for a in BotAction::ALL {
            assert_eq!(BotAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(BotAction::parse("regime"), None);
    }
}
