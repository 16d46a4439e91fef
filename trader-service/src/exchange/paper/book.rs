//! The synchronous, deterministic matching core of the paper exchange.
//!
//! Resting buys and sells are kept sorted with the best order at the end of
//! each vector, so a candle that crosses nothing costs two price comparisons
//! and no allocation; only a candle that trades through a resting price walks
//! the book. Within a candle the market follows a fixed path (open → low →
//! high → close when the candle closes up, else open → high → low → close),
//! and resting orders fill at their own limit price with the maker fee, so
//! fills are deterministic and never optimistic.

use std::collections::HashMap;

use rust_decimal::{Decimal, RoundingStrategy};

use super::super::error::ExchangeError;
use super::super::types::{
    Balances, OrderInfo, OrderKind, OrderRequest, OrderStatus, OrderType, Ticker, Trade, UnixMillis,
};
use super::account::{AccountSnapshot, Fill, PaperConfig};
use super::txid;
use crate::pair::{Candle, Side};

/// Decimals kept on fees, so balances keep a bounded scale over long runs.
const FEE_DECIMALS: u32 = 12;

/// Candles during which the rest of a split execution does not trade (two
/// and a half hours of a one-minute market): long enough for a client
/// polling every few seconds to see the order part filled, even on a
/// market replayed many times faster than real time.
pub const SPLIT_HOLD_CANDLES: u32 = 150;

#[derive(Debug, Clone)]
struct BookOrder {
    txid: String,
    side: Side,
    order_type: OrderType,
    limit_price: Option<Decimal>,
    post_only: bool,
    volume: Decimal,
    vol_exec: Decimal,
    cost: Decimal,
    fee: Decimal,
    userref: i32,
    cl_ord_id: String,
    opened_at: UnixMillis,
    closed_at: Option<UnixMillis>,
    status: OrderStatus,
    reason: Option<String>,
    /// Quote (buys) or base (sells) still locked by this order.
    lock: Decimal,
}

/// (limit price, index into `orders`).
type Resting = (Decimal, usize);

/// The paper exchange's matching engine and account.
#[derive(Debug, Clone)]
pub struct PaperBook {
    config: PaperConfig,
    maker_rate: Decimal,
    taker_rate: Decimal,
    account: AccountSnapshot,
    orders: Vec<BookOrder>,
    by_txid: HashMap<String, usize>,
    open_by_cl_ord_id: HashMap<String, usize>,
    /// Ascending by price; equal prices newest first: best buy is last.
    buys: Vec<Resting>,
    /// Descending by price; equal prices newest first: best sell is last.
    sells: Vec<Resting>,
    fills: Vec<Fill>,
    trades: Vec<Trade>,
    last_price: Option<Decimal>,
    last_candle_time: Option<i64>,
    now: UnixMillis,
    txid_salt: u64,
    /// Resting executions still to be split in two (fault injection).
    splits: u32,
    /// Orders split that way, with the candles left before their rest may
    /// trade.
    held: Vec<(usize, u32)>,
}

impl PaperBook {
    /// An empty book with the configured starting balances, at time `now`.
    #[must_use]
    pub fn new(config: PaperConfig, now: UnixMillis) -> Self {
        let hundred = Decimal::ONE_HUNDRED;
        Self {
            maker_rate: config.fees.maker_pct / hundred,
            taker_rate: config.fees.taker_pct / hundred,
            account: AccountSnapshot {
                base_free: config.initial_base,
                quote_free: config.initial_quote,
                ..AccountSnapshot::default()
            },
            config,
            orders: Vec::new(),
            by_txid: HashMap::new(),
            open_by_cl_ord_id: HashMap::new(),
            buys: Vec::with_capacity(64),
            sells: Vec::with_capacity(64),
            fills: Vec::with_capacity(64),
            trades: Vec::new(),
            last_price: None,
            last_candle_time: None,
            now,
            txid_salt: 0,
            splits: 0,
            held: Vec::new(),
        }
    }

    /// Makes each of the next `n` resting executions that can be split
    /// execute only half of what remains (rounded down to the lot), the rest
    /// staying on the book, untouched for [`SPLIT_HOLD_CANDLES`] candles:
    /// partial fills on demand, for fault injection.
    /// An execution is split only when both parts meet the pair minimum, so
    /// every part can be traded on by itself.
    pub fn split_next_fills(&mut self, n: u32) {
        self.splits = self.splits.saturating_add(n);
    }

