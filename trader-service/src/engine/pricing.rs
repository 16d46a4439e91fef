//! Entry and exit prices on the tick grid, entry volumes on the lot grid, and
//! the loss back-off (SPEC §2). Prices are rounded *passively* (a buy down, a
//! sell up) so rounding never makes a limit more aggressive than the formula.

use rust_decimal::Decimal;

use crate::engine::config::{EngineConfig, OrderSize, PAIR_MINIMUM_MARGIN_PCT};
use crate::engine::types::{SlotId, TradeId};
use crate::pair::{Side, SizeError};

const HUNDRED: Decimal = Decimal::ONE_HUNDRED;

/// Loss back-off multiplier of the entry offset: 1.0 below
/// `backoff_start_losses` (3) consecutive losses, then
/// `1 + step x (losses - (start - 1))`, capped. With the defaults: 3 losses
/// 1.5, 4 losses 2.0, ..., 10+ losses 5.0. Widening entries after losses
/// makes a trending market less likely to fill the losing side again.
#[must_use]
pub fn backoff_multiplier(cfg: &EngineConfig, consecutive_losses: u32) -> Decimal {
    if consecutive_losses < cfg.backoff_start_losses {
        return Decimal::ONE;
    }
    let steps = Decimal::from(consecutive_losses - (cfg.backoff_start_losses - 1));
    (Decimal::ONE + cfg.backoff_step * steps).min(cfg.backoff_cap)
}

/// Effective entry offset `e` (percent) of a trade: `ENTRY_PCT` times the
/// back-off multiplier. Also the market offset an exit keeps.
#[must_use]
pub fn effective_entry_pct(cfg: &EngineConfig, consecutive_losses: u32) -> Decimal {
    cfg.entry_pct * backoff_multiplier(cfg, consecutive_losses)
}

/// Extra entry offset of a slot's grid level, percent: `slot x
/// GRID_SPACING_PCT`. Slot 0 quotes at the base offset; the level depends on
/// the slot id only, so a slot that starts later or restarts keeps it.
#[must_use]
pub fn grid_offset_pct(cfg: &EngineConfig, slot: SlotId) -> Decimal {
    cfg.grid_spacing_pct * Decimal::from(slot)
}

/// Entry offset of a trade of a slot: [`effective_entry_pct`] plus the
/// slot's [`grid_offset_pct`]. Exits keep the plain effective offset from
/// the market: the grid spreads entries, not exit targets.
#[must_use]
pub fn slot_entry_pct(cfg: &EngineConfig, slot: SlotId, consecutive_losses: u32) -> Decimal {
    effective_entry_pct(cfg, consecutive_losses) + grid_offset_pct(cfg, slot)
}

/// Entry price of a trade: A sells at `market x (1 + e/100)`, B buys at
/// `market x (1 - e/100)`, rounded passively to the tick.
#[must_use]
pub fn entry_price(cfg: &EngineConfig, trade: TradeId, market: Decimal, e_pct: Decimal) -> Decimal {
    let side = trade.entry_side();
    let raw = match side {
        Side::Sell => market * (Decimal::ONE + e_pct / HUNDRED),
        Side::Buy => market * (Decimal::ONE - e_pct / HUNDRED),
    };
    cfg.pair.round_price_passive(side, raw)
}

/// Exit price of a position: sell = `max(fill x (1 + p/100), market x (1 +
/// e/100))`, buy = `min(fill x (1 - p/100), market x (1 - e/100))`, rounded
/// passively. The market term keeps the exit from crossing a market that
/// moved through the target while the entry filled; without a known market
/// only the fill term applies.
#[must_use]
pub fn exit_price(
    cfg: &EngineConfig,
    trade: TradeId,
    fill: Decimal,
    market: Option<Decimal>,
    p_pct: Decimal,
    e_pct: Decimal,
) -> Decimal {
    let side = trade.exit_side();
    let raw = match side {
        Side::Sell => {
            let t = fill * (Decimal::ONE + p_pct / HUNDRED);
            market.map_or(t, |m| t.max(m * (Decimal::ONE + e_pct / HUNDRED)))
        }
        Side::Buy => {
            let t = fill * (Decimal::ONE - p_pct / HUNDRED);
            market.map_or(t, |m| t.min(m * (Decimal::ONE - e_pct / HUNDRED)))
        }
    };
    cfg.pair.round_price_passive(side, raw)
}

