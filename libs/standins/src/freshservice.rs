//! Freshservice API v2: tickets (status 2 Open … 4 Resolved, 5 Closed;
//! priority 1 Low … 4 Urgent), private notes, conversations paged by a
//! `Link` header, the ticket list by `updated_since`, `agents/me`; Basic
//! auth with the API key as the user name and `X` as the password.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::desk::{Desk, Ticket, authorization, basic};

#[derive(Clone)]
pub struct FreshserviceStandIn {
    pub desk: Desk,
}

impl FreshserviceStandIn {
    /// Accepts this API key.
    pub fn new(api_key: &str) -> Self {
        Self {
            desk: Desk::new(basic(api_key, "X")),
        }
    }

    /// Accepts only this API key from now on (the old one is revoked).
    pub fn rotate_key(&self, api_key: &str) {
        self.desk.accept_only(basic(api_key, "X"));
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v2/tickets", get(list_tickets))
            .route("/api/v2/tickets/{id}", get(show_ticket))
            .route("/api/v2/tickets/{id}/notes", post(add_note))
            .route("/api/v2/tickets/{id}/conversations", get(conversations))
            .route("/api/v2/agents/me", get(me))
            .with_state(self.clone())
    }

    fn rejection(&self, headers: &HeaderMap) -> Option<Response> {
        (!self.desk.admits(authorization(headers))).then(|| {
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"code": "invalid_credentials",
                            "message": "You have to be logged in to perform this action."})),
            )
                .into_response()
        })
    }
}

/// The body of the workflow's "Trigger Webhook" action as
/// `docs/help-desks.md` gives it, for ticket `id`.
pub fn webhook_body(event: &str, id: u64) -> String {
    format!(r#"{{"event": "{event}", "ticket_id": {id}}}"#)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"code": "access_denied", "message": "Record not found"})),
    )
        .into_response()
}

fn ticket_json(ticket: &Ticket) -> Value {
    // A resolved ticket is touched again after its resolution (closed by
    // an automation, a survey sent): its `updated_at` is not when it was
    // resolved, which only `stats.resolved_at` tells.
    let (status, resolution, updated) = match &ticket.resolution {
        Some((text, at)) => (4, text.as_str(), *at + chrono::Duration::hours(1)),
        None => (2, "", ticket.created_at),
    };
    let priority = match ticket.priority.as_str() {
        "low" => 1,
        "high" => 3,
        "critical" => 4,
        _ => 2,
    };
    json!({
        "id": ticket.id,
        "subject": ticket.subject,
        "description": format!("<div>{}</div>", ticket.description),
        "description_text": ticket.description,
        "status": status,
        "priority": priority,
        "type": "Incident",
        "source": 2,
        "requester_id": 21_000_000 + ticket.id,
        "tags": [],
        "created_at": ticket.created_at.to_rfc3339(),
        "updated_at": updated.to_rfc3339(),
        "resolution_notes": (!resolution.is_empty()).then_some(resolution),
        "resolution_notes_html": (!resolution.is_empty()).then(|| format!("<div>{resolution}</div>")),
    })
}

