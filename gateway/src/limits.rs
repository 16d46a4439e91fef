//! Limits on what a client may send: a request body larger than
//! [`RequestLimits::max_body_bytes`] is refused with `413` (declared or
//! streamed, the body is never buffered past the limit), and a body that
//! does not arrive within [`RequestLimits::client_timeout`] (a slow or
//! stalled client) is refused with `408`. Both answer the gateway's JSON
//! error shape and reach no handler, so nothing is acted on. Headers that
//! do not arrive within the same time close the connection (the server's
//! accept loop, [`crate::serve`]).
//!
//! The bodies the API takes are small action requests (a reason, a hold
//! window), so the default limit is 64 KiB.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::ApiError;

/// Body size and arrival limits of every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest body accepted, bytes.
    pub max_body_bytes: usize,
    /// Longest a client may take to send its headers, and then its body.
    pub client_timeout: Duration,
}

impl RequestLimits {
    /// Default [`Self::max_body_bytes`]: 64 KiB.
    pub const MAX_BODY_BYTES: usize = 64 * 1024;
    /// Default [`Self::client_timeout`]: 10 s.
    pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: Self::MAX_BODY_BYTES,
            client_timeout: Self::CLIENT_TIMEOUT,
        }
    }
}

/// Reads the whole body within the limits, then hands the request on.
pub async fn guard(State(limits): State<RequestLimits>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the request body is larger than {} bytes",
            limits.max_body_bytes
        ))
        .into_response()
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return too_large();
    }
    let read = Limited::new(body, limits.max_body_bytes).collect();
    let bytes = match tokio::time::timeout(limits.client_timeout, read).await {
        Err(_) => {
            tracing::warn!(path = %parts.uri.path(), timeout_ms = limits.client_timeout.as_millis(),
                "request body too slow: refused");
            return ApiError::RequestTimeout(format!(
                "the request body did not arrive within {} ms",
                limits.client_timeout.as_millis()
            ))
            .into_response();
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        // The client broke the body off.
        Ok(Err(e)) => {
            return ApiError::BadRequest(format!("the request body could not be read: {e}"))
                .into_response();
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
