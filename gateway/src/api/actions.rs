//! Operator actions (`POST`). Each needs the bearer token (see
//! [`crate::auth`]) and an `Idempotency-Key`; a retry with the same key and
//! request returns the first answer (see [`crate::idempotency`]).
//! Pause and resume are here; the trader's operator actions (positions,
//! churners, regime) are in [`super::operator`], through the same [`once`].

use std::future::Future;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use healgrid_proto::trader::v1 as pb;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Shared;
use crate::error::{ApiError, Backend, ErrorBody};
use crate::idempotency::{self, Stored};
use crate::view::status::Mode;

/// Header set on an answer replayed from the idempotency cache.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Longest operator reason (the trader's own limit).
pub const MAX_REASON_LEN: usize = 500;

/// Body of pause and resume (optional; `{}` or empty is fine).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why, for the trader's log (at most 500 bytes).
    pub reason: Option<String>,
}

/// Answer of pause and resume.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModeAnswer {
    /// Mode when the command was queued; it applies before the next loop.
    pub mode: Mode,
}

/// Parses an optional JSON body: empty means default; bad syntax is 400, a
/// body of the wrong shape (unknown field, wrong type) is 422.
///
/// # Errors
/// As above.
pub fn parse_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::Unprocessable(format!("request body: {e}")),
        _ => ApiError::BadRequest(format!("request body is not valid JSON: {e}")),
    })
}

fn replayed(s: Stored) -> Response {
    let status = StatusCode::from_u16(s.status).unwrap_or(StatusCode::OK);
    let mut r = (status, Json(s.body)).into_response();
    r.headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    r
}

/// Runs an action once per idempotency key: authorize, read the key, then
/// either replay the stored answer or run `act` (given the key, which the
/// trader's operator RPCs take as their `request_id`) and store its answer.
pub(crate) async fn once<F, Fut>(
    state: &Shared,
    headers: &HeaderMap,
    fingerprint: String,
    act: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<serde_json::Value, ApiError>>,
{
    state.policy.authorize(headers)?;
    let key = idempotency::key_from(headers)?;
    let _serial = state.idempotency.serialize().await;
    if let Some(stored) = state.idempotency.lookup(&key, &fingerprint)? {
        tracing::info!(action = %fingerprint.lines().next().unwrap_or_default(), "action replayed from its idempotency key");
        return Ok(replayed(stored));
    }
    let body = act(key.clone()).await?;
    state.idempotency.store(
        key,
        Stored {
            fingerprint,
            status: 200,
            body: body.clone(),
        },
    );
    Ok((StatusCode::OK, Json(body)).into_response())
}

pub(crate) fn fingerprint(route: &str, body: &Bytes) -> String {
    format!("POST {route}\n{}", String::from_utf8_lossy(body))
}

fn mode_of(v: i32) -> Mode {
    crate::view::status::status(&pb::GetStatusResponse {
        mode: v,
        ..Default::default()
    })
    .mode
}

fn reason(body: &Bytes) -> Result<String, ApiError> {
    let b: ReasonBody = parse_body(body)?;
    checked_reason(b.reason.unwrap_or_default())
}

/// A reason within [`MAX_REASON_LEN`].
///
/// # Errors
/// [`ApiError::Unprocessable`] when longer.
pub(crate) fn checked_reason(r: String) -> Result<String, ApiError> {
    if r.len() > MAX_REASON_LEN {
        return Err(ApiError::Unprocessable(format!(
            "reason is longer than {MAX_REASON_LEN} bytes"
        )));
    }
    Ok(r)
}

fn answer(mode: i32) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(ModeAnswer {
        mode: mode_of(mode),
    })
    .map_err(|e| ApiError::BadAnswer {
        backend: Backend::Trader,
        rpc: "Pause/Resume",
        message: e.to_string(),
    })
}

/// Pauses trading: no entries or cancels from the next loop on; fills are
/// still processed and their exits placed.
#[utoipa::path(
    post, path = "/api/v1/pause", tag = "actions",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Unique per intended action; a retry returns the first answer")),
    request_body(content = Option<ReasonBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "Queued", body = ModeAnswer),
        (status = 400, description = "Missing Idempotency-Key or bad JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "Actions disabled on this gateway", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused for another request", body = ErrorBody),
        (status = 422, description = "Body of the wrong shape", body = ErrorBody),
        (status = 503, description = "Trader unreachable", body = ErrorBody),
        (status = 504, description = "Trader did not answer in time", body = ErrorBody),
    )
)]
pub async fn pause(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let fp = fingerprint("/api/v1/pause", &body);
    once(&state, &headers, fp, |_| async {
        let reason = reason(&body)?;
        tracing::info!(reason, "operator pause");
        let b = &state.backends;
        let request = b.request(pb::PauseRequest { reason });
        let r = b
            .call(Backend::Trader, "Pause", b.trader().pause(request))
            .await?;
        answer(r.mode)
    })
    .await
}

/// Resumes trading after a pause (also clears an operator-clearable halt).
#[utoipa::path(
    post, path = "/api/v1/resume", tag = "actions",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Unique per intended action; a retry returns the first answer")),
    request_body(content = Option<ReasonBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "Queued", body = ModeAnswer),
        (status = 400, description = "Missing Idempotency-Key or bad JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "Actions disabled on this gateway", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused for another request", body = ErrorBody),
        (status = 422, description = "Body of the wrong shape", body = ErrorBody),
        (status = 503, description = "Trader unreachable", body = ErrorBody),
        (status = 504, description = "Trader did not answer in time", body = ErrorBody),
    )
)]
pub async fn resume(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let fp = fingerprint("/api/v1/resume", &body);
    once(&state, &headers, fp, |_| async {
        let reason = reason(&body)?;
        tracing::info!(reason, "operator resume");
        let b = &state.backends;
        let request = b.request(pb::ResumeRequest { reason });
        let r = b
            .call(Backend::Trader, "Resume", b.trader().resume(request))
            .await?;
        answer(r.mode)
    })
    .await
}
