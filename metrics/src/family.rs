//! Metric families (a name, a help text, label names, and one series per
//! combination of label values) and the [`Registry`] rendering them.
//!
//! Series live in a mutex-guarded ordered map: an update is one short
//! lock, and the exposition comes out sorted, so scrapes are stable.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Upper bounds, in seconds, of the latency buckets every service uses,
/// from half a millisecond (a cached read) to 2.5 s (past any deadline).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Something a [`Registry`] can render.
pub trait Render: Send + Sync {
    /// Appends this family (HELP, TYPE and every series) to `out`.
    fn render(&self, out: &mut String);
}

/// What every family carries besides its values.
#[derive(Debug)]
struct Meta {
    name: String,
    help: String,
    labels: Vec<&'static str>,
}

impl Meta {
    fn new(name: impl Into<String>, help: &str, labels: &[&'static str]) -> Self {
        Self {
            name: name.into(),
            help: help.replace('\\', "\\\\").replace('\n', "\\n"),
            labels: labels.to_vec(),
        }
    }

    fn key(&self, values: &[&str]) -> Vec<String> {
        debug_assert_eq!(
            values.len(),
            self.labels.len(),
            "metric {} takes labels {:?}",
            self.name,
            self.labels
        );
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    fn header(&self, out: &mut String, kind: &str) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
    }

    /// `{a="x",b="y"}` (with `extra` appended, e.g. a bucket's `le`), or
    /// nothing when there are no labels at all.
    fn labels(&self, values: &[String], extra: Option<(&str, &str)>) -> String {
        let mut pairs: Vec<String> = self
            .labels
            .iter()
            .zip(values)
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        if let Some((k, v)) = extra {
            pairs.push(format!("{k}=\"{v}\""));
        }
        if pairs.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", pairs.join(","))
        }
    }
}