    /// Splits requested by [`Self::split_next_fills`] and not yet made.
    #[must_use]
    pub fn pending_splits(&self) -> u32 {
        self.splits
    }

    /// The part of `remaining` a split execution fills, if a split is
    /// pending and both parts would meet the pair minimum.
    fn split_part(&self, remaining: Decimal) -> Option<Decimal> {
        if self.splits == 0 {
            return None;
        }
        let spec = &self.config.pair.spec;
        let half = (remaining / Decimal::TWO)
            .round_dp_with_strategy(spec.lot_decimals, RoundingStrategy::ToZero);
        let min = spec.ordermin.max(Decimal::ZERO);
        (half > Decimal::ZERO && half >= min && remaining - half >= min).then_some(half)
    }

    /// Salts the order and trade ids this book hands out: 0, the default,
    /// keeps them identical across runs, as backtests need; a live paper
    /// run passes something unique to the run, e.g. its start time.
    pub fn set_txid_salt(&mut self, salt: u64) {
        self.txid_salt = salt;
    }

    /// The configuration the book was built with.
    #[must_use]
    pub fn config(&self) -> &PaperConfig {
        &self.config
    }

    /// Current simulated time.
    #[must_use]
    pub fn now(&self) -> UnixMillis {
        self.now
    }

    /// Moves simulated time forward (never backwards).
    pub fn set_now(&mut self, now: UnixMillis) {
        self.now = self.now.max(now);
    }

    /// Last traded price, once a candle has been seen (or set explicitly).
    #[must_use]
    pub fn last_price(&self) -> Option<Decimal> {
        self.last_price
    }

    /// Sets the reference price without trading, e.g. before the first
    /// candle of a replay.
    pub fn set_last_price(&mut self, price: Decimal) {
        self.last_price = Some(price);
    }

    /// Free and locked balances.
    #[must_use]
    pub fn account(&self) -> AccountSnapshot {
        self.account
    }

    /// Total balances per asset, as Kraken's `Balance` reports them.
    #[must_use]
    pub fn balances(&self) -> Balances {
        let mut b = Balances::default();
        let a = self.account;
        b.assets
            .insert(self.config.pair.base.clone(), a.base_free + a.base_locked);
        b.assets.insert(
            self.config.pair.quote.clone(),
            a.quote_free + a.quote_locked,
        );
        b
    }

    /// Ticker derived from the last price (the paper book has no spread).
    #[must_use]
    pub fn ticker(&self) -> Option<Ticker> {
        self.last_price.map(|p| Ticker {
            bid: p,
            ask: p,
            last: p,
        })
    }

    /// Number of resting orders.
    #[must_use]
    pub fn open_count(&self) -> usize {
        self.buys.len() + self.sells.len()
    }

    /// Places an order, validating it exactly like Kraken would and
    /// rejecting it with Kraken's error kinds.
    pub fn add_order(&mut self, req: &OrderRequest) -> Result<String, ExchangeError> {
        // The idempotency check comes first: a repeated placement must be
        // recognised as such even when the book is otherwise full.
        if self.open_by_cl_ord_id.contains_key(&req.client_order_id) {
            return Err(ExchangeError::DuplicateOrder {
                message: "EOrder:Duplicate order".into(),
            });
        }
        self.validate(req)?;
        match req.kind {
            OrderKind::Market => {
                let Some(last) = self.last_price else {
                    return Err(ExchangeError::Retryable {
                        message: "EService:Unavailable".into(),
                    });
                };
                self.place_immediate(req, last, OrderType::Market, None)
            }
            OrderKind::Limit { price, post_only } => {
                let crosses = self.last_price.is_some_and(|last| match req.side {
                    Side::Buy => price >= last,
                    Side::Sell => price <= last,
                });
                if crosses && post_only {
                    return Err(ExchangeError::PostOnlyWouldCross {
                        message: "EOrder:Post only order".into(),
                    });
                }
                if crosses {
                    let last = self.last_price.unwrap_or(price);
                    return self.place_immediate(req, last, OrderType::Limit, Some(price));
                }
                self.place_resting(req, price, post_only)
            }
        }
    }

