//! An OpenAI-compatible `POST /v1/embeddings` endpoint (OpenAI, LiteLLM,
//! vLLM, Ollama all answer this shape), with a cheap deterministic model:
//! each word is hashed into one of `dim` buckets, so texts that share words
//! are close and texts that share none are orthogonal. Enough to test the
//! provider's protocol, batching and failures, and to stand in for a
//! zero-latency embeddings provider in benchmarks; not a model of meaning.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// How the stand-in answers one request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// An HTTP error with an OpenAI error body, and `Retry-After` seconds.
    Status { code: u16, retry_after: Option<u64> },
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// `200` with one vector fewer than texts.
    MissingVector,
    /// A normal answer (in a script, before the ones after it).
    Normal,
}

/// The stand-in's state.
#[derive(Clone)]
pub struct EmbeddingsStandIn {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    model: String,
    dim: usize,
    key: Option<String>,
    script: VecDeque<Behaviour>,
    /// Inputs per request so far.
    batches: Vec<usize>,
    /// The most characters of one input so far.
    longest_input: usize,
}

impl EmbeddingsStandIn {
    /// A model named `model` answering `dim`-dimensional vectors.
    pub fn new(model: impl Into<String>, dim: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                model: model.into(),
                dim,
                key: None,
                script: VecDeque::new(),
                batches: Vec::new(),
                longest_input: 0,
            })),
        }
    }

    /// Requests must carry `Authorization: Bearer {key}`.
    pub fn require_key(&self, key: impl Into<String>) {
        self.inner.lock().unwrap().key = Some(key.into());
    }

    /// The next requests get these answers, in order; then normal ones.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.inner.lock().unwrap().script.extend(behaviours);
    }

    /// How many texts each request held, in order.
    pub fn batches(&self) -> Vec<usize> {
        self.inner.lock().unwrap().batches.clone()
    }

    /// The most characters of one input it was sent.
    pub fn longest_input(&self) -> usize {
        self.inner.lock().unwrap().longest_input
    }

    /// The vector this stand-in gives `text` (not normalised).
    pub fn vector(text: &str, dim: usize) -> Vec<f32> {
        let mut vector = vec![0.0; dim];
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            let digest = Sha256::digest(word.to_lowercase().as_bytes());
            let bucket =
                u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) as usize % dim;
            vector[bucket] += 1.0;
        }
        if vector.iter().all(|v| *v == 0.0) {
            vector[0] = 1.0;
        }
        vector
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/embeddings", post(embeddings))
            .with_state(self.clone())
    }
}

async fn embeddings(
    State(stand_in): State<EmbeddingsStandIn>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (behaviour, model, dim, key) = {
        let mut inner = stand_in.inner.lock().unwrap();
        (
            inner.script.pop_front(),
            inner.model.clone(),
            inner.dim,
            inner.key.clone(),
        )
    };
    if let Some(key) = key {
        let presented = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if presented != format!("Bearer {key}") {
            return error(StatusCode::UNAUTHORIZED, "invalid_api_key", None);
        }
    }
    let texts: Vec<String> = match &body["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => return error(StatusCode::BAD_REQUEST, "invalid_request_error", None),
    };
    if body["model"].as_str() != Some(model.as_str()) {
        return error(StatusCode::NOT_FOUND, "model_not_found", None);
    }
    {
        let mut inner = stand_in.inner.lock().unwrap();
        inner.batches.push(texts.len());
        let longest = texts.iter().map(|t| t.chars().count()).max().unwrap_or(0);
        inner.longest_input = inner.longest_input.max(longest);
    }
    let mut drop_one = false;
    match behaviour {
        Some(Behaviour::Status { code, retry_after }) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, "scripted", retry_after);
        }
        Some(Behaviour::Slow(wait)) => tokio::time::sleep(wait).await,
        Some(Behaviour::MissingVector) => drop_one = true,
        Some(Behaviour::Normal) | None => {}
    }
    let mut data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            json!({"object": "embedding", "index": index, "embedding": EmbeddingsStandIn::vector(text, dim)})
        })
        .collect();
    if drop_one {
        data.pop();
    }
    Json(json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 0, "total_tokens": 0}}))
        .into_response()
}

fn error(status: StatusCode, code: &str, retry_after: Option<u64>) -> Response {
    let body = Json(json!({"error": {"message": code, "type": code, "code": code}}));
    match retry_after {
        Some(secs) => (status, [("retry-after", secs.to_string())], body).into_response(),
        None => (status, body).into_response(),
    }
}
