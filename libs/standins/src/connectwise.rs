//! ConnectWise PSA REST API 3.0 under `/v4_6_release/apis/3.0`: service
//! tickets (`closedFlag`, `status.name`, `priority.name`), their notes (the
//! initial description is the first note, `detailDescriptionFlag`; the
//! resolution one has `resolutionFlag`), the closed-ticket list by
//! `conditions`, `system/info`; `Authorization: Basic company+public:private`
//! and a `clientId` header. Also the callback key URL, and callbacks signed
//! as ConnectWise signs them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::desk::{Desk, Ticket, authorization, basic, header};

/// The API's path under the site.
pub const API_PATH: &str = "/v4_6_release/apis/3.0";

#[derive(Clone)]
pub struct ConnectWiseStandIn {
    pub desk: Desk,
    company: String,
    signing_key: Arc<Mutex<String>>,
    key_fetches: Arc<AtomicU64>,
}

impl ConnectWiseStandIn {
    /// Accepts this API member's keys (and any `clientId`).
    pub fn new(company: &str, public_key: &str, private_key: &str) -> Self {
        Self {
            desk: Desk::new(basic(&format!("{company}+{public_key}"), private_key)),
            company: company.to_owned(),
            signing_key: Arc::new(Mutex::new("cw-signing-key-1".into())),
            key_fetches: Arc::default(),
        }
    }

    /// Accepts only these keys from now on (the member's old keys deleted).
    pub fn replace_keys(&self, company: &str, public_key: &str, private_key: &str) {
        self.desk
            .accept_only(basic(&format!("{company}+{public_key}"), private_key));
    }

    /// How often the callback key URL was read.
    pub fn key_fetches(&self) -> u64 {
        self.key_fetches.load(Ordering::SeqCst)
    }

    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/service/tickets", get(list_tickets))
            .route("/service/tickets/{id}", get(show_ticket))
            .route(
                "/service/tickets/{id}/notes",
                get(list_notes).post(add_note),
            )
            .route("/system/info", get(system_info))
            .route("/system/callbackkey/{key_id}", get(callback_key))
            .with_state(self.clone());
        Router::new().nest(API_PATH, api)
    }

    /// A callback as ConnectWise posts it for `ticket` (`action` `added`
    /// or `updated`), naming the key URL on `site` (this stand-in's URL),
    /// and its `x-content-signature`.
    pub fn callback(&self, site: &str, action: &str, ticket: &Ticket) -> (String, String) {
        let body = json!({
            "MessageId": format!("{:x}", ticket.id * 7919 + action.len() as u64),
            "FromUrl": site,
            "CompanyId": self.company,
            "MemberId": "admin1",
            "Action": action,
            "Type": "ticket",
            "ID": ticket.id,
            "CallbackObjectRecId": 17,
            "Entity": ticket_json(ticket).to_string(),
            "Metadata": {"key_url": format!("{site}{API_PATH}/system/callbackkey/1?companyName={}", self.company)},
        })
        .to_string();
        let key = self.signing_key.lock().unwrap().clone();
        let signature = callback_signature(&key, body.as_bytes());
        (body, signature)
    }
}

impl ConnectWiseStandIn {
    /// `body` signed with the key this site serves.
    pub fn callback_signature_of(&self, body: &[u8]) -> String {
        callback_signature(&self.signing_key.lock().unwrap(), body)
    }
}

