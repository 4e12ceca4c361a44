//! ServiceNow's Table API for `incident` (state 1 New … 6 Resolved, 7
//! Closed; priority 1 Critical … 5 Planning; every value a string), a work
//! note added by a PATCH of the record, the journal read back from
//! `sys_journal_field`, offset paging with `X-Total-Count`; Basic auth (the
//! OAuth password grant the client also speaks is not played here).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::desk::{Desk, Ticket, authorization, basic};

#[derive(Clone)]
pub struct ServiceNowStandIn {
    pub desk: Desk,
}

impl ServiceNowStandIn {
    /// Accepts this integration user.
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            desk: Desk::new(basic(username, password)),
        }
    }

    /// Accepts only this password from now on.
    pub fn change_password(&self, username: &str, password: &str) {
        self.desk.accept_only(basic(username, password));
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/now/table/incident", get(list_incidents))
            .route(
                "/api/now/table/incident/{sys_id}",
                get(show_incident).patch(update_incident),
            )
            .route("/api/now/table/sys_journal_field", get(journal))
            .with_state(self.clone())
    }

    fn rejection(&self, headers: &HeaderMap) -> Option<Response> {
        (!self.desk.admits(authorization(headers))).then(|| {
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"message": "User Not Authenticated",
                    "detail": "Required to provide Auth information"}, "status": "failure"})),
            )
                .into_response()
        })
    }
}

/// The incident number of ticket `id`, as `INC0010042`.
pub fn number(id: u64) -> String {
    format!("INC{:07}", id)
}

/// The `sys_id` of ticket `id`: 32 hex digits.
pub fn sys_id(id: u64) -> String {
    format!("{id:032x}")
}

/// The body the business rule of `docs/help-desks.md` sends for `ticket`
/// (`event` is `created` or `resolved`).
pub fn webhook_body(event: &str, ticket: &Ticket) -> String {
    let record = incident_json(ticket);
    json!({
        "event": event,
        "sys_id": record["sys_id"], "number": record["number"],
        "short_description": record["short_description"], "description": record["description"],
        "priority": record["priority"], "state": record["state"], "opened_at": record["opened_at"],
        "resolved_at": record["resolved_at"], "close_code": record["close_code"],
        "close_notes": record["close_notes"], "caller": ticket.requester,
    })
    .to_string()
}

fn glide_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn incident_json(ticket: &Ticket) -> Value {
    let priority = match ticket.priority.as_str() {
        "critical" => "1",
        "high" => "2",
        "low" => "4",
        _ => "3",
    };
    let (state, resolved_at, close_code, close_notes) = match &ticket.resolution {
        Some((notes, at)) => ("6", glide_time(*at), "Solved (Permanently)", notes.as_str()),
        None => ("2", String::new(), "", ""),
    };
    json!({
        "sys_id": sys_id(ticket.id),
        "number": number(ticket.id),
        "short_description": ticket.subject,
        "description": ticket.description,
        "priority": priority,
        "state": state,
        "opened_at": glide_time(ticket.created_at),
        "sys_created_on": glide_time(ticket.created_at),
        "resolved_at": resolved_at,
        "close_code": close_code,
        "close_notes": close_notes,
        "caller_id": "681ccaf9c0a8016400b98a06818d57c7",
    })
}

/// The conditions of a `sysparm_query` this stand-in understands
/// (`field=value`, `fieldINa,b`, `field>=value`, `field<value`, joined by
/// `^`; `ORDERBY` terms are ignored). Any other term is refused.
fn conditions(query: &str) -> Result<Vec<(String, String, String)>, String> {
    query
        .split('^')
        .filter(|term| !term.is_empty() && !term.starts_with("ORDERBY"))
        .map(|term| {
            for op in [">=", "<", "IN", "="] {
                if let Some((field, value)) = term.split_once(op)
                    && !field.is_empty()
                    && field
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Ok((field.to_owned(), op.to_owned(), value.to_owned()));
                }
            }
            Err(term.to_owned())
        })
        .collect()
}

fn matches(record: &Value, (field, op, value): &(String, String, String)) -> bool {
    let actual = record[field.as_str()].as_str().unwrap_or_default();
    match op.as_str() {
        "=" => actual == value,
        "IN" => value.split(',').any(|one| one == actual),
        ">=" => !actual.is_empty() && actual >= value.as_str(),
        _ => !actual.is_empty() && actual < value.as_str(),
    }
}

