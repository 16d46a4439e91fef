//! A tower layer for tonic servers: counts every call by method and gRPC
//! status code and records its latency, up to the end of the response
//! (the status of a successful call travels in the trailers, so the
//! response body is watched until they pass).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use crate::{Counter, Histogram, LATENCY_BUCKETS, Registry};

/// Call counts and latencies of one gRPC server.
#[derive(Debug)]
pub struct RpcMetrics {
    calls: Arc<Counter>,
    latency: Arc<Histogram>,
}

impl RpcMetrics {
    /// Registers `{prefix}_grpc_requests_total` and
    /// `{prefix}_grpc_request_duration_seconds` (labels `method`, `code`).
    pub fn register(registry: &Registry, prefix: &str) -> Arc<Self> {
        Arc::new(Self {
            calls: registry.register(Counter::new(
                format!("{prefix}_grpc_requests_total"),
                "gRPC calls by method and status code.",
                &["method", "code"],
            )),
            latency: registry.register(Histogram::new(
                format!("{prefix}_grpc_request_duration_seconds"),
                "gRPC call latency, to the end of the response, by method and status code.",
                &["method", "code"],
                LATENCY_BUCKETS,
            )),
        })
    }

    fn observe(&self, path: &str, code: tonic::Code, started: Instant) {
        // A path no service knows answers UNIMPLEMENTED; pooling those keeps
        // a client probing random paths from growing the label set.
        let method = if code == tonic::Code::Unimplemented {
            "unknown"
        } else {
            path
        };
        let code = format!("{code:?}");
        let labels = [method, code.as_str()];
        self.calls.inc(&labels);
        self.latency
            .observe(&labels, started.elapsed().as_secs_f64());
    }
}

/// The layer: `Server::builder().layer(RpcMetricsLayer::new(metrics))`.
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    metrics: Arc<RpcMetrics>,
}

impl RpcMetricsLayer {
    /// A layer recording into `metrics`.
    #[must_use]
    pub fn new(metrics: Arc<RpcMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`RpcMetricsLayer`] wraps around a server's routes.
#[derive(Debug, Clone)]
pub struct RpcMetricsService<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RpcMetricsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body + Unpin,
{
    type Response = Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let pending = Pending {
            metrics: self.metrics.clone(),
            path: request.uri().path().to_owned(),
            started: Instant::now(),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let (parts, body) = response.await?.into_parts();
            let mut body = ObservedBody {
                inner: body,
                pending: Some(pending),
            };
            // A refusal is "trailers-only": its status is in the headers.
            if let Some(code) = status_in(&parts.headers) {
                body.finish(code);
            }
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// A call not yet recorded.
#[derive(Debug)]
struct Pending {
    metrics: Arc<RpcMetrics>,
    path: String,
    started: Instant,
}

fn status_in(headers: &HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .map(|v| tonic::Code::from_bytes(v.as_bytes()))
}

/// A response body that records its call once the status is known: in
/// the trailers, at an end without them (`Unknown`), or when the client
/// goes away first (`Cancelled`).
#[derive(Debug)]
pub struct ObservedBody<B> {
    inner: B,
    pending: Option<Pending>,
}

impl<B> ObservedBody<B> {
    fn finish(&mut self, code: tonic::Code) {
        if let Some(p) = self.pending.take() {
            p.metrics.observe(&p.path, code, p.started);
        }
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled);
    }
}

impl<B: Body + Unpin> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_in) {
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(_)) | None) => self.finish(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
