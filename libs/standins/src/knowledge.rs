//! An external knowledge base: `GET /api/search?query=…&limit=…` with a
//! Bearer token, answering `{"results": [{title, summary, url}]}`. It can be
//! made slow, and counts the requests it served.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

#[derive(Clone)]
pub struct KnowledgeStandIn {
    token: String,
    delay: Arc<Mutex<Duration>>,
    served: Arc<AtomicU64>,
    queries: Arc<Mutex<Vec<String>>>,
}

#[derive(Deserialize)]
struct SearchQuery {
    query: String,
    limit: Option<usize>,
}

impl KnowledgeStandIn {
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            delay: Arc::default(),
            served: Arc::default(),
            queries: Arc::default(),
        }
    }

    /// Answer only after `delay`.
    pub fn slow_down(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    /// Searches answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }

    /// The query texts it was sent.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/search", get(search))
            .with_state(self.clone())
    }
}

async fn search(
    State(state): State<KnowledgeStandIn>,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok());
    if bearer != Some(&format!("Bearer {}", state.token)) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid token"})),
        )
            .into_response();
    }
    let delay = *state.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    state.served.fetch_add(1, Ordering::SeqCst);
    state.queries.lock().unwrap().push(query.query.clone());
    let words: Vec<&str> = query.query.split_whitespace().take(3).collect();
    let results: Vec<_> = (1..=query.limit.unwrap_or(3).min(3))
        .map(|n| {
            json!({"title": format!("KB {n}: {}", words.join(" ")), "summary": "Steps that fix it.",
                   "url": format!("https://kb.example.com/articles/{n}")})
        })
        .collect();
    Json(json!({"results": results})).into_response()
}
