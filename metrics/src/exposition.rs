//! A parser of the Prometheus text format (0.0.4), strict enough to catch
//! what a scraper would refuse: bad metric or label names, unterminated or
//! badly escaped label values, unparsable numbers, a family typed twice or
//! typed after its samples. Tests scrape a running process and assert on
//! the numbers through [`Scrape`].

use std::collections::{BTreeMap, HashSet};

/// Why a scrape is not valid text format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with `_bucket`, `_sum`, `_count` for histograms).
    pub name: String,
    /// Label names and values, unescaped.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// Samples in exposition order.
    pub samples: Vec<Sample>,
    /// Declared `# TYPE`s by family name.
    pub types: BTreeMap<String, String>,
}

const TYPES: [&str; 5] = ["counter", "gauge", "histogram", "summary", "untyped"];

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

fn number(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The family a sample belongs to (a histogram's series share one).
fn family(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

impl Scrape {
    /// Parses a whole exposition.
    ///
    /// # Errors
    /// [`ParseError`] at the first line a scraper would refuse.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut scrape = Self::default();
        let mut sampled: HashSet<String> = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let err = |message: String| ParseError {
                line: i + 1,
                message,
            };
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.split_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some("TYPE"), Some(name), Some(kind)) => {
                        if !TYPES.contains(&kind) {
                            return Err(err(format!("unknown type `{kind}`")));
                        }
                        if sampled.contains(name) {
                            return Err(err(format!("TYPE of `{name}` after its samples")));
                        }
                        if scrape
                            .types
                            .insert(name.to_owned(), kind.to_owned())
                            .is_some()
                        {
                            return Err(err(format!("`{name}` typed twice")));
                        }
                    }
                    (Some("TYPE" | "HELP"), name, _) if !name.is_some_and(|n| is_name(n, true)) => {
                        return Err(err("HELP/TYPE without a valid metric name".to_owned()));
                    }
                    _ => {}
                }
                continue;
            }
            let sample = parse_sample(line).map_err(err)?;
            let fam = family(&sample.name);
            sampled.insert(if scrape.types.contains_key(fam) {
                fam.to_owned()
            } else {
                sample.name.clone()
            });
            scrape.samples.push(sample);
        }
        Ok(scrape)
    }

    /// The value of the sample named `name` whose labels are exactly
    /// `labels`.
    #[must_use]
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// The sum over every sample named `name` carrying at least `labels`
    /// (0 when there is none).
    #[must_use]
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
            })
            .map(|s| s.value)
            .sum()
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_name(name, true) {
        return Err(format!("bad metric name `{name}`"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(body)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| format!("`{name}` has no value"))?;
    let value = number(value).ok_or_else(|| format!("bad value `{value}` of `{name}`"))?;
    if let Some(ts) = fields.next()
        && ts.parse::<i64>().is_err()
    {
        return Err(format!("bad timestamp `{ts}`"));
    }
    if fields.next().is_some() {
        return Err(format!("trailing text after the sample of `{name}`"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` (the part after `{`); returns the labels and what
/// follows the closing brace.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("label without `=`")?;
        let key = s[..eq].trim();
        if !is_name(key, false) {
            return Err(format!("bad label name `{key}`"));
        }
        s = s[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("label `{key}` value is not quoted"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label `{key}` value is not terminated")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err(format!("bad escape in label `{key}`")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err(format!("label `{key}` given twice"));
        }
        s = s[end + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("labels not separated by `,`".to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: what scrapers refuse is refused, with the line number.
    #[test]
    fn refuses_malformed_lines() {
        for (text, needle) in [
            ("9bad 1\n", "bad metric name"),
            ("x{a=\"1} 1\n", "not terminated"),
            ("x{a=1} 1\n", "not quoted"),
            ("x{a=\"1\" b=\"2\"} 1\n", "separated"),
            ("x one\n", "bad value"),
            ("x\n", "no value"),
            ("# TYPE x counter\n# TYPE x counter\n", "typed twice"),
            ("x 1\n# TYPE x counter\n", "after its samples"),
            ("# TYPE x widget\n", "unknown type"),
        ] {
            let e = Scrape::parse(text).expect_err(text);
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
        let e = Scrape::parse("a 1\nb{} x\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    /// Proves: valid samples, with timestamps, special values and empty
    /// label sets, are read back.
    #[test]
    fn reads_valid_samples() {
        let s = Scrape::parse(
            "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"v\",} 2 1700000000\nb +Inf\nc{} NaN\n",
        )
        .unwrap();
        assert_eq!(s.value("a_total", &[("k", "v")]), Some(2.0));
        assert_eq!(s.value("b", &[]), Some(f64::INFINITY));
        assert!(s.value("c", &[]).unwrap().is_nan());
        assert_eq!(s.sum("a_total", &[]), 2.0);
        assert_eq!(s.types.get("a_total").map(String::as_str), Some("counter"));
    }
}