/// base64(HMAC-SHA256(body)) keyed by SHA-256 of the signing key.
pub fn callback_signature(signing_key: &str, body: &[u8]) -> String {
    let key = Sha256::digest(signing_key.as_bytes());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn ticket_json(ticket: &Ticket) -> Value {
    let (status, closed, closed_date) = match &ticket.resolution {
        Some((_, at)) => ("Closed (resolved)", true, Some(at.to_rfc3339())),
        None => ("New", false, None),
    };
    let priority = match ticket.priority.as_str() {
        "critical" => "Priority 1 - Critical",
        "high" => "Priority 2 - High",
        "low" => "Priority 4 - Low",
        _ => "Priority 3 - Medium",
    };
    json!({
        "id": ticket.id,
        "summary": ticket.subject,
        "recordType": "ServiceTicket",
        "board": {"id": 1, "name": "Service Desk"},
        "status": {"id": if closed { 5 } else { 1 }, "name": status},
        "priority": {"id": 3, "name": priority},
        "company": {"id": 250, "identifier": "Customer1", "name": "Customer One"},
        "contactName": ticket.requester,
        "closedFlag": closed,
        "closedDate": closed_date,
        "_info": {"dateEntered": ticket.created_at.to_rfc3339(),
                  "lastUpdated": ticket.created_at.to_rfc3339()},
    })
}

fn notes_json(desk: &Desk, ticket: &Ticket) -> Vec<Value> {
    let note = |id: u64, text: &str, detail: bool, internal: bool, resolution: bool| {
        json!({"id": id, "ticketId": ticket.id, "text": text, "detailDescriptionFlag": detail,
               "internalAnalysisFlag": internal, "resolutionFlag": resolution,
               "dateCreated": ticket.created_at.to_rfc3339(), "createdBy": "admin1"})
    };
    let mut notes = vec![note(
        ticket.id * 10,
        &ticket.description,
        true,
        false,
        false,
    )];
    if let Some((resolution, _)) = &ticket.resolution {
        notes.push(note(ticket.id * 10 + 1, resolution, false, false, true));
    }
    notes.extend(desk.notes(ticket.id).iter().map(|posted| {
        note(
            posted.id,
            &posted.body,
            !posted.internal,
            posted.internal,
            false,
        )
    }));
    notes
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

fn check(state: &ConnectWiseStandIn, headers: &HeaderMap) -> Option<Response> {
    if header(headers, "clientid").is_none_or(str::is_empty) {
        state.desk.refuse();
        return Some(refusal(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "clientId is required",
        ));
    }
    (!state.desk.admits(authorization(headers)))
        .then(|| refusal(StatusCode::UNAUTHORIZED, "Unauthorized", "Invalid login"))
}

fn page<T: Clone>(items: &[T], query: &HashMap<String, String>) -> Vec<T> {
    let size: usize = query
        .get("pageSize")
        .and_then(|n| n.parse().ok())
        .unwrap_or(25)
        .clamp(1, 1000);
    let page: usize = query
        .get("page")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    items
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .cloned()
        .collect()
}

fn missing(id: u64) -> Response {
    refusal(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("Ticket with id {id} not found"),
    )
}

async fn show_ticket(
    State(state): State<ConnectWiseStandIn>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    match state.desk.ticket(id) {
        Some(ticket) => Json(ticket_json(&ticket)).into_response(),
        None => missing(id),
    }
}

/// `conditions=closedFlag=true [and closedDate>=[…]] [and closedDate<[…]]`.
async fn list_tickets(
    State(state): State<ConnectWiseStandIn>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    let conditions = query.get("conditions").cloned().unwrap_or_default();
    let bound = |op: &str| {
        conditions
            .split(" and ")
            .find_map(|term| term.trim().strip_prefix(&format!("closedDate{op}[")))
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|at| at.parse::<chrono::DateTime<chrono::Utc>>().ok())
    };
    let (since, until) = (bound(">="), bound("<"));
    let closed_only = conditions.contains("closedFlag=true");
    let tickets: Vec<Value> = state
        .desk
        .tickets()
        .iter()
        .filter(|ticket| match &ticket.resolution {
            Some((_, at)) => since.is_none_or(|s| *at >= s) && until.is_none_or(|u| *at < u),
            None => !closed_only,
        })
        .map(ticket_json)
        .collect();
    Json(page(&tickets, &query)).into_response()
}

async fn list_notes(
    State(state): State<ConnectWiseStandIn>,
    Path(id): Path<u64>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    match state.desk.ticket(id) {
        Some(ticket) => Json(page(&notes_json(&state.desk, &ticket), &query)).into_response(),
        None => missing(id),
    }
}

/// `text` and at least one of the three flags are required.
async fn add_note(
    State(state): State<ConnectWiseStandIn>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    let flag = |name: &str| body[name].as_bool().unwrap_or(false);
    let text = body["text"].as_str().filter(|text| !text.trim().is_empty());
    let flagged = [
        "detailDescriptionFlag",
        "internalAnalysisFlag",
        "resolutionFlag",
    ]
    .iter()
    .any(|name| flag(name));
    let Some(text) = text.filter(|_| flagged) else {
        state.desk.refuse();
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": "InvalidObject", "message": "ticketNote object is invalid",
                "errors": [{"code": "Required", "message": "text and one of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag are required", "resource": "ticketNote", "field": "text"}]})),
        )
            .into_response();
    };
    let internal = flag("internalAnalysisFlag") && !flag("detailDescriptionFlag");
    match state.desk.add_note(id, text, internal) {
        Some(note) => (
            StatusCode::CREATED,
            Json(json!({"id": note.id, "ticketId": id, "text": note.body,
                "detailDescriptionFlag": flag("detailDescriptionFlag"),
                "internalAnalysisFlag": flag("internalAnalysisFlag"),
                "resolutionFlag": flag("resolutionFlag"),
                "dateCreated": note.created_at.to_rfc3339()})),
        )
            .into_response(),
        None => missing(id),
    }
}

async fn system_info(State(state): State<ConnectWiseStandIn>, headers: HeaderMap) -> Response {
    if let Some(response) = check(&state, &headers) {
        return response;
    }
    Json(json!({"version": "v2025.1.10431", "isCloud": true,
                "serverTimeZone": "Eastern Standard Time", "cloudRegion": "NA"}))
    .into_response()
}

/// The signing key of the callbacks, as the key URL serves it.
async fn callback_key(State(state): State<ConnectWiseStandIn>) -> Response {
    state.key_fetches.fetch_add(1, Ordering::SeqCst);
    let key = state.signing_key.lock().unwrap().clone();
    Json(json!({"signing_key": key})).into_response()
}
