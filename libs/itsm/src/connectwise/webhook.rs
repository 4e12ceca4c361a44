//! ConnectWise PSA callbacks (`/system/callbacks`, type `ticket`):
//! `{"MessageId", "FromUrl", "CompanyId", "MemberId", "Action": "added" |
//! "updated" | "deleted", "Type": "ticket", "ID", "Entity": "<the ticket as
//! a JSON string>", "Metadata": {"key_url"}, …}`, with `x-content-signature`
//! = base64(HMAC-SHA256(body)) keyed by the SHA-256 of the signing key that
//! `key_url` serves (ConnectWise's Developer Guide, "Verifying the Callback
//! Source"). The ticket's description is not in the entity, so a callback
//! is a mention: the ingress reads the ticket and its notes.

use aia_events::TicketId;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::common::text_of;
use crate::inbound::{Inbound, InboundError, Mentioned, json_error};

pub const SIGNATURE_HEADER: &str = "x-content-signature";

/// The callback's `Metadata.key_url`, read before the body is trusted.
pub fn key_url(body: &[u8]) -> Option<String> {
    let hook: Value = serde_json::from_slice(body).ok()?;
    let metadata = &hook["Metadata"];
    let metadata = if metadata.is_null() {
        &hook["metadata"]
    } else {
        metadata
    };
    metadata["key_url"].as_str().map(str::to_owned)
}