/// Entry volume at `price`. A fixed USD size is rounded down to the lot and
/// is an error when it misses `ordermin`/`costmin` (the slot then waits:
/// never upsized); [`OrderSize::PairMinimum`] is the pair minimum at that
/// price plus its margin, rounded up to the lot.
pub fn entry_volume(cfg: &EngineConfig, price: Decimal) -> Result<Decimal, SizeError> {
    match cfg.order_size {
        OrderSize::Usd(usd) => cfg.pair.volume_for(usd, price),
        OrderSize::PairMinimum => {
            let min = cfg.pair.min_volume_at(price)?;
            let v = (min * (HUNDRED + PAIR_MINIMUM_MARGIN_PCT) / HUNDRED).round_dp_with_strategy(
                cfg.pair.lot_decimals,
                rust_decimal::RoundingStrategy::AwayFromZero,
            );
            cfg.pair.check_size(price, v)?;
            Ok(v)
        }
    }
}

/// A configured order size that cannot trade at a price: the numbers an
/// operator needs to fix it, for the loud start-up warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeShortfall {
    /// Configured size, USD.
    pub order_size_usd: Decimal,
    /// Price it was checked at.
    pub price: Decimal,
    /// Smallest volume the pair accepts there.
    pub min_volume: Decimal,
    /// What that volume costs: the smallest size that trades, USD.
    pub min_size_usd: Decimal,
}

impl std::fmt::Display for SizeShortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ORDER_SIZE_USD={} is below the pair minimum at price {}: the pair needs {} base \
             (about {} USD); no entry can be placed until the size is raised or the price falls",
            self.order_size_usd, self.price, self.min_volume, self.min_size_usd
        )
    }
}

/// Checks whether the configured order size can place an entry at `price`;
/// `None` when it can (or when the size follows the pair minimum).
#[must_use]
pub fn size_shortfall(cfg: &EngineConfig, price: Decimal) -> Option<SizeShortfall> {
    let OrderSize::Usd(usd) = cfg.order_size else {
        return None;
    };
    cfg.pair.volume_for(usd, price).err()?;
    let min_volume = cfg.pair.min_volume_at(price).ok()?;
    Some(SizeShortfall {
        order_size_usd: usd,
        price,
        min_volume,
        min_size_usd: (min_volume * price)
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::AwayFromZero),
    })
}

