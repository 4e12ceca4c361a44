//! ServiceDesk Plus webhooks, in the body shape the original system defined
//! (an SDP admin configures it as the webhook's body template):
//!
//! - ticket created or updated: `event, ticket_id, tenant_id, description,
//!   priority, created_at` and optional `subject, requester, correlation_id`;
//! - ticket resolved: `tenant_id, ticket_id, subject, description,
//!   resolution, resolved_date, priority, tags[]`.
//!
//! Fields a template adds beyond these are ignored; a field given twice is
//! refused.

use aia_events::{
    ItsmKind, Priority, TenantId, TicketChange, TicketId, TicketReceived, TicketResolved,
};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::inbound::{
    Inbound, InboundError, MAX_DESCRIPTION_CHARS, MAX_TEXT_CHARS, check_text, json_error,
};

/// How far a ticket's `created_at` may lie in the past or future when the
/// webhook announces its creation (replay protection).
pub const MAX_AGE: Duration = Duration::seconds(300);
pub const MAX_FUTURE: Duration = Duration::seconds(30);

#[derive(Deserialize)]
struct TenantOnly {
    tenant_id: Value,
}

/// The tenant a body claims to come from, read before anything else so its
/// secret can verify the signature.
pub fn tenant_of(body: &[u8]) -> Result<TenantId, InboundError> {
    let only: TenantOnly = serde_json::from_slice(body).map_err(|err| json_error(&err))?;
    let raw = only
        .tenant_id
        .as_str()
        .ok_or_else(|| InboundError::field("tenant_id", "must be a string"))?;
    TenantId::parse(raw).map_err(|err| InboundError::field("tenant_id", err))
}

#[derive(Deserialize)]
struct TicketWebhook {
    event: String,
    ticket_id: Value,
    #[allow(dead_code)]
    tenant_id: String,
    description: String,
    priority: String,
    created_at: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    requester: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    correlation_id: Option<String>,
}

#[derive(Deserialize)]
struct ResolvedWebhook {
    #[allow(dead_code)]
    tenant_id: String,
    ticket_id: Value,
    subject: String,
    description: String,
    resolution: String,
    resolved_date: String,
    priority: String,
    #[serde(default)]
    tags: Vec<String>,
}

/// A created or updated ticket. `now` is the receiving time, for replay
/// protection of creations.
pub fn parse_ticket(body: &[u8], now: DateTime<Utc>) -> Result<Inbound, InboundError> {
    let hook: TicketWebhook = serde_json::from_slice(body).map_err(|err| json_error(&err))?;
    let ticket_id = ticket_id(&hook.ticket_id)?;
    let change = match hook.event.as_str() {
        "ticket_created" | "created" | "request_created" => TicketChange::Created,
        "ticket_updated" | "updated" | "request_updated" => TicketChange::Updated,
        other => {
            return Err(InboundError::value(
                "event",
                format!("{other:?} is not ticket_created or ticket_updated"),
            ));
        }
    };
    check_text("description", &hook.description, MAX_DESCRIPTION_CHARS)?;
    let subject = hook.subject.filter(|subject| !subject.trim().is_empty());
    if let Some(subject) = &subject {
        check_text("subject", subject, MAX_TEXT_CHARS)?;
    }
    if let Some(requester) = &hook.requester {
        check_text("requester", requester, MAX_TEXT_CHARS)?;
    }
    let priority = priority(&hook.priority)?;
    let created_at = timestamp("created_at", &hook.created_at)?;
    if change == TicketChange::Created
        && (created_at < now - MAX_AGE || created_at > now + MAX_FUTURE)
    {
        return Err(InboundError::Stale(format!(
            "created_at {created_at} is more than {} s old or {} s ahead",
            MAX_AGE.num_seconds(),
            MAX_FUTURE.num_seconds()
        )));
    }
    Ok(Inbound::Received {
        ticket_id,
        ticket: TicketReceived {
            source: ItsmKind::ServicedeskPlus,
            change,
            subject,
            description: hook.description,
            priority,
            requester: hook.requester,
            created_at,
            delivery_id: String::new(),
        },
    })
}

/// A resolved ticket for the history corpus.
pub fn parse_resolved(body: &[u8]) -> Result<Inbound, InboundError> {
    let hook: ResolvedWebhook = serde_json::from_slice(body).map_err(|err| json_error(&err))?;
    let ticket_id = ticket_id(&hook.ticket_id)?;
    check_text("subject", &hook.subject, MAX_TEXT_CHARS)?;
    check_text("description", &hook.description, MAX_DESCRIPTION_CHARS)?;
    check_text("resolution", &hook.resolution, MAX_TEXT_CHARS)?;
    if hook.tags.len() > 50 {
        return Err(InboundError::value("tags", "more than 50 tags"));
    }
    for tag in &hook.tags {
        check_text("tags", tag, 100)?;
    }
    Ok(Inbound::Resolved {
        ticket_id,
        ticket: TicketResolved {
            source: ItsmKind::ServicedeskPlus,
            subject: hook.subject,
            description: hook.description,
            resolution: hook.resolution,
            priority: priority(&hook.priority)?,
            tags: hook.tags,
            resolved_at: timestamp("resolved_date", &hook.resolved_date)?,
            // Decided by the ingress with the tenant's settings.
            language: None,
        },
    })
}

