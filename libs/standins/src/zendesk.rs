//! Zendesk's ticket API: comments added by a ticket update, listed per
//! ticket; Basic (`{email}/token:{token}`) or Bearer auth.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ZendeskComment {
    pub id: u64,
    pub html_body: String,
    pub public: bool,
}

#[derive(Clone)]
pub struct ZendeskStandIn {
    authorization: String,
    comments: Arc<Mutex<BTreeMap<u64, Vec<ZendeskComment>>>>,
}

impl ZendeskStandIn {
    pub fn new(authorization: impl Into<String>) -> Self {
        Self {
            authorization: authorization.into(),
            comments: Arc::default(),
        }
    }

    pub fn comments(&self, ticket: u64) -> Vec<ZendeskComment> {
        self.comments
            .lock()
            .unwrap()
            .get(&ticket)
            .cloned()
            .unwrap_or_default()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v2/tickets/{id}", put(update_ticket).get(show_ticket))
            .route("/api/v2/tickets/{id}/comments.json", get(list_comments))
            .route("/api/v2/users/me.json", get(me))
            .with_state(self.clone())
    }

    /// The 401 answer, when the request is not authorised.
    fn rejection(&self, headers: &HeaderMap) -> Option<Response> {
        let given = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok());
        if given == Some(self.authorization.as_str()) {
            None
        } else {
            Some(
                (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": "Couldn't authenticate you"})),
                )
                    .into_response(),
            )
        }
    }
}

fn ticket_id(raw: &str) -> Option<u64> {
    raw.strip_suffix(".json").unwrap_or(raw).parse().ok()
}

async fn update_ticket(
    State(state): State<ZendeskStandIn>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let Some(id) = ticket_id(&raw) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "RecordNotFound", "description": "Not found"})),
        )
            .into_response();
    };
    let comment = &body["ticket"]["comment"];
    let Some(html) = comment["html_body"].as_str().or(comment["body"].as_str()) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "RecordInvalid", "description": "Record validation errors"})),
        )
            .into_response();
    };
    let public = comment["public"].as_bool().unwrap_or(true);
    let mut comments = state.comments.lock().unwrap();
    let comment_id = 5_000_000 + comments.values().map(Vec::len).sum::<usize>() as u64;
    comments.entry(id).or_default().push(ZendeskComment {
        id: comment_id,
        html_body: html.to_owned(),
        public,
    });
    Json(json!({
        "ticket": {"id": id, "status": "open"},
        "audit": {"id": comment_id + 1, "ticket_id": id, "events": [{"id": comment_id, "type": "Comment", "public": public}]}
    }))
    .into_response()
}

async fn list_comments(
    State(state): State<ZendeskStandIn>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let comments: Vec<Value> = ticket_id(&raw)
        .map(|id| state.comments(id))
        .unwrap_or_default()
        .into_iter()
        .map(|c| json!({"id": c.id, "html_body": c.html_body, "body": c.html_body, "public": c.public}))
        .collect();
    Json(json!({"comments": comments, "count": comments.len()})).into_response()
}

async fn me(State(state): State<ZendeskStandIn>, headers: HeaderMap) -> Response {
    match state.rejection(&headers) {
        None => Json(json!({"user": {"id": 1, "role": "admin"}})).into_response(),
        Some(response) => response,
    }
}

/// Any numeric ticket exists.
async fn show_ticket(
    State(state): State<ZendeskStandIn>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    match ticket_id(&raw) {
        Some(id) => Json(json!({"ticket": {"id": id, "subject": format!("Ticket {id}"), "description": "Printer offline", "status": "open"}})).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "RecordNotFound", "description": "Not found"}))).into_response(),
    }
}