/// The signature ConnectWise sends for `body` under `signing_key`.
pub fn signature(signing_key: &str, body: &[u8]) -> String {
    let key = Sha256::digest(signing_key.as_bytes());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `header` is the signature of `body` under `signing_key`,
/// compared in constant time.
pub fn verify(signing_key: &str, body: &[u8], header: &str) -> bool {
    let expected = signature(signing_key, body);
    let given = header.trim().as_bytes();
    !given.is_empty() && bool::from(expected.as_bytes().ct_eq(given))
}

/// The signing key in what `key_url` answers (`{"signing_key": …}`).
pub fn signing_key(answer: &[u8]) -> Option<String> {
    let answer: Value = serde_json::from_slice(answer).ok()?;
    answer["signing_key"]
        .as_str()
        .or(answer["signingKey"].as_str())
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
}

pub fn parse(body: &[u8]) -> Result<Inbound, InboundError> {
    let hook: Value = serde_json::from_slice(body).map_err(|err| json_error(&err))?;
    if !hook.is_object() {
        return Err(InboundError::Malformed(
            "the body must be a JSON object".into(),
        ));
    }
    let kind = hook["Type"].as_str().unwrap_or_default();
    if !kind.eq_ignore_ascii_case("ticket") {
        return Ok(Inbound::Ignored {
            reason: format!("a {kind:?} callback is not about a ticket"),
        });
    }
    let id = text_of(&hook["ID"]).ok_or_else(|| InboundError::field("ID", "is missing"))?;
    if !id.bytes().all(|b| b.is_ascii_digit()) || id.len() > 20 {
        return Err(InboundError::value("ID", "must be a ticket number"));
    }
    let ticket_id = TicketId::parse(&id).map_err(|err| InboundError::value("ID", err))?;
    let entity: Value = match &hook["Entity"] {
        Value::String(json) => serde_json::from_str(json).map_err(|err| {
            InboundError::field("Entity", format!("is not the ticket as JSON: {err}"))
        })?,
        Value::Object(_) => hook["Entity"].clone(),
        _ => Value::Null,
    };
    let change = match hook["Action"]
        .as_str()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("added") => Mentioned::Created,
        Some("updated") if super::is_closed(&entity) => Mentioned::Resolved,
        Some("updated") => Mentioned::Updated,
        Some("deleted") => {
            return Ok(Inbound::Ignored {
                reason: "a deleted ticket needs no note".into(),
            });
        }
        other => {
            return Err(InboundError::value(
                "Action",
                format!("{other:?} is not added, updated or deleted"),
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
    fn the_signature_is_keyed_by_the_sha256_of_the_signing_key() {
        // Computed independently (Python's hmac and hashlib) from the
        // Developer Guide's C# sample: HMACSHA256(SHA256(key)) over the body.
        let body = br#"{"Action":"added","ID":42}"#;
        assert_eq!(
            signature("my-signing-key", body),
            "VT6VxZFl83aDE3TRE9mCaB6JGj3ZjJBnfeWuyHLOHjc="
        );
        assert!(verify(
            "my-signing-key",
            body,
            "VT6VxZFl83aDE3TRE9mCaB6JGj3ZjJBnfeWuyHLOHjc="
        ));
        assert!(!verify(
            "my-signing-key",
            body,
            "VT6VxZFl83aDE3TRE9mCaB6JGj3ZjJBnfeWuyHLOHjd="
        ));
        assert!(!verify(
            "other-key",
            body,
            "VT6VxZFl83aDE3TRE9mCaB6JGj3ZjJBnfeWuyHLOHjc="
        ));
        assert!(!verify("my-signing-key", body, ""));
    }

    #[test]
    fn a_callback_names_its_ticket_and_what_happened() {
        let entity =
            json!({"id": 42, "summary": "VPN", "closedFlag": false, "status": {"name": "New"}})
                .to_string();
        let body = |action: &str, entity: &str| {
            serde_json::to_vec(&json!({"MessageId": "m", "FromUrl": "na.myconnectwise.net", "CompanyId": "acme",
                "Action": action, "Type": "ticket", "ID": 42, "Entity": entity,
                "Metadata": {"key_url": "https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?id=1"}}))
            .unwrap()
        };
        let ticket_id = TicketId::parse("42").unwrap();
        assert_eq!(
            parse(&body("added", &entity)).unwrap(),
            Inbound::Mention {
                ticket_id: ticket_id.clone(),
                change: Mentioned::Created
            }
        );
        let closed =
            json!({"id": 42, "closedFlag": true, "status": {"name": ">Closed"}}).to_string();
        assert_eq!(
            parse(&body("updated", &closed)).unwrap(),
            Inbound::Mention {
                ticket_id: ticket_id.clone(),
                change: Mentioned::Resolved
            }
        );
        assert_eq!(
            parse(&body("updated", &entity)).unwrap(),
            Inbound::Mention {
                ticket_id,
                change: Mentioned::Updated
            }
        );
        assert!(matches!(
            parse(&body("deleted", "null")).unwrap(),
            Inbound::Ignored { .. }
        ));
        assert_eq!(
            key_url(&body("added", &entity)).as_deref(),
            Some("https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?id=1")
        );
    }

    #[test]
    fn broken_callbacks_name_the_field() {
        for (body, field) in [
            (json!({"Type": "ticket", "Action": "added"}), "ID"),
            (
                json!({"Type": "ticket", "Action": "added", "ID": "4/2"}),
                "ID",
            ),
            (
                json!({"Type": "ticket", "Action": "exploded", "ID": 1}),
                "Action",
            ),
            (
                json!({"Type": "ticket", "Action": "added", "ID": 1, "Entity": "{not json"}),
                "Entity",
            ),
        ] {
            let err = parse(&serde_json::to_vec(&body).unwrap()).unwrap_err();
            assert!(err.to_string().contains(field), "{body}: {err}");
        }
        let other = json!({"Type": "contact", "Action": "added", "ID": 1});
        assert!(matches!(
            parse(&serde_json::to_vec(&other).unwrap()).unwrap(),
            Inbound::Ignored { .. }
        ));
    }

    #[test]
    fn the_signing_key_is_read_from_its_answer() {
        assert_eq!(
            signing_key(br#"{"signing_key": "abc"}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(signing_key(br#"{"signing_key": ""}"#), None);
        assert_eq!(signing_key(b"<html>"), None);
    }
}