/// SDP templates send ids as strings or as numbers.
fn ticket_id(value: &Value) -> Result<TicketId, InboundError> {
    let raw = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) if number.is_u64() => number.to_string(),
        _ => {
            return Err(InboundError::field(
                "ticket_id",
                "must be a string or a whole number",
            ));
        }
    };
    TicketId::parse(&raw).map_err(|err| InboundError::field("ticket_id", err))
}

fn priority(raw: &str) -> Result<Priority, InboundError> {
    Priority::parse(raw).map_err(|err| InboundError::value("priority", err))
}

/// RFC 3339 with a zone. A timestamp without a zone is ambiguous (422);
/// anything else that is not a timestamp is malformed (400).
pub(crate) fn timestamp(field: &str, raw: &str) -> Result<DateTime<Utc>, InboundError> {
    if let Ok(parsed) = DateTime::parse_from_rfc3339(raw) {
        return Ok(parsed.with_timezone(&Utc));
    }
    let naive = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f"));
    if naive.is_ok() {
        return Err(InboundError::value(field, "timestamp has no time zone"));
    }
    Err(InboundError::field(field, "is not an RFC 3339 timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn body(overrides: Value) -> Vec<u8> {
        let mut base = serde_json::json!({
            "event": "ticket_created", "ticket_id": "4711", "tenant_id": "acme",
            "description": "VPN drops", "priority": "High", "created_at": "2026-11-25T11:59:00Z"
        });
        for (key, value) in overrides.as_object().unwrap() {
            if value.is_null() {
                base.as_object_mut().unwrap().remove(key);
            } else {
                base[key] = value.clone();
            }
        }
        serde_json::to_vec(&base).unwrap()
    }

    #[test]
    fn a_created_ticket_is_normalised() {
        let Inbound::Received { ticket_id, ticket } =
            parse_ticket(&body(serde_json::json!({"ticket_id": 4711})), now()).unwrap()
        else {
            panic!("expected a received ticket");
        };
        assert_eq!(ticket_id.as_str(), "4711");
        assert_eq!(ticket.priority, Priority::High);
        assert_eq!(ticket.change, TicketChange::Created);
        assert_eq!(ticket.subject, None);
    }

    #[test]
    fn errors_name_the_field_and_separate_malformed_from_unacceptable() {
        let cases: &[(Value, &str, bool)] = &[
            (
                serde_json::json!({"description": null}),
                "description",
                true,
            ),
            (serde_json::json!({"ticket_id": -3}), "ticket_id", true),
            (serde_json::json!({"ticket_id": 1.5}), "ticket_id", true),
            (serde_json::json!({"priority": "p1"}), "priority", false),
            (
                serde_json::json!({"created_at": "2026-11-25T11:59:00"}),
                "created_at",
                false,
            ),
            (
                serde_json::json!({"created_at": "yesterday"}),
                "created_at",
                true,
            ),
            (
                serde_json::json!({"description": "x".repeat(10_001)}),
                "description",
                false,
            ),
            (
                serde_json::json!({"description": "a\u{0}b"}),
                "description",
                false,
            ),
            (
                serde_json::json!({"event": "ticket_deleted"}),
                "event",
                false,
            ),
        ];
        for (overrides, field, malformed) in cases {
            let err = parse_ticket(&body(overrides.clone()), now()).unwrap_err();
            assert!(err.to_string().contains(field), "{overrides}: {err}");
            assert_eq!(
                matches!(err, InboundError::Malformed(_)),
                *malformed,
                "{overrides}: {err:?}"
            );
        }
    }

    #[test]
    fn creations_outside_the_time_window_are_stale_but_updates_are_not() {
        let old = serde_json::json!({"created_at": "2026-11-25T11:50:00Z"});
        assert!(matches!(
            parse_ticket(&body(old.clone()), now()),
            Err(InboundError::Stale(_))
        ));
        let future = serde_json::json!({"created_at": "2026-11-25T12:01:00Z"});
        assert!(matches!(
            parse_ticket(&body(future), now()),
            Err(InboundError::Stale(_))
        ));
        let update =
            serde_json::json!({"created_at": "2026-11-25T11:50:00Z", "event": "ticket_updated"});
        assert!(parse_ticket(&body(update), now()).is_ok());
    }

    #[test]
    fn duplicated_keys_are_refused() {
        let raw = br#"{"tenant_id":"acme","tenant_id":"evil"}"#;
        assert!(tenant_of(raw).is_err());
    }
}
