//! Zendesk webhooks, as a trigger's "Notify active webhook" action or an
//! event subscription sends them.
//!
//! A trigger's body is a template the admin writes (see
//! `docs/help-desks.md`). Zendesk renders placeholders as plain text and
//! does not promise to escape them inside JSON, so the template we give
//! sends only safe scalars: `{"event": "ticket.created", "ticket_id":
//! "{{ticket.id}}"}` (and `"ticket.solved"` from the trigger on Solved); the
//! ingress reads the rest through the API. A body that carries the ticket
//! itself (`"ticket": {"id", "subject", "description", …}`) is taken as it
//! is. An event subscription's envelope (`"type":
//! "zen:event-type:ticket.created"`, `"detail": {…}`) is understood too.

use aia_events::{ItsmKind, TicketChange, TicketId, TicketReceived};
use chrono::Utc;
use serde_json::Value;

use crate::common::text_of;
use crate::inbound::{Inbound, InboundError, Mentioned, check_text, json_error};
use crate::inbound::{MAX_TEXT_CHARS, cut_description};

/// Parses a Zendesk webhook body.
pub fn parse(body: &[u8]) -> Result<Inbound, InboundError> {
    let hook: Value = serde_json::from_slice(body).map_err(|err| json_error(&err))?;
    if !hook.is_object() {
        return Err(InboundError::Malformed(
            "the body must be a JSON object".into(),
        ));
    }
    // An event subscription: {type, detail: {id, subject, description, status, …}}.
    if let Some(kind) = hook["type"].as_str() {
        let event = kind.strip_prefix("zen:event-type:").unwrap_or(kind);
        let detail = &hook["detail"];
        let ticket_id = ticket_id(&detail["id"])?;
        return Ok(match event {
            "ticket.created" => received(ticket_id, detail)?,
            "ticket.status_changed" => {
                let status = hook["event"]["current"]
                    .as_str()
                    .or(detail["status"].as_str());
                if matches!(
                    status.map(str::to_ascii_lowercase).as_deref(),
                    Some("solved" | "closed")
                ) {
                    Inbound::Mention {
                        ticket_id,
                        change: Mentioned::Resolved,
                    }
                } else {
                    ignored(event)
                }
            }
            other => ignored(other),
        });
    }
    let event = hook["event"].as_str().unwrap_or("");
    let ticket = &hook["ticket"];
    let ticket_id = match ticket {
        Value::Object(_) => ticket_id(&ticket["id"])?,
        _ => ticket_id(&hook["ticket_id"])?,
    };
    let change = match event {
        "ticket.created" | "created" => Mentioned::Created,
        "ticket.updated" | "updated" => Mentioned::Updated,
        "ticket.solved" | "ticket.closed" | "solved" | "closed" => Mentioned::Resolved,
        "" => Mentioned::Unknown,
        other => {
            return Err(InboundError::value(
                "event",
                format!("{other:?} is not ticket.created, ticket.updated or ticket.solved"),
            ));
        }
    };
    let has_text = ticket["description"]
        .as_str()
        .is_some_and(|text| !text.trim().is_empty());
    if change == Mentioned::Created && has_text {
        return received(ticket_id, ticket);
    }
    Ok(Inbound::Mention { ticket_id, change })
}

fn ignored(event: &str) -> Inbound {
    Inbound::Ignored {
        reason: format!("{event} needs no note"),
    }
}

fn ticket_id(raw: &Value) -> Result<TicketId, InboundError> {
    let id = text_of(raw).ok_or_else(|| InboundError::field("ticket_id", "is missing"))?;
    let id = id.trim().trim_start_matches('#');
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InboundError::value(
            "ticket_id",
            "must be a Zendesk ticket number",
        ));
    }
    TicketId::parse(id).map_err(|err| InboundError::value("ticket_id", err))
}

