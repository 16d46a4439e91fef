//! HTTP request metrics in Prometheus text format: counts and latency
//! histograms by route template, method and status, on the families the
//! ledger and trader expose too ([`healgrid_metrics`]).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use healgrid_metrics::{Counter, Histogram, LATENCY_BUCKETS, Registry};

/// Request counts and latencies since start.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Arc<Counter>,
    latency: Arc<Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::default();
        let labels = &["route", "method", "status"];
        let requests = registry.register(Counter::new(
            "gateway_http_requests_total",
            "HTTP requests by route, method and status.",
            labels,
        ));
        let latency = registry.register(Histogram::new(
            "gateway_http_request_duration_seconds",
            "HTTP request latency.",
            labels,
            LATENCY_BUCKETS,
        ));
        Self {
            registry,
            requests,
            latency,
        }
    }
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [route, method, status.as_str()];
        self.requests.inc(&labels);
        self.latency.observe(&labels, seconds);
    }

    /// Prometheus text exposition (version 0.0.4).
    #[must_use]
    pub fn render(&self) -> String {
        self.registry.render()
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
