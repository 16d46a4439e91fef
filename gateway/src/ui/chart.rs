//! SVG charts drawn on the server: the market price history against every
//! open exit level, and a position's exit price steps. Pure: data in, SVG
//! text out. Decimals become f64 only here, for pixel coordinates; price
//! labels show the decimal strings the backend sent, and only the axis
//! bounds are computed.

use std::fmt::Write as _;

use rust_decimal::prelude::ToPrimitive as _;

use super::axis::Axis;
use crate::view::decimal;
use crate::view::operator::Candle;
use crate::view::status::OpenPosition;

/// Width of every chart's viewBox.
const W: f64 = 1000.0;
/// Height of the price chart's viewBox.
const H: f64 = 260.0;
/// Inner margin of the plot.
const PAD: f64 = 8.0;
/// Column at the right for the price labels.
const LABEL_W: f64 = 84.0;
/// Strip under the price plot for the time labels.
const TIME_H: f64 = 18.0;
/// Right edge of the plot (the label column follows).
const RIGHT: f64 = W - LABEL_W;

/// A decimal string as a pixel-space number.
fn f(s: &str) -> Option<f64> {
    decimal(s).and_then(|d| d.to_f64())
}

/// What [`price`] drew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceChart {
    /// The SVG element.
    pub svg: String,
    /// `true` when it shows the price history; `false` for the levels-only
    /// fallback (no candle with a usable price).
    pub history: bool,
}

/// One candle in pixel-space numbers.
struct Bar {
    start: i64,
    low: f64,
    high: f64,
    close: f64,
}

/// The candles whose close is a number; an unreadable high or low falls
/// back to the close, so one bad field never hides the bar.
fn bars(candles: &[Candle]) -> Vec<Bar> {
    candles
        .iter()
        .filter_map(|c| {
            let close = f(&c.close)?;
            Some(Bar {
                start: c.start,
                low: f(&c.low).unwrap_or(close).min(close),
                high: f(&c.high).unwrap_or(close).max(close),
                close,
            })
        })
        .collect()
}

/// Bar start as `HH:MM` UTC, with the day (`MM-DD HH:MM`) when the chart
/// spans most of a day or more: a day of bars from 03:35 to 03:30 must not
/// read as time running backwards.
fn time_label(unix: i64, with_day: bool) -> String {
    let fmt = if with_day { "%m-%d %H:%M" } else { "%H:%M" };
    chrono::DateTime::from_timestamp(unix, 0)
        .map_or_else(|| unix.to_string(), |t| t.format(fmt).to_string())
}

/// Charts spanning at least this long label their ends with the day.
const DAY_LABEL_SPAN_SEC: i64 = 12 * 3_600;

