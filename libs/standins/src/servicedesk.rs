//! ServiceDesk Plus v3 on-prem: add and list a request's notes.
//!
//! Checks what the real server checks: the `authtoken` header, the v3
//! `Accept` media type, a form body whose `input_data` field holds
//! `{"note": {"description": …}}`; answers with `response_status` objects
//! (`status_code` 2000 on success, 4000 with `messages[]` on failure).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// One note as the stand-in stored it.
#[derive(Debug, Clone)]
pub struct StoredNote {
    pub id: u64,
    pub request_id: String,
    pub description: String,
    pub show_to_requester: bool,
}

#[derive(Clone)]
pub struct ServiceDeskStandIn {
    inner: Arc<Mutex<Inner>>,
}

/// A resolved request the stand-in can list and show.
#[derive(Debug, Clone)]
pub struct ResolvedRequest {
    pub id: u64,
    pub subject: String,
    pub description_html: String,
    pub resolution_html: String,
    pub priority: String,
    pub resolved_ms: i64,
}

/// ServiceDesk Plus Cloud: Zoho OAuth clients and the tokens issued to them.
struct Cloud {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    issued: Vec<String>,
}

struct Inner {
    authtoken: String,
    cloud: Option<Cloud>,
    /// Answer an add-note request only this long after storing the note,
    /// as a server that is slow to respond after it has written.
    hang_after_storing: Option<std::time::Duration>,
    hang_before_storing: Option<std::time::Duration>,
    /// Add-note requests still to refuse with 503, as a server under
    /// maintenance.
    unavailable_for: usize,
    /// Add-note requests still to throttle with 429 and this `Retry-After`.
    throttled_for: (usize, u64),
    /// Add-note requests still to store and then answer 502, as a gateway
    /// whose upstream stored the note and whose answer was lost.
    bad_gateway_after_storing: usize,
    resolved: Vec<ResolvedRequest>,
    requests_served: u64,
    notes: BTreeMap<String, Vec<StoredNote>>,
    next_id: u64,
    rejected: u64,
}

