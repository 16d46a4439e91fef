//! A churner round trip handed over to its slot (SPEC §6) as a position
//! like any other for healing: it has an age band (age from its entry
//! fill, distance of its exit from the market, as for any exit), the one
//! repricing rule ([`crate::healing::reprice::plan`]) decides its moves and
//! the slot's subsidy pays for them, and a reprice is carried out as for a
//! slot's exit: the live exit is cancelled, and once the cancel is
//! confirmed (racing fills applied) only the remainder is placed again at
//! the new price and the move is booked for the ledger.

use rust_decimal::Decimal;

use super::events::replace_later;
use super::{
    ChurnAction, ChurnBook, ChurnInputs, ChurnOrder, ChurnPosition, ChurnStage, SlotChurn,
    exit_price, slot_of,
};
use crate::engine::{
    BandConfig, HealFacts, MarketClose, PendingReprice, PositionAge, RepriceKind, SlotId, classify,
};
use crate::pair::{PairSpec, Side};

/// One handed-over round trip as healing sees it at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedOverView<'a> {
    /// Slot that holds it (and whose subsidy pays for it).
    pub slot: SlotId,
    /// Its exit.
    pub order: &'a ChurnOrder,
    /// The round trip.
    pub position: &'a ChurnPosition,
    /// Its healing facts.
    pub heal: &'a HealFacts,
    /// A reprice is in progress (its cancel is not confirmed yet).
    pub repricing: bool,
    /// An operator's close at market is in progress.
    pub closing: bool,
    /// Age facts: age from the entry fill, distance of the exit.
    pub age: PositionAge,
}

impl HandedOverView<'_> {
    /// Base volume still open (what a reprice moves).
    #[must_use]
    pub fn remaining(&self) -> Decimal {
        self.position.volume - self.order.fills.volume
    }

    /// Whether its exit rests on the book and may be repriced or closed
    /// now.
    #[must_use]
    pub fn live(&self) -> bool {
        self.order.txid.is_some() && !self.order.sending && !self.repricing && !self.closing
    }
}

impl ChurnBook {
    /// Every handed-over round trip with its age band at `now` and
    /// `market`, in slot order; empty when the market is not positive.
    #[must_use]
    pub fn handed_over(
        &self,
        now: i64,
        market: Decimal,
        bands: &BandConfig,
    ) -> Vec<HandedOverView<'_>> {
        self.slots
            .iter()
            .filter_map(|(slot, s)| {
                let ChurnStage::HandedOver {
                    order,
                    position,
                    heal,
                    reprice,
                    close,
                    ..
                } = &s.stage
                else {
                    return None;
                };
                let age = classify(position.entry_time, now, order.price, market, bands).ok()?;
                Some(HandedOverView {
                    slot: *slot,
                    order,
                    position,
                    heal,
                    repricing: reprice.is_some(),
                    closing: close.is_some(),
                    age,
                })
            })
            .collect()
    }
}

/// A handed-over round trip an operator names by its ledger id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTarget {
    /// Its ledger open key (the operator's journal row goes there).
    pub open_key: String,
    /// When its entry filled (a journal row is never dated before it).
    pub entry_time: i64,
    /// Its healing facts before the change (the hold in force).
    pub heal: HealFacts,
}

impl ChurnBook {
    /// The handed-over round trip the ledger knows as `position_id`.
    #[must_use]
    pub fn handed_over_by_id(&self, position_id: &str) -> Option<OperatorTarget> {
        self.slots.values().find_map(|s| match &s.stage {
            ChurnStage::HandedOver { position, heal, .. }
                if position.position_id.as_deref() == Some(position_id) =>
            {
                Some(OperatorTarget {
                    open_key: position.open_key.clone(),
                    entry_time: position.entry_time,
                    heal: heal.clone(),
                })
            }
            _ => None,
        })
    }

    /// Sets (or with `None` ends) the operator hold of the handed-over
    /// round trip `position_id`: while it is in force the repricing rule
    /// skips it and the cleanup queue hides it, as for a slot's exit.
    /// Returns the round trip as it was, or `None` when no handed-over
    /// round trip has that id.
    pub fn hold_handed_over(
        &mut self,
        position_id: &str,
        until: Option<i64>,
    ) -> Option<OperatorTarget> {
        let found = self.handed_over_by_id(position_id)?;
        for s in self.slots.values_mut() {
            if let ChurnStage::HandedOver { position, heal, .. } = &mut s.stage
                && position.position_id.as_deref() == Some(position_id)
            {
                heal.hold_until = until;
            }
        }
        Some(found)
    }
}

/// Why a reprice of a churner exit was not accepted (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepriceRefused {
    /// No handed-over round trip has this exit now.
    #[error("no handed-over round trip has the exit {0}")]
    NotHandedOver(String),
    /// The exit is not resting on the book (being placed or re-placed).
    #[error("the exit {0} is not live on the book")]
    NotLive(String),
    /// A reprice or a close at market of it is already in progress.
    #[error("a reprice or close at market of the exit {0} is already in progress")]
    InProgress(String),
    /// The new price is off the tick grid, not positive, or no move.
    #[error("{price} is not a new price on the tick grid for the exit {order_id}")]
    BadPrice {
        /// The exit.
        order_id: String,
        /// The price asked for.
        price: Decimal,
    },
}

