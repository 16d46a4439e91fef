//! Unit tests of the paper order book.

use super::*;
use crate::exchange::types::PairInfo;
use crate::pair::{FeeSchedule, PairSpec};
use rust_decimal_macros::dec;

pub(crate) fn config() -> PaperConfig {
    PaperConfig {
        pair: PairInfo {
            spec: PairSpec {
                symbol: "XDGUSD".into(),
                price_decimals: 7,
                lot_decimals: 8,
                ordermin: dec!(50),
                costmin: dec!(0.5),
            },
            base: "XXDG".into(),
            quote: "ZUSD".into(),
        },
        fees: FeeSchedule {
            maker_pct: dec!(0.25),
            taker_pct: dec!(0.40),
        },
        initial_base: dec!(1000),
        initial_quote: dec!(1000),
        max_open_orders: 60,
        fill_participation: None,
    }
}

fn limit(side: Side, price: Decimal, volume: Decimal, id: &str) -> OrderRequest {
    OrderRequest {
        pair: "XDGUSD".into(),
        side,
        kind: OrderKind::Limit {
            price,
            post_only: true,
        },
        volume,
        userref: 7,
        client_order_id: id.into(),
    }
}

fn candle(time: i64, o: Decimal, h: Decimal, l: Decimal, c: Decimal) -> Candle {
    Candle {
        time,
        open: o,
        high: h,
        low: l,
        close: c,
        volume: dec!(100000),
    }
}

#[test]
fn buy_fills_at_limit_with_maker_fee_when_market_trades_through() {
    let mut b = PaperBook::new(config(), 0);
    b.set_last_price(dec!(0.1));
    let tx = b
        .add_order(&limit(Side::Buy, dec!(0.09), dec!(100), "a"))
        .unwrap();
    assert_eq!(b.account().quote_locked, dec!(9.0225));
    assert!(
        b.step(&candle(60, dec!(0.1), dec!(0.1), dec!(0.0901), dec!(0.095)))
            .is_empty()
    );
    let fills = b.step(&candle(
        120,
        dec!(0.095),
        dec!(0.096),
        dec!(0.09),
        dec!(0.091),
    ));
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].price, dec!(0.09));
    assert_eq!(fills[0].fee, dec!(0.0225));
    let a = b.account();
    assert_eq!(a.quote_locked, dec!(0));
    assert_eq!(a.quote_free, dec!(1000) - dec!(9.0225));
    assert_eq!(a.base_free, dec!(1100));
    assert_eq!(b.order(&tx).unwrap().status, OrderStatus::Closed);
}

#[test]
fn post_only_that_would_cross_is_rejected() {
    let mut b = PaperBook::new(config(), 0);
    b.set_last_price(dec!(0.1));
    let e = b
        .add_order(&limit(Side::Buy, dec!(0.1), dec!(100), "a"))
        .unwrap_err();
    assert!(matches!(e, ExchangeError::PostOnlyWouldCross { .. }));
    let e = b
        .add_order(&limit(Side::Sell, dec!(0.09), dec!(100), "b"))
        .unwrap_err();
    assert!(matches!(e, ExchangeError::PostOnlyWouldCross { .. }));
}

#[test]
fn market_order_takes_with_taker_fee_and_funds_are_checked() {
    let mut b = PaperBook::new(config(), 0);
    b.set_last_price(dec!(0.1));
    let req = OrderRequest {
        kind: OrderKind::Market,
        ..limit(Side::Buy, dec!(0), dec!(1000), "m")
    };
    b.add_order(&req).unwrap();
    assert_eq!(b.account().quote_free, dec!(1000) - dec!(100) - dec!(0.4));
    let huge = OrderRequest {
        volume: dec!(100000),
        client_order_id: "m2".into(),
        ..req
    };
    assert!(matches!(
        b.add_order(&huge),
        Err(ExchangeError::InsufficientFunds { .. })
    ));
}

#[test]
fn validation_mirrors_kraken() {
    let mut b = PaperBook::new(config(), 0);
    b.set_last_price(dec!(0.1));
    let small = limit(Side::Buy, dec!(0.09), dec!(10), "s");
    assert_eq!(
        b.add_order(&small).unwrap_err().message(),
        "EGeneral:Invalid arguments:volume"
    );
    let fine_price = limit(Side::Buy, dec!(0.091234567), dec!(100), "p");
    assert!(matches!(
        b.add_order(&fine_price),
        Err(ExchangeError::InvalidRequest { .. })
    ));
    b.add_order(&limit(Side::Buy, dec!(0.09), dec!(100), "dup"))
        .unwrap();
    assert!(matches!(
        b.add_order(&limit(Side::Buy, dec!(0.08), dec!(100), "dup")),
        Err(ExchangeError::DuplicateOrder { .. })
    ));
}

