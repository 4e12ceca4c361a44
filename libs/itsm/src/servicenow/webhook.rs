//! ServiceNow's outbound REST message from a business rule on `incident`
//! (after insert, and after update when the state changes to Resolved or
//! Closed). ServiceNow does not sign it: the ingress authenticates it by
//! Basic auth or a secret header the rule sets. The rule's script (in
//! `docs/help-desks.md`) builds the body with `JSON.stringify`, so the text
//! arrives escaped: `{"event": "created"|"resolved", "sys_id", "number",
//! "short_description", "description", "priority", "state", "opened_at",
//! "resolved_at", "close_code", "close_notes", "caller"}`.

use aia_events::{ItsmKind, TicketChange, TicketId, TicketReceived, TicketResolved};
use chrono::Utc;
use serde_json::Value;

use crate::common::text_of;
use crate::inbound::{Inbound, InboundError, Mentioned, check_text, json_error};
use crate::inbound::{MAX_TEXT_CHARS, cut_description};

pub fn parse(body: &[u8]) -> Result<Inbound, InboundError> {
    let hook: Value = serde_json::from_slice(body).map_err(|err| json_error(&err))?;
    if !hook.is_object() {
        return Err(InboundError::Malformed(
            "the body must be a JSON object".into(),
        ));
    }
    let number =
        text_of(&hook["number"]).ok_or_else(|| InboundError::field("number", "is missing"))?;
    let valid = number.len() <= 40 && number.bytes().all(|b| b.is_ascii_alphanumeric());
    if !valid {
        return Err(InboundError::value(
            "number",
            "must be an incident number such as INC0010001",
        ));
    }
    let ticket_id = TicketId::parse(&number).map_err(|err| InboundError::value("number", err))?;
    let change = match hook["event"]
        .as_str()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("created" | "incident.created" | "insert") => Mentioned::Created,
        Some("updated" | "incident.updated" | "update") => Mentioned::Updated,
        Some("resolved" | "closed" | "incident.resolved" | "incident.closed") => {
            Mentioned::Resolved
        }
        None => Mentioned::Unknown,
        Some(other) => {
            return Err(InboundError::value(
                "event",
                format!("{other:?} is not created, updated or resolved"),
            ));
        }
    };
    let mut summary = super::summary(&hook);
    check_text("short_description", &summary.subject, MAX_TEXT_CHARS)?;
    summary.description = cut_description("description", summary.description)?;
    // As `inbound::complete` reads a mention: an update of a resolved
    // incident is its resolution.
    match (change, summary.resolution) {
        (Mentioned::Resolved | Mentioned::Updated | Mentioned::Unknown, Some(resolution))
            if hook["resolved_at"].is_string() =>
        {
            check_text("close_notes", &resolution.text, MAX_TEXT_CHARS)?;
            Ok(Inbound::Resolved {
                ticket_id,
                ticket: TicketResolved {
                    source: ItsmKind::Servicenow,
                    subject: summary.subject,
                    description: summary.description,
                    resolution: resolution.text,
                    priority: summary.priority,
                    tags: Vec::new(),
                    resolved_at: resolution.resolved_at,
                    // Decided by the ingress with the tenant's settings.
                    language: None,
                },
            })
        }
        (Mentioned::Created, _)
            if !summary.description.trim().is_empty() || !summary.subject.trim().is_empty() =>
        {
            let description = if summary.description.trim().is_empty() {
                summary.subject.clone()
            } else {
                summary.description
            };
            Ok(Inbound::Received {
                ticket_id,
                ticket: TicketReceived {
                    source: ItsmKind::Servicenow,
                    change: TicketChange::Created,
                    subject: Some(summary.subject).filter(|subject| !subject.trim().is_empty()),
                    description,
                    priority: summary.priority,
                    requester: summary.requester,
                    created_at: summary.created_at.unwrap_or_else(Utc::now),
                    delivery_id: String::new(),
                },
            })
        }
        _ => Ok(Inbound::Mention { ticket_id, change }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(value: Value) -> Result<Inbound, InboundError> {
        parse(&serde_json::to_vec(&value).unwrap())
    }

    #[test]
    fn the_business_rules_created_body_is_a_received_ticket() {
        let inbound = parse_json(json!({"event": "created", "sys_id": "a9e30c7dc61122760116894de7bcc7bd",
            "number": "INC0010001", "short_description": "VPN drops", "description": "Every hour\nsince Monday",
            "priority": "2", "state": "1", "opened_at": "2026-12-04 09:12:00", "caller": "Jane"}))
        .unwrap();
        let Inbound::Received { ticket_id, ticket } = inbound else {
            panic!("{inbound:?}")
        };
        assert_eq!(ticket_id.as_str(), "INC0010001");
        assert_eq!(ticket.description, "Every hour\nsince Monday");
        assert_eq!(ticket.priority, aia_events::Priority::High);
        assert_eq!(ticket.created_at.to_rfc3339(), "2026-12-04T09:12:00+00:00");
        assert_eq!(ticket.requester.as_deref(), Some("Jane"));
    }

    #[test]
    fn the_resolved_body_is_a_resolved_ticket_with_its_close_notes() {
        let inbound = parse_json(json!({"event": "resolved", "number": "INC0010001",
            "short_description": "VPN drops", "description": "Every hour", "priority": "3",
            "state": "6", "resolved_at": "2026-12-04 11:00:00", "close_code": "Solved (Permanently)",
            "close_notes": "Phase 2 lifetime aligned to 3600 s."}))
        .unwrap();
        let Inbound::Resolved { ticket, .. } = inbound else {
            panic!("{inbound:?}")
        };
        assert_eq!(
            ticket.resolution,
            "Solved (Permanently): Phase 2 lifetime aligned to 3600 s."
        );
        assert_eq!(ticket.resolved_at.to_rfc3339(), "2026-12-04T11:00:00+00:00");
    }

    #[test]
    fn a_resolved_body_without_its_details_mentions_the_incident() {
        assert_eq!(
            parse_json(json!({"event": "resolved", "number": "INC0010001", "state": "6"})).unwrap(),
            Inbound::Mention {
                ticket_id: TicketId::parse("INC0010001").unwrap(),
                change: Mentioned::Resolved
            }
        );
    }

    #[test]
    fn broken_bodies_name_the_field() {
        for (body, field) in [
            (json!({"event": "created"}), "number"),
            (json!({"event": "created", "number": "INC/../1"}), "number"),
            (json!({"event": "deleted", "number": "INC1"}), "event"),
        ] {
            let err = parse_json(body.clone()).unwrap_err();
            assert!(err.to_string().contains(field), "{body}: {err}");
        }
    }
}
