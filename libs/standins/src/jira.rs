//! Jira Cloud's comment APIs: the platform API (ADF body, the
//! `sd.public.comment` property) and the Service Management API
//! (`public: false`), Basic or Bearer auth, real success and error shapes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// One comment as stored: its body as sent, and whether it is internal.
#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub body: Value,
    pub internal: bool,
}

#[derive(Clone)]
pub struct JiraStandIn {
    authorization: String,
    comments: Arc<Mutex<BTreeMap<String, Vec<Comment>>>>,
}

impl JiraStandIn {
    /// Accepts exactly this `Authorization` header value.
    pub fn new(authorization: impl Into<String>) -> Self {
        Self {
            authorization: authorization.into(),
            comments: Arc::default(),
        }
    }

    pub fn comments(&self, key: &str) -> Vec<Comment> {
        self.comments
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/rest/api/3/issue/{key}/comment",
                post(add_comment).get(list_comments),
            )
            .route(
                "/rest/servicedeskapi/request/{key}/comment",
                post(add_request_comment),
            )
            .route("/rest/api/3/myself", get(myself))
            .route("/rest/api/3/issue/{key}", get(issue))
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
                    Json(json!({"errorMessages": ["You are not authenticated."], "errors": {}})),
                )
                    .into_response(),
            )
        }
    }

    fn store(&self, key: &str, body: Value, internal: bool) -> u64 {
        let mut comments = self.comments.lock().unwrap();
        let id = 10_000 + comments.values().map(Vec::len).sum::<usize>() as u64;
        comments
            .entry(key.to_owned())
            .or_default()
            .push(Comment { id, body, internal });
        id
    }
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"errorMessages": [], "errors": {"comment": message}})),
    )
        .into_response()
}

async fn add_comment(
    State(state): State<JiraStandIn>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let document = &body["body"];
    if document["type"] != "doc" || document["version"] != 1 || !document["content"].is_array() {
        return bad_request("Comment body is not valid!");
    }
    let internal = body["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|property| {
            property["key"] == "sd.public.comment" && property["value"]["internal"] == true
        });
    let id = state.store(&key, document.clone(), internal);
    (
        StatusCode::CREATED,
        Json(json!({"id": id.to_string(), "body": document, "jsdPublic": !internal})),
    )
        .into_response()
}

async fn add_request_comment(
    State(state): State<JiraStandIn>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let (Some(text), Some(public)) = (body["body"].as_str(), body["public"].as_bool()) else {
        return bad_request("body and public are required");
    };
    let id = state.store(&key, Value::String(text.to_owned()), !public);
    (
        StatusCode::CREATED,
        Json(json!({"id": id.to_string(), "body": text, "public": public})),
    )
        .into_response()
}

async fn list_comments(
    State(state): State<JiraStandIn>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let comments: Vec<Value> = state
        .comments(&key)
        .into_iter()
        .map(|comment| json!({"id": comment.id.to_string(), "body": comment.body}))
        .collect();
    Json(json!({"startAt": 0, "maxResults": 5000, "total": comments.len(), "comments": comments}))
        .into_response()
}

async fn myself(State(state): State<JiraStandIn>, headers: HeaderMap) -> Response {
    match state.rejection(&headers) {
        None => {
            Json(json!({"accountId": "5b10a2844c20165700ede21g", "active": true})).into_response()
        }
        Some(response) => response,
    }
}

/// Any issue exists, with a summary and an ADF description naming its key.
async fn issue(
    State(state): State<JiraStandIn>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    Json(json!({"id": "10001", "key": key, "fields": {
        "summary": format!("Issue {key}"),
        "description": {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "VPN drops"}]}]},
        "status": {"name": "In Progress"}
    }}))
    .into_response()
}
