//! Entry and exit prices on the tick grid, entry volumes on the lot grid, and
//! the loss back-off (SPEC §2). Prices are rounded *passively* (a buy down, a
//! sell up) so rounding never makes a limit more aggressive than the formula.

use rust_decimal::Decimal;

use crate::engine::config::EngineConfig;
use crate::engine::types::TradeId;
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

/// Entry volume: `order_size_usd / price` rounded down to the lot; an error
/// when it misses `ordermin`/`costmin` (the slot then waits: never upsized).
pub fn entry_volume(cfg: &EngineConfig, price: Decimal) -> Result<Decimal, SizeError> {
    cfg.pair.volume_for(cfg.order_size_usd, price)
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
        c.order_size_usd = dec!(2);
        // 2 USD at 0.1 = 20 DOGE < ordermin 50: the slot waits
        assert!(entry_volume(&c, dec!(0.1)).is_err());
        c.pair = crate::pair::PairSpec {
            ordermin: dec!(1),
            ..xdg()
        };
        c.order_size_usd = dec!(0.4);
        assert!(entry_volume(&c, dec!(0.1)).is_err(), "below costmin 0.5");
    }

    #[test]
    fn distance_is_symmetric_percent_of_market() {
        assert_eq!(distance_pct(dec!(0.11), dec!(0.1)), Some(dec!(10)));
        assert_eq!(distance_pct(dec!(0.09), dec!(0.1)), Some(dec!(10)));
        assert_eq!(distance_pct(dec!(1), dec!(0)), None);
    }
}
