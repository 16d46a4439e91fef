//! The one gateway error, mapped once to an HTTP status and the JSON shape
//! `{"error": {"code", "message"}}`. gRPC status codes of the backends are
//! translated here and nowhere else.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which backend an RPC went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// trader-service (control API).
    Trader,
    /// ledger-service.
    Ledger,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Trader => "trader",
            Self::Ledger => "ledger",
        })
    }
}

/// Everything a request can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// Malformed input (bad id, bad JSON syntax, bad header).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed input that does not fit (unknown field, wrong type).
    #[error("{0}")]
    Unprocessable(String),
    /// No such resource (or route).
    #[error("{0}")]
    NotFound(String),
    /// Missing or wrong bearer token.
    #[error("a valid `Authorization: Bearer <token>` header is required")]
    Unauthorized,
    /// Actions are disabled on this gateway.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with state (e.g. an idempotency key reused for
    /// another request).
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than the gateway accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request body did not arrive in time (a slow or stalled client).
    #[error("{0}")]
    RequestTimeout(String),
    /// A backend answered with an error status.
    #[error("{backend} {rpc}: {message}")]
    Backend {
        /// Which backend.
        backend: Backend,
        /// Which RPC.
        rpc: &'static str,
        /// Its gRPC code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
    /// A backend did not answer within the deadline.
    #[error("{backend} {rpc}: no answer within {deadline_ms} ms")]
    Deadline {
        /// Which backend.
        backend: Backend,
        /// Which RPC.
        rpc: &'static str,
        /// The deadline.
        deadline_ms: u128,
    },
    /// A backend answered something the gateway cannot show (a missing
    /// required field).
    #[error("{backend} {rpc}: malformed answer: {message}")]
    BadAnswer {
        /// Which backend.
        backend: Backend,
        /// Which RPC.
        rpc: &'static str,
        /// What was wrong.
        message: String,
    },
}

/// The error body of every failed request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Machine-readable code plus a message for humans.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `bad_request`, `unprocessable`, `not_found`,
    /// `unauthorized`, `forbidden`, `conflict`, `payload_too_large`,
    /// `request_timeout`, `not_implemented`,
    /// `unavailable`, `deadline_exceeded`, `bad_gateway`.
    pub code: String,
    /// What went wrong, naming the backend when one is involved.
    pub message: String,
}

/// The one mapping of backend gRPC codes to HTTP.
fn grpc_to_http(code: tonic::Code) -> (StatusCode, &'static str) {
    use tonic::Code;
    match code {
        Code::InvalidArgument | Code::OutOfRange => (StatusCode::BAD_REQUEST, "bad_request"),
        Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => {
            (StatusCode::CONFLICT, "conflict")
        }
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
        Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "not_implemented"),
        _ => (StatusCode::BAD_GATEWAY, "bad_gateway"),
    }
}

impl ApiError {
    /// The HTTP status and the stable code.
    #[must_use]
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::Backend { code, .. } => grpc_to_http(*code),
            Self::Deadline { .. } => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
            Self::BadAnswer { .. } => (StatusCode::BAD_GATEWAY, "bad_gateway"),
        }
    }

    /// The backend this error is about, if any (the dashboard names it).
    #[must_use]
    pub fn backend(&self) -> Option<Backend> {
        match self {
            Self::Backend { backend, .. }
            | Self::Deadline { backend, .. }
            | Self::BadAnswer { backend, .. } => Some(*backend),
            _ => None,
        }
    }

    /// The message shown to clients; a backend that cannot be reached says
    /// so in words.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::Backend {
                backend,
                rpc,
                code: tonic::Code::Unavailable,
                message,
            } => format!("{backend} is unreachable ({rpc}): {message}"),
            other => other.to_string(),
        }
    }

    /// The JSON body.
    #[must_use]
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.status().1.to_owned(),
                message: self.message(),
            },
        }
    }
}

impl ErrorBody {
    /// The same body with another code (for errors the router raises
    /// itself, such as a wrong method).
    #[must_use]
    pub fn with_code(mut self, code: &str) -> Self {
        code.clone_into(&mut self.error.code);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), code, error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), code, error = %self, "request refused");
        }
        (status, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(code: tonic::Code) -> ApiError {
        ApiError::Backend {
            backend: Backend::Trader,
            rpc: "GetStatus",
            code,
            message: "x".into(),
        }
    }

    /// Proves: the gRPC codes the issue names map to their HTTP statuses,
    /// and an unreachable backend is named in the message.
    #[test]
    fn grpc_codes_map_once() {
        use tonic::Code;
        for (code, http) in [
            (Code::InvalidArgument, 400),
            (Code::NotFound, 404),
            (Code::FailedPrecondition, 409),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 502),
        ] {
            assert_eq!(backend(code).status().0.as_u16(), http, "{code:?}");
        }
        assert!(
            backend(Code::Unavailable)
                .message()
                .starts_with("trader is unreachable")
        );
        assert_eq!(backend(Code::Unavailable).backend(), Some(Backend::Trader));
    }
}
