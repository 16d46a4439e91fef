//! Exchange-agnostic market primitives shared by the pure engine and the
//! exchange layer: order sides, a pair's trading constraints, fee schedules
//! and candles.
//!
//! Precision and minimums always come from the exchange at start-up (Kraken's
//! `AssetPairs`), never from constants, so every rounding rule lives here in
//! one place and is driven by a [`PairSpec`] value.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Direction of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buy the base asset with the quote asset.
    Buy,
    /// Sell the base asset for the quote asset.
    Sell,
}

impl Side {
    /// The other side: the exit of a buy entry is a sell and vice versa.
    #[must_use]
    pub fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }

    /// Kraken's wire spelling (`buy` / `sell`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
        }
    }
}

/// A pair's constraints as published by the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairSpec {
    /// Exchange symbol, e.g. `XDGUSD`.
    pub symbol: String,
    /// Number of decimals a price may carry (the tick is `10^-price_decimals`).
    pub price_decimals: u32,
    /// Number of decimals a volume may carry (the lot is `10^-lot_decimals`).
    pub lot_decimals: u32,
    /// Minimum order volume in the base asset.
    pub ordermin: Decimal,
    /// Minimum order cost in the quote asset.
    pub costmin: Decimal,
}

/// Why an order size does not meet the pair's minimums.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SizeError {
    /// Volume after rounding down to the lot is below `ordermin`.
    #[error("volume {volume} is below the pair minimum {ordermin}")]
    BelowOrdermin {
        /// The rounded volume.
        volume: Decimal,
        /// The pair's minimum volume.
        ordermin: Decimal,
    },
    /// Cost (price x volume) is below `costmin`.
    #[error("cost {cost} is below the pair minimum {costmin}")]
    BelowCostmin {
        /// The order's cost.
        cost: Decimal,
        /// The pair's minimum cost.
        costmin: Decimal,
    },
    /// The price is zero or negative, so no volume can be derived.
    #[error("price {0} is not positive")]
    NonPositivePrice(Decimal),
}

impl PairSpec {
    /// Smallest price increment.
    #[must_use]
    pub fn tick(&self) -> Decimal {
        Decimal::new(1, self.price_decimals)
    }

    /// Smallest volume increment.
    #[must_use]
    pub fn lot(&self) -> Decimal {
        Decimal::new(1, self.lot_decimals)
    }

    /// Rounds a price to the nearest tick (half away from zero).
    #[must_use]
    pub fn round_price(&self, price: Decimal) -> Decimal {
        price.round_dp_with_strategy(self.price_decimals, RoundingStrategy::MidpointAwayFromZero)
    }

    /// Rounds a price onto the tick grid away from the market for the given
    /// side, so a rounded limit never becomes more aggressive than intended:
    /// a buy rounds down, a sell rounds up.
    #[must_use]
    pub fn round_price_passive(&self, side: Side, price: Decimal) -> Decimal {
        let strategy = match side {
            Side::Buy => RoundingStrategy::ToNegativeInfinity,
            Side::Sell => RoundingStrategy::ToPositiveInfinity,
        };
        price.round_dp_with_strategy(self.price_decimals, strategy)
    }

    /// Rounds a volume down to the lot grid (never up: we never spend more
    /// than the budget).
    #[must_use]
    pub fn floor_volume(&self, volume: Decimal) -> Decimal {
        volume.round_dp_with_strategy(self.lot_decimals, RoundingStrategy::ToZero)
    }

    /// The smallest volume on the lot grid that meets both minimums at
    /// `price` (`ordermin`, and `costmin / price` rounded up to the lot).
    pub fn min_volume_at(&self, price: Decimal) -> Result<Decimal, SizeError> {
        if price <= Decimal::ZERO {
            return Err(SizeError::NonPositivePrice(price));
        }
        let by_cost = (self.costmin / price)
            .round_dp_with_strategy(self.lot_decimals, RoundingStrategy::AwayFromZero);
        Ok(self.ordermin.max(by_cost).max(self.lot()))
    }

    /// Volume for an order worth `size_quote` at `price`, rounded down to the
    /// lot, or the reason it does not meet the pair's minimums. Never upsizes.
    pub fn volume_for(&self, size_quote: Decimal, price: Decimal) -> Result<Decimal, SizeError> {
        if price <= Decimal::ZERO {
            return Err(SizeError::NonPositivePrice(price));
        }
        let volume = self.floor_volume(size_quote / price);
        self.check_size(price, volume)?;
        Ok(volume)
    }

