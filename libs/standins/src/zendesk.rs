//! Zendesk Support API v2: tickets, their comments (the description is the
//! first; a private comment is added by a ticket update), the search export
//! of solved tickets, `users/me`; Basic (`{email}/token:{token}`) or Bearer
//! auth. Also signs webhooks as Zendesk does.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::desk::{Desk, Ticket, authorization, id_of};

#[derive(Debug, Clone)]
pub struct ZendeskComment {
    pub id: u64,
    pub html_body: String,
    pub public: bool,
}

#[derive(Clone)]
pub struct ZendeskStandIn {
    pub desk: Desk,
}

impl ZendeskStandIn {
    /// Accepts this `Authorization` header value.
    pub fn new(authorization: impl Into<String>) -> Self {
        Self {
            desk: Desk::new(authorization),
        }
    }

    /// The comments posted through the API to one ticket.
    pub fn comments(&self, ticket: u64) -> Vec<ZendeskComment> {
        self.desk
            .notes(ticket)
            .into_iter()
            .map(|note| ZendeskComment {
                id: note.id,
                html_body: note.body,
                public: !note.internal,
            })
            .collect()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v2/tickets/{id}", get(show_ticket).put(update_ticket))
            .route("/api/v2/tickets/{id}/comments", get(list_comments))
            .route("/api/v2/tickets/{id}/comments.json", get(list_comments))
            .route("/api/v2/search/export", get(search_export))
            .route("/api/v2/search/export.json", get(search_export))
            .route("/api/v2/users/me", get(me))
            .route("/api/v2/users/me.json", get(me))
            .with_state(self.clone())
    }

    fn rejection(&self, headers: &HeaderMap) -> Option<Response> {
        (!self.desk.admits(authorization(headers))).then(|| {
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "Couldn't authenticate you"})),
            )
                .into_response()
        })
    }
}

/// `X-Zendesk-Webhook-Signature` for a delivery at `timestamp`:
/// base64(HMAC-SHA256(timestamp + body)) keyed by the signing secret's text.
pub fn webhook_signature(signing_secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(signing_secret.as_bytes()).expect("any key");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "RecordNotFound", "description": "Not found"})),
    )
        .into_response()
}

fn status(ticket: &Ticket) -> &'static str {
    if ticket.resolution.is_some() {
        "solved"
    } else {
        "open"
    }
}

fn priority(ticket: &Ticket) -> &'static str {
    match ticket.priority.as_str() {
        "low" => "low",
        "high" => "high",
        "critical" => "urgent",
        _ => "normal",
    }
}

fn ticket_json(ticket: &Ticket) -> Value {
    let updated = ticket
        .resolution
        .as_ref()
        .map_or(ticket.created_at, |(_, at)| *at);
    json!({
        "id": ticket.id,
        "url": format!("https://acme.zendesk.com/api/v2/tickets/{}.json", ticket.id),
        "type": "incident",
        "subject": ticket.subject,
        "raw_subject": ticket.subject,
        "description": ticket.description,
        "status": status(ticket),
        "priority": priority(ticket),
        "requester_id": 361_000_000 + ticket.id,
        "tags": ["from_standin"],
        "created_at": ticket.created_at.to_rfc3339(),
        "updated_at": updated.to_rfc3339(),
    })
}

/// The description as the first comment, the resolution as a public reply,
/// then the comments added through the API.
fn comments_json(desk: &Desk, ticket: &Ticket) -> Vec<Value> {
    let text_comment = |id: u64, body: &str| {
        json!({"id": id, "type": "Comment", "author_id": 1, "body": body, "plain_body": body,
               "html_body": format!("<div class=\"zd-comment\"><p>{body}</p></div>"), "public": true})
    };
    let mut comments = vec![text_comment(ticket.id * 10, &ticket.description)];
    if let Some((resolution, _)) = &ticket.resolution {
        comments.push(text_comment(ticket.id * 10 + 1, resolution));
    }
    comments.extend(desk.notes(ticket.id).into_iter().map(|note| {
        json!({"id": note.id, "type": "Comment", "author_id": 2, "body": note.body,
               "plain_body": note.body, "html_body": note.body, "public": !note.internal,
               "created_at": note.created_at.to_rfc3339()})
    }));
    comments
}