/// A new ticket with its text, from a trigger body or an event's detail.
fn received(ticket_id: TicketId, ticket: &Value) -> Result<Inbound, InboundError> {
    let mut summary = super::summary(ticket);
    if let Some(requester) = ticket["requester"]
        .as_str()
        .or(ticket["requester_name"].as_str())
    {
        summary.requester = Some(requester.to_owned());
    }
    check_text("subject", &summary.subject, MAX_TEXT_CHARS)?;
    summary.description = cut_description("description", summary.description)?;
    if summary.description.trim().is_empty() {
        return Err(InboundError::field("description", "is empty"));
    }
    Ok(Inbound::Received {
        ticket_id,
        ticket: TicketReceived {
            source: ItsmKind::Zendesk,
            change: TicketChange::Created,
            subject: Some(summary.subject).filter(|subject| !subject.trim().is_empty()),
            description: summary.description,
            priority: summary.priority,
            requester: summary.requester,
            created_at: summary.created_at.unwrap_or_else(Utc::now),
            delivery_id: String::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(value: Value) -> Result<Inbound, InboundError> {
        parse(&serde_json::to_vec(&value).unwrap())
    }

    #[test]
    fn the_documented_trigger_bodies_name_the_ticket_and_what_happened() {
        assert_eq!(
            parse_json(json!({"event": "ticket.created", "ticket_id": "4711"})).unwrap(),
            Inbound::Mention {
                ticket_id: TicketId::parse("4711").unwrap(),
                change: Mentioned::Created
            }
        );
        assert_eq!(
            parse_json(json!({"event": "ticket.solved", "ticket_id": 4711})).unwrap(),
            Inbound::Mention {
                ticket_id: TicketId::parse("4711").unwrap(),
                change: Mentioned::Resolved
            }
        );
    }

    #[test]
    fn a_body_that_carries_the_ticket_is_taken_as_it_is() {
        let inbound = parse_json(json!({"event": "ticket.created", "ticket": {
            "id": "12", "subject": "VPN drops", "description": "Every hour.\nSince Monday.",
            "priority": "urgent", "created_at": "2026-12-01T10:00:00Z", "requester": "Jane"}}))
        .unwrap();
        let Inbound::Received { ticket_id, ticket } = inbound else {
            panic!("{inbound:?}")
        };
        assert_eq!(ticket_id.as_str(), "12");
        assert_eq!(ticket.subject.as_deref(), Some("VPN drops"));
        assert_eq!(ticket.description, "Every hour.\nSince Monday.");
        assert_eq!(ticket.priority, aia_events::Priority::Critical);
        assert_eq!(ticket.requester.as_deref(), Some("Jane"));
        assert_eq!(ticket.created_at.to_rfc3339(), "2026-12-01T10:00:00+00:00");
    }

    #[test]
    fn an_event_subscription_envelope_is_understood() {
        let created = parse_json(json!({"type": "zen:event-type:ticket.created", "account_id": 1,
            "detail": {"id": "35436", "subject": "Printer", "description": "Offline", "status": "new",
                       "priority": "low", "created_at": "2026-12-01T10:00:00Z"}}))
        .unwrap();
        assert!(matches!(created, Inbound::Received { .. }), "{created:?}");
        let solved = parse_json(json!({"type": "zen:event-type:ticket.status_changed",
            "detail": {"id": "35436", "status": "SOLVED"}, "event": {"current": "SOLVED", "previous": "OPEN"}}))
        .unwrap();
        assert_eq!(
            solved,
            Inbound::Mention {
                ticket_id: TicketId::parse("35436").unwrap(),
                change: Mentioned::Resolved
            }
        );
        let other = parse_json(
            json!({"type": "zen:event-type:ticket.priority_changed", "detail": {"id": "1"}}),
        )
        .unwrap();
        assert!(matches!(other, Inbound::Ignored { .. }));
    }

    #[test]
    fn broken_bodies_are_refused_with_the_field_named() {
        for (body, field) in [
            (json!({"event": "ticket.created"}), "ticket_id"),
            (
                json!({"event": "ticket.created", "ticket_id": "../1"}),
                "ticket_id",
            ),
            (
                json!({"event": "ticket.exploded", "ticket_id": "1"}),
                "event",
            ),
            (json!([1, 2]), "object"),
        ] {
            let err = parse_json(body.clone()).unwrap_err();
            assert!(err.to_string().contains(field), "{body}: {err}");
        }
        assert!(matches!(parse(b"{"), Err(InboundError::Malformed(_))));
    }
}
