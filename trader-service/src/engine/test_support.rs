//! Shared fixtures for the engine's unit and property tests.

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::engine::config::EngineConfig;
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