    fn validate(&self, req: &OrderRequest) -> Result<(), ExchangeError> {
        let spec = &self.config.pair.spec;
        if req.pair != spec.symbol {
            return Err(ExchangeError::invalid("EQuery:Unknown asset pair"));
        }
        if req.volume <= Decimal::ZERO || req.volume.normalize().scale() > spec.lot_decimals {
            return Err(ExchangeError::invalid("EGeneral:Invalid arguments:volume"));
        }
        if req.volume < spec.ordermin {
            return Err(ExchangeError::invalid("EGeneral:Invalid arguments:volume"));
        }
        let reference = match req.kind {
            OrderKind::Limit { price, .. } => {
                if price <= Decimal::ZERO {
                    return Err(ExchangeError::invalid("EGeneral:Invalid arguments:price"));
                }
                if price.normalize().scale() > spec.price_decimals {
                    return Err(ExchangeError::invalid(format!(
                        "EOrder:Invalid price:{} price can only be specified up to {} decimals.",
                        spec.symbol, spec.price_decimals
                    )));
                }
                Some(price)
            }
            OrderKind::Market => self.last_price,
        };
        if let Some(p) = reference
            && p * req.volume < spec.costmin
        {
            return Err(ExchangeError::invalid("EOrder:Order minimum not met"));
        }
        if self.open_count() >= self.config.max_open_orders {
            return Err(ExchangeError::OrdersLimitExceeded {
                message: "EOrder:Orders limit exceeded".into(),
            });
        }
        Ok(())
    }

    fn insufficient() -> ExchangeError {
        ExchangeError::InsufficientFunds {
            message: "EOrder:Insufficient funds".into(),
        }
    }

    fn fee(cost: Decimal, rate: Decimal) -> Decimal {
        (cost * rate).round_dp_with_strategy(FEE_DECIMALS, RoundingStrategy::MidpointNearestEven)
    }

    fn new_order(
        &mut self,
        req: &OrderRequest,
        order_type: OrderType,
        limit_price: Option<Decimal>,
        post_only: bool,
    ) -> usize {
        let idx = self.orders.len();
        let txid = txid::salted_order_txid(self.txid_salt, idx as u64);
        self.by_txid.insert(txid.clone(), idx);
        self.orders.push(BookOrder {
            txid,
            side: req.side,
            order_type,
            limit_price,
            post_only,
            volume: req.volume,
            vol_exec: Decimal::ZERO,
            cost: Decimal::ZERO,
            fee: Decimal::ZERO,
            userref: req.userref,
            cl_ord_id: req.client_order_id.clone(),
            opened_at: self.now,
            closed_at: None,
            status: OrderStatus::Open,
            reason: None,
            lock: Decimal::ZERO,
        });
        idx
    }

    fn place_immediate(
        &mut self,
        req: &OrderRequest,
        price: Decimal,
        order_type: OrderType,
        limit_price: Option<Decimal>,
    ) -> Result<String, ExchangeError> {
        let cost = price * req.volume;
        let fee = Self::fee(cost, self.taker_rate);
        match req.side {
            Side::Buy if self.account.quote_free < cost + fee => return Err(Self::insufficient()),
            Side::Sell if self.account.base_free < req.volume => return Err(Self::insufficient()),
            _ => {}
        }
        let idx = self.new_order(req, order_type, limit_price, false);
        let now = self.now;
        self.execute(idx, price, req.volume, cost, fee, false, now);
        Ok(self.orders[idx].txid.clone())
    }

    fn place_resting(
        &mut self,
        req: &OrderRequest,
        price: Decimal,
        post_only: bool,
    ) -> Result<String, ExchangeError> {
        let lock = match req.side {
            Side::Buy => price * req.volume * (Decimal::ONE + self.maker_rate),
            Side::Sell => req.volume,
        };
        match req.side {
            Side::Buy if self.account.quote_free < lock => return Err(Self::insufficient()),
            Side::Sell if self.account.base_free < lock => return Err(Self::insufficient()),
            _ => {}
        }
        let idx = self.new_order(req, OrderType::Limit, Some(price), post_only);
        self.orders[idx].lock = lock;
        match req.side {
            Side::Buy => {
                self.account.quote_free -= lock;
                self.account.quote_locked += lock;
                let at = self.buys.partition_point(|(p, _)| *p < price);
                self.buys.insert(at, (price, idx));
            }
            Side::Sell => {
                self.account.base_free -= lock;
                self.account.base_locked += lock;
                let at = self.sells.partition_point(|(p, _)| *p > price);
                self.sells.insert(at, (price, idx));
            }
        }
        self.open_by_cl_ord_id
            .insert(req.client_order_id.clone(), idx);
        Ok(self.orders[idx].txid.clone())
    }

