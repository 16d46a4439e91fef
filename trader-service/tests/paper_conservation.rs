//! Property: whatever sequence of limit and market orders, cancels and
//! candles the paper exchange sees, no money is created or destroyed.
//! For each asset, free + locked balances equal the initial balance plus
//! what executions moved in minus what they moved out, fees included; and
//! locked amounts are exactly what the resting orders need.

mod common;

use common::paper_config;
use proptest::prelude::*;
use rust_decimal::Decimal;
use trader_service::exchange::paper::PaperBook;
use trader_service::exchange::{OrderKind, OrderRequest};
use trader_service::pair::{Candle, Side};

#[derive(Debug, Clone)]
enum Op {
    Limit {
        buy: bool,
        ticks: i64,
        lots: i64,
        post_only: bool,
    },
    Market {
        buy: bool,
        lots: i64,
    },
    Cancel {
        pick: usize,
    },
    Candle {
        up: bool,
        range_ticks: i64,
        drift_ticks: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), -300i64..300, 50i64..3_000, any::<bool>())
            .prop_map(|(buy, ticks, lots, post_only)| Op::Limit { buy, ticks, lots, post_only }),
        1 => (any::<bool>(), 50i64..2_000).prop_map(|(buy, lots)| Op::Market { buy, lots }),
        2 => (0usize..64).prop_map(|pick| Op::Cancel { pick }),
        4 => (any::<bool>(), 0i64..400, -150i64..150)
            .prop_map(|(up, range_ticks, drift_ticks)| Op::Candle { up, range_ticks, drift_ticks }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn funds_are_conserved(ops in prop::collection::vec(op(), 1..120), participation in prop::option::of(1i64..50)) {
        let mut cfg = paper_config();
        cfg.fill_participation = participation.map(|p| Decimal::new(p, 5));
        let initial_base = cfg.initial_base;
        let initial_quote = cfg.initial_quote;
        let mut book = PaperBook::new(cfg, 0);
        let tick = Decimal::new(1, 5); // coarse ticks keep prices on the 7-dp grid
        let mut price = Decimal::new(1, 1);
        book.set_last_price(price);
        let (mut base_in, mut quote_in) = (Decimal::ZERO, Decimal::ZERO);
        let mut txids: Vec<String> = Vec::new();
        let mut time = 60i64;
        let mut n = 0u64;

        let account = |fills: &[trader_service::exchange::paper::Fill], base_in: &mut Decimal, quote_in: &mut Decimal| {
            for f in fills {
                prop_assert_eq!(f.cost, f.price * f.volume);
                match f.side {
                    Side::Buy => { *base_in += f.volume; *quote_in -= f.cost + f.fee; }
                    Side::Sell => { *base_in -= f.volume; *quote_in += f.cost - f.fee; }
                }
            }
            Ok(())
        };

        for op in ops {
            n += 1;
            match op {
                Op::Limit { buy, ticks, lots, post_only } => {
                    let p = (price + tick * Decimal::from(ticks)).max(tick);
                    let req = OrderRequest {
                        pair: "XDGUSD".into(),
                        side: if buy { Side::Buy } else { Side::Sell },
                        kind: OrderKind::Limit { price: p, post_only },
                        volume: Decimal::from(lots),
                        userref: 1,
                        client_order_id: format!("c{n}"),
                    };
                    book.clear_fills();
                    if let Ok(tx) = book.add_order(&req) { txids.push(tx); }
                    let fills = book.last_fills().to_vec();
                    account(&fills, &mut base_in, &mut quote_in)?;
                }
                Op::Market { buy, lots } => {
                    let req = OrderRequest {
                        pair: "XDGUSD".into(),
                        side: if buy { Side::Buy } else { Side::Sell },
                        kind: OrderKind::Market,
                        volume: Decimal::from(lots),
                        userref: 2,
                        client_order_id: format!("m{n}"),
                    };
                    book.clear_fills();
                    let _ = book.add_order(&req);
                    let fills = book.last_fills().to_vec();
                    account(&fills, &mut base_in, &mut quote_in)?;
                }
                Op::Cancel { pick } => {
                    if !txids.is_empty() {
                        let _ = book.cancel(&txids[pick % txids.len()]);
                    }
                }
                Op::Candle { up, range_ticks, drift_ticks } => {
                    let open = price;
                    let close = (open + tick * Decimal::from(drift_ticks)).max(tick);
                    let (lo, hi) = (open.min(close), open.max(close));
                    let high = hi + tick * Decimal::from(range_ticks / 2);
                    let low = (lo - tick * Decimal::from(range_ticks - range_ticks / 2)).max(tick);
                    let close = if up { hi } else { lo };
                    let open = if up { lo } else { hi };
                    let c = Candle { time, open, high, low, close, volume: Decimal::from(1_000_000) };
                    time += 60;
                    let fills = book.step(&c).to_vec();
                    account(&fills, &mut base_in, &mut quote_in)?;
                    price = close;
                }
            }
            let a = book.account();
            prop_assert!(a.base_free >= Decimal::ZERO && a.quote_free >= Decimal::ZERO, "{a:?}");
            prop_assert_eq!(a.base_free + a.base_locked, initial_base + base_in);
            prop_assert_eq!(a.quote_free + a.quote_locked, initial_quote + quote_in);
            // Locks equal what the resting orders need.
            let maker = Decimal::new(25, 4);
            let (mut need_base, mut need_quote) = (Decimal::ZERO, Decimal::ZERO);
            for o in book.open_orders() {
                let rem = o.volume - o.vol_exec;
                match o.side {
                    Side::Buy => need_quote += o.limit_price.unwrap() * rem * (Decimal::ONE + maker),
                    Side::Sell => need_base += rem,
                }
            }
            prop_assert_eq!(a.base_locked, need_base);
            prop_assert_eq!(a.quote_locked, need_quote);
        }
    }
}
