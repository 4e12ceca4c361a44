//! A Prometheus-compatible instant-query API (`GET /api/v1/query`) that
//! answers from fixed values per metric keyword and host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
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
) -> (StatusCode, Json<Value>) {
    // Prometheus reads double-quoted strings with Go's escapes and refuses
    // any other (a regex's `\.` must be written `\\.`), so the stand-in
    // does too; what a matcher then means is its decoded text.
    let decoded = match decode_strings(&query.query) {
        Ok(decoded) => decoded,
        Err(escape) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "status": "error",
                    "errorType": "bad_data",
                    "error": format!("invalid parameter \"query\": unknown escape sequence U+{:04X} '{escape}'", u32::from(escape)),
                })),
            );
        }
    };
    // The host as the matcher names it: its regex escapes taken out.
    let unescaped = decoded.replace('\\', "");
    let values = state.values.lock().unwrap();
    let result: Vec<Value> = values
        .iter()
        .filter(|((keyword, host), _)| unescaped.contains(keyword.as_str()) && unescaped.contains(host.as_str()))
        .map(|((_, host), value)| json!({"metric": {"instance": host}, "value": [1_764_072_000.0, value.to_string()]}))
        .collect();
    (
        StatusCode::OK,
        Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}})),
    )
}

/// The query with its double-quoted strings decoded, or the first escape
/// Go's string syntax does not know.
fn decode_strings(query: &str) -> Result<String, char> {
    let mut decoded = String::with_capacity(query.len());
    let mut chars = query.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                decoded.push(c);
            }
            '\\' if quoted => match chars.next() {
                Some('\\') => decoded.push('\\'),
                Some('"') => decoded.push('"'),
                Some('n') => decoded.push('\n'),
                Some('t') => decoded.push('\t'),
                Some(other) => return Err(other),
                None => return Err('\\'),
            },
            c => decoded.push(c),
        }
    }
    Ok(decoded)
}