    /// Applies one execution to the order and the account.
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &mut self,
        idx: usize,
        price: Decimal,
        qty: Decimal,
        cost: Decimal,
        fee: Decimal,
        maker: bool,
        time: UnixMillis,
    ) {
        let o = &mut self.orders[idx];
        let full = o.vol_exec + qty >= o.volume;
        match o.side {
            Side::Buy => {
                let release = if !maker {
                    Decimal::ZERO
                } else if full {
                    o.lock
                } else {
                    price * qty * (Decimal::ONE + self.maker_rate)
                };
                o.lock -= release;
                self.account.quote_locked -= release;
                self.account.quote_free += release - cost - fee;
                self.account.base_free += qty;
            }
            Side::Sell => {
                let release = if maker { qty } else { Decimal::ZERO };
                o.lock -= release;
                self.account.base_locked -= release;
                self.account.base_free -= qty - release;
                self.account.quote_free += cost - fee;
            }
        }
        o.vol_exec += qty;
        o.cost += cost;
        o.fee += fee;
        if full {
            o.status = OrderStatus::Closed;
            o.closed_at = Some(time);
            if self.open_by_cl_ord_id.get(&o.cl_ord_id) == Some(&idx) {
                self.open_by_cl_ord_id.remove(&o.cl_ord_id);
            }
        }
        let trade_seq = self.trades.len() as u64;
        let fill = Fill {
            txid: o.txid.clone(),
            side: o.side,
            price,
            volume: qty,
            cost,
            fee,
            maker,
            time,
            order_closed: full,
        };
        self.trades.push(Trade {
            trade_id: txid::salted_trade_txid(self.txid_salt, trade_seq),
            order_txid: fill.txid.clone(),
            pair: self.config.pair.spec.symbol.clone(),
            side: fill.side,
            price,
            volume: qty,
            cost,
            fee,
            maker,
            time,
        });
        self.fills.push(fill);
    }

    /// Cancels a resting order and releases what it locked.
    pub fn cancel(&mut self, txid: &str) -> Result<(), ExchangeError> {
        let unknown = || ExchangeError::UnknownOrder {
            message: "EOrder:Unknown order".into(),
        };
        let idx = *self.by_txid.get(txid).ok_or_else(unknown)?;
        if !self.orders[idx].status.is_live() {
            return Err(unknown());
        }
        let list = match self.orders[idx].side {
            Side::Buy => &mut self.buys,
            Side::Sell => &mut self.sells,
        };
        if let Some(pos) = list.iter().position(|(_, i)| *i == idx) {
            list.remove(pos);
        }
        let o = &mut self.orders[idx];
        match o.side {
            Side::Buy => {
                self.account.quote_locked -= o.lock;
                self.account.quote_free += o.lock;
            }
            Side::Sell => {
                self.account.base_locked -= o.lock;
                self.account.base_free += o.lock;
            }
        }
        o.lock = Decimal::ZERO;
        o.status = OrderStatus::Canceled;
        o.reason = Some("User requested".into());
        o.closed_at = Some(self.now);
        if self.open_by_cl_ord_id.get(&o.cl_ord_id) == Some(&idx) {
            self.open_by_cl_ord_id.remove(&o.cl_ord_id);
        }
        Ok(())
    }

    /// Advances the market by one candle and returns the executions it
    /// caused, in path order; afterwards the book's time is the candle's
    /// close. The no-fill path neither allocates nor walks.
    pub fn step(&mut self, c: &Candle) -> &[Fill] {
        self.fills.clear();
        let start = c.time.saturating_mul(1000);
        let interval_ms = self
            .last_candle_time
            .map_or(60_000, |t| (c.time - t).clamp(1, 86_400) * 1000);
        self.last_candle_time = Some(c.time);
        self.now = self.now.max(start);
        self.held.retain_mut(|(_, left)| {
            *left -= 1;
            *left > 0
        });
        let buy_hit = self.buys.last().is_some_and(|(p, _)| c.low <= *p);
        let sell_hit = self.sells.last().is_some_and(|(p, _)| c.high >= *p);
        if buy_hit || sell_hit {
            let cap = self.config.fill_participation.map(|f| {
                (c.volume * f).round_dp_with_strategy(
                    self.config.pair.spec.lot_decimals,
                    RoundingStrategy::ToZero,
                )
            });
            let first = start + interval_ms / 3;
            let second = start + 2 * interval_ms / 3;
            if c.close >= c.open {
                // open -> low -> high -> close: buys fill first.
                self.fill_side(Side::Buy, c.low, cap, first);
                self.fill_side(Side::Sell, c.high, cap, second);
            } else {
                // open -> high -> low -> close: sells fill first.
                self.fill_side(Side::Sell, c.high, cap, first);
                self.fill_side(Side::Buy, c.low, cap, second);
            }
        }
        self.last_price = Some(c.close);
        // The whole candle has happened: it is now its close. Anything that
        // executes after this step (an order crossing at placement) is
        // stamped after every execution inside the candle, never before.
        self.now = self.now.max(start.saturating_add(interval_ms));
        &self.fills
    }

    fn fill_side(&mut self, side: Side, extreme: Decimal, cap: Option<Decimal>, time: UnixMillis) {
        let mut i = match side {
            Side::Buy => self.buys.len(),
            Side::Sell => self.sells.len(),
        };
        while i > 0 {
            i -= 1;
            let (price, idx) = match side {
                Side::Buy => self.buys[i],
                Side::Sell => self.sells[i],
            };
            let reached = match side {
                Side::Buy => extreme <= price,
                Side::Sell => extreme >= price,
            };
            if !reached {
                break;
            }
            if self.held.iter().any(|(h, _)| *h == idx) {
                continue;
            }
            let remaining = self.orders[idx].volume - self.orders[idx].vol_exec;
            let mut qty = cap.map_or(remaining, |c| remaining.min(c));
            if qty == remaining
                && let Some(part) = self.split_part(remaining)
            {
                self.splits -= 1;
                self.held.push((idx, SPLIT_HOLD_CANDLES));
                qty = part;
            }
            if qty <= Decimal::ZERO {
                continue;
            }
            let cost = price * qty;
            let fee = Self::fee(cost, self.maker_rate);
            // An order placed inside a candle's span cannot trade before it
            // was placed, whatever the path says.
            let at = time.max(self.orders[idx].opened_at);
            self.execute(idx, price, qty, cost, fee, true, at);
            if qty == remaining {
                match side {
                    Side::Buy => self.buys.remove(i),
                    Side::Sell => self.sells.remove(i),
                };
            }
        }
    }

    /// The executions of the last [`Self::step`] (or placement).
    #[must_use]
    pub fn last_fills(&self) -> &[Fill] {
        &self.fills
    }

    /// Clears the execution buffer, so a placement's immediate fills can be
    /// told apart from a later step's.
    pub fn clear_fills(&mut self) {
        self.fills.clear();
    }

    fn info(&self, idx: usize) -> OrderInfo {
        let o = &self.orders[idx];
        OrderInfo {
            txid: o.txid.clone(),
            pair: self.config.pair.spec.symbol.clone(),
            status: o.status,
            side: o.side,
            order_type: o.order_type.clone(),
            limit_price: o.limit_price,
            post_only: o.post_only,
            volume: o.volume,
            vol_exec: o.vol_exec,
            cost: o.cost,
            fee: o.fee,
            avg_price: (o.vol_exec > Decimal::ZERO).then(|| o.cost / o.vol_exec),
            userref: o.userref,
            cl_ord_id: Some(o.cl_ord_id.clone()),
            opened_at: o.opened_at,
            closed_at: o.closed_at,
            reason: o.reason.clone(),
        }
    }

    /// True while an open order carries this client order id.
    #[must_use]
    pub fn has_open_cl_ord_id(&self, cl_ord_id: &str) -> bool {
        self.open_by_cl_ord_id.contains_key(cl_ord_id)
    }

    /// An order by txid.
    #[must_use]
    pub fn order(&self, txid: &str) -> Option<OrderInfo> {
        self.by_txid.get(txid).map(|&i| self.info(i))
    }

    /// Resting orders, best buys then best sells.
    #[must_use]
    pub fn open_orders(&self) -> Vec<OrderInfo> {
        self.buys
            .iter()
            .rev()
            .chain(self.sells.iter().rev())
            .map(|&(_, i)| self.info(i))
            .collect()
    }

    /// Closed, cancelled and expired orders, newest first.
    #[must_use]
    pub fn closed_orders(&self) -> Vec<OrderInfo> {
        (0..self.orders.len())
            .rev()
            .filter(|&i| !self.orders[i].status.is_live())
            .map(|i| self.info(i))
            .collect()
    }

    /// The account's executions strictly after `since`.
    #[must_use]
    pub fn trades_since(&self, since: UnixMillis) -> Vec<Trade> {
        self.trades
            .iter()
            .filter(|t| t.time > since)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests;
