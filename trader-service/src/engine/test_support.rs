//! Shared fixtures for the engine's unit and property tests.

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::engine::config::EngineConfig;
use crate::engine::types::{
    EngineState, EntryFacts, ExitOrder, ExitPlacement, FillTotals, OrderRole, TradeId, TradeWork,
};
use crate::pair::PairSpec;

/// Kraken's XDGUSD constraints (SPEC §11).
pub(crate) fn xdg() -> PairSpec {
    PairSpec {
        symbol: "XDGUSD".into(),
        price_decimals: 7,
        lot_decimals: 8,
        ordermin: dec!(50),
        costmin: dec!(0.5),
    }
}

/// Defaults with an order size big enough for XDG's 50 DOGE minimum at
/// ~0.1 USD (the SPEC default of 2 USD is below it on purpose: that slot
/// waits).
pub(crate) fn cfg() -> EngineConfig {
    let mut c = EngineConfig::defaults(xdg());
    c.order_size = crate::engine::OrderSize::Usd(dec!(10));
    // One grid level for all slots: the reducer tests reason about one slot's
    // prices; the spacing has its own tests.
    c.grid_spacing_pct = Decimal::ZERO;
    c
}

/// Whether a price sits on the pair's tick grid.
pub(crate) fn on_tick(c: &EngineConfig, p: Decimal) -> bool {
    p.round_dp(c.pair.price_decimals) == p
}

/// Whether a volume sits on the pair's lot grid.
pub(crate) fn on_lot(c: &EngineConfig, v: Decimal) -> bool {
    v.round_dp(c.pair.lot_decimals) == v
}

/// Puts a live exit on `trade` of `slot`: entered at `entry` (time
/// `entry_time`), resting at `exit` for `volume`, position id "1".
pub(crate) fn put_exit(
    s: &mut EngineState,
    slot: u32,
    trade: TradeId,
    entry: Decimal,
    exit: Decimal,
    volume: Decimal,
    entry_time: i64,
) {
    let st = s.slots.get_mut(&slot).unwrap();
    let entry_id = st.issue_id(trade, OrderRole::Entry);
    let id = st.issue_id(trade, OrderRole::Exit);
    st.trade_mut(trade).work = TradeWork::Exit(ExitOrder {
        id,
        price: exit,
        volume,
        entry: EntryFacts {
            order_id: entry_id,
            txid: Some("E1".into()),
            price: entry,
            cost: entry * volume,
            fee: Decimal::ZERO,
            volume,
            time: entry_time,
        },
        target_profit_pct: dec!(2),
        original_price: exit,
        position_id: Some("1".into()),
        placement: ExitPlacement::Live {
            txid: format!("X-{id}"),
        },
        placed_at: entry_time,
        fills: FillTotals::default(),
        heal: Default::default(),
        reprice: None,
        close: None,
    });
}