/// Escapes a label value as the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value in the text format's spelling (`+Inf`, `NaN`).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Series of a family; a family without labels starts with its one series
/// at zero, so it is exposed before anything happened.
fn series<V: Default>(labels: &[&'static str]) -> Mutex<BTreeMap<Vec<String>, V>> {
    let mut map = BTreeMap::new();
    if labels.is_empty() {
        map.insert(Vec::new(), V::default());
    }
    Mutex::new(map)
}

/// A monotonic count per label combination.
#[derive(Debug)]
pub struct Counter {
    meta: Meta,
    series: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl Counter {
    /// A counter named `name` (conventionally ending in `_total`).
    #[must_use]
    pub fn new(name: impl Into<String>, help: &str, labels: &[&'static str]) -> Self {
        Self {
            meta: Meta::new(name, help, labels),
            series: series(labels),
        }
    }

    /// Adds one to the series of `values` (one per label, in order).
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    /// Adds `n` to the series of `values`.
    pub fn add(&self, values: &[&str], n: u64) {
        let key = self.meta.key(values);
        *lock(&self.series).entry(key).or_default() += n;
    }

    /// Mirrors a running total kept elsewhere (e.g. a runtime's own
    /// counters): the series takes `total` unless it is already higher, so
    /// the counter never goes backwards.
    pub fn set_total(&self, values: &[&str], total: u64) {
        let key = self.meta.key(values);
        let mut map = lock(&self.series);
        let v = map.entry(key).or_default();
        *v = (*v).max(total);
    }

    /// The current value of the series of `values` (0 when never touched).
    #[must_use]
    pub fn get(&self, values: &[&str]) -> u64 {
        let key = self.meta.key(values);
        lock(&self.series).get(&key).copied().unwrap_or(0)
    }
}

impl Render for Counter {
    fn render(&self, out: &mut String) {
        self.meta.header(out, "counter");
        for (values, v) in lock(&self.series).iter() {
            let _ = writeln!(
                out,
                "{}{} {v}",
                self.meta.name,
                self.meta.labels(values, None)
            );
        }
    }
}

/// A value that goes up and down, per label combination.
#[derive(Debug)]
pub struct Gauge {
    meta: Meta,
    series: Mutex<BTreeMap<Vec<String>, f64>>,
}

impl Gauge {
    /// A gauge named `name`.
    #[must_use]
    pub fn new(name: impl Into<String>, help: &str, labels: &[&'static str]) -> Self {
        Self {
            meta: Meta::new(name, help, labels),
            series: series(labels),
        }
    }

    /// Sets the series of `values` to `v`.
    pub fn set(&self, values: &[&str], v: f64) {
        let key = self.meta.key(values);
        lock(&self.series).insert(key, v);
    }
}

impl Render for Gauge {
    fn render(&self, out: &mut String) {
        self.meta.header(out, "gauge");
        for (values, v) in lock(&self.series).iter() {
            let _ = writeln!(
                out,
                "{}{} {}",
                self.meta.name,
                self.meta.labels(values, None),
                number(*v)
            );
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Buckets {
    count: u64,
    sum: f64,
    /// Observations at or below each bound (cumulative, as exposed).
    le: Vec<u64>,
}

/// Observations (latencies, durations) counted into cumulative buckets.
#[derive(Debug)]
pub struct Histogram {
    meta: Meta,
    bounds: &'static [f64],
    series: Mutex<BTreeMap<Vec<String>, Buckets>>,
}

impl Histogram {
    /// A histogram named `name` with bucket upper bounds `bounds`
    /// (ascending; `+Inf` is implied).
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        help: &str,
        labels: &[&'static str],
        bounds: &'static [f64],
    ) -> Self {
        Self {
            meta: Meta::new(name, help, labels),
            bounds,
            series: series(labels),
        }
    }

    /// Records one observation `v` in the series of `values`.
    pub fn observe(&self, values: &[&str], v: f64) {
        let key = self.meta.key(values);
        let mut map = lock(&self.series);
        let b = map.entry(key).or_default();
        if b.le.len() != self.bounds.len() {
            b.le = vec![0; self.bounds.len()];
        }
        b.count += 1;
        b.sum += v;
        for (n, bound) in b.le.iter_mut().zip(self.bounds) {
            if v <= *bound {
                *n += 1;
            }
        }
    }
}

impl Render for Histogram {
    fn render(&self, out: &mut String) {
        self.meta.header(out, "histogram");
        let name = &self.meta.name;
        for (values, b) in lock(&self.series).iter() {
            for (i, bound) in self.bounds.iter().enumerate() {
                let labels = self.meta.labels(values, Some(("le", &number(*bound))));
                let n = b.le.get(i).copied().unwrap_or(0);
                let _ = writeln!(out, "{name}_bucket{labels} {n}");
            }
            let labels = self.meta.labels(values, Some(("le", "+Inf")));
            let _ = writeln!(out, "{name}_bucket{labels} {}", b.count);
            let labels = self.meta.labels(values, None);
            let _ = writeln!(out, "{name}_sum{labels} {}", number(b.sum));
            let _ = writeln!(out, "{name}_count{labels} {}", b.count);
        }
    }
}

/// The families one process exposes, rendered in registration order.
#[derive(Default)]
pub struct Registry {
    families: Mutex<Vec<Arc<dyn Render>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("families", &lock(&self.families).len())
            .finish()
    }
}

impl Registry {
    /// Adds `family` and hands it back shared, for the code that updates it.
    pub fn register<F: Render + 'static>(&self, family: F) -> Arc<F> {
        let family = Arc::new(family);
        lock(&self.families).push(family.clone());
        family
    }

    /// The text exposition of every family.
    #[must_use]
    pub fn render(&self) -> String {
        let families = lock(&self.families).clone();
        let mut out = String::new();
        for f in families {
            f.render(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scrape;

    /// Proves: counts and cumulative buckets come out in Prometheus form,
    /// and the output parses back to the same numbers.
    #[test]
    fn renders_counters_gauges_and_cumulative_buckets() {
        let r = Registry::default();
        let c = r.register(Counter::new("x_total", "X.", &["kind"]));
        let g = r.register(Gauge::new("depth", "Depth.", &[]));
        let h = r.register(Histogram::new("lat_seconds", "L.", &["m"], LATENCY_BUCKETS));
        c.inc(&["a"]);
        c.add(&["b"], 3);
        g.set(&[], 7.0);
        h.observe(&["get"], 0.002);
        h.observe(&["get"], 0.2);
        let text = r.render();
        assert!(text.contains("x_total{kind=\"b\"} 3\n"), "{text}");
        assert!(text.contains("depth 7\n"), "{text}");
        assert!(text.contains("lat_seconds_bucket{m=\"get\",le=\"0.0025\"} 1\n"));
        assert!(text.contains("lat_seconds_bucket{m=\"get\",le=\"0.25\"} 2\n"));
        assert!(text.contains("lat_seconds_bucket{m=\"get\",le=\"+Inf\"} 2\n"));
        let s = Scrape::parse(&text).expect("parses");
        assert_eq!(s.value("x_total", &[("kind", "a")]), Some(1.0));
        assert_eq!(s.value("lat_seconds_count", &[("m", "get")]), Some(2.0));
    }

    /// Proves: a label-less family is exposed at zero before any update,
    /// and label values with quotes and backslashes are escaped.
    #[test]
    fn exposes_zero_and_escapes_label_values() {
        let r = Registry::default();
        let c = r.register(Counter::new("refused_total", "R.", &[]));
        let e = r.register(Counter::new("odd_total", "O.", &["v"]));
        assert!(r.render().contains("refused_total 0\n"));
        c.inc(&[]);
        e.inc(&["a\"b\\c"]);
        let text = r.render();
        assert!(text.contains("refused_total 1\n"));
        assert!(text.contains("odd_total{v=\"a\\\"b\\\\c\"} 1\n"), "{text}");
        let s = Scrape::parse(&text).expect("parses");
        assert_eq!(s.value("odd_total", &[("v", "a\"b\\c")]), Some(1.0));
    }

    /// Proves: a mirrored total never moves a counter backwards.
    #[test]
    fn set_total_never_goes_back() {
        let c = Counter::new("loops_total", "L.", &[]);
        c.set_total(&[], 5);
        c.set_total(&[], 3);
        assert_eq!(c.get(&[]), 5);
    }
}