/// `sysparm_fields`, when given, limits the fields returned.
fn select(mut record: Value, query: &HashMap<String, String>) -> Value {
    if let Some(fields) = query.get("sysparm_fields") {
        let wanted: Vec<&str> = fields.split(',').collect();
        if let Some(object) = record.as_object_mut() {
            object.retain(|name, _| wanted.contains(&name.as_str()));
        }
    }
    record
}

fn bad_query(state: &ServiceNowStandIn, term: &str) -> Response {
    state.desk.refuse();
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"message": "Invalid query", "detail": term}, "status": "failure"})),
    )
        .into_response()
}

/// A page of records (`sysparm_offset`, `sysparm_limit`) with the total in
/// `X-Total-Count`.
fn page(records: Vec<Value>, query: &HashMap<String, String>) -> Response {
    let total = records.len();
    let offset: usize = query
        .get("sysparm_offset")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("sysparm_limit")
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let result: Vec<Value> = records
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|record| select(record, query))
        .collect();
    (
        [("x-total-count", total.to_string())],
        Json(json!({ "result": result })),
    )
        .into_response()
}

async fn list_incidents(
    State(state): State<ServiceNowStandIn>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let conditions = match conditions(query.get("sysparm_query").map_or("", String::as_str)) {
        Ok(conditions) => conditions,
        Err(term) => return bad_query(&state, &term),
    };
    let mut records: Vec<Value> = state
        .desk
        .tickets()
        .iter()
        .map(incident_json)
        .filter(|record| {
            conditions
                .iter()
                .all(|condition| matches(record, condition))
        })
        .collect();
    records.sort_by(|a, b| {
        (a["resolved_at"].as_str(), a["sys_id"].as_str())
            .cmp(&(b["resolved_at"].as_str(), b["sys_id"].as_str()))
    });
    page(records, &query)
}

fn find(state: &ServiceNowStandIn, sys_id_or_number: &str) -> Option<Ticket> {
    state
        .desk
        .tickets()
        .into_iter()
        .find(|ticket| sys_id(ticket.id) == sys_id_or_number)
}

fn no_record() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": {"message": "No Record found",
            "detail": "Record doesn't exist or ACL restricts the record retrieval"}, "status": "failure"})),
    )
        .into_response()
}

async fn show_incident(
    State(state): State<ServiceNowStandIn>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    match find(&state, &id) {
        Some(ticket) => {
            Json(json!({"result": select(incident_json(&ticket), &query)})).into_response()
        }
        None => no_record(),
    }
}

/// A PATCH with `work_notes` (internal) or `comments` (customer visible)
/// adds a journal entry.
async fn update_incident(
    State(state): State<ServiceNowStandIn>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let Some(ticket) = find(&state, &id) else {
        return no_record();
    };
    let entry = match (body["work_notes"].as_str(), body["comments"].as_str()) {
        (Some(text), None) => Some((text, true)),
        (None, Some(text)) => Some((text, false)),
        _ => None,
    };
    let Some((text, internal)) = entry.filter(|(text, _)| !text.trim().is_empty()) else {
        state.desk.refuse();
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": {"message": "Exception while reading request",
                "detail": "expected one journal field"}, "status": "failure"}),
            ),
        )
            .into_response();
    };
    state.desk.add_note(ticket.id, text, internal);
    Json(json!({"result": incident_json(&ticket)})).into_response()
}

/// `element_id=<sys_id>^elementINwork_notes,comments`.
async fn journal(
    State(state): State<ServiceNowStandIn>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let conditions = match conditions(query.get("sysparm_query").map_or("", String::as_str)) {
        Ok(conditions) => conditions,
        Err(term) => return bad_query(&state, &term),
    };
    let entries: Vec<Value> = state
        .desk
        .all_notes()
        .into_iter()
        .map(|note| {
            json!({"sys_id": sys_id(note.id), "element_id": sys_id(note.ticket), "name": "incident",
                   "element": if note.internal { "work_notes" } else { "comments" },
                   "value": note.body, "sys_created_on": glide_time(note.created_at)})
        })
        .filter(|entry| conditions.iter().all(|condition| matches(entry, condition)))
        .collect();
    page(entries, &query)
}