impl ServiceDeskStandIn {
    /// A server that accepts `authtoken`.
    pub fn new(authtoken: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                authtoken: authtoken.into(),
                cloud: None,
                hang_after_storing: None,
                hang_before_storing: None,
                unavailable_for: 0,
                throttled_for: (0, 0),
                bad_gateway_after_storing: 0,
                resolved: Vec::new(),
                requests_served: 0,
                notes: BTreeMap::new(),
                next_id: 1000,
                rejected: 0,
            })),
        }
    }

    /// Notes on one request, oldest first.
    pub fn notes(&self, request_id: &str) -> Vec<StoredNote> {
        let inner = self.inner.lock().unwrap();
        inner.notes.get(request_id).cloned().unwrap_or_default()
    }

    /// A note someone else wrote on the request.
    pub fn add_note(&self, request_id: &str, text: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.next_id += 1;
        let note = StoredNote {
            id: inner.next_id,
            request_id: request_id.to_owned(),
            description: text.to_owned(),
            show_to_requester: false,
        };
        inner
            .notes
            .entry(request_id.to_owned())
            .or_default()
            .push(note);
    }

    /// Every note on every request.
    pub fn all_notes(&self) -> Vec<StoredNote> {
        let inner = self.inner.lock().unwrap();
        inner.notes.values().flatten().cloned().collect()
    }

    /// A ServiceDesk Plus Cloud instance with its Zoho accounts server on
    /// the same address (`/oauth/v2/token`), accepting this OAuth client.
    pub fn cloud(client_id: &str, client_secret: &str, refresh_token: &str) -> Self {
        let standin = Self::new(String::new());
        standin.inner.lock().unwrap().cloud = Some(Cloud {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            refresh_token: refresh_token.into(),
            issued: Vec::new(),
        });
        standin
    }

    /// Store each new note, then wait `delay` before answering (`None`:
    /// answer at once).
    pub fn hang_after_storing(&self, delay: Option<std::time::Duration>) {
        self.inner.lock().unwrap().hang_after_storing = delay;
    }

    /// Wait `delay` before storing each new note (a slow help desk: the
    /// note is not there yet while it works).
    pub fn hang_before_storing(&self, delay: Option<std::time::Duration>) {
        self.inner.lock().unwrap().hang_before_storing = delay;
    }

    /// Refuse the next `requests` add-note requests with 503, storing
    /// nothing.
    pub fn unavailable_for_notes(&self, requests: usize) {
        self.inner.lock().unwrap().unavailable_for = requests;
    }

    /// Throttle the next `requests` add-note requests with 429 and
    /// `Retry-After: retry_after_secs`, storing nothing.
    pub fn throttle_notes(&self, requests: usize, retry_after_secs: u64) {
        self.inner.lock().unwrap().throttled_for = (requests, retry_after_secs);
    }

    /// Store the next `requests` new notes, then answer each with 502 Bad
    /// Gateway: the note is there, the answer says nothing about it.
    pub fn bad_gateway_after_storing(&self, requests: usize) {
        self.inner.lock().unwrap().bad_gateway_after_storing = requests;
    }

    /// Access tokens issued so far (Cloud).
    pub fn tokens_issued(&self) -> usize {
        self.inner
            .lock()
            .unwrap()
            .cloud
            .as_ref()
            .map_or(0, |cloud| cloud.issued.len())
    }

    /// Invalidates every access token issued so far (Cloud), as an expiry does.
    pub fn revoke_tokens(&self) {
        if let Some(cloud) = self.inner.lock().unwrap().cloud.as_mut() {
            cloud
                .issued
                .iter_mut()
                .for_each(|token| token.push_str("-revoked"));
        }
    }

    /// Adds a resolved request to list and show.
    pub fn add_resolved(&self, request: ResolvedRequest) {
        self.inner.lock().unwrap().resolved.push(request);
    }

    /// List and detail requests answered so far.
    pub fn requests_served(&self) -> u64 {
        self.inner.lock().unwrap().requests_served
    }

    /// Requests refused for their shape or credentials.
    pub fn rejected(&self) -> u64 {
        self.inner.lock().unwrap().rejected
    }

    /// The v3 API at the root (on-prem) and under `/app/{portal}` (Cloud),
    /// and Zoho's token endpoint.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/api/v3/requests", get(list_requests))
            .route("/api/v3/requests/{request_id}", get(show_request))
            .route(
                "/api/v3/requests/{request_id}/notes",
                post(add_note).get(list_notes),
            )
            .with_state(self.clone());
        Router::new()
            .route("/oauth/v2/token", post(issue_token))
            .with_state(self.clone())
            .merge(api.clone())
            .nest("/app/{portal}", api)
    }
}

fn failure(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(
            json!({"response_status": {"status_code": 4000, "status": "failed",
            "messages": [{"status_code": code, "type": "failed", "message": message}]}}),
        ),
    )
        .into_response()
}

fn check_auth(state: &ServiceDeskStandIn, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let mut inner = state.inner.lock().unwrap();
    let authorised = match &inner.cloud {
        Some(cloud) => headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Zoho-oauthtoken "))
            .is_some_and(|token| cloud.issued.iter().any(|issued| issued == token)),
        None => {
            headers
                .get("authtoken")
                .and_then(|value| value.to_str().ok())
                == Some(inner.authtoken.as_str())
        }
    };
    if !authorised {
        inner.rejected += 1;
        return Err(Box::new(failure(
            StatusCode::UNAUTHORIZED,
            4001,
            "Invalid authtoken",
        )));
    }
    let accept = headers.get("accept").and_then(|value| value.to_str().ok());
    if accept != Some("application/vnd.manageengine.sdp.v3+json") {
        inner.rejected += 1;
        return Err(Box::new(failure(
            StatusCode::BAD_REQUEST,
            4007,
            "Invalid Accept header",
        )));
    }
    Ok(())
}

/// The request id in a path, with or without a Cloud portal before it.
#[derive(Deserialize)]
struct RequestPath {
    request_id: String,
}

#[derive(Deserialize)]
struct Form {
    input_data: String,
}

