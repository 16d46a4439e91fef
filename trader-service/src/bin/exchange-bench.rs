//! Paper-exchange throughput: candle steps per second with 20 resting orders
//! that the candles do not reach (the common case a backtest spends its time
//! in), with an empty book for comparison, with a fill and re-placement on
//! every candle, and the raw cost of a `Decimal` comparison.
//!
//! Run in release mode: `cargo run --release -p trader-service --bin
//! exchange-bench [steps]`.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, Result};
use rust_decimal::Decimal;
use trader_service::exchange::paper::{PaperBook, PaperConfig};
use trader_service::exchange::{OrderKind, OrderRequest, PairInfo};
use trader_service::pair::{Candle, FeeSchedule, PairSpec, Side};

fn config() -> PaperConfig {
    PaperConfig {
        pair: PairInfo {
            spec: PairSpec {
                symbol: "XDGUSD".into(),
                price_decimals: 7,
                lot_decimals: 8,
                ordermin: Decimal::from(50),
                costmin: Decimal::new(5, 1),
            },
            base: "XXDG".into(),
            quote: "ZUSD".into(),
        },
        fees: FeeSchedule {
            maker_pct: Decimal::new(25, 2),
            taker_pct: Decimal::new(40, 2),
        },
        initial_base: Decimal::from(1_000_000),
        initial_quote: Decimal::from(1_000_000),
        max_open_orders: 225,
        fill_participation: None,
    }
}

fn order(side: Side, price: Decimal, id: u64) -> OrderRequest {
    OrderRequest {
        pair: "XDGUSD".into(),
        side,
        kind: OrderKind::Limit {
            price,
            post_only: true,
        },
        volume: Decimal::from(100),
        userref: 1,
        client_order_id: format!("bench-{id}"),
    }
}

/// Candles wobbling between 0.0990 and 0.1010 around 0.1.
fn candles(n: usize) -> Vec<Candle> {
    (0..n)
        .map(|i| {
            let k = i64::try_from(i % 17).unwrap_or(0);
            let open = Decimal::new(1_000_000 + (k - 8) * 100, 7);
            let close = Decimal::new(1_000_000 + (8 - k) * 100, 7);
            Candle {
                time: 1_700_000_000 + i64::try_from(i).unwrap_or(0) * 60,
                open,
                high: open.max(close) + Decimal::new(50, 7),
                low: open.min(close) - Decimal::new(50, 7),
                close,
                volume: Decimal::from(10_000),
            }
        })
        .collect()
}

fn book_with(resting: usize) -> Result<PaperBook> {
    let mut book = PaperBook::new(config(), 0);
    book.set_last_price(Decimal::new(1, 1));
    for i in 0..resting / 2 {
        let off = Decimal::new(i64::try_from(i).unwrap_or(0) * 10 + 200, 5);
        let step = u64::try_from(i).unwrap_or(0);
        book.add_order(&order(Side::Buy, Decimal::new(1, 1) - off, 2 * step))
            .context("placing a resting buy")?;
        book.add_order(&order(Side::Sell, Decimal::new(1, 1) + off, 2 * step + 1))
            .context("placing a resting sell")?;
    }
    Ok(book)
}

fn steps_per_sec(book: &mut PaperBook, path: &[Candle], steps: usize) -> f64 {
    let start = Instant::now();
    let mut fills = 0usize;
    for i in 0..steps {
        fills += book.step(black_box(&path[i % path.len()])).len();
    }
    black_box(fills);
    steps as f64 / start.elapsed().as_secs_f64()
}

fn main() -> Result<()> {
    let steps: usize = match std::env::args().nth(1) {
        Some(s) => s.parse().context("steps must be a positive integer")?,
        None => 20_000_000,
    };
    let path = candles(1024);

    let mut book = book_with(20)?;
    let open_before = book.open_count();
    let with_20 = steps_per_sec(&mut book, &path, steps);
    assert_eq!(
        book.open_count(),
        open_before,
        "no candle may reach the orders"
    );
    let mut empty = book_with(0)?;
    let with_0 = steps_per_sec(&mut empty, &path, steps);

    // Churn: every candle fills the best buy, which is then re-placed.
    let mut churn = book_with(20)?;
    let churn_steps = steps / 20;
    let start = Instant::now();
    let mut id = 1_000_000u64;
    for i in 0..churn_steps {
        let t = 1_800_000_000 + i64::try_from(i).unwrap_or(0) * 60;
        let dip = Candle {
            time: t,
            open: Decimal::new(1, 1),
            high: Decimal::new(1, 1),
            low: Decimal::new(979, 4),
            close: Decimal::new(1, 1),
            volume: Decimal::from(10_000),
        };
        let filled = churn.step(&dip).len();
        for _ in 0..filled {
            id += 1;
            churn
                .add_order(&order(Side::Buy, Decimal::new(98, 3), id))
                .context("re-placing")?;
        }
        id += 1;
        churn
            .add_order(&order(Side::Sell, Decimal::new(102, 3), id))
            .ok();
        if churn.open_count() > 200 {
            churn = book_with(20)?;
        }
    }
    let churn_rate = churn_steps as f64 / start.elapsed().as_secs_f64();

    let (a, b) = (Decimal::new(1_000_123, 7), Decimal::new(1_000_124, 7));
    let n = 100_000_000u64;
    let start = Instant::now();
    let mut lt = 0u64;
    for _ in 0..n {
        lt += u64::from(black_box(a) < black_box(b));
    }
    black_box(lt);
    let cmp_ns = start.elapsed().as_nanos() as f64 / n as f64;

    println!("paper exchange, {steps} candle steps");
    println!("  20 resting orders, no fills : {:>12.0} steps/s", with_20);
    println!("   0 resting orders           : {:>12.0} steps/s", with_0);
    println!(
        "  fill + re-place every candle: {:>12.0} steps/s ({churn_steps} steps)",
        churn_rate
    );
    println!("  Decimal comparison          : {:>12.2} ns", cmp_ns);
    Ok(())
}
