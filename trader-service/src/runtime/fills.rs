//! Turning the exchange's *cumulative* execution figures (`vol_exec`,
//! `cost`, `fee` of an order) into the engine's *incremental* fills.
//!
//! The engine wants each execution exactly once; the exchange reports
//! running totals. The runtime keeps, per txid, what it already delivered
//! ([`Executed`], persisted with the engine state in the same commit), so a
//! repeated poll, a restart or a replay after downtime yields only what is
//! new, never a duplicate.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Execution totals already delivered to the engine for one txid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    /// Local order id the txid belongs to.
    pub order_id: String,
    /// Executed volume delivered so far.
    pub volume: Decimal,
    /// Executed cost delivered so far.
    pub cost: Decimal,
    /// Fee delivered so far.
    pub fee: Decimal,
}

/// One new execution (the difference between two cumulative reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillDelta {
    /// Average price of the new execution(s): `d_cost / d_volume`.
    pub price: Decimal,
    /// New volume.
    pub volume: Decimal,
    /// New cost.
    pub cost: Decimal,
    /// New fee.
    pub fee: Decimal,
}

/// Advances `seen` to the cumulative report and returns the new execution,
/// if volume grew. A report that goes *backwards* (a stale read) is ignored
/// and leaves `seen` untouched, so it cannot produce negative fills.
/// `avg_price` is used only when the cost delta is not usable.
pub fn advance(
    seen: &mut Executed,
    vol_exec: Decimal,
    cost: Decimal,
    fee: Decimal,
    avg_price: Option<Decimal>,
) -> Option<FillDelta> {
    if vol_exec < seen.volume || cost < seen.cost || fee < seen.fee {
        tracing::warn!(order_id = %seen.order_id, %vol_exec, seen = %seen.volume,
            "exchange reported less execution than already seen; ignored");
        return None;
    }
    let d_vol = vol_exec - seen.volume;
    if d_vol.is_zero() {
        // A late fee adjustment without volume is not an execution; keep
        // the old totals so it is delivered with the next one.
        return None;
    }
    let d_cost = cost - seen.cost;
    let d_fee = fee - seen.fee;
    let price = if d_cost > Decimal::ZERO {
        (d_cost / d_vol).normalize()
    } else {
        avg_price.unwrap_or(Decimal::ZERO)
    };
    seen.volume = vol_exec;
    seen.cost = cost;
    seen.fee = fee;
    Some(FillDelta {
        price,
        volume: d_vol,
        cost: d_cost,
        fee: d_fee,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// Proves: cumulative reports become exactly the new executions; a
    /// repeated report yields nothing; the deltas sum to the totals.
    #[test]
    fn cumulative_reports_become_deltas_once() {
        let mut seen = Executed {
            order_id: "0:B:1:en:1".into(),
            ..Executed::default()
        };
        assert_eq!(advance(&mut seen, dec!(0), dec!(0), dec!(0), None), None);
        let a = advance(&mut seen, dec!(10), dec!(1), dec!(0.0025), None).unwrap();
        assert_eq!(
            (a.price, a.volume, a.cost, a.fee),
            (dec!(0.1), dec!(10), dec!(1), dec!(0.0025))
        );
        assert_eq!(
            advance(&mut seen, dec!(10), dec!(1), dec!(0.0025), None),
            None,
            "repeat"
        );
        let b = advance(&mut seen, dec!(30), dec!(3.2), dec!(0.008), None).unwrap();
        assert_eq!(
            (b.price, b.volume, b.cost),
            (dec!(0.11), dec!(20), dec!(2.2))
        );
        assert_eq!(a.volume + b.volume, seen.volume);
        assert_eq!(a.fee + b.fee, dec!(0.008));
    }

    /// Proves: a stale (smaller) report is ignored without moving `seen`,
    /// and a zero-cost delta falls back to the average price.
    #[test]
    fn stale_reports_are_ignored() {
        let mut seen = Executed::default();
        advance(&mut seen, dec!(10), dec!(1), dec!(0), None).unwrap();
        assert_eq!(advance(&mut seen, dec!(5), dec!(0.5), dec!(0), None), None);
        assert_eq!(seen.volume, dec!(10));
        let mut fresh = Executed::default();
        let d = advance(&mut fresh, dec!(4), dec!(0), dec!(0), Some(dec!(0.2))).unwrap();
        assert_eq!(d.price, dec!(0.2));
    }
}
