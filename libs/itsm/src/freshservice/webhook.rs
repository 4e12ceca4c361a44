//! Freshservice's Workflow Automator "Trigger Webhook" action. Freshservice
//! cannot sign it: the ingress authenticates it by Basic auth or a secret
//! header set in the action. The body is a template the admin writes (see
//! `docs/help-desks.md`); the one we give sends safe scalars only —
//! `{"event": "created", "ticket_id": {{ticket.id_numeric}}}`, and
//! `"resolved"` from the workflow on Resolved/Closed — and the ingress reads
//! the rest through the API. A body carrying `subject` and `description`
//! is taken as it is.

use aia_events::{ItsmKind, TicketChange, TicketId, TicketReceived};
use chrono::Utc;
use serde_json::Value;

use crate::common::text_of;
use crate::inbound::{Inbound, InboundError, Mentioned, check_text, json_error};
use crate::inbound::{MAX_TEXT_CHARS, cut_description};
use crate::render::html_to_text;

pub fn parse(body: &[u8]) -> Result<Inbound, InboundError> {
    let hook: Value = serde_json::from_slice(body).map_err(|err| json_error(&err))?;
    if !hook.is_object() {
        return Err(InboundError::Malformed(
            "the body must be a JSON object".into(),
        ));
    }
    let ticket = if hook["ticket"].is_object() {
        &hook["ticket"]
    } else {
        &hook
    };
    let raw_id = text_of(&ticket["ticket_id"])
        .or_else(|| text_of(&ticket["id"]))
        .ok_or_else(|| InboundError::field("ticket_id", "is missing"))?;
    // `{{ticket.id}}` renders a display id such as "#INC-42"; the API wants 42.
    let digits: String = raw_id
        .trim()
        .trim_start_matches('#')
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InboundError::value(
            "ticket_id",
            "must be a Freshservice ticket number",
        ));
    }
    let ticket_id =
        TicketId::parse(&digits).map_err(|err| InboundError::value("ticket_id", err))?;
    let event = hook["event"].as_str().unwrap_or("").to_ascii_lowercase();
    let change = match event
        .trim_start_matches("ticket.")
        .trim_start_matches("ticket_")
    {
        "created" | "raised" => Mentioned::Created,
        "updated" => Mentioned::Updated,
        "resolved" | "closed" => Mentioned::Resolved,
        "" => Mentioned::Unknown,
        other => {
            return Err(InboundError::value(
                "event",
                format!("{other:?} is not created, updated or resolved"),
            ));
        }
    };
    let description = ticket["description_text"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| ticket["description"].as_str().map(html_to_text))
        .filter(|text| !text.trim().is_empty());
    match (change, description) {
        (Mentioned::Created, Some(description)) => {
            let subject = ticket["subject"].as_str().map(str::to_owned);
            if let Some(subject) = &subject {
                check_text("subject", subject, MAX_TEXT_CHARS)?;
            }
            let description = cut_description("description", description)?;
            Ok(Inbound::Received {
                ticket_id,
                ticket: TicketReceived {
                    source: ItsmKind::Freshservice,
                    change: TicketChange::Created,
                    subject: subject.filter(|subject| !subject.trim().is_empty()),
                    description,
                    priority: super::priority(&ticket["priority"]),
                    requester: ticket["requester"].as_str().map(str::to_owned),
                    created_at: ticket["created_at"]
                        .as_str()
                        .and_then(|raw| raw.parse().ok())
                        .unwrap_or_else(Utc::now),
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
    fn the_documented_bodies_mention_the_ticket() {
        for (body, change) in [
            (
                json!({"event": "created", "ticket_id": 42}),
                Mentioned::Created,
            ),
            (
                json!({"event": "resolved", "ticket_id": "42"}),
                Mentioned::Resolved,
            ),
            (
                json!({"event": "closed", "ticket_id": "#SR-42"}),
                Mentioned::Resolved,
            ),
            (json!({"ticket_id": 42}), Mentioned::Unknown),
        ] {
            assert_eq!(
                parse_json(body.clone()).unwrap(),
                Inbound::Mention {
                    ticket_id: TicketId::parse("42").unwrap(),
                    change
                },
                "{body}"
            );
        }
    }

    #[test]
    fn a_body_with_the_text_is_taken_as_it_is() {
        let inbound = parse_json(
            json!({"event": "created", "ticket_id": 7, "subject": "Mail down",
            "description": "<div>Outlook <b>cannot</b> connect</div>", "priority": 3}),
        )
        .unwrap();
        let Inbound::Received { ticket, .. } = inbound else {
            panic!()
        };
        assert_eq!(ticket.description, "Outlook cannot connect");
        assert_eq!(ticket.priority, aia_events::Priority::High);
        assert_eq!(ticket.source, ItsmKind::Freshservice);
    }

    #[test]
    fn broken_bodies_name_the_field() {
        for (body, field) in [
            (json!({"event": "created"}), "ticket_id"),
            (json!({"event": "created", "ticket_id": "abc"}), "ticket_id"),
            (json!({"event": "merged", "ticket_id": 1}), "event"),
        ] {
            let err = parse_json(body.clone()).unwrap_err();
            assert!(err.to_string().contains(field), "{body}: {err}");
        }
    }
}