/// The price chart: the market price history (each candle's close, oldest
/// first) as a line over time above each candle's low-high range, every
/// open exit as a horizontal line coloured by its band, and the current
/// market price marked at the right edge, all on one price axis that
/// covers them all. Without a usable candle it falls back to the levels:
/// the market as a horizontal line among the exits. `None` when there is
/// nothing to draw.
#[must_use]
pub fn price(
    market: Option<&str>,
    positions: &[OpenPosition],
    candles: &[Candle],
) -> Option<PriceChart> {
    let market = market.and_then(|m| Some((f(m)?, m)));
    let exits: Vec<(f64, &OpenPosition)> = positions
        .iter()
        .filter_map(|p| Some((f(&p.exit_price)?, p)))
        .collect();
    let bars = bars(candles);
    let axis = Axis::spanning(
        market
            .iter()
            .map(|m| m.0)
            .chain(exits.iter().map(|e| e.0))
            .chain(bars.iter().flat_map(|b| [b.low, b.high])),
        0.08,
        PAD,
        H - TIME_H - PAD,
    )?;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="market price history and open exit levels">"#
    );
    let history = !bars.is_empty();
    if history {
        history_range(&mut svg, &axis, &bars);
    }
    for (level, p) in &exits {
        let _ = write!(
            svg,
            r#"<line class="exit {band}" x1="{PAD}" x2="{RIGHT}" y1="{y:.1}" y2="{y:.1}"><title>slot {slot} {trade} exit {price} ({band})</title></line>"#,
            band = p.band.as_str(),
            y = axis.y(*level),
            slot = p.slot_id,
            trade = p.trade.to_uppercase(),
            price = p.exit_price,
        );
    }
    if history {
        history_line(&mut svg, &axis, &bars);
    }
    if let Some((level, text)) = market {
        let y = axis.y(level);
        if history {
            let _ = write!(
                svg,
                r#"<circle class="market-now" cx="{RIGHT}" cy="{y:.1}" r="4"><title>market {text}</title></circle>"#
            );
        } else {
            let _ = write!(
                svg,
                r#"<line class="market" x1="{PAD}" x2="{RIGHT}" y1="{y:.1}" y2="{y:.1}"/>"#
            );
        }
        let _ = write!(
            svg,
            r#"<text class="market-label" x="{tx}" y="{ty:.1}">market {text}</text>"#,
            tx = RIGHT + 4.0,
            ty = y + 4.0,
        );
    }
    axis.bounds(&mut svg, RIGHT + 4.0);
    svg.push_str("</svg>");
    Some(PriceChart { svg, history })
}

/// The pixel column of each bar: proportional to its start time, so a gap
/// in the history shows as one; a single bar sits at the right edge.
fn columns(bars: &[Bar]) -> impl Iterator<Item = f64> + '_ {
    let t0 = bars.first().map_or(0, |b| b.start);
    let t1 = bars.last().map_or(0, |b| b.start);
    bars.iter().map(move |b| {
        if t1 > t0 {
            PAD + (b.start - t0) as f64 / (t1 - t0) as f64 * (RIGHT - PAD)
        } else {
            RIGHT
        }
    })
}

