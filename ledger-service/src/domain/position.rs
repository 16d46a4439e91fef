//! Positions: identity, write-once entry context, mutable exit intent and
//! the write-once outcome, plus the rules that guard each of them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{LedgerError, validate};

/// Declares a closed set of values stored as lowercase text, so the
/// database holds readable, stable names rather than ordinals.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses a stored name.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// Which leg of the slot holds the position.
    TradeId {
        /// Short leg: sell entry, buy exit.
        A => "a",
        /// Long leg: buy entry, sell exit.
        B => "b",
    }
);

text_enum!(
    /// How the slot that opened the position runs.
    SlotMode {
        /// Timer-orphaning slot of the old design.
        Legacy => "legacy",
        /// Never abandons an exit on a timer.
        Sticky => "sticky",
        /// A small fast round trip run by a stuck slot.
        Churner => "churner",
    }
);

text_enum!(
    /// Market regime at a point in time.
    Regime {
        /// The detector was not ready.
        Unknown => "unknown",
        /// Falling market.
        Bearish => "bearish",
        /// Sideways market.
        Ranging => "ranging",
        /// Rising market.
        Bullish => "bullish",
    }
);

text_enum!(
    /// Lifecycle state; moves open -> closed exactly once.
    PositionStatus {
        /// The exit is working.
        Open => "open",
        /// The outcome is written.
        Closed => "closed",
    }
);

text_enum!(
    /// Why a position was closed.
    CloseReason {
        /// The exit filled.
        Filled => "filled",
        /// Closed at a loss by the write-off path.
        WrittenOff => "written_off",
        /// Closed by the operator without an exchange fill.
        SoftClosed => "soft_closed",
        /// Cancelled by healgrid.
        Cancelled => "cancelled",
        /// Cancelled or expired on the exchange.
        ExchangeCancelled => "exchange_cancelled",
    }
);

impl CloseReason {
    /// Whether the close carries a price, cost, fee and net profit.
    pub fn requires_fill_figures(self) -> bool {
        matches!(self, Self::Filled | Self::WrittenOff | Self::SoftClosed)
    }
}

/// A position as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Assigned by the ledger.
    pub position_id: u64,
    /// Namespace: one trader instance on one pair.
    pub bot_id: String,
    /// Slot within the bot.
    pub slot_id: u32,
    /// Leg of the slot.
    pub trade_id: TradeId,
    /// Mode of the slot at entry.
    pub slot_mode: SlotMode,
    /// Cycle counter of the trade at entry.
    pub cycle: u64,
    /// Idempotency key of the open (e.g. the entry fill's txid).
    pub open_key: String,
    /// Write-once entry context.
    pub entry: Entry,
    /// Exit price as first placed; write-once.
    pub original_exit_price: Decimal,
    /// Profit target the exit was placed with; write-once.
    pub target_profit_pct: Decimal,
    /// Exit price in force; changes on reprice.
    pub current_exit_price: Decimal,
    /// Exchange txid of the working exit, if known.
    pub exit_txid: String,
    /// How often the exit was moved.
    pub times_repriced: u32,
    /// Open or closed.
    pub status: PositionStatus,
    /// Written once on close.
    pub outcome: Option<Outcome>,
}

/// The write-once entry context of a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Fill price of the entry.
    pub price: Decimal,
    /// Quote-currency cost of the entry.
    pub cost: Decimal,
    /// Fee paid on the entry.
    pub fee: Decimal,
    /// Filled base volume.
    pub volume: Decimal,
    /// When the entry filled.
    pub time: DateTime<Utc>,
    /// Regime at entry.
    pub regime: Regime,
    /// Volatility measure at entry.
    pub volatility: Decimal,
}

/// The write-once outcome of a closed position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Why it closed.
    pub close_reason: CloseReason,
    /// Exit fill price; absent for cancellations that reported none.
    pub exit_price: Option<Decimal>,
    /// Exit cost.
    pub exit_cost: Option<Decimal>,
    /// Exit fee.
    pub exit_fee: Option<Decimal>,
    /// When it closed.
    pub exit_time: DateTime<Utc>,
    /// Regime at close.
    pub exit_regime: Regime,
    /// Net profit after both fees; may be negative.
    pub net_profit: Option<Decimal>,
}

impl Position {
    /// Refuses `action` unless the position is open.
    pub fn ensure_open(&self, action: &'static str) -> Result<(), LedgerError> {
        match self.status {
            PositionStatus::Open => Ok(()),
            PositionStatus::Closed => Err(LedgerError::PositionClosed {
                position_id: self.position_id,
                action,
            }),
        }
    }
}

/// A request to record a filled entry as an open position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCommand {
    /// See [`Position::bot_id`].
    pub bot_id: String,
    /// See [`Position::slot_id`].
    pub slot_id: u32,
    /// See [`Position::trade_id`].
    pub trade_id: TradeId,
    /// See [`Position::slot_mode`].
    pub slot_mode: SlotMode,
    /// See [`Position::cycle`].
    pub cycle: u64,
    /// Idempotency key of the open.
    pub open_key: String,
    /// Entry context.
    pub entry: Entry,
    /// First exit price; becomes original and current exit price.
    pub original_exit_price: Decimal,
    /// Profit target in force when the exit was placed.
    pub target_profit_pct: Decimal,
    /// Exchange txid of the exit, if already placed.
    pub exit_txid: String,
    /// True for positions imported from a pre-ledger runtime.
    pub migration: bool,
}