/// One cursor page of `items` (`page[size]`, `page[after]` = an index).
fn cursor_page(
    items: Vec<Value>,
    query: &std::collections::HashMap<String, String>,
    key: &str,
    next: impl Fn(usize) -> String,
) -> Value {
    let size: usize = query
        .get("page[size]")
        .and_then(|size| size.parse().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    let start: usize = query
        .get("page[after]")
        .and_then(|after| after.parse().ok())
        .unwrap_or(0);
    let end = (start + size).min(items.len());
    let has_more = end < items.len();
    json!({
        key: items.get(start..end).unwrap_or_default(),
        "meta": {"has_more": has_more, "after_cursor": has_more.then(|| end.to_string()),
                 "before_cursor": null},
        "links": {"next": has_more.then(|| next(end)), "prev": null},
    })
}

async fn show_ticket(
    State(state): State<ZendeskStandIn>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    match id_of(&raw).and_then(|id| state.desk.ticket(id)) {
        Some(ticket) => Json(json!({"ticket": ticket_json(&ticket)})).into_response(),
        None => not_found(),
    }
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
    let comment = &body["ticket"]["comment"];
    let Some(html) = comment["html_body"].as_str().or(comment["body"].as_str()) else {
        state.desk.refuse();
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "RecordInvalid", "description": "Record validation errors"})),
        )
            .into_response();
    };
    let public = comment["public"].as_bool().unwrap_or(true);
    let Some(note) = id_of(&raw).and_then(|id| state.desk.add_note(id, html, !public)) else {
        return not_found();
    };
    let ticket = state.desk.ticket(note.ticket).expect("the note's ticket");
    Json(json!({
        "ticket": ticket_json(&ticket),
        "audit": {"id": note.id + 1, "ticket_id": note.ticket,
                  "events": [{"id": note.id, "type": "Comment", "public": public, "html_body": html}]}
    }))
    .into_response()
}

async fn list_comments(
    State(state): State<ZendeskStandIn>,
    Path(raw): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let Some(ticket) = id_of(&raw).and_then(|id| state.desk.ticket(id)) else {
        return not_found();
    };
    let comments = comments_json(&state.desk, &ticket);
    let base = headers
        .get("host")
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    Json(cursor_page(comments, &query, "comments", |after| {
        format!(
            "http://{base}/api/v2/tickets/{}/comments?page[size]=100&page[after]={after}",
            ticket.id
        )
    }))
    .into_response()
}

/// `query=status>=solved [updated>=YYYY-MM-DD]`, `filter[type]=ticket`.
async fn search_export(
    State(state): State<ZendeskStandIn>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    if query.get("filter[type]").map(String::as_str) != Some("ticket") {
        state.desk.refuse();
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "InvalidEndpoint", "description": "filter[type] is required"})),
        )
            .into_response();
    }
    let terms = query.get("query").cloned().unwrap_or_default();
    let solved_only = terms.contains("status>=solved");
    let since = terms
        .split_whitespace()
        .find_map(|term| term.strip_prefix("updated>="))
        .and_then(|day| chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok());
    let results: Vec<Value> = state
        .desk
        .tickets()
        .iter()
        .filter(|ticket| !solved_only || ticket.resolution.is_some())
        .filter(|ticket| {
            since.is_none_or(|since| {
                ticket
                    .resolution
                    .as_ref()
                    .map_or(ticket.created_at, |(_, at)| *at)
                    .date_naive()
                    >= since
            })
        })
        .map(|ticket| {
            let mut json = ticket_json(ticket);
            json["result_type"] = "ticket".into();
            json
        })
        .collect();
    Json(cursor_page(results, &query, "results", |after| {
        format!("/api/v2/search/export?page[after]={after}")
    }))
    .into_response()
}

async fn me(State(state): State<ZendeskStandIn>, headers: HeaderMap) -> Response {
    match state.rejection(&headers) {
        None => {
            Json(json!({"user": {"id": 1, "role": "admin", "name": "AI Agents"}})).into_response()
        }
        Some(response) => response,
    }
}
