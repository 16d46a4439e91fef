//! The price axis of the server-drawn charts: a price range mapped onto
//! pixel rows, and its bound labels. Pure; f64 because these are pixel
//! coordinates, never amounts.

use std::fmt::Write as _;

/// A price range mapped onto the pixel rows `top..bottom` (higher prices
/// higher up).
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    lo: f64,
    hi: f64,
    top: f64,
    bottom: f64,
}

impl Axis {
    /// Spans `values` plus `margin` (a fraction of the range) on each side;
    /// `None` without a finite value. A flat range is widened around its
    /// value first, so a price that never moves still maps onto the middle
    /// row instead of dividing by zero.
    pub fn spanning(
        values: impl IntoIterator<Item = f64>,
        margin: f64,
        top: f64,
        bottom: f64,
    ) -> Option<Self> {
        let (lo, hi) = values
            .into_iter()
            .filter(|v| v.is_finite())
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo > hi {
            return None;
        }
        let (lo, hi) = if hi - lo > f64::EPSILON * hi.abs().max(1.0) {
            (lo, hi)
        } else {
            let half = hi.abs().max(1e-9) * 0.01;
            (lo - half, hi + half)
        };
        let span = hi - lo;
        Some(Self {
            lo: lo - span * margin,
            hi: hi + span * margin,
            top,
            bottom,
        })
    }

    /// The pixel row of price `v`.
    #[must_use]
    pub fn y(&self, v: f64) -> f64 {
        self.top + (self.hi - v) / (self.hi - self.lo) * (self.bottom - self.top)
    }

    /// `v` as a label: enough decimals to tell the bounds apart, and no
    /// more (0.1012 for a cent-priced coin, 61234 for a bitcoin).
    #[must_use]
    pub fn label(&self, v: f64) -> String {
        let digits = (2.0 - (self.hi - self.lo).log10().floor()).clamp(0.0, 8.0);
        format!("{v:.*}", digits as usize)
    }

    /// Writes the top and bottom bounds as SVG text at column `x`.
    pub fn bounds(&self, svg: &mut String, x: f64) {
        let _ = write!(
            svg,
            r#"<text class="axis" x="{x}" y="{ty:.1}">{hi}</text><text class="axis" x="{x}" y="{by:.1}">{lo}</text>"#,
            ty = self.top + 6.0,
            by = self.bottom + 4.0,
            hi = self.label(self.hi),
            lo = self.label(self.lo),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: the range covers every value with its margin; a flat or
    /// zero range maps onto the middle row, never NaN; no value is no axis.
    #[test]
    fn spans_values_and_survives_flat_ranges() {
        let a = Axis::spanning([0.08, 0.1, 0.086], 0.1, 0.0, 100.0).expect("axis");
        assert!(a.y(0.1) > 0.0 && a.y(0.08) < 100.0 && a.y(0.1) < a.y(0.08));
        for flat in [0.09, 0.0, 61_234.0] {
            let a = Axis::spanning([flat, flat], 0.0, 0.0, 100.0).expect("axis");
            assert!((a.y(flat) - 50.0).abs() < 1e-6, "{flat}: {}", a.y(flat));
        }
        assert!(Axis::spanning([], 0.1, 0.0, 1.0).is_none());
        assert!(Axis::spanning([f64::NAN], 0.1, 0.0, 1.0).is_none());
    }

    /// Proves: labels carry enough decimals to tell the bounds apart.
    #[test]
    fn labels_read_well() {
        let a = Axis::spanning([0.0895, 0.1012], 0.0, 0.0, 1.0).expect("axis");
        assert_eq!(a.label(0.1012), "0.1012");
        let a = Axis::spanning([60_000.0, 61_234.0], 0.0, 0.0, 1.0).expect("axis");
        assert_eq!(a.label(61_234.0), "61234");
    }
}