async fn add_note(
    State(state): State<ServiceDeskStandIn>,
    Path(RequestPath { request_id }): Path<RequestPath>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(response) = check_auth(&state, &headers) {
        return *response;
    }
    let before = state.inner.lock().unwrap().hang_before_storing;
    if let Some(delay) = before {
        tokio::time::sleep(delay).await;
    }
    let cloud = state.inner.lock().unwrap().cloud.is_some();
    let form_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let note = form_type
        .then(|| serde_urlencoded_form(&body))
        .flatten()
        .and_then(|form| serde_json::from_str::<Value>(&form.input_data).ok())
        .and_then(|input| {
            input
                .get(if cloud { "request_note" } else { "note" })
                .cloned()
        })
        .filter(|note| note["description"].is_string());
    let stored = {
        let mut inner = state.inner.lock().unwrap();
        if inner.throttled_for.0 > 0 {
            inner.throttled_for.0 -= 1;
            let retry_after = inner.throttled_for.1.to_string();
            let mut response = failure(StatusCode::TOO_MANY_REQUESTS, 4000, "Too many requests");
            if let Ok(value) = axum::http::HeaderValue::from_str(&retry_after) {
                response.headers_mut().insert("retry-after", value);
            }
            return response;
        }
        if inner.unavailable_for > 0 {
            inner.unavailable_for -= 1;
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                4000,
                "Service temporarily unavailable",
            );
        }
        let Some(note) = note else {
            inner.rejected += 1;
            return failure(
                StatusCode::BAD_REQUEST,
                4012,
                "Value for input_data is invalid",
            );
        };
        inner.next_id += 1;
        let stored = StoredNote {
            id: inner.next_id,
            request_id: request_id.clone(),
            description: note["description"].as_str().unwrap_or_default().to_owned(),
            show_to_requester: note["show_to_requester"].as_bool().unwrap_or(false),
        };
        inner
            .notes
            .entry(request_id)
            .or_default()
            .push(stored.clone());
        let hang = inner.hang_after_storing;
        let bad_gateway = inner.bad_gateway_after_storing > 0;
        if bad_gateway {
            inner.bad_gateway_after_storing -= 1;
        }
        (stored, hang, bad_gateway)
    };
    let (stored, hang, bad_gateway) = stored;
    if let Some(delay) = hang {
        tokio::time::sleep(delay).await;
    }
    if bad_gateway {
        return (StatusCode::BAD_GATEWAY, "502 Bad Gateway").into_response();
    }
    (
        StatusCode::CREATED,
        Json(json!({
            "request_note": {"id": stored.id.to_string(), "description": stored.description,
                              "show_to_requester": stored.show_to_requester},
            "response_status": {"status_code": 2000, "status": "success"}
        })),
    )
        .into_response()
}