impl OpenCommand {
    /// Checks every field and normalizes the entry time.
    pub fn validated(mut self, now: DateTime<Utc>) -> Result<Self, LedgerError> {
        validate::id("bot_id", &self.bot_id)?;
        validate::id("open_key", &self.open_key)?;
        validate::opt_id("exit_txid", &self.exit_txid)?;
        validate::positive("entry_price", self.entry.price)?;
        validate::non_negative("entry_cost", self.entry.cost)?;
        validate::non_negative("entry_fee", self.entry.fee)?;
        validate::positive("entry_volume", self.entry.volume)?;
        validate::non_negative("entry_volatility", self.entry.volatility)?;
        validate::positive("original_exit_price", self.original_exit_price)?;
        validate::non_negative("target_profit_pct", self.target_profit_pct)?;
        self.entry.time = validate::time("entry_time", self.entry.time, now)?;
        Ok(self)
    }

    /// The position this command creates, before the ledger assigns its id.
    pub fn to_position(&self, position_id: u64) -> Position {
        Position {
            position_id,
            bot_id: self.bot_id.clone(),
            slot_id: self.slot_id,
            trade_id: self.trade_id,
            slot_mode: self.slot_mode,
            cycle: self.cycle,
            open_key: self.open_key.clone(),
            entry: self.entry.clone(),
            original_exit_price: self.original_exit_price,
            target_profit_pct: self.target_profit_pct,
            current_exit_price: self.original_exit_price,
            exit_txid: self.exit_txid.clone(),
            times_repriced: 0,
            status: PositionStatus::Open,
            outcome: None,
        }
    }
}

/// A request to close a position with its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseCommand {
    /// The position to close.
    pub position_id: u64,
    /// Idempotency key of the close.
    pub event_key: String,
    /// The outcome to write.
    pub outcome: Outcome,
    /// Free text carried into the close event.
    pub reason: String,
    /// Exchange id of the order whose fill closed it; becomes the
    /// position's `exit_txid`. Empty: the position keeps the one it had.
    pub exit_txid: String,
}

impl CloseCommand {
    /// Checks the fields that do not depend on the stored position.
    pub fn validated(mut self, now: DateTime<Utc>) -> Result<Self, LedgerError> {
        require_id(self.position_id)?;
        validate::id("event_key", &self.event_key)?;
        validate::text("reason", &self.reason)?;
        validate::opt_id("exit_txid", &self.exit_txid)?;
        let o = &mut self.outcome;
        if o.close_reason.requires_fill_figures() {
            let reason = o.close_reason;
            let missing = |field| {
                LedgerError::invalid(field, format!("is required when close_reason is {reason}"))
            };
            o.exit_price.ok_or_else(|| missing("exit_price"))?;
            o.exit_cost.ok_or_else(|| missing("exit_cost"))?;
            o.exit_fee.ok_or_else(|| missing("exit_fee"))?;
            o.net_profit.ok_or_else(|| missing("net_profit"))?;
        }
        if let Some(p) = o.exit_price {
            validate::positive("exit_price", p)?;
        }
        if let Some(c) = o.exit_cost {
            validate::non_negative("exit_cost", c)?;
        }
        if let Some(f) = o.exit_fee {
            validate::non_negative("exit_fee", f)?;
        }
        o.exit_time = validate::time("exit_time", o.exit_time, now)?;
        Ok(self)
    }
}

/// Position ids start at 1; 0 is the proto3 default and means "missing".
pub fn require_id(position_id: u64) -> Result<(), LedgerError> {
    if position_id == 0 {
        return Err(LedgerError::invalid("position_id", "is required"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    pub(crate) fn open_command(bot: &str, slot: u32, key: &str) -> OpenCommand {
        OpenCommand {
            bot_id: bot.into(),
            slot_id: slot,
            trade_id: TradeId::B,
            slot_mode: SlotMode::Sticky,
            cycle: 1,
            open_key: key.into(),
            entry: Entry {
                price: dec!(0.1),
                cost: dec!(10),
                fee: dec!(0.026),
                volume: dec!(100),
                time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                regime: Regime::Ranging,
                volatility: dec!(0.5),
            },
            original_exit_price: dec!(0.101),
            target_profit_pct: dec!(1.0),
            exit_txid: "TX-EXIT-1".into(),
            migration: false,
        }
    }

    #[test]
    fn text_enums_round_trip() {
        for r in CloseReason::ALL {
            assert_eq!(CloseReason::parse(r.as_str()), Some(*r));
        }
        assert_eq!(Regime::parse("sideways"), None);
    }

    #[test]
    fn open_rejects_bad_entries() {
        let now = Utc::now();
        assert!(open_command("b", 0, "k").validated(now).is_ok());
        let mut c = open_command("b", 0, "k");
        c.entry.price = dec!(0);
        assert!(
            c.validated(now)
                .unwrap_err()
                .to_string()
                .starts_with("entry_price")
        );
        let mut c = open_command("b", 0, "k");
        c.entry.fee = dec!(-0.1);
        assert!(
            c.validated(now)
                .unwrap_err()
                .to_string()
                .starts_with("entry_fee")
        );
    }
}
