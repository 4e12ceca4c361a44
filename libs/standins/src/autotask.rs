//! Autotask PSA REST API: zone discovery at
//! `/atservicesrest/v1.0/zoneInformation?user=` (answering with this
//! stand-in's own `/ATServicesRest/` as the zone), then under `V1.0/`:
//! `Tickets/{id}` (`{"item": …}`; status 5 Complete; priority 1 High, 2
//! Medium, 3 Low, 4 Critical), `Tickets/{id}/Notes`, `Tickets/query` with
//! `pageDetails.nextPageUrl`, `Companies/entityInformation`; the
//! `ApiIntegrationCode`, `UserName` and `Secret` headers. Also signs ticket
//! webhooks as Autotask does.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

use crate::desk::{Desk, Ticket, header};

#[derive(Clone)]
pub struct AutotaskStandIn {
    pub desk: Desk,
}

fn credential(username: &str, secret: &str, integration_code: &str) -> String {
    format!("{integration_code}\n{username}\n{secret}")
}

impl AutotaskStandIn {
    /// Accepts this API user and integration code.
    pub fn new(username: &str, secret: &str, integration_code: &str) -> Self {
        Self {
            desk: Desk::new(credential(username, secret, integration_code)),
        }
    }

    /// Accepts only this secret from now on.
    pub fn change_secret(&self, username: &str, secret: &str, integration_code: &str) {
        self.desk
            .accept_only(credential(username, secret, integration_code));
    }

    /// The discovery root a tenant is configured with: `{url}/atservicesrest`.
    pub fn router(&self) -> Router {
        let zone = Router::new()
            .route("/Tickets/query", post(query_tickets))
            .route("/Tickets/query/next", get(next_page))
            .route("/Tickets/{id}", get(show_ticket))
            .route("/Tickets/{id}/Notes", get(list_notes).post(add_note))
            .route("/Companies/entityInformation", get(entity_information))
            .with_state(self.clone());
        Router::new()
            .route(
                "/atservicesrest/v1.0/zoneInformation",
                get(zone_information),
            )
            .nest("/ATServicesRest/V1.0", zone)
    }

    /// A ticket webhook's callout as Autotask posts it, and its
    /// `X-Hook-Signature` under the webhook's `secret_key`.
    pub fn callout(&self, secret_key: &str, action: &str, ticket: &Ticket) -> (String, String) {
        let mut fields = json!({"Status": status(ticket), "Title": ticket.subject});
        if action == "Create" {
            fields["TicketNumber"] = format!("T20261205.{:04}", ticket.id).into();
        }
        let body = json!({
            "Action": action, "Guid": format!("7f1c2a3e-0000-4000-8000-{:012}", ticket.id),
            "EntityType": "Ticket", "Id": ticket.id, "Fields": fields,
            "EventTime": chrono::Utc::now().to_rfc3339(), "SequenceNumber": 1, "PersonId": 29_682_885,
        })
        .to_string();
        let signature = hook_signature(secret_key, body.as_bytes());
        (body, signature)
    }
}

/// `sha1=` and base64(HMAC-SHA1(body)) keyed by the webhook's secret key.
pub fn hook_signature(secret_key: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret_key.as_bytes()).expect("any key");
    mac.update(body);
    format!(
        "sha1={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

fn status(ticket: &Ticket) -> u32 {
    if ticket.resolution.is_some() { 5 } else { 1 }
}

fn ticket_json(ticket: &Ticket) -> Value {
    let priority = match ticket.priority.as_str() {
        "critical" => 4,
        "high" => 1,
        "low" => 3,
        _ => 2,
    };
    let (resolution, completed) = match &ticket.resolution {
        Some((text, at)) => (text.as_str(), Some(at.to_rfc3339())),
        None => ("", None),
    };
    json!({
        "id": ticket.id,
        "ticketNumber": format!("T20261205.{:04}", ticket.id),
        "title": ticket.subject,
        "description": ticket.description,
        "status": status(ticket),
        "priority": priority,
        "companyID": 0,
        "contactID": 30_682_000 + ticket.id,
        "createDate": ticket.created_at.to_rfc3339(),
        "completedDate": completed,
        "lastActivityDate": ticket.created_at.to_rfc3339(),
        "resolution": resolution,
    })
}

/// Refuses a request without the three headers of the accepted API user.
fn check(state: &AutotaskStandIn, headers: &HeaderMap) -> Option<Response> {
    let given = match (
        header(headers, "apiintegrationcode"),
        header(headers, "username"),
        header(headers, "secret"),
    ) {
        (Some(code), Some(user), Some(secret)) => Some(credential(user, secret, code)),
        _ => None,
    };
    (!state.desk.admits(given.as_deref())).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errors": ["User is not authorized to access this resource."]})),
        )
            .into_response()
    })
}

fn zone_url(headers: &HeaderMap) -> String {
    format!(
        "http://{}/ATServicesRest/",
        header(headers, "host").unwrap_or("localhost")
    )
}

