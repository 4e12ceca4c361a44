//! An OpenAI-compatible `POST /v1/chat/completions` endpoint.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// A note in the four sections the prompt asks for.
pub const DEFAULT_NOTE: &str = "## Similar Tickets\nNo information available\n\n\
## Relevant Documentation\nNo information available\n\n\
## System Information\nNo information available\n\n\
## Recommended Next Steps\n1. Check the device.";

/// What the stand-in answers and what it has been asked.
#[derive(Clone, Default)]
pub struct LlmStandIn {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Value>,
    reply: Option<String>,
    fail_with: Option<u16>,
}

impl LlmStandIn {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answer every request with this note content.
    pub fn reply_with(&self, content: impl Into<String>) {
        self.inner.lock().unwrap().reply = Some(content.into());
    }

    /// Answer every request with this HTTP status and an OpenAI error body.
    pub fn fail_with(&self, status: Option<u16>) {
        self.inner.lock().unwrap().fail_with = status;
    }

    /// The JSON bodies received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(self.clone())
    }
}

async fn chat(State(state): State<LlmStandIn>, headers: HeaderMap, body: String) -> Response {
    let error = |status: StatusCode, message: &str, kind: &str| {
        (
            status,
            Json(json!({"error": {"message": message, "type": kind, "param": null, "code": null}})),
        )
            .into_response()
    };
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("Bearer ") && value.len() > 7);
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key.",
            "invalid_request_error",
        );
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
        );
    };
    let valid = request["model"].is_string()
        && request["messages"].as_array().is_some_and(|messages| {
            messages
                .iter()
                .all(|m| m["role"].is_string() && m["content"].is_string())
        });
    if !valid {
        return error(
            StatusCode::BAD_REQUEST,
            "'messages' and 'model' are required properties",
            "invalid_request_error",
        );
    }
    let (reply, fail_with) = {
        let mut inner = state.inner.lock().unwrap();
        inner.requests.push(request.clone());
        (inner.reply.clone(), inner.fail_with)
    };
    if let Some(status) = fail_with {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(
            status,
            "The server had an error while processing your request.",
            "server_error",
        );
    }
    let content = reply.unwrap_or_else(|| DEFAULT_NOTE.to_owned());
    let prompt_chars: usize = request["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter_map(|m| m["content"].as_str())
                .map(str::len)
                .sum()
        })
        .unwrap_or(0);
    let prompt_tokens = prompt_chars / 4 + 1;
    let completion_tokens = content.len() / 4 + 1;
    Json(json!({
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": request["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens}
    }))
    .into_response()
}
