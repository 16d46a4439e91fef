//! Healing-path benchmark: the per-candle cost of what a backtest adds for
//! self-healing ([`MarketHistory::observe`], [`RegimeDetector::update`],
//! [`RegimeDetector::view`] and [`profit_target`]) over synthetic 1-minute
//! prices that alternate 2-day bearish / ranging / bullish stretches.
//! Budget: above 300k candles/s, i.e. well under 1 µs per candle amortized
//! (Baum-Welch refits included).
//!
//! Optionally also reports the share of time in each regime on a real
//! candle file (`time,open,high,low,close,volume`, unix seconds), read by
//! path only.
//!
//! Run in release mode: `cargo run --release -p trader-service --bin
//! regime-bench [candles] [csv path] [trend_min_sharpe]`.

use std::time::Instant;

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use trader_service::healing::{
    HealingConfig, MarketHistory, Regime, RegimeDetector, profit_target,
};

/// Synthetic 1-minute closes: 0.3 %/5 min drifts and mean-reverting noise.
fn prices(n: usize) -> Result<Vec<(i64, Decimal)>> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut out = Vec::with_capacity(n);
    let (mut x, mut anchor) = (0.0f64, 0.0f64);
    for i in 0..n {
        let stretch = i / 2880;
        if i % 2880 == 0 {
            anchor = x;
        }
        let u1: f64 = rng.random::<f64>().max(1e-300);
        let u2: f64 = rng.random();
        let eps = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * 0.0011;
        x += eps
            + match stretch % 4 {
                1 => -0.0006,
                3 => 0.0006,
                _ => -0.02 * (x - anchor),
            };
        let p = Decimal::from_f64(0.1 * x.exp())
            .context("price out of range")?
            .round_dp(7);
        out.push((1_704_067_200 + 60 * i as i64, p));
    }
    Ok(out)
}

/// CPU time of this process in nanoseconds (Linux), so the figure stays
/// honest on a machine shared with other work.
fn cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000)
}

fn cpu0_diff(start: Option<u64>) -> Option<u64> {
    start.zip(cpu_ns()).map(|(a, b)| b - a)
}

fn shares(cfg: &HealingConfig, path: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let mut h = MarketHistory::new(cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let mut counts = [0usize; 4];
    let mut changes = 0usize;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(t), Some(p)) = (
            f.first().and_then(|v| v.parse::<i64>().ok()),
            f.get(4).and_then(|v| v.parse::<Decimal>().ok()),
        ) else {
            continue;
        };
        h.observe(t, p).with_context(|| format!("candle at {t}"))?;
        if d.update(&h).changed.is_some() {
            changes += 1;
        }
        let label = d.view(t).label;
        if let Some(i) = Regime::ALL.iter().position(|r| *r == label) {
            counts[i] += 1;
        }
    }
    let n = counts.iter().sum::<usize>().max(1);
    println!(
        "{path}: {n} candles, {changes} label changes, {} failed fits",
        d.fit_failures()
    );
    for (r, c) in Regime::ALL.iter().zip(counts) {
        println!("  {r:>8}: {:5.1} %", 100.0 * c as f64 / n as f64);
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = match args.next() {
        Some(a) => a.parse().context("candles must be a number")?,
        None => 1_000_000,
    };
    let csv = args.next();
    let mut cfg = HealingConfig::default();
    if let Some(s) = args.next() {
        cfg.regime.trend_min_sharpe = s.parse().context("trend_min_sharpe must be a number")?;
    }
    let (cfg, warnings) = cfg.validate();
    anyhow::ensure!(warnings.is_empty(), "config clamped: {warnings:?}");
    let input = prices(n)?;
    let fee = Decimal::new(50, 2);
    let base = Decimal::ONE;

    let mut h = MarketHistory::new(&cfg);
    let mut d = RegimeDetector::new(cfg.regime.clone());
    let (mut refits, mut iterations, mut sink) = (0usize, 0usize, Decimal::ZERO);
    let cpu0 = cpu_ns();
    let t0 = Instant::now();
    for &(t, p) in &input {
        h.observe(t, p)?;
        let u = d.update(&h);
        if u.refitted {
            refits += 1;
            iterations += d.last_fit().map_or(0, |f| f.iterations);
        }
        let v = d.view(t);
        let target = profit_target(base, fee, &h)?;
        if v.label.is_ranging() {
            sink += target.pct;
        }
    }
    let wall = t0.elapsed();
    let cpu = cpu0.zip(cpu_ns()).map(|(a, b)| b - a);
    let per = wall.as_nanos() as f64 / n as f64;
    println!(
        "{n} candles in {:.3} s wall: {:.0} candles/s, {per:.0} ns/candle",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64()
    );
    if let Some(c) = cpu {
        println!(
            "cpu {:.3} s: {:.0} candles/s",
            c as f64 / 1e9,
            n as f64 / (c as f64 / 1e9)
        );
    }
    println!(
        "{refits} refits, {:.1} Baum-Welch iterations each on average, {} failed; checksum {sink}",
        iterations as f64 / refits.max(1) as f64,
        d.fit_failures()
    );

    // Where the time goes: each piece alone over the same candles.
    let phase = |name: &str, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        let c0 = cpu_ns();
        let w0 = Instant::now();
        f()?;
        let wall = w0.elapsed().as_nanos() as f64 / n as f64;
        let cpu = cpu0_diff(c0).map_or(f64::NAN, |c| c as f64 / n as f64);
        println!("  {name:<28} {wall:6.0} ns/candle wall, {cpu:6.0} ns/candle cpu");
        Ok(())
    };
    let mut h2 = MarketHistory::new(&cfg);
    phase("MarketHistory::observe", &mut || {
        for &(t, p) in &input {
            h2.observe(t, p)?;
        }
        Ok(())
    })?;
    let mut h3 = MarketHistory::new(&cfg);
    let mut d3 = RegimeDetector::new(cfg.regime.clone());
    phase("observe + update", &mut || {
        for &(t, p) in &input {
            h3.observe(t, p)?;
            d3.update(&h3);
        }
        Ok(())
    })?;
    phase("view", &mut || {
        for &(t, _) in &input {
            sink += Decimal::from(u8::from(d3.view(t).label.is_ranging()));
        }
        Ok(())
    })?;
    phase("profit_target", &mut || {
        for _ in &input {
            sink += profit_target(base, fee, &h3)?.pct;
        }
        Ok(())
    })?;

    // The fit alone, on a full window, cold and warm.
    let window = h.returns_5m().to_vec();
    let t1 = Instant::now();
    let reps = 200;
    let mut cold_iter = 0;
    for _ in 0..reps {
        let f = trader_service::healing::hmm::fit(
            &window,
            &trader_service::healing::hmm::initial_guess(&window),
            cfg.regime.max_iterations,
        )?;
        cold_iter = f.iterations;
    }
    println!(
        "cold fit of {} returns: {:.1} µs ({cold_iter} iterations)",
        window.len(),
        t1.elapsed().as_secs_f64() * 1e6 / f64::from(reps)
    );

    if let Some(path) = csv {
        shares(&cfg, &path)?;
    }
    Ok(())
}
