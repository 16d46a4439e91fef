//! HTTP request metrics in Prometheus text format: counts and latency
//! histograms by route template, method and status. Hand-written (a
//! mutex-guarded map) because the gateway needs only these two series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default, Clone)]
struct Series {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Request counts and latencies since start.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut map = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = map
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default();
        s.count += 1;
        s.sum_seconds += seconds;
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                s.buckets[i] += 1;
            }
        }
    }

    /// Prometheus text exposition (version 0.0.4).
    #[must_use]
    pub fn render(&self) -> String {
        let map = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut out = String::new();
        out.push_str(
            "# HELP gateway_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE gateway_http_requests_total counter\n");
        for ((route, method, status), s) in &map {
            let _ = writeln!(
                out,
                "gateway_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        out.push_str("# HELP gateway_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE gateway_http_request_duration_seconds histogram\n");
        for ((route, method, status), s) in &map {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "gateway_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "gateway_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "gateway_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_seconds
            );
            let _ = writeln!(
                out,
                "gateway_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out
    }
}

/// Middleware recording every request under its route template (never the
/// raw path, so ids do not explode the label set).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe(
        &route,
        &method,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: counts and cumulative buckets come out in Prometheus form.
    #[test]
    fn renders_counts_and_buckets() {
        let m = Metrics::default();
        m.observe("/api/v1/status", "GET", 200, 0.002);
        m.observe("/api/v1/status", "GET", 200, 0.2);
        let text = m.render();
        assert!(text.contains(
            "gateway_http_requests_total{route=\"/api/v1/status\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains("status=\"200\",le=\"0.0025\"} 1"));
        assert!(text.contains("status=\"200\",le=\"0.25\"} 2"));
        assert!(text.contains("status=\"200\",le=\"+Inf\"} 2"));
    }
}
