//! HaloPSA webhooks (Configuration → Integrations → Webhooks): JSON with the
//! ticket object (and the action, where there is one), authenticated by
//! Basic auth (or a header) — Halo cannot sign. The body names the ticket
//! (`ticket.id`, or `ticket_id`/`id` at the top); its state decides what
//! happened, so the ingress reads the ticket. Halo can batch events into
//! one delivery: a batch of one is read, a larger one is refused (turn
//! batching off for this webhook).

use aia_events::TicketId;
use serde_json::Value;

use crate::common::text_of;
use crate::inbound::{Inbound, InboundError, Mentioned, json_error};

pub fn parse(body: &[u8]) -> Result<Inbound, InboundError> {
    let hook: Value = serde_json::from_slice(body).map_err(|err| json_error(&err))?;
    let hook = match hook {
        Value::Array(mut batch) if batch.len() == 1 => batch.remove(0),
        Value::Array(batch) => {
            return Err(InboundError::value(
                "body",
                format!(
                    "a batch of {} events: turn batching off for this webhook",
                    batch.len()
                ),
            ));
        }
        hook => hook,
    };
    if !hook.is_object() {
        return Err(InboundError::Malformed(
            "the body must be a JSON object".into(),
        ));
    }
    let id = text_of(&hook["ticket"]["id"])
        .or_else(|| text_of(&hook["ticket_id"]))
        .or_else(|| text_of(&hook["id"]))
        .ok_or_else(|| InboundError::field("ticket.id", "is missing"))?;
    if !id.bytes().all(|b| b.is_ascii_digit()) || id.len() > 20 {
        return Err(InboundError::value("ticket.id", "must be a ticket number"));
    }
    let ticket_id = TicketId::parse(&id).map_err(|err| InboundError::value("ticket.id", err))?;
    let change = match hook["event"]
        .as_str()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("created" | "new ticket logged" | "ticket.created") => Mentioned::Created,
        Some("closed" | "resolved" | "ticket.closed") => Mentioned::Resolved,
        Some("updated" | "ticket.updated") => Mentioned::Updated,
        _ => Mentioned::Unknown,
    };
    Ok(Inbound::Mention { ticket_id, change })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(value: Value) -> Result<Inbound, InboundError> {
        parse(&serde_json::to_vec(&value).unwrap())
    }

    #[test]
    fn a_webhook_names_the_ticket_and_its_state_decides() {
        let id = TicketId::parse("2818").unwrap();
        for body in [
            json!({"ticket": {"id": 2818, "summary": "Printer", "status_id": 1}}),
            json!([{"ticket": {"id": "2818"}}]),
            json!({"ticket_id": 2818}),
        ] {
            assert_eq!(
                parse_json(body.clone()).unwrap(),
                Inbound::Mention {
                    ticket_id: id.clone(),
                    change: Mentioned::Unknown
                },
                "{body}"
            );
        }
        assert_eq!(
            parse_json(json!({"event": "closed", "ticket": {"id": 2818}})).unwrap(),
            Inbound::Mention {
                ticket_id: id,
                change: Mentioned::Resolved
            }
        );
    }

    #[test]
    fn broken_or_batched_bodies_are_refused_with_a_reason() {
        for (body, field) in [
            (json!({"ticket": {"summary": "x"}}), "ticket.id"),
            (json!({"ticket": {"id": "1 OR 1=1"}}), "ticket.id"),
            (
                json!([{"ticket": {"id": 1}}, {"ticket": {"id": 2}}]),
                "batching",
            ),
            (json!("text"), "object"),
        ] {
            let err = parse_json(body.clone()).unwrap_err();
            assert!(err.to_string().contains(field), "{body}: {err}");
        }
    }
}
