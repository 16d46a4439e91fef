//! SVG charts drawn on the server: the market price against every open
//! exit level, and a position's exit price steps. Decimals become f64
//! only here, for pixel coordinates.

use std::fmt::Write as _;

use crate::view::decimal;
use crate::view::status::{Band, OpenPosition};

const W: f64 = 1000.0;
const H: f64 = 240.0;
const PAD: f64 = 8.0;
const LABEL_W: f64 = 84.0;

fn f(s: &str) -> Option<f64> {
    decimal(s).and_then(|d| d.to_string().parse::<f64>().ok())
}

fn band_class(b: Band) -> &'static str {
    b.as_str()
}

/// Horizontal lines: the market (thick) and each open exit (coloured by
/// band), on one price axis. `None` when there is nothing to draw.
#[must_use]
pub fn levels(market: Option<&str>, positions: &[OpenPosition]) -> Option<String> {
    let market = market.and_then(f);
    let exits: Vec<(f64, &OpenPosition)> = positions
        .iter()
        .filter_map(|p| Some((f(&p.exit_price)?, p)))
        .collect();
    let all = market.iter().copied().chain(exits.iter().map(|e| e.0));
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return None;
    }
    let span = if (hi - lo).abs() < f64::EPSILON {
        hi.abs().max(1e-9) * 0.02
    } else {
        hi - lo
    };
    let (lo, hi) = (lo - span * 0.08, hi + span * 0.08);
    let y = |v: f64| PAD + (hi - v) / (hi - lo) * (H - 2.0 * PAD);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="market price and open exit levels">"#
    );
    for (price, p) in &exits {
        let _ = write!(
            svg,
            r#"<line class="exit {band}" x1="{PAD}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}"><title>slot {slot} {trade} exit {price_s} ({band})</title></line>"#,
            band = band_class(p.band),
            x2 = W - LABEL_W,
            yy = y(*price),
            slot = p.slot_id,
            trade = p.trade.to_uppercase(),
            price_s = p.exit_price,
        );
    }
    if let Some(m) = market {
        let _ = write!(
            svg,
            r#"<line class="market" x1="{PAD}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}"/><text class="market-label" x="{tx}" y="{ty:.1}">market {m}</text>"#,
            x2 = W - LABEL_W,
            yy = y(m),
            tx = W - LABEL_W + 4.0,
            ty = y(m) + 4.0,
        );
    }
    let _ = write!(
        svg,
        r#"<text class="axis" x="{tx}" y="14">{hi:.6}</text><text class="axis" x="{tx}" y="{by}">{lo:.6}</text></svg>"#,
        tx = W - LABEL_W + 4.0,
        by = H - 4.0,
    );
    Some(svg)
}

/// A step line through `prices` (oldest first). `None` with fewer than one
/// number.
#[must_use]
pub fn steps(prices: &[String]) -> Option<String> {
    let v: Vec<f64> = prices.iter().filter_map(|p| f(p)).collect();
    if v.is_empty() {
        return None;
    }
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    let span = if (hi - lo).abs() < f64::EPSILON {
        hi.abs().max(1e-9) * 0.02
    } else {
        hi - lo
    };
    let (lo, hi) = (lo - span * 0.1, hi + span * 0.1);
    let h = 140.0;
    let y = |x: f64| PAD + (hi - x) / (hi - lo) * (h - 2.0 * PAD);
    let dx = (W - LABEL_W - 2.0 * PAD) / v.len() as f64;
    let mut path = String::new();
    for (i, p) in v.iter().enumerate() {
        let x0 = PAD + dx * i as f64;
        let cmd = if i == 0 { 'M' } else { 'L' };
        let _ = write!(
            path,
            "{cmd}{x0:.1},{:.1} L{:.1},{:.1} ",
            y(*p),
            x0 + dx,
            y(*p)
        );
    }
    Some(format!(
        r#"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-label="exit price history"><path class="steps" d="{path}"/><text class="axis" x="{tx}" y="14">{hi:.6}</text><text class="axis" x="{tx}" y="{by}">{lo:.6}</text></svg>"#,
        tx = W - LABEL_W + 4.0,
        by = h - 4.0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: nothing to draw is `None`; market and exits become lines.
    #[test]
    fn draws_levels_and_steps() {
        assert!(levels(None, &[]).is_none());
        let svg = levels(Some("0.1"), &[]).unwrap();
        assert!(svg.contains("market 0.1"));
        assert!(
            steps(&["0.2".into(), "0.19".into()])
                .unwrap()
                .contains("<path")
        );
        assert!(steps(&[]).is_none());
    }
}