/// Distance of a price from the market in percent, `|price - market| /
/// market x 100`; `None` for a non-positive market.
#[must_use]
pub fn distance_pct(price: Decimal, market: Decimal) -> Option<Decimal> {
    if market <= Decimal::ZERO {
        return None;
    }
    Some((price - market).abs() / market * HUNDRED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::{cfg, xdg};
    use rust_decimal_macros::dec;

    #[test]
    fn backoff_is_flat_below_three_losses_then_steps_and_caps() {
        let c = cfg();
        let m: Vec<_> = (0..13).map(|l| backoff_multiplier(&c, l)).collect();
        assert_eq!(&m[..3], &[dec!(1), dec!(1), dec!(1)]);
        assert_eq!(m[3], dec!(1.5));
        assert_eq!(m[4], dec!(2.0));
        assert_eq!(m[9], dec!(4.5));
        assert_eq!(m[10], dec!(5.0));
        assert_eq!(m[12], dec!(5.0));
        assert_eq!(effective_entry_pct(&c, 4), dec!(0.4));
    }

    #[test]
    fn entries_sit_either_side_of_market_rounded_passively() {
        let c = cfg();
        // 0.1234567 x 1.002 = 0.1237036134 -> sell rounds up
        assert_eq!(
            entry_price(&c, TradeId::A, dec!(0.1234567), dec!(0.2)),
            dec!(0.1237037)
        );
        // 0.1234567 x 0.998 = 0.1232097866 -> buy rounds down
        assert_eq!(
            entry_price(&c, TradeId::B, dec!(0.1234567), dec!(0.2)),
            dec!(0.1232097)
        );
    }

    #[test]
    fn exit_takes_the_further_of_target_and_market_offset() {
        let c = cfg();
        // B (sell exit): fill 0.1 -> target 0.101; market 0.1 -> 0.1002; max = 0.101
        assert_eq!(
            exit_price(
                &c,
                TradeId::B,
                dec!(0.1),
                Some(dec!(0.1)),
                dec!(1),
                dec!(0.2)
            ),
            dec!(0.101)
        );
        // market ran up to 0.102 -> 0.102204 wins
        assert_eq!(
            exit_price(
                &c,
                TradeId::B,
                dec!(0.1),
                Some(dec!(0.102)),
                dec!(1),
                dec!(0.2)
            ),
            dec!(0.102204)
        );
        // A (buy exit): fill 0.1 -> 0.099; market dropped to 0.098 -> 0.097804
        assert_eq!(
            exit_price(
                &c,
                TradeId::A,
                dec!(0.1),
                Some(dec!(0.098)),
                dec!(1),
                dec!(0.2)
            ),
            dec!(0.097804)
        );
        assert_eq!(
            exit_price(&c, TradeId::A, dec!(0.1), None, dec!(1), dec!(0.2)),
            dec!(0.099)
        );
        // rounding: buy exit 0.12345678 x 0.99 floors, sell exit ceils
        assert_eq!(
            exit_price(&c, TradeId::A, dec!(0.1234567), None, dec!(1), dec!(0.2)),
            dec!(0.1222221)
        );
        assert_eq!(
            exit_price(&c, TradeId::B, dec!(0.1234567), None, dec!(1), dec!(0.2)),
            dec!(0.1246913)
        );
    }

    #[test]
    fn volume_is_floored_to_the_lot_and_never_upsized() {
        let mut c = cfg();
        assert_eq!(entry_volume(&c, dec!(0.0998)).unwrap(), dec!(100.20040080));
        c.order_size = OrderSize::Usd(dec!(2));
        // 2 USD at 0.1 = 20 DOGE < ordermin 50: the slot waits
        assert!(entry_volume(&c, dec!(0.1)).is_err());
        c.pair = crate::pair::PairSpec {
            ordermin: dec!(1),
            ..xdg()
        };
        c.order_size = OrderSize::Usd(dec!(0.4));
        assert!(entry_volume(&c, dec!(0.1)).is_err(), "below costmin 0.5");
    }

    #[test]
    fn a_size_below_the_minimum_is_reported_with_its_numbers() {
        let mut c = cfg();
        c.order_size = OrderSize::Usd(dec!(2));
        let s = size_shortfall(&c, dec!(0.1)).unwrap();
        assert_eq!((s.min_volume, s.min_size_usd), (dec!(50), dec!(5.00)));
        assert!(s.to_string().contains("ORDER_SIZE_USD=2"), "{s}");
        c.order_size = OrderSize::Usd(dec!(6));
        assert_eq!(size_shortfall(&c, dec!(0.1)), None);
        c.order_size = OrderSize::PairMinimum;
        assert_eq!(size_shortfall(&c, dec!(0.1)), None);
    }

    #[test]
    fn pair_minimum_size_trades_at_any_price() {
        let mut c = cfg();
        c.order_size = OrderSize::PairMinimum;
        // 50 DOGE + 5 % at 0.1, and at 0.25 (where 10 USD would be 40 DOGE)
        assert_eq!(entry_volume(&c, dec!(0.1)).unwrap(), dec!(52.5));
        assert_eq!(entry_volume(&c, dec!(0.25)).unwrap(), dec!(52.5));
        // costmin binds at a tiny price: 0.5 / 0.0016 = 312.5 DOGE + 5 %
        assert_eq!(entry_volume(&c, dec!(0.0016)).unwrap(), dec!(328.125));
    }

    #[test]
    fn slots_spread_over_grid_levels() {
        let mut c = cfg();
        c.grid_spacing_pct = dec!(0.3);
        assert_eq!(slot_entry_pct(&c, 0, 0), dec!(0.2));
        assert_eq!(slot_entry_pct(&c, 3, 0), dec!(1.1));
        // the loss back-off widens the base offset only
        assert_eq!(slot_entry_pct(&c, 3, 4), dec!(1.3));
    }

    #[test]
    fn distance_is_symmetric_percent_of_market() {
        assert_eq!(distance_pct(dec!(0.11), dec!(0.1)), Some(dec!(10)));
        assert_eq!(distance_pct(dec!(0.09), dec!(0.1)), Some(dec!(10)));
        assert_eq!(distance_pct(dec!(1), dec!(0)), None);
    }
}
