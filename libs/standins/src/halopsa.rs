//! HaloPSA: the authorisation server's `/auth/token` (client credentials,
//! form body, `scope=all`) and the resource server under `/api`:
//! `Tickets/{id}?includedetails=true`, the closed-ticket list
//! (`closed_only`, `pageinate`, `page_size`, `page_no`, `record_count`),
//! `Actions` posted as an array and listed per ticket; bearer tokens that
//! expire (`revoke_tokens`). Also the webhook body Halo sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};

use crate::desk::{Desk, Ticket, authorization};

#[derive(Clone)]
pub struct HaloStandIn {
    pub desk: Desk,
    tokens: Arc<Mutex<Vec<String>>>,
}

impl HaloStandIn {
    /// Accepts this API application's client credentials.
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        Self {
            desk: Desk::new(format!("{client_id}:{client_secret}")),
            tokens: Arc::default(),
        }
    }

    /// Accepts only this secret from now on; issued tokens are revoked.
    pub fn rotate_secret(&self, client_id: &str, client_secret: &str) {
        self.desk
            .accept_only(format!("{client_id}:{client_secret}"));
        self.revoke_tokens();
    }

    /// Expires every token issued so far.
    pub fn revoke_tokens(&self) {
        for token in self.tokens.lock().unwrap().iter_mut() {
            token.push_str("-expired");
        }
    }

    pub fn tokens_issued(&self) -> usize {
        self.tokens.lock().unwrap().len()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/auth/token", post(issue_token))
            .route("/api/Tickets", get(list_tickets))
            .route("/api/Tickets/{id}", get(show_ticket))
            .route("/api/Actions", get(list_actions).post(add_actions))
            .with_state(self.clone())
    }

    fn rejection(&self, headers: &HeaderMap) -> Option<Response> {
        let token = authorization(headers).and_then(|value| value.strip_prefix("Bearer "));
        let valid = token.is_some_and(|token| {
            self.tokens
                .lock()
                .unwrap()
                .iter()
                .any(|issued| issued == token)
        });
        if valid {
            return None;
        }
        self.desk.refuse();
        Some((StatusCode::UNAUTHORIZED, "Unauthorized").into_response())
    }
}

/// A webhook body as Halo posts it for a ticket event: the ticket object
/// (with its id) at the top level.
pub fn webhook_body(ticket: &Ticket) -> String {
    json!({"id": ticket.id, "ticket": {"id": ticket.id, "summary": ticket.subject,
        "status_id": status(ticket)}})
    .to_string()
}

fn status(ticket: &Ticket) -> u32 {
    if ticket.resolution.is_some() { 9 } else { 1 }
}

fn ticket_json(ticket: &Ticket) -> Value {
    let priority = match ticket.priority.as_str() {
        "critical" => 1,
        "high" => 2,
        "low" => 4,
        _ => 3,
    };
    let (closure, closed) = match &ticket.resolution {
        Some((text, at)) => (format!("<p>{text}</p>"), Some(at.to_rfc3339())),
        None => (String::new(), None),
    };
    json!({
        "id": ticket.id,
        "summary": ticket.subject,
        "details": ticket.description,
        "details_html": format!("<p>{}</p>", ticket.description),
        "status_id": status(ticket),
        "priority_id": priority,
        "tickettype_id": 1,
        "user_name": ticket.requester,
        "client_name": "Customer One",
        "dateoccurred": ticket.created_at.to_rfc3339(),
        "dateclosed": closed,
        "hasbeenclosed": ticket.resolution.is_some(),
        "closure_note": closure,
    })
}

#[derive(serde::Deserialize)]
struct TokenRequest {
    grant_type: String,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
}

async fn issue_token(State(state): State<HaloStandIn>, Form(form): Form<TokenRequest>) -> Response {
    let credential = format!("{}:{}", form.client_id, form.client_secret);
    if form.grant_type != "client_credentials" || form.scope.is_none() {
        state.desk.refuse();
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if !state.desk.admits(Some(&credential)) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let mut tokens = state.tokens.lock().unwrap();
    let token = format!("halo-token-{}", tokens.len() + 1);
    tokens.push(token.clone());
    Json(
        json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                "scope": form.scope}),
    )
    .into_response()
}

