//! Autotask ticket webhooks (`TicketWebhooks`, with the fields whose change
//! triggers a callout): `{"Action": "Create" | "Update" | "Delete", "Guid",
//! "EntityType": "Ticket", "Id", "Fields": {…}, "EventTime",
//! "SequenceNumber", "PersonId"}`, signed in `X-Hook-Signature` as
//! `sha1=<base64 of HMAC-SHA1(body)>` keyed by the webhook's secret key
//! (Autotask's "Secret key and payload verification"). The payload carries
//! only the subscribed fields, so a callout is a mention: the ingress reads
//! the ticket.

use aia_events::TicketId;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha1::Sha1;
use subtle::ConstantTimeEq as _;

use crate::common::text_of;
use crate::inbound::{Inbound, InboundError, Mentioned, json_error};

pub const SIGNATURE_HEADER: &str = "x-hook-signature";

/// `sha1=<base64 HMAC-SHA1 of body>` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha1> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha1={}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether `header` signs `body` under `secret`: over the bytes received,
/// or over the form Autotask is seen to sign, with `& < > ' " ` +` and
/// every non-ASCII character inside JSON strings written as `\uXXXX`.
pub fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    let given = header.trim().as_bytes();
    if given.is_empty() {
        return false;
    }
    let raw = signature(secret, body);
    let escaped = signature(secret, escaped_form(body).as_bytes());
    bool::from(raw.as_bytes().ct_eq(given)) | bool::from(escaped.as_bytes().ct_eq(given))
}

/// `body` with the characters Autotask escapes inside JSON strings written
/// as `\uXXXX` (upper-case hex, UTF-16 code units).
pub fn escaped_form(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if !in_string {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
            continue;
        }
        match c {
            '"' => {
                in_string = false;
                out.push(c);
            }
            '\\' => match chars.next() {
                Some('"') => out.push_str("\\u0022"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '&' | '<' | '>' | '\'' | '`' | '+' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

pub fn parse(body: &[u8]) -> Result<Inbound, InboundError> {
    let hook: Value = serde_json::from_slice(body).map_err(|err| json_error(&err))?;
    if !hook.is_object() {
        return Err(InboundError::Malformed(
            "the body must be a JSON object".into(),
        ));
    }
    let entity = hook["EntityType"].as_str().unwrap_or("Ticket");
    if !entity.eq_ignore_ascii_case("ticket") {
        return Ok(Inbound::Ignored {
            reason: format!("a {entity:?} callout is not about a ticket"),
        });
    }
    let id = text_of(&hook["Id"])
        .or_else(|| text_of(&hook["id"]))
        .ok_or_else(|| InboundError::field("Id", "is missing"))?;
    if !id.bytes().all(|b| b.is_ascii_digit()) || id.len() > 20 {
        return Err(InboundError::value("Id", "must be a ticket id"));
    }
    let ticket_id = TicketId::parse(&id).map_err(|err| InboundError::value("Id", err))?;
    let completed = text_of(&hook["Fields"]["Status"]).as_deref() == Some("5");
    let change = match hook["Action"]
        .as_str()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("create") => Mentioned::Created,
        Some("update") if completed => Mentioned::Resolved,
        Some("update") => Mentioned::Updated,
        Some("delete" | "deactivated") => {
            return Ok(Inbound::Ignored {
                reason: "a deleted ticket (or a deactivated webhook) needs no note".into(),
            });
        }
        other => {
            return Err(InboundError::value(
                "Action",
                format!("{other:?} is not Create, Update or Delete"),
            ));
        }
    };
    Ok(Inbound::Mention { ticket_id, change })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_signature_is_a_base64_hmac_sha1_of_the_body() {
        // Computed independently with Python's hmac (SHA-1, base64), as
        // Autotask's payload-verification page describes.
        let secret = "whsec_test-autotask-key";
        let raw = "{\"Action\":\"Create\",\"Fields\":{\"Title\":\"A&B <x> café\"},\"Id\":7}";
        assert_eq!(
            signature(secret, raw.as_bytes()),
            "sha1=4CGGO+0uKCTTUhMQShOa76VVzSQ="
        );
        assert!(verify(
            secret,
            raw.as_bytes(),
            "sha1=4CGGO+0uKCTTUhMQShOa76VVzSQ="
        ));
        // Autotask signs the escaped form: accepted too.
        assert_eq!(
            escaped_form(raw.as_bytes()),
            r#"{"Action":"Create","Fields":{"Title":"A\u0026B \u003Cx\u003E caf\u00E9"},"Id":7}"#
        );
        assert!(verify(
            secret,
            raw.as_bytes(),
            "sha1=J5rSDTyNz2aTy/YQtVlwh1hDDVE="
        ));
        assert!(!verify(
            secret,
            raw.as_bytes(),
            "sha1=J5rSDTyNz2aTy/YQtVlwh1hDDVF="
        ));
        assert!(!verify(
            "another key",
            raw.as_bytes(),
            "sha1=4CGGO+0uKCTTUhMQShOa76VVzSQ="
        ));
        assert!(!verify(secret, raw.as_bytes(), ""));
    }

    #[test]
    fn escaping_leaves_json_structure_and_other_escapes_alone() {
        assert_eq!(
            escaped_form(br#"{"a":"say \"hi\"\n+1","b":[1,2]}"#),
            r#"{"a":"say \u0022hi\u0022\n\u002B1","b":[1,2]}"#
        );
        assert_eq!(
            escaped_form("{\"e\":\"😀\"}".as_bytes()),
            r#"{"e":"\uD83D\uDE00"}"#
        );
    }

    #[test]
    fn a_callout_names_its_ticket_and_what_happened() {
        let body = |action: &str, status: &str| {
            serde_json::to_vec(
                &json!({"Action": action, "Guid": "a1da62a4-2c49-40a8-8183-69994ce5b3eb",
                "EntityType": "Ticket", "Id": 351181, "Fields": {"Status": status},
                "EventTime": "2025-09-15T14:57:50Z", "SequenceNumber": 1, "PersonId": 30691780}),
            )
            .unwrap()
        };
        let id = TicketId::parse("351181").unwrap();
        assert_eq!(
            parse(&body("Create", "1")).unwrap(),
            Inbound::Mention {
                ticket_id: id.clone(),
                change: Mentioned::Created
            }
        );
        assert_eq!(
            parse(&body("Update", "5")).unwrap(),
            Inbound::Mention {
                ticket_id: id.clone(),
                change: Mentioned::Resolved
            }
        );
        assert_eq!(
            parse(&body("Update", "8")).unwrap(),
            Inbound::Mention {
                ticket_id: id,
                change: Mentioned::Updated
            }
        );
        assert!(matches!(
            parse(&body("Delete", "1")).unwrap(),
            Inbound::Ignored { .. }
        ));
    }

    #[test]
    fn broken_callouts_name_the_field() {
        for (body, field) in [
            (json!({"Action": "Create", "EntityType": "Ticket"}), "Id"),
            (
                json!({"Action": "Create", "EntityType": "Ticket", "Id": "1;2"}),
                "Id",
            ),
            (
                json!({"Action": "Explode", "EntityType": "Ticket", "Id": 1}),
                "Action",
            ),
        ] {
            let err = parse(&serde_json::to_vec(&body).unwrap()).unwrap_err();
            assert!(err.to_string().contains(field), "{body}: {err}");
        }
    }
}