#[test]
fn intra_candle_path_orders_fills_and_cancel_releases_locks() {
    let mut b = PaperBook::new(config(), 0);
    b.set_last_price(dec!(0.1));
    b.add_order(&limit(Side::Buy, dec!(0.095), dec!(100), "b"))
        .unwrap();
    b.add_order(&limit(Side::Sell, dec!(0.105), dec!(100), "s"))
        .unwrap();
    // Down candle: open -> high -> low -> close, so the sell fills first.
    let f = b.step(&candle(60, dec!(0.1), dec!(0.11), dec!(0.09), dec!(0.094)));
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].side, Side::Sell);
    assert!(f[0].time < f[1].time);
    let tx = b
        .add_order(&limit(Side::Buy, dec!(0.08), dec!(100), "c"))
        .unwrap();
    b.cancel(&tx).unwrap();
    assert_eq!(b.account().quote_locked, dec!(0));
    assert!(matches!(
        b.cancel(&tx),
        Err(ExchangeError::UnknownOrder { .. })
    ));
}

/// Proves: after a candle the book's time is the candle's close, so an
/// order crossing at placement executes after every execution inside
/// that candle (an exit can never fill before its entry did).
#[test]
fn placement_after_a_candle_executes_after_its_fills() {
    let mut b = PaperBook::new(config(), 0);
    b.set_last_price(dec!(0.1));
    b.add_order(&limit(Side::Buy, dec!(0.095), dec!(100), "entry"))
        .unwrap();
    // Up candle through the entry; it closes above it.
    let entry_time = b.step(&candle(60, dec!(0.1), dec!(0.104), dec!(0.09), dec!(0.103)))[0].time;
    assert_eq!(b.now(), 120_000, "the candle's close");
    // A sell below the market (not post-only) crosses at once.
    let mut exit = limit(Side::Sell, dec!(0.096), dec!(100), "exit");
    exit.kind = OrderKind::Limit {
        price: dec!(0.096),
        post_only: false,
    };
    b.add_order(&exit).unwrap();
    let exit = b.last_fills().last().unwrap().clone();
    assert!(
        exit.time > entry_time,
        "exit at {} after entry at {entry_time}",
        exit.time
    );
}

#[test]
fn partial_fills_respect_participation() {
    let mut cfg = config();
    cfg.fill_participation = Some(dec!(0.0006));
    let mut b = PaperBook::new(cfg, 0);
    b.set_last_price(dec!(0.1));
    let tx = b
        .add_order(&limit(Side::Buy, dec!(0.09), dec!(100), "p"))
        .unwrap();
    let c = candle(60, dec!(0.1), dec!(0.1), dec!(0.08), dec!(0.1));
    assert_eq!(b.step(&c)[0].volume, dec!(60));
    assert_eq!(b.order(&tx).unwrap().status, OrderStatus::Open);
    assert_eq!(b.step(&Candle { time: 120, ..c })[0].volume, dec!(40));
    assert_eq!(b.order(&tx).unwrap().status, OrderStatus::Closed);
    assert_eq!(b.account().quote_locked, dec!(0));
}

#[test]
fn a_requested_split_fills_half_and_leaves_the_rest_resting() {
    let mut b = PaperBook::new(config(), 0);
    b.set_last_price(dec!(0.1));
    let small = b
        .add_order(&limit(Side::Buy, dec!(0.09), dec!(99), "small"))
        .unwrap();
    let big = b
        .add_order(&limit(Side::Buy, dec!(0.089), dec!(101), "big"))
        .unwrap();
    b.split_next_fills(1);
    let c = candle(60, dec!(0.1), dec!(0.1), dec!(0.08), dec!(0.1));
    let fills = b.step(&c).to_vec();
    // 99 splits into 49.5 + 49.5, below the minimum of 50: filled whole;
    // 101 splits into 50.5 + 50.5.
    assert_eq!(fills.len(), 2);
    assert_eq!(fills[0].volume, dec!(99));
    assert_eq!(fills[1].volume, dec!(50.5));
    assert!(!fills[1].order_closed);
    assert_eq!(b.order(&small).unwrap().status, OrderStatus::Closed);
    assert_eq!(b.order(&big).unwrap().status, OrderStatus::Open);
    assert_eq!(b.pending_splits(), 0);
    // The rest waits while the market trades through its price.
    for n in 1..SPLIT_HOLD_CANDLES {
        let time = 60 + 60 * i64::from(n);
        assert!(b.step(&Candle { time, ..c }).is_empty(), "candle {n}");
    }
    let time = 60 + 60 * i64::from(SPLIT_HOLD_CANDLES);
    let rest = b.step(&Candle { time, ..c }).to_vec();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].volume, dec!(50.5));
    assert_eq!(b.order(&big).unwrap().status, OrderStatus::Closed);
    assert_eq!(b.account().quote_locked, dec!(0));
}
