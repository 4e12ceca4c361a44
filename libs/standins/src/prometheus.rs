//! A Prometheus-compatible instant-query API (`GET /api/v1/query`) that
//! answers from fixed values per metric keyword and host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct PrometheusStandIn {
    /// `(keyword in the query, host)` → value.
    values: Arc<Mutex<HashMap<(String, String), f64>>>,
}

#[derive(Deserialize)]
struct InstantQuery {
    query: String,
}

impl PrometheusStandIn {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queries containing `keyword` and naming `host` answer `value`.
    pub fn set(&self, keyword: &str, host: &str, value: f64) {
        self.values
            .lock()
            .unwrap()
            .insert((keyword.to_owned(), host.to_owned()), value);
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/query", get(query))
            .with_state(self.clone())
    }
}

async fn query(
    State(state): State<PrometheusStandIn>,
    Query(query): Query<InstantQuery>,
) -> Json<Value> {
    let unescaped = query.query.replace('\\', "");
    let values = state.values.lock().unwrap();
    let result: Vec<Value> = values
        .iter()
        .filter(|((keyword, host), _)| unescaped.contains(keyword.as_str()) && unescaped.contains(host.as_str()))
        .map(|((_, host), value)| json!({"metric": {"instance": host}, "value": [1_764_072_000.0, value.to_string()]}))
        .collect();
    Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
}