/// Accepts healing's reprice of the handed-over exit `order_id`: the
/// runtime cancels it ([`super::ChurnStage::cancel_requested`]) and the
/// confirmed cancel completes the move.
///
/// # Errors
/// [`RepriceRefused`] when the exit is not a live handed-over exit, is
/// already being repriced, or the price is no move on the grid.
pub fn request_reprice(
    book: &mut ChurnBook,
    pair: &PairSpec,
    order_id: &str,
    want: PendingReprice,
) -> Result<(), RepriceRefused> {
    let (order, reprice, _) = live_handed_over(book, order_id)?;
    let p = want.new_price;
    if p <= Decimal::ZERO || pair.round_price(p) != p || p == order.price {
        return Err(RepriceRefused::BadPrice {
            order_id: order_id.to_owned(),
            price: p,
        });
    }
    *reprice = Some(want);
    Ok(())
}

/// The handed-over exit `order_id` with its reprice and close slots, when it
/// rests on the book with neither in progress.
fn live_handed_over<'a>(
    book: &'a mut ChurnBook,
    order_id: &str,
) -> Result<
    (
        &'a ChurnOrder,
        &'a mut Option<PendingReprice>,
        &'a mut Option<MarketClose>,
    ),
    RepriceRefused,
> {
    let stage = slot_of(order_id)
        .and_then(|slot| book.slots.get_mut(&slot))
        .map(|s| &mut s.stage);
    let Some(ChurnStage::HandedOver {
        order,
        reprice,
        close,
        ..
    }) = stage
    else {
        return Err(RepriceRefused::NotHandedOver(order_id.to_owned()));
    };
    check_live(order, order_id, reprice.is_some() || close.is_some())?;
    Ok((order, reprice, close))
}

/// Whether the handed-over exit `order` is `order_id`, rests on the book,
/// and has no reprice or close in progress (`busy`).
fn check_live(order: &ChurnOrder, order_id: &str, busy: bool) -> Result<(), RepriceRefused> {
    if order.id != order_id {
        return Err(RepriceRefused::NotHandedOver(order_id.to_owned()));
    }
    if order.txid.is_none() || order.sending {
        return Err(RepriceRefused::NotLive(order_id.to_owned()));
    }
    if busy {
        return Err(RepriceRefused::InProgress(order_id.to_owned()));
    }
    Ok(())
}

/// Accepts an operator's close at market of the handed-over exit
/// `order_id` at `now`: the runtime cancels it
/// ([`super::ChurnStage::cancel_requested`]); once the cancel is confirmed
/// (racing fills applied) only the remainder goes out as a market order
/// ([`super::close`]).
///
/// # Errors
/// [`RepriceRefused`] when the exit is not a live handed-over exit or a
/// reprice or close of it is already in progress.
pub fn request_close(book: &mut ChurnBook, order_id: &str, now: i64) -> Result<(), RepriceRefused> {
    let (_, _, close) = live_handed_over(book, order_id)?;
    *close = Some(MarketClose {
        requested_at: now,
        market_order: false,
    });
    Ok(())
}

/// A handed-over exit's reprice that took effect: its old placement is
/// gone and the remainder is being placed at the new price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnReprice {
    /// Slot (whose subsidy pays).
    pub slot: SlotId,
    /// The round trip's ledger open key.
    pub open_key: String,
    /// Client id of the replacement: unique per reprice, the ledger
    /// write's idempotency key.
    pub new_order_id: String,
    /// Price before.
    pub old_price: Decimal,
    /// Price after.
    pub new_price: Decimal,
    /// Volume placed again (the part still open).
    pub volume: Decimal,
    /// Why.
    pub kind: RepriceKind,
    /// Subsidy spent.
    pub subsidy_consumed: Decimal,
    /// Whether the move reached the fillable price.
    pub full: bool,
    /// When it took effect (never before the entry filled).
    pub at: i64,
}

/// The cancel of a reprice is confirmed at `at`: books the move and turns
/// the exit into a placement of the remainder at the new price. Nothing is
/// booked when nothing is left (the fill closed the round trip).
pub(super) fn complete_reprice(
    s: &mut SlotChurn,
    order: &mut ChurnOrder,
    position: &ChurnPosition,
    heal: &mut HealFacts,
    r: &PendingReprice,
    at: i64,
) -> Option<ChurnAction> {
    let volume = position.volume - order.fills.volume;
    if volume <= Decimal::ZERO {
        return None;
    }
    let old_price = order.price;
    order.price = r.new_price;
    replace_later(s, order, position, at);
    heal.record(r.kind, at);
    Some(ChurnAction::Repriced(ChurnReprice {
        slot: order.slot,
        open_key: position.open_key.clone(),
        new_order_id: order.id.clone(),
        old_price,
        new_price: r.new_price,
        volume,
        kind: r.kind,
        subsidy_consumed: r.consumed(old_price, volume),
        full: r.full,
        at: at.max(position.entry_time),
    }))
}

/// The price a handed-over exit is placed again at after the exchange
/// refused it or it left the book: the round trip's own exit price until
/// healing moved it, then the price healing chose (a move already paid
/// for), in both cases never crossing the market.
pub(super) fn replacement_price(
    inputs: &ChurnInputs<'_>,
    order: &ChurnOrder,
    position: &ChurnPosition,
    heal: &HealFacts,
) -> Decimal {
    if heal.times_repriced == 0 {
        return exit_price(
            inputs.cfg,
            inputs.pair,
            order.side,
            position.entry_price,
            inputs.market,
        );
    }
    let tick = inputs.pair.tick();
    let raw = match order.side {
        Side::Sell => order.price.max(inputs.market + tick),
        Side::Buy => order.price.min(inputs.market - tick),
    };
    inputs.pair.round_price_passive(order.side, raw)
}