/// Each bar's low-high range as a thin vertical stroke, under everything
/// else: how far the price moved within the bar around the close line.
fn history_range(svg: &mut String, axis: &Axis, bars: &[Bar]) {
    let mut d = String::new();
    for (x, b) in columns(bars).zip(bars) {
        let _ = write!(
            d,
            "M{x:.1},{:.1} L{x:.1},{:.1} ",
            axis.y(b.high),
            axis.y(b.low)
        );
    }
    let _ = write!(svg, r#"<path class="range" d="{}"/>"#, d.trim_end());
}

/// The close of every bar as one line, with the time of the first and last
/// bar under it.
fn history_line(svg: &mut String, axis: &Axis, bars: &[Bar]) {
    let mut d = String::new();
    for (i, (x, b)) in columns(bars).zip(bars).enumerate() {
        let cmd = if i == 0 { 'M' } else { 'L' };
        let _ = write!(d, "{cmd}{x:.1},{:.1} ", axis.y(b.close));
    }
    let _ = write!(
        svg,
        r#"<path class="market" d="{}"><title>market price, {} bars</title></path>"#,
        d.trim_end(),
        bars.len(),
    );
    if let (Some(first), Some(last)) = (bars.first(), bars.last()) {
        let _ = write!(
            svg,
            r#"<text class="axis" x="{PAD}" y="{ty}">{} UTC</text><text class="axis" x="{RIGHT}" y="{ty}" text-anchor="end">{} UTC</text>"#,
            time_label(first.start, last.start - first.start >= DAY_LABEL_SPAN_SEC),
            time_label(last.start, last.start - first.start >= DAY_LABEL_SPAN_SEC),
            ty = H - 5.0,
        );
    }
}

/// A step line through `prices` (oldest first). `None` with fewer than one
/// number.
#[must_use]
pub fn steps(prices: &[String]) -> Option<String> {
    let v: Vec<f64> = prices.iter().filter_map(|p| f(p)).collect();
    let h = 140.0;
    let axis = Axis::spanning(v.iter().copied(), 0.1, PAD, h - PAD)?;
    let dx = (RIGHT - 2.0 * PAD) / v.len() as f64;
    let mut path = String::new();
    for (i, p) in v.iter().enumerate() {
        let x0 = PAD + dx * i as f64;
        let cmd = if i == 0 { 'M' } else { 'L' };
        let y = axis.y(*p);
        let _ = write!(path, "{cmd}{x0:.1},{y:.1} L{:.1},{y:.1} ", x0 + dx);
    }
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-label="exit price history"><path class="steps" d="{}"/>"#,
        path.trim_end()
    );
    axis.bounds(&mut svg, RIGHT + 4.0);
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::status::Band;

    fn candle(start: i64, low: &str, high: &str, close: &str) -> Candle {
        Candle {
            start,
            open: close.into(),
            high: high.into(),
            low: low.into(),
            close: close.into(),
            samples: 1,
        }
    }

    fn exit(price: &str, band: Band) -> OpenPosition {
        OpenPosition {
            slot_id: 3,
            trade: "b".into(),
            cycle: 1,
            exit_order_id: "x".into(),
            position_id: Some("7".into()),
            entry_price: "0.1".into(),
            exit_price: price.into(),
            volume: "100".into(),
            band,
            slot_mode: crate::view::status::SlotMode::Sticky,
            age_seconds: 60,
            distance_pct: "1".into(),
            effective_age_seconds: "60".into(),
            opportunity_cost: "0".into(),
        }
    }

    /// The value of attribute `name` of the first element opening with
    /// `open` (e.g. `<path class="market"`).
    fn attr<'a>(svg: &'a str, open: &str, name: &str) -> &'a str {
        let at = svg
            .find(open)
            .unwrap_or_else(|| panic!("no {open} in {svg}"));
        let rest = &svg[at..];
        let key = format!(r#" {name}=""#);
        let start = rest.find(&key).expect("attribute") + key.len();
        &rest[start..start + rest[start..].find('"').expect("closing quote")]
    }

    /// The `(x, y)` points of a path's `d`.
    fn points(d: &str) -> Vec<(f64, f64)> {
        d.split_whitespace()
            .map(|c| {
                let (x, y) = c[1..].split_once(',').expect("x,y");
                (x.parse().expect("x"), y.parse().expect("y"))
            })
            .collect()
    }

    fn y_of(svg: &str, open: &str) -> f64 {
        attr(svg, open, "y1").parse().expect("y1")
    }

    /// Proves: a candle series becomes one market path with one point per
    /// candle, in time order, inside the plot of the viewBox.
    #[test]
    fn candles_give_one_point_each_inside_the_view() {
        let candles: Vec<Candle> = (0..12)
            .map(|i| {
                let p = format!("0.{:03}", 90 + i);
                candle(1_700_000_000 + 300 * i, &p, &p, &p)
            })
            .collect();
        let c = price(Some("0.101"), &[], &candles).expect("drawn");
        assert!(c.history);
        let pts = points(attr(&c.svg, r#"<path class="market""#, "d"));
        assert_eq!(pts.len(), candles.len());
        for (x, y) in &pts {
            assert!(
                (0.0..=RIGHT).contains(x) && (0.0..=H - TIME_H).contains(y),
                "{x},{y}"
            );
        }
        assert!(
            pts.windows(2).all(|w| w[0].0 < w[1].0),
            "time runs left to right"
        );
        assert!(pts[0].1 > pts[11].1, "a rising price rises on screen");
        assert!(c.svg.contains(r#"<circle class="market-now""#));
        assert!(c.svg.contains("market 0.101"));
    }

    /// Proves: the price axis covers the candles (their lows and highs) and
    /// every exit, whichever lies further out.
    #[test]
    fn axis_covers_candles_and_exits() {
        let candles = [
            candle(0, "0.09", "0.1", "0.095"),
            candle(300, "0.08", "0.092", "0.085"),
        ];
        let positions = [exit("0.12", Band::Fresh), exit("0.07", Band::WriteOff)];
        let c = price(Some("0.085"), &positions, &candles).expect("drawn");
        let (top, bottom) = (PAD, H - TIME_H - PAD);
        let high = y_of(&c.svg, r#"<line class="exit fresh""#);
        let low = y_of(&c.svg, r#"<line class="exit write_off""#);
        assert!(top <= high && high < low && low <= bottom, "{high} {low}");
        for (_, y) in points(attr(&c.svg, r#"<path class="range""#, "d")) {
            assert!(high < y && y < low, "candle {y} between the exits");
        }
        // And the other way round: candles further out than the exits.
        let positions = [exit("0.086", Band::Stale)];
        let c = price(None, &positions, &candles).expect("drawn");
        for (_, y) in points(attr(&c.svg, r#"<path class="range""#, "d")) {
            assert!((top..=bottom).contains(&y), "{y}");
        }
    }

    /// Proves: without a usable candle the chart falls back to the levels
    /// (market and exits as horizontal lines) and says it has no history;
    /// with nothing at all there is no chart.
    #[test]
    fn no_candles_fall_back_to_levels() {
        let positions = [exit("0.11", Band::Stuck)];
        for candles in [vec![], vec![candle(0, "x", "y", "not a price")]] {
            let c = price(Some("0.1"), &positions, &candles).expect("drawn");
            assert!(!c.history);
            assert!(c.svg.contains(r#"<line class="market""#) && !c.svg.contains("<path"));
            assert!(c.svg.contains(r#"<line class="exit stuck""#) && c.svg.contains("market 0.1"));
        }
        assert!(price(None, &[], &[]).is_none());
        assert!(price(Some("junk"), &[], &[]).is_none());
    }

    /// Proves: a flat series (and a single candle) maps to finite pixels
    /// inside the plot: no division by zero on the price or the time axis.
    #[test]
    fn flat_series_does_not_divide_by_zero() {
        let flat: Vec<Candle> = (0..5)
            .map(|i| candle(i * 300, "0.09", "0.09", "0.09"))
            .collect();
        for candles in [&flat[..], &flat[..1]] {
            let c = price(Some("0.09"), &[], candles).expect("drawn");
            assert!(
                !c.svg.contains("NaN") && !c.svg.contains("inf"),
                "{}",
                c.svg
            );
            for (x, y) in points(attr(&c.svg, r#"<path class="market""#, "d")) {
                assert!((0.0..=RIGHT).contains(&x) && (PAD..=H - TIME_H - PAD).contains(&y));
            }
        }
        let zero = price(Some("0"), &[], &[candle(0, "0", "0", "0")]).expect("drawn");
        assert!(!zero.svg.contains("NaN"));
    }

    /// Proves: bar times read as UTC clock times, with the day when the
    /// chart spans most of a day (its ends then read forwards).
    #[test]
    fn times_read_as_utc() {
        assert_eq!(time_label(1_700_000_000, false), "22:13");
        assert_eq!(time_label(-60, false), "23:59");
        assert_eq!(time_label(1_700_000_000, true), "11-14 22:13");
        let day = [
            candle(1_700_000_000, "1", "1", "1"),
            candle(1_700_086_100, "1", "1", "1"),
        ];
        let svg = price(Some("1"), &[], &day).expect("drawn").svg;
        assert!(
            svg.contains("11-14 22:13 UTC") && svg.contains("11-15 22:08 UTC"),
            "{svg}"
        );
    }

    /// Proves: an exit price history becomes a step path; nothing is no
    /// chart.
    #[test]
    fn draws_steps() {
        assert!(
            steps(&["0.2".into(), "0.19".into()])
                .unwrap()
                .contains(r#"<path class="steps""#)
        );
        assert!(steps(&[]).is_none());
    }
}
