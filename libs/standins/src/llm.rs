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

/// How the stand-in answers one request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// A normal completion with this content.
    Reply(String),
    /// An HTTP error with an OpenAI error body, and `Retry-After` seconds.
    Status { code: u16, retry_after: Option<u64> },
    /// Wait this long, then answer normally.
    Slow(std::time::Duration),
    /// `200` with a body that is not JSON.
    Malformed,
    /// `200` with an empty `choices` list.
    EmptyChoices,
    /// `200`, this content, cut at the token limit (`finish_reason: length`).
    Cut(String),
    /// `200`, no content: the content filter stopped the answer.
    Filtered,
    /// `200`, no content, `finish_reason: length`, with these completion
    /// tokens billed: a reasoning model that thought its whole allowance.
    Thought { completion_tokens: u32 },
    /// An HTTP error with OpenAI's error body naming its cause, as
    /// `insufficient_quota` (429), `context_length_exceeded` (400) or
    /// `invalid_api_key` (401).
    Refused { code: u16, cause: &'static str },
}

/// OpenAI's reasoning models (o-series, GPT-5) refuse `max_tokens` and any
/// temperature but their default.
fn reasons_first(model: &str) -> bool {
    ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|family| model.starts_with(family))
        && !model.starts_with("gpt-5-chat")
}

#[derive(Default)]
struct Inner {
    requests: Vec<Value>,
    /// Headers and query string of each request, for protocol checks.
    request_meta: Vec<(HeaderMap, Option<String>)>,
    reply: Option<String>,
    fail_with: Option<u16>,
    script: std::collections::VecDeque<Behaviour>,
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

    /// The next requests get these answers, in order; afterwards, normal ones.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.inner.lock().unwrap().script.extend(behaviours);
    }

    /// Scripted answers not yet served.
    pub fn script_left(&self) -> usize {
        self.inner.lock().unwrap().script.len()
    }

    /// Headers and query string of each request so far.
    pub fn request_meta(&self) -> Vec<(HeaderMap, Option<String>)> {
        self.inner.lock().unwrap().request_meta.clone()
    }

    /// The JSON bodies received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(chat))
            .route(
                "/openai/deployments/{deployment}/chat/completions",
                post(azure_chat),
            )
            .with_state(self.clone())
    }
}

/// Azure OpenAI: the key in `api-key`, `api-version` required, the model
/// named by the deployment.
async fn azure_chat(
    State(state): State<LlmStandIn>,
    axum::extract::Path(_deployment): axum::extract::Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    let versioned = query.as_deref().is_some_and(|q| q.contains("api-version="));
    let keyed = headers.get("api-key").is_some_and(|key| !key.is_empty());
    if !versioned || !keyed {
        let message = if versioned {
            "Access denied due to missing subscription key."
        } else {
            "Missing required query parameter: api-version"
        };
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "401", "message": message}})),
        )
            .into_response();
    }
    let mut authorised = headers.clone();
    authorised.insert("authorization", "Bearer azure".parse().unwrap());
    state
        .inner
        .lock()
        .unwrap()
        .request_meta
        .push((headers, query));
    chat_inner(state, authorised, body, false).await
}

async fn chat(
    State(state): State<LlmStandIn>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    state
        .inner
        .lock()
        .unwrap()
        .request_meta
        .push((headers.clone(), query));
    chat_inner(state, headers, body, true).await
}

async fn chat_inner(
    state: LlmStandIn,
    headers: HeaderMap,
    body: String,
    _openai: bool,
) -> Response {
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
    let model = request["model"].as_str().unwrap_or_default();
    if reasons_first(model) {
        if request.get("max_tokens").is_some() {
            return error(
                StatusCode::BAD_REQUEST,
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                "invalid_request_error",
            );
        }
        if request
            .get("temperature")
            .is_some_and(|temperature| temperature.as_f64() != Some(1.0))
        {
            return error(
                StatusCode::BAD_REQUEST,
                "Unsupported value: 'temperature' does not support 0.3 with this model. Only the default (1) value is supported.",
                "invalid_request_error",
            );
        }
    }
    let (reply, fail_with, behaviour) = {
        let mut inner = state.inner.lock().unwrap();
        inner.requests.push(request.clone());
        let behaviour = inner.script.pop_front();
        (inner.reply.clone(), inner.fail_with, behaviour)
    };
    let mut reply = reply;
    match behaviour {
        Some(Behaviour::Reply(content)) => reply = Some(content),
        Some(Behaviour::Status { code, retry_after }) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error(
                status,
                "Rate limit reached or server error.",
                "server_error",
            );
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.to_string().parse().unwrap());
            }
            return response;
        }
        Some(Behaviour::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Behaviour::Malformed) => {
            return (StatusCode::OK, "{\"choices\": [oops").into_response();
        }
        Some(Behaviour::Cut(content)) => {
            return Json(json!({"id": "chatcmpl-standin", "object": "chat.completion", "created": 1_764_000_000,
                "model": request["model"],
                "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}}))
            .into_response();
        }
        Some(Behaviour::Filtered) => {
            return Json(json!({"id": "chatcmpl-standin", "object": "chat.completion", "created": 1_764_000_000,
                "model": request["model"],
                "choices": [{"index": 0, "finish_reason": "content_filter", "message": {"role": "assistant", "content": null}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 0, "total_tokens": 10}}))
            .into_response();
        }
        Some(Behaviour::Thought { completion_tokens }) => {
            return Json(json!({"id": "chatcmpl-standin", "object": "chat.completion", "created": 1_764_000_000,
                "model": request["model"],
                "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": ""}}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": completion_tokens,
                          "total_tokens": 1000 + completion_tokens}}))
            .into_response();
        }
        Some(Behaviour::Refused { code, cause }) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
            return (
                status,
                Json(json!({"error": {"message": format!("The request was refused: {cause}."),
                                       "type": "invalid_request_error", "param": null, "code": cause}})),
            )
                .into_response();
        }
        Some(Behaviour::EmptyChoices) => {
            return Json(json!({"id": "chatcmpl-standin", "object": "chat.completion", "created": 1_764_000_000,
                "model": request["model"], "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1}}))
                .into_response();
        }
        None => {}
    }
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