/// Answers anyone, as Autotask's does: it only names the zone.
async fn zone_information(
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if query.get("user").is_none_or(String::is_empty) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"errors": ["Zone information could not be determined"]})),
        )
            .into_response();
    }
    Json(
        json!({"zoneName": "Stand-in Zone", "url": zone_url(&headers),
                "webUrl": "https://ww5.autotask.net/", "ci": 0}),
    )
    .into_response()
}

async fn show_ticket(
    State(state): State<AutotaskStandIn>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    // Autotask answers an unknown id with a null item.
    Json(json!({"item": state.desk.ticket(id).map(|ticket| ticket_json(&ticket))})).into_response()
}

fn notes_json(state: &AutotaskStandIn, id: u64) -> Vec<Value> {
    state
        .desk
        .notes(id)
        .into_iter()
        .map(|note| {
            json!({"id": note.id, "ticketID": id, "title": "AI Agents note",
                   "description": note.body, "noteType": 1,
                   "publish": if note.internal { 2 } else { 1 },
                   "createDateTime": note.created_at.to_rfc3339()})
        })
        .collect()
}

async fn list_notes(
    State(state): State<AutotaskStandIn>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    let notes = notes_json(&state, id);
    Json(
        json!({"items": notes, "pageDetails": {"count": notes.len(), "requestCount": 500,
        "prevPageUrl": null, "nextPageUrl": null}}),
    )
    .into_response()
}

/// `ticketID` (matching the path), `title`, `description`, `noteType` and
/// `publish` are required; publish 1 is All Autotask Users, 2 the internal
/// project team.
async fn add_note(
    State(state): State<AutotaskStandIn>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    let valid = body["ticketID"].as_u64() == Some(id)
        && body["title"].as_str().is_some_and(|t| !t.is_empty())
        && body["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty() && d.chars().count() <= 32_000)
        && body["noteType"].as_u64().is_some()
        && body["publish"].as_u64().is_some();
    if !valid {
        state.desk.refuse();
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"errors": ["ticketID, title, description (at most 32000 characters), noteType and publish are required."]})),
        )
            .into_response();
    }
    let internal = body["publish"].as_u64() != Some(1);
    let description = body["description"].as_str().unwrap_or_default();
    match state.desk.add_note(id, description, internal) {
        Some(note) => Json(json!({"itemId": note.id})).into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"errors": [format!("Ticket {id} does not exist.")]})),
        )
            .into_response(),
    }
}

/// The filter ops this stand-in understands: `eq` on `status`, `gte`/`lt`
/// on `completedDate`; `MaxRecords` (at most 500).
fn run_query(state: &AutotaskStandIn, search: &Value, after: u64, host: &HeaderMap) -> Response {
    let Some(filters) = search["filter"].as_array() else {
        state.desk.refuse();
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"errors": ["A filter is required."]})),
        )
            .into_response();
    };
    let max = search["MaxRecords"].as_u64().unwrap_or(500).clamp(1, 500) as usize;
    let keep = |ticket: &Value| {
        filters.iter().all(|filter| {
            let field = filter["field"].as_str().unwrap_or_default();
            let (actual, wanted) = (&ticket[field], &filter["value"]);
            let time = |value: &Value| {
                value
                    .as_str()
                    .and_then(|at| at.parse::<chrono::DateTime<chrono::Utc>>().ok())
            };
            match (filter["op"].as_str().unwrap_or_default(), field) {
                ("eq", _) => actual == wanted,
                ("gte", "completedDate") => time(actual).is_some() && time(actual) >= time(wanted),
                ("lt", "completedDate") => time(actual).is_some() && time(actual) < time(wanted),
                _ => false,
            }
        })
    };
    let matching: Vec<Value> = state
        .desk
        .tickets()
        .iter()
        .filter(|ticket| ticket.id > after)
        .map(ticket_json)
        .filter(keep)
        .collect();
    let items: Vec<Value> = matching.iter().take(max).cloned().collect();
    let next = (matching.len() > max).then(|| {
        let last = items
            .last()
            .and_then(|item| item["id"].as_u64())
            .unwrap_or(after);
        let query = serde_urlencoded::to_string([
            ("search", search.to_string()),
            ("after", last.to_string()),
        ])
        .expect("a query");
        format!("{}V1.0/Tickets/query/next?{query}", zone_url(host))
    });
    Json(
        json!({"items": items, "pageDetails": {"count": items.len(), "requestCount": max,
        "prevPageUrl": null, "nextPageUrl": next}}),
    )
    .into_response()
}

async fn query_tickets(
    State(state): State<AutotaskStandIn>,
    headers: HeaderMap,
    Json(search): Json<Value>,
) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    run_query(&state, &search, 0, &headers)
}

async fn next_page(
    State(state): State<AutotaskStandIn>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    let search = query
        .get("search")
        .and_then(|search| serde_json::from_str(search).ok())
        .unwrap_or(Value::Null);
    let after = query
        .get("after")
        .and_then(|after| after.parse().ok())
        .unwrap_or(0);
    run_query(&state, &search, after, &headers)
}

async fn entity_information(State(state): State<AutotaskStandIn>, headers: HeaderMap) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    Json(
        json!({"info": {"name": "Company", "canCreate": true, "canQuery": true,
        "canUpdate": true, "canDelete": false, "hasUserDefinedFields": true}}),
    )
    .into_response()
}