/// A request's notes a page at a time, as ServiceDesk Plus lists: ten
/// unless `list_info.row_count` asks for more (at most 100), from
/// `start_index` (1-based).
async fn list_notes(
    State(state): State<ServiceDeskStandIn>,
    Path(RequestPath { request_id }): Path<RequestPath>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Response {
    if let Err(response) = check_auth(&state, &headers) {
        return *response;
    }
    let list_info = query
        .input_data
        .as_deref()
        .and_then(|input| serde_json::from_str::<Value>(input).ok())
        .map(|input| input["list_info"].clone())
        .unwrap_or(Value::Null);
    let row_count = list_info["row_count"].as_u64().unwrap_or(10).clamp(1, 100) as usize;
    let start = list_info["start_index"].as_u64().unwrap_or(1).max(1) as usize - 1;
    let all = state.notes(&request_id);
    let notes: Vec<Value> = all
        .iter()
        .skip(start)
        .take(row_count)
        .map(|note| {
            json!({"id": note.id.to_string(), "description": note.description,
                           "show_to_requester": note.show_to_requester})
        })
        .collect();
    Json(json!({
        "notes": notes,
        "list_info": {"has_more_rows": start + notes.len() < all.len(), "row_count": notes.len(),
                      "start_index": start + 1},
        "response_status": [{"status_code": 2000, "status": "success"}]
    }))
    .into_response()
}

fn serde_urlencoded_form(body: &str) -> Option<Form> {
    serde_urlencoded::from_str(body).ok()
}

#[derive(Deserialize)]
struct ListQuery {
    input_data: Option<String>,
}

/// Lists resolved requests in id order, honouring `list_info`'s
/// `start_index`, `row_count` and a `resolved_time` range.
async fn list_requests(
    State(state): State<ServiceDeskStandIn>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Response {
    if let Err(response) = check_auth(&state, &headers) {
        return *response;
    }
    let input: Value = query
        .input_data
        .as_deref()
        .and_then(|raw| serde_json::from_str(raw).ok())
        .unwrap_or_default();
    let list_info = &input["list_info"];
    let start = list_info["start_index"].as_u64().unwrap_or(1).max(1) as usize;
    let rows = list_info["row_count"].as_u64().unwrap_or(10).min(100) as usize;
    let bound = |condition: &str| {
        list_info["search_criteria"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["field"] == "resolved_time" && c["condition"] == condition)
            .and_then(|c| c["value"].as_str())
            .and_then(|value| value.parse::<i64>().ok())
    };
    let (since, until) = (bound("greater or equal"), bound("less than"));
    let mut inner = state.inner.lock().unwrap();
    inner.requests_served += 1;
    let mut matching: Vec<&ResolvedRequest> = inner
        .resolved
        .iter()
        .filter(|r| {
            since.is_none_or(|s| r.resolved_ms >= s) && until.is_none_or(|u| r.resolved_ms < u)
        })
        .collect();
    matching.sort_by_key(|r| r.id);
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(start - 1)
        .take(rows)
        .map(|r| json!({"id": r.id.to_string(), "subject": r.subject, "status": {"name": "Resolved"}}))
        .collect();
    Json(json!({
        "requests": page,
        "list_info": {"has_more_rows": start - 1 + rows < total, "start_index": start, "row_count": page.len(),
                      "total_count": total},
        "response_status": [{"status_code": 2000, "status": "success"}]
    }))
    .into_response()
}

async fn show_request(
    State(state): State<ServiceDeskStandIn>,
    Path(RequestPath { request_id }): Path<RequestPath>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = check_auth(&state, &headers) {
        return *response;
    }
    let mut inner = state.inner.lock().unwrap();
    inner.requests_served += 1;
    let Some(request) = inner
        .resolved
        .iter()
        .find(|r| r.id.to_string() == request_id)
        .cloned()
    else {
        return failure(StatusCode::NOT_FOUND, 4007, "Invalid request id");
    };
    Json(json!({
        "request": {
            "id": request.id.to_string(), "subject": request.subject, "description": request.description_html,
            "priority": {"name": request.priority}, "status": {"name": "Resolved"},
            "resolved_time": {"value": request.resolved_ms.to_string()},
            "resolution": {"content": request.resolution_html}
        },
        "response_status": {"status_code": 2000, "status": "success"}
    }))
    .into_response()
}

#[derive(Deserialize)]
struct TokenQuery {
    refresh_token: String,
    client_id: String,
    client_secret: String,
    grant_type: String,
}

/// Zoho accounts: a refresh token for an access token.
async fn issue_token(
    State(state): State<ServiceDeskStandIn>,
    axum::extract::Query(query): axum::extract::Query<TokenQuery>,
) -> Response {
    let mut inner = state.inner.lock().unwrap();
    let Some(cloud) = inner.cloud.as_mut() else {
        return (StatusCode::NOT_FOUND, "not a cloud instance").into_response();
    };
    let valid = query.grant_type == "refresh_token"
        && query.client_id == cloud.client_id
        && query.client_secret == cloud.client_secret
        && query.refresh_token == cloud.refresh_token;
    if !valid {
        return Json(json!({"error": "invalid_code"})).into_response();
    }
    let token = format!("1000.zoho-access-{}", cloud.issued.len() + 1);
    cloud.issued.push(token.clone());
    Json(json!({"access_token": token, "api_domain": "https://www.zohoapis.com", "token_type": "Bearer", "expires_in": 3600})).into_response()
}