async fn show_ticket(
    State(state): State<HaloStandIn>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    match state.desk.ticket(id) {
        Some(ticket) => Json(ticket_json(&ticket)).into_response(),
        None => (StatusCode::NOT_FOUND, format!("Ticket {id} not found")).into_response(),
    }
}

async fn list_tickets(
    State(state): State<HaloStandIn>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let closed_only = query.get("closed_only").map(String::as_str) == Some("true");
    let tickets: Vec<Value> = state
        .desk
        .tickets()
        .iter()
        .filter(|ticket| !closed_only || ticket.resolution.is_some())
        .map(|ticket| json!({"id": ticket.id, "summary": ticket.subject, "status_id": status(ticket)}))
        .collect();
    let total = tickets.len();
    Json(json!({"record_count": total, "tickets": page_of(&query, tickets)})).into_response()
}

/// The page a list query asks for: `pageinate=true` with `page_size` and
/// `page_no` (from 1), else the first `count` records, else all.
fn page_of(query: &HashMap<String, String>, records: Vec<Value>) -> Vec<Value> {
    let number = |name: &str| query.get(name).and_then(|n| n.parse::<usize>().ok());
    if query.get("pageinate").map(String::as_str) == Some("true") {
        let size = number("page_size").unwrap_or(50).max(1);
        let page = number("page_no").unwrap_or(1).max(1);
        records
            .into_iter()
            .skip((page - 1) * size)
            .take(size)
            .collect()
    } else {
        records
            .into_iter()
            .take(number("count").unwrap_or(usize::MAX))
            .collect()
    }
}

/// An array of actions; each needs `ticket_id` of a known ticket, an
/// `outcome` and a note.
async fn add_actions(
    State(state): State<HaloStandIn>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let Some([action]) = body.as_array().map(Vec::as_slice) else {
        state.desk.refuse();
        return (StatusCode::BAD_REQUEST, "Expected an array of actions").into_response();
    };
    let note = action["note_html"]
        .as_str()
        .or(action["note"].as_str())
        .filter(|note| !note.trim().is_empty());
    let outcome = action["outcome"].as_str().filter(|o| !o.is_empty());
    let (Some(ticket), Some(note), Some(_)) = (action["ticket_id"].as_u64(), note, outcome) else {
        state.desk.refuse();
        return (
            StatusCode::BAD_REQUEST,
            "ticket_id, outcome and note_html are required",
        )
            .into_response();
    };
    let hidden = action["hiddenfromuser"].as_bool().unwrap_or(false);
    match state.desk.add_note(ticket, note, hidden) {
        Some(stored) => Json(
            json!({"id": stored.id, "ticket_id": ticket, "outcome": outcome,
            "note_html": note, "hiddenfromuser": hidden}),
        )
        .into_response(),
        None => (StatusCode::NOT_FOUND, format!("Ticket {ticket} not found")).into_response(),
    }
}

async fn list_actions(
    State(state): State<HaloStandIn>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let Some(ticket) = query.get("ticket_id").and_then(|id| id.parse::<u64>().ok()) else {
        state.desk.refuse();
        return (StatusCode::BAD_REQUEST, "ticket_id is required").into_response();
    };
    let actions: Vec<Value> = state
        .desk
        .notes(ticket)
        .into_iter()
        .map(|note| {
            json!({"id": note.id, "ticket_id": ticket, "outcome": "Private Note",
                   "note": note.body, "note_html": note.body, "hiddenfromuser": note.internal,
                   "datetime": note.created_at.to_rfc3339()})
        })
        .collect();
    let total = actions.len();
    Json(json!({"record_count": total, "actions": page_of(&query, actions)})).into_response()
}
