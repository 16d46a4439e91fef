//! Release of locked pairs: both exits of a slot stuck at once.
//!
//! A slot whose entry on each side filled holds a long and a short of about
//! the same size, and the market sits between their two exits. Whatever the
//! price does inside that range, the pair's combined value does not move:
//! its loss is locked in (the long was bought above where the short was
//! sold). Only a sweep across the whole range, one exit and then the other,
//! would unlock it. Meanwhile both legs hold capital and the slot trades
//! nothing. Closing both legs at market realizes the loss the pair already
//! carries (plus the closing fees) and frees the slot; the release wait of
//! [`crate::engine::life`] keeps it from stepping straight back in front of
//! the move that locked it.
//!
//! A pair is released only when both exits are in band stuck or worse, both
//! rest on the book with nothing in flight (no reprice, no close), and
//! neither is on an operator hold.

use rust_decimal::Decimal;

use crate::engine::{AgeBand, BandConfig, EngineState, ExitOrder, SlotId, TradeId, classify};
use crate::healing::operator::exit_unavailable;

/// A slot's two stuck exits, to be closed at market together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPair {
    /// The slot.
    pub slot: SlotId,
    /// Trade A's exit (a buy: the short leg).
    pub short: ExitOrder,
    /// Trade B's exit (a sell: the long leg).
    pub long: ExitOrder,
    /// What closing both at `market` would realize before fees: the lock.
    pub locked_gross: Decimal,
}

/// Every slot of `engine` whose pair is locked at `now` (slot order).
#[must_use]
pub fn locked_pairs(engine: &EngineState, bands: &BandConfig, now: i64) -> Vec<LockedPair> {
    let Some(market) = engine.market else {
        return Vec::new();
    };
    engine
        .slots
        .values()
        .filter_map(|slot| {
            let short = slot.trade(TradeId::A).exit()?;
            let long = slot.trade(TradeId::B).exit()?;
            let releasable = |x: &ExitOrder| {
                let stuck = classify(x.entry.time, now, x.price, market, bands)
                    .is_ok_and(|a| a.band >= AgeBand::Stuck);
                stuck && exit_unavailable(x).is_none() && !x.heal.held(now)
            };
            if !(releasable(short) && releasable(long)) {
                return None;
            }
            let locked_gross = (short.entry.price - market) * short.remaining()
                + (market - long.entry.price) * long.remaining();
            Some(LockedPair {
                slot: slot.slot_id,
                short: short.clone(),
                long: long.clone(),
                locked_gross,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