    /// Checks a (price, volume) pair against `ordermin` and `costmin`.
    pub fn check_size(&self, price: Decimal, volume: Decimal) -> Result<(), SizeError> {
        if volume < self.ordermin || volume <= Decimal::ZERO {
            return Err(SizeError::BelowOrdermin {
                volume,
                ordermin: self.ordermin,
            });
        }
        let cost = price * volume;
        if cost < self.costmin {
            return Err(SizeError::BelowCostmin {
                cost,
                costmin: self.costmin,
            });
        }
        Ok(())
    }
}

/// Fee tier of the account, in percent (`0.25` = 0.25 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSchedule {
    /// Fee for resting (maker) orders.
    pub maker_pct: Decimal,
    /// Fee for crossing (taker) orders.
    pub taker_pct: Decimal,
}

impl FeeSchedule {
    /// Round-trip fee floor `f` of SPEC §5: two maker fills.
    #[must_use]
    pub fn round_trip_pct(&self) -> Decimal {
        self.maker_pct * Decimal::TWO
    }
}

/// One OHLC candle; `time` is the candle's open in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    /// Candle open time, unix seconds.
    pub time: i64,
    /// First traded price.
    pub open: Decimal,
    /// Highest traded price.
    pub high: Decimal,
    /// Lowest traded price.
    pub low: Decimal,
    /// Last traded price.
    pub close: Decimal,
    /// Traded base volume.
    pub volume: Decimal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn xdg() -> PairSpec {
        PairSpec {
            symbol: "XDGUSD".into(),
            price_decimals: 7,
            lot_decimals: 8,
            ordermin: dec!(50),
            costmin: dec!(0.5),
        }
    }

    #[test]
    fn tick_and_lot_follow_decimals() {
        assert_eq!(xdg().tick(), dec!(0.0000001));
        assert_eq!(xdg().lot(), dec!(0.00000001));
    }

    #[test]
    fn passive_rounding_never_improves_the_price() {
        let p = xdg();
        assert_eq!(
            p.round_price_passive(Side::Buy, dec!(0.12345678)),
            dec!(0.1234567)
        );
        assert_eq!(
            p.round_price_passive(Side::Sell, dec!(0.12345671)),
            dec!(0.1234568)
        );
        assert_eq!(p.round_price(dec!(0.12345675)), dec!(0.1234568));
    }

    #[test]
    fn volume_is_floored_and_minimums_enforced() {
        let p = xdg();
        assert_eq!(p.volume_for(dec!(20), dec!(0.1)).unwrap(), dec!(200));
        assert!(matches!(
            p.volume_for(dec!(2), dec!(0.1)),
            Err(SizeError::BelowOrdermin { .. })
        ));
        assert!(matches!(
            p.volume_for(dec!(2), dec!(0)),
            Err(SizeError::NonPositivePrice(_))
        ));
        let tiny = PairSpec {
            ordermin: dec!(1),
            ..p
        };
        assert!(matches!(
            tiny.volume_for(dec!(0.4), dec!(0.1)),
            Err(SizeError::BelowCostmin { .. })
        ));
    }

    #[test]
    fn min_volume_meets_both_minimums_on_the_lot_grid() {
        let p = xdg();
        // ordermin binds at 0.1: 50 DOGE = 5 USD >= costmin 0.5
        assert_eq!(p.min_volume_at(dec!(0.1)).unwrap(), dec!(50));
        // costmin binds at 0.001: 0.5 / 0.001 = 500 DOGE
        assert_eq!(p.min_volume_at(dec!(0.001)).unwrap(), dec!(500));
        // rounded up to the lot, never below costmin
        let v = p.min_volume_at(dec!(0.0003)).unwrap();
        assert!(v * dec!(0.0003) >= dec!(0.5), "{v}");
        assert_eq!(v, dec!(1666.66666667));
        assert!(p.check_size(dec!(0.0003), v).is_ok());
        assert!(p.min_volume_at(dec!(0)).is_err());
    }

    #[test]
    fn round_trip_is_two_maker_fees() {
        let f = FeeSchedule {
            maker_pct: dec!(0.25),
            taker_pct: dec!(0.40),
        };
        assert_eq!(f.round_trip_pct(), dec!(0.50));
    }
}
