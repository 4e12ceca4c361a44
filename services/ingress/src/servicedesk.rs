//! The ServiceDesk Plus ticket webhook: its payload and how it becomes a
//! `ticket.received` event.

use aia_events::{ItsmKind, Priority, TenantId, TicketChange, TicketId, TicketReceived};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;

pub const MAX_DESCRIPTION_CHARS: usize = 10_000;

/// The body ServiceDesk Plus sends (the original's shape). Ticket ids come
/// as strings or numbers depending on the body template.
#[derive(Debug, Deserialize)]
pub struct Webhook {
    pub event: String,
    pub ticket_id: Value,
    pub tenant_id: String,
    pub description: String,
    pub priority: String,
    pub created_at: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub requester: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// Reads just the tenant, to find whose secret verifies the signature.
pub fn tenant_of(body: &Value) -> Result<TenantId, ApiError> {
    let raw = body
        .get("tenant_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("tenant_id is missing or not a string"))?;
    TenantId::parse(raw).map_err(|err| ApiError::bad_request(format!("tenant_id: {err}")))
}

/// Validates the payload after its signature has been checked.
pub fn parse(body: Value) -> Result<(TicketId, TicketReceived), ApiError> {
    let webhook: Webhook = serde_json::from_value(body)
        .map_err(|err| ApiError::bad_request(format!("invalid payload: {err}")))?;
    let ticket_id = match &webhook.ticket_id {
        Value::String(text) => text.clone(),
        Value::Number(number) if number.is_u64() => number.to_string(),
        _ => {
            return Err(ApiError::bad_request(
                "ticket_id must be a string or a whole number",
            ));
        }
    };
    let ticket_id = TicketId::parse(&ticket_id)
        .map_err(|err| ApiError::bad_request(format!("ticket_id: {err}")))?;
    if webhook.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::unprocessable(format!(
            "description is longer than {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    let priority = Priority::parse(&webhook.priority)
        .map_err(|err| ApiError::unprocessable(format!("priority: {err}")))?;
    let created_at = DateTime::parse_from_rfc3339(&webhook.created_at)
        .map_err(|_| {
            ApiError::unprocessable("created_at must be an RFC 3339 timestamp with a time zone")
        })?
        .with_timezone(&Utc);
    let change = match webhook.event.as_str() {
        "ticket_created" | "created" | "request_created" => TicketChange::Created,
        "ticket_updated" | "updated" | "request_updated" => TicketChange::Updated,
        other => {
            return Err(ApiError::unprocessable(format!(
                "event {other:?} is not a ticket creation or update"
            )));
        }
    };
    Ok((
        ticket_id,
        TicketReceived {
            source: ItsmKind::ServicedeskPlus,
            change,
            subject: webhook.subject.filter(|subject| !subject.trim().is_empty()),
            description: webhook.description,
            priority,
            requester: webhook.requester,
            created_at,
            delivery_id: String::new(),
        },
    ))
}
