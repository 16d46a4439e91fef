//! Domain command builders of the in-process ledger tests (the request
//! builders of the gRPC tests live in the parent module).

use chrono::{DateTime, Utc};
use ledger_service::{
    ChurnerProfitDetails, CloseCommand, CloseReason, Entry, EventCommand, EventDetails,
    OpenCommand, Outcome, Regime, RepriceCommand, RepriceReason, SlotMode, TradeId,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

pub fn at(offset: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(super::T0 + offset, 0).unwrap()
}

pub fn open(bot: &str, slot: u32, key: &str) -> OpenCommand {
    OpenCommand {
        bot_id: bot.into(),
        slot_id: slot,
        trade_id: TradeId::A,
        slot_mode: SlotMode::Sticky,
        cycle: 1,
        open_key: key.into(),
        entry: Entry {
            price: dec!(0.2),
            cost: dec!(20),
            fee: dec!(0.05),
            volume: dec!(100),
            time: at(0),
            regime: Regime::Bearish,
            volatility: dec!(1.1),
        },
        original_exit_price: dec!(0.198),
        target_profit_pct: dec!(1),
        exit_txid: String::new(),
        migration: false,
    }
}

pub fn credit(position_id: u64, key: &str, amount: Decimal) -> EventCommand {
    EventCommand {
        position_id,
        event_key: key.into(),
        at: at(10),
        details: EventDetails::ChurnerProfit(ChurnerProfitDetails {
            net_profit: amount,
            churner_cycle_id: key.into(),
        }),
    }
}

pub fn debit(position_id: u64, key: &str, amount: Decimal) -> RepriceCommand {
    RepriceCommand {
        position_id,
        event_key: key.into(),
        new_price: dec!(0.199),
        new_txid: key.into(),
        reason: RepriceReason::Subsidy,
        subsidy_consumed: amount,
        at: at(20),
    }
}

pub fn close(position_id: u64, key: &str, offset: i64) -> CloseCommand {
    CloseCommand {
        position_id,
        event_key: key.into(),
        outcome: Outcome {
            close_reason: CloseReason::Cancelled,
            exit_price: None,
            exit_cost: None,
            exit_fee: None,
            exit_time: at(offset),
            exit_regime: Regime::Unknown,
            net_profit: None,
        },
        reason: "test".into(),
        exit_txid: String::new(),
    }
}
