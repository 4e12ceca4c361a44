//! What our HTTP services share: the error answer of every endpoint,
//! bearer-token checks, the guard on outbound calls to addresses
//! operators configure ([`outbound`]), and reading a far end's
//! `Retry-After` ([`retry_after()`]), and the key of a Standard Webhooks
//! secret ([`standard_webhooks::key`]).
//!
//! Errors answer `{"status":"error","error":{"code":…,"message":…}}` with a
//! stable code; messages name the problem without internals, and the cause
//! is logged where it happens.

pub mod answer;
pub mod outbound;
mod retry_after;
pub mod standard_webhooks;

pub use retry_after::retry_after;

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Sent as `Retry-After` (seconds) with 429 and 503.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_payload", message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "the webhook signature is missing or does not match",
        )
    }

    pub fn stale(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "stale_timestamp", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn rate_limited(retry_after: Duration, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"status": "error", "error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// True when the request carries `Authorization: Bearer <expected>`.
/// Constant-time in the token's content.
pub fn bearer_matches(headers: &axum::http::HeaderMap, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}
