//! The OpenAI-compatible embeddings API over the local model:
//! `POST /v1/embeddings` (`{"model", "input": "…" | ["…", …]}` →
//! `data[i].embedding`) and `GET /v1/models`, so that every caller reaches
//! the local model the way it reaches any provider.

use std::sync::Arc;

use aia_embed::local::MiniLm;
use aia_embed::{LOCAL_DIM, LOCAL_MODEL};
use aia_http::ApiError;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// The short name a caller may use for the local model.
pub const SHORT_NAME: &str = "all-MiniLM-L6-v2";

pub struct ApiState {
    pub model: Arc<MiniLm>,
    pub api_key: Option<String>,
    pub max_inputs: usize,
    /// Bounds the batches running on the model at once, the indexer's
    /// included.
    pub permits: Arc<Semaphore>,
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/health/ready",
            get(|| async { Json(json!({"status": "ready"})) }),
        )
        .layer(DefaultBodyLimit::max(8 * 1024 * 1024))
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Request {
    model: String,
    input: Input,
}

fn authorised(state: &ApiState, headers: &HeaderMap) -> bool {
    let Some(expected) = &state.api_key else {
        return true;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), expected.as_bytes()).into()
}

async fn embeddings(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Json<Request>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    if !authorised(&state, &headers) {
        return Err(ApiError::unauthorized());
    }
    let Json(request) = body.map_err(|err| {
        ApiError::bad_request(format!(
            "expected {{\"model\": \"…\", \"input\": \"…\" or [\"…\"]}}: {}",
            err.body_text()
        ))
    })?;
    if request.model != LOCAL_MODEL && request.model != SHORT_NAME {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("this service serves {LOCAL_MODEL} only"),
        ));
    }
    let texts = match request.input {
        Input::One(text) => vec![text],
        Input::Many(texts) => texts,
    };
    if texts.is_empty() || texts.len() > state.max_inputs {
        return Err(ApiError::bad_request(format!(
            "input must hold 1 to {} texts",
            state.max_inputs
        )));
    }
    let tokens: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    // The permit goes with the work: a caller that gives up (its timeout)
    // drops this handler, but not the model's pass, which keeps its permit
    // until it ends — or each timeout would let one more pass start on the
    // cores still busy with the last.
    let permit = state
        .permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::unavailable("shutting down"))?;
    let model = state.model.clone();
    let failed = |err: &dyn std::fmt::Display| {
        tracing::error!(error = %err, "Embedding failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "model_failed",
            "the model failed",
        )
    };
    let vectors = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        model.embed(&texts)
    })
    .await
    .map_err(|err| failed(&err))?
    .map_err(|err| failed(&err))?;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| json!({"object": "embedding", "index": index, "embedding": vector.as_slice()}))
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": LOCAL_MODEL,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}

async fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": LOCAL_MODEL, "object": "model", "owned_by": "ai-agents", "dimensions": LOCAL_DIM}],
    }))
}