/// Page `page` (from 1) of `items`, with a `Link: <…>; rel="next"` header
/// when there is another.
fn paged(
    items: Vec<Value>,
    key: &str,
    query: &HashMap<String, String>,
    host: &str,
    path: &str,
) -> Response {
    let per_page: usize = query
        .get("per_page")
        .and_then(|n| n.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page: usize = query
        .get("page")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    let start = (page - 1) * per_page;
    let end = (start + per_page).min(items.len());
    let body = Json(json!({ key: items.get(start..end).unwrap_or_default() }));
    if end < items.len() {
        let mut next: Vec<(String, String)> = query
            .iter()
            .filter(|(name, _)| name.as_str() != "page")
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        next.push(("page".into(), (page + 1).to_string()));
        let next = serde_urlencoded::to_string(next).expect("a query");
        (
            [(
                "link",
                format!("<http://{host}{path}?{next}>; rel=\"next\""),
            )],
            body,
        )
            .into_response()
    } else {
        body.into_response()
    }
}

fn host(headers: &HeaderMap) -> String {
    crate::desk::header(headers, "host")
        .unwrap_or("localhost")
        .to_owned()
}

/// One ticket; with `include=stats`, its `stats` (when it was resolved,
/// closed, first responded to), which the API leaves out otherwise.
async fn show_ticket(
    State(state): State<FreshserviceStandIn>,
    Path(id): Path<u64>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let Some(ticket) = state.desk.ticket(id) else {
        return not_found();
    };
    let mut body = ticket_json(&ticket);
    let stats = query
        .get("include")
        .is_some_and(|include| include.split(',').any(|one| one == "stats"));
    if stats {
        let resolved_at = ticket.resolution.as_ref().map(|(_, at)| at.to_rfc3339());
        body["stats"] = json!({
            "resolved_at": resolved_at,
            "closed_at": null,
            "first_responded_at": null,
        });
    }
    Json(json!({ "ticket": body })).into_response()
}

/// `updated_since` (required by this stand-in, as an import sends it),
/// oldest first.
async fn list_tickets(
    State(state): State<FreshserviceStandIn>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let Some(since) = query
        .get("updated_since")
        .and_then(|since| since.parse::<chrono::DateTime<chrono::Utc>>().ok())
    else {
        state.desk.refuse();
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"description": "Validation failed", "errors": [
                {"field": "updated_since", "message": "It should be in the 'valid date-time' format", "code": "invalid_value"}]})),
        )
            .into_response();
    };
    let tickets: Vec<Value> = state
        .desk
        .tickets()
        .iter()
        .map(ticket_json)
        .filter(|ticket| {
            ticket["updated_at"]
                .as_str()
                .and_then(|at| at.parse::<chrono::DateTime<chrono::Utc>>().ok())
                .is_some_and(|at| at >= since)
        })
        .collect();
    paged(
        tickets,
        "tickets",
        &query,
        &host(&headers),
        "/api/v2/tickets",
    )
}

async fn add_note(
    State(state): State<FreshserviceStandIn>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let (Some(text), Some(private)) = (
        body["body"].as_str().filter(|text| !text.trim().is_empty()),
        body["private"].as_bool(),
    ) else {
        state.desk.refuse();
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"description": "Validation failed", "errors": [
                {"field": "body", "message": "It should not be blank", "code": "missing_field"}]})),
        )
            .into_response();
    };
    match state.desk.add_note(id, text, private) {
        Some(note) => (
            StatusCode::CREATED,
            Json(
                json!({"conversation": {"id": note.id, "ticket_id": id, "body": note.body,
                "body_text": note.body, "private": private, "incoming": false,
                "created_at": note.created_at.to_rfc3339()}}),
            ),
        )
            .into_response(),
        None => not_found(),
    }
}

async fn conversations(
    State(state): State<FreshserviceStandIn>,
    Path(id): Path<u64>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    if state.desk.ticket(id).is_none() {
        return not_found();
    }
    let notes: Vec<Value> = state
        .desk
        .notes(id)
        .into_iter()
        .map(|note| {
            json!({"id": note.id, "body": note.body, "body_text": note.body,
                   "private": note.internal, "incoming": false,
                   "created_at": note.created_at.to_rfc3339()})
        })
        .collect();
    paged(
        notes,
        "conversations",
        &query,
        &host(&headers),
        &format!("/api/v2/tickets/{id}/conversations"),
    )
}

async fn me(State(state): State<FreshserviceStandIn>, headers: HeaderMap) -> Response {
    match state.rejection(&headers) {
        None => Json(
            json!({"agent": {"id": 7, "first_name": "AI", "last_name": "Agents",
                                     "email": "ai-agents@acme.example"}}),
        )
        .into_response(),
        Some(response) => response,
    }
}
