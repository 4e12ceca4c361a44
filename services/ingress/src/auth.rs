//! Webhook authentication, per tenant, before anything in the body is
//! trusted. Four schemes, tried in this order by the headers present:
//!
//! 1. Standard Webhooks: `webhook-id`, `webhook-timestamp`,
//!    `webhook-signature` (space-separated `v1,<base64>`), signed content
//!    `{id}.{timestamp}.{body}`, timestamp within 300 s past / 30 s future.
//!    A secret of the form `whsec_<base64>` keys the HMAC with the decoded
//!    bytes, any other secret with its UTF-8 bytes.
//! 2. `X-ServiceDesk-Signature`: hex HMAC-SHA256 of the body, with or
//!    without `sha256=`.
//! 3. `X-Hub-Signature` / `X-Hub-Signature-256`: `sha256=<hex>` (Jira).
//! 4. `X-Webhook-Secret`, or `Authorization: Basic` with the secret as the
//!    password, or `Authorization: Bearer <secret>`: the secret itself, for
//!    tools that cannot sign; only where the tenant allows it, or on the
//!    endpoints of tools that cannot sign at all (Freshservice, ServiceNow,
//!    HaloPSA).
//!
//! A tool's own signature (Zendesk, ConnectWise, Autotask) is checked in
//! [`crate::tools`].
//!
//! Every comparison is constant-time, and every secret of the tenant is
//! tried (two are valid during a rotation).

use aia_store::Secret;
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const STATIC_SECRET_HEADER: &str = "x-webhook-secret";
/// Seconds a signed timestamp may be old, and ahead of our clock: the
/// stream's duplicate window covers both ([`aia_bus::WEBHOOK_MAX_AGE`],
/// [`aia_bus::WEBHOOK_MAX_FUTURE`]).
pub const MAX_AGE_SECS: i64 = aia_bus::WEBHOOK_MAX_AGE.as_secs() as i64;
pub const MAX_FUTURE_SECS: i64 = aia_bus::WEBHOOK_MAX_FUTURE.as_secs() as i64;

/// Which scheme authenticated a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    StandardWebhooks,
    ServiceDeskSignature,
    HubSignature,
    StaticSecret,
    ZendeskSignature,
    ConnectWiseSignature,
    AutotaskSignature,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub scheme: Scheme,
    /// The sender's delivery id, when the scheme carries one.
    pub delivery_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No scheme's headers were present (or the static one is not allowed).
    Missing,
    /// A signature was present and did not match, or was malformed.
    Invalid,
    /// The signed timestamp is outside the accepted window.
    Stale,
}

type HmacSha256 = Hmac<Sha256>;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// A secret no tenant has, verified against for a tenant that does not
/// exist so that its answer costs what a wrong signature costs.
pub fn decoy_secret() -> &'static Secret {
    static DECOY: std::sync::OnceLock<Secret> = std::sync::OnceLock::new();
    DECOY.get_or_init(Secret::generate_webhook_secret)
}

/// The most webhook secrets a tenant has at once: the current one and,
/// during a rotation, the previous.
const MOST_SECRETS: usize = 2;

/// `secrets`, and the decoy's after them up to [`MOST_SECRETS`]: every
/// check does the same work whether a tenant is rotating, is not, or does
/// not exist (a decoy), so its time does not tell which.
pub fn padded(secrets: &[Secret]) -> impl Iterator<Item = &Secret> {
    let padding = MOST_SECRETS.saturating_sub(secrets.len());
    secrets
        .iter()
        .chain(std::iter::repeat_n(decoy_secret(), padding))
}

/// Verifies `body` against the tenant's `secrets`. `now` is Unix seconds.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    now: i64,
    allow_static: bool,
) -> Result<Verified, AuthFailure> {
    if let Some(signatures) = header(headers, "webhook-signature") {
        return standard_webhooks(headers, signatures, body, secrets, now);
    }
    if let Some(signature) = header(headers, "x-servicedesk-signature") {
        let hex_sig = signature.trim();
        let hex_sig = hex_sig.strip_prefix("sha256=").unwrap_or(hex_sig);
        return hex_hmac(hex_sig, body, secrets).map(|()| Verified {
            scheme: Scheme::ServiceDeskSignature,
            delivery_id: None,
        });
    }
    if let Some(signature) =
        header(headers, "x-hub-signature-256").or_else(|| header(headers, "x-hub-signature"))
    {
        let hex_sig = signature
            .trim()
            .strip_prefix("sha256=")
            .ok_or(AuthFailure::Invalid)?;
        return hex_hmac(hex_sig, body, secrets).map(|()| Verified {
            scheme: Scheme::HubSignature,
            delivery_id: None,
        });
    }
    let given = header(headers, STATIC_SECRET_HEADER)
        .map(str::to_owned)
        .or_else(|| header(headers, "authorization").and_then(authorization_secret));
    if let Some(given) = given {
        if !allow_static {
            return Err(AuthFailure::Missing);
        }
        return if is_one_of(secrets, &given) {
            Ok(Verified {
                scheme: Scheme::StaticSecret,
                delivery_id: None,
            })
        } else {
            Err(AuthFailure::Invalid)
        };
    }
    Err(AuthFailure::Missing)
}

/// The secret an `Authorization` header carries: a Basic password (any
/// user name) or a Bearer token.
fn authorization_secret(value: &str) -> Option<String> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(credentials.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(credentials.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        return decoded
            .split_once(':')
            .map(|(_, password)| password.to_owned());
    }
    None
}

/// Whether `given` is one of `secrets`, every one compared in constant time.
pub fn is_one_of(secrets: &[Secret], given: &str) -> bool {
    padded(secrets)
        .enumerate()
        .fold(false, |found, (n, secret)| {
            let expected = secret.expose().as_bytes();
            let equal =
                expected.len() == given.len() && bool::from(expected.ct_eq(given.as_bytes()));
            // The padding is the decoy's, which nobody is given.
            found | (equal & (n < secrets.len()))
        })
}

fn hex_hmac(hex_sig: &str, body: &[u8], secrets: &[Secret]) -> Result<(), AuthFailure> {
    let signature = hex::decode(hex_sig).map_err(|_| AuthFailure::Invalid)?;
    let valid = padded(secrets)
        .enumerate()
        .fold(false, |found, (n, secret)| {
            let mut mac = mac(secret.expose().as_bytes());
            mac.update(body);
            found | (mac.verify_slice(&signature).is_ok() & (n < secrets.len()))
        });
    if valid {
        Ok(())
    } else {
        Err(AuthFailure::Invalid)
    }
}

fn standard_webhooks(
    headers: &HeaderMap,
    signatures: &str,
    body: &[u8],
    secrets: &[Secret],
    now: i64,
) -> Result<Verified, AuthFailure> {
    let id = header(headers, "webhook-id")
        .filter(|id| !id.is_empty() && id.len() <= 256)
        .ok_or(AuthFailure::Invalid)?;
    let timestamp_raw = header(headers, "webhook-timestamp").ok_or(AuthFailure::Invalid)?;
    let timestamp: i64 = timestamp_raw
        .trim()
        .parse()
        .map_err(|_| AuthFailure::Invalid)?;
    if timestamp < now - MAX_AGE_SECS || timestamp > now + MAX_FUTURE_SECS {
        return Err(AuthFailure::Stale);
    }
    let candidates: Vec<Vec<u8>> = signatures
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .collect();
    if candidates.is_empty() {
        return Err(AuthFailure::Invalid);
    }
    let valid = padded(secrets)
        .enumerate()
        .fold(false, |found, (n, secret)| {
            // A secret that makes no key verifies nothing (after the same work).
            let key = aia_http::standard_webhooks::key(secret.expose());
            let mut mac = mac(key.as_deref().unwrap_or_default());
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp_raw.trim().as_bytes());
            mac.update(b".");
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            found
                | (key.is_some()
                    & (n < secrets.len())
                    & candidates.iter().fold(false, |any, candidate| {
                        any | bool::from(expected.as_slice().ct_eq(candidate))
                    }))
        });
    if valid {
        Ok(Verified {
            scheme: Scheme::StandardWebhooks,
            delivery_id: Some(id.to_owned()),
        })
    } else {
        Err(AuthFailure::Invalid)
    }
}

/// Signatures as senders compute them, for tests, the demo and benchmarks.
pub mod sign {
    use super::*;

    pub fn hex(secret: &str, body: &[u8]) -> String {
        let mut mac = mac(secret.as_bytes());
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// The `webhook-signature` value for a Standard Webhooks delivery.
    pub fn standard_webhooks(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = aia_http::standard_webhooks::key(secret).expect("a Standard Webhooks secret");
        let mut mac = mac(&key);
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const NOW: i64 = 1_764_072_000;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn secrets() -> Vec<Secret> {
        vec![
            Secret::new("current-secret"),
            Secret::new("previous-secret"),
        ]
    }

    /// Every tenant is checked against two secrets, its own padded with the
    /// decoy's, so a check takes as long whether it is rotating, is not, or
    /// does not exist — and the padding admits nothing signed with it.
    #[test]
    fn checks_do_the_same_work_for_every_tenant_and_the_padding_admits_nothing() {
        let one = [Secret::new("current-secret")];
        assert_eq!(padded(&one).count(), 2);
        assert_eq!(padded(&secrets()).count(), 2);
        assert_eq!(padded(&[]).count(), 2);
        let decoy = decoy_secret().expose();
        let body = br#"{"a":1}"#;
        let forged = [
            ("x-servicedesk-signature", sign::hex(decoy, body)),
            (
                "x-hub-signature-256",
                format!("sha256={}", sign::hex(decoy, body)),
            ),
            (STATIC_SECRET_HEADER, decoy.to_owned()),
        ];
        for (name, value) in forged {
            let h = headers(&[(name, value)]);
            assert_eq!(
                verify(&h, body, &one, NOW, true),
                Err(AuthFailure::Invalid),
                "{name}"
            );
        }
        let h = headers(&[
            ("webhook-id", "msg_1".into()),
            ("webhook-timestamp", NOW.to_string()),
            (
                "webhook-signature",
                sign::standard_webhooks(decoy, "msg_1", NOW, body),
            ),
        ]);
        assert_eq!(
            verify(&h, body, &one, NOW, false),
            Err(AuthFailure::Invalid)
        );
        assert!(!is_one_of(&one, decoy));
        assert!(is_one_of(&one, "current-secret"));
    }

    #[test]
    fn servicedesk_signatures_verify_with_or_without_prefix_and_either_rotation_secret() {
        let body = br#"{"a":1}"#;
        for value in [
            sign::hex("current-secret", body),
            format!("sha256={}", sign::hex("current-secret", body)),
            sign::hex("previous-secret", body),
        ] {
            let h = headers(&[("x-servicedesk-signature", value)]);
            assert_eq!(
                verify(&h, body, &secrets(), NOW, false).unwrap().scheme,
                Scheme::ServiceDeskSignature
            );
        }
        let h = headers(&[(
            "x-servicedesk-signature",
            sign::hex("current-secret", b"other body"),
        )]);
        assert_eq!(
            verify(&h, body, &secrets(), NOW, false),
            Err(AuthFailure::Invalid)
        );
        let h = headers(&[("x-servicedesk-signature", "zz".into())]);
        assert_eq!(
            verify(&h, body, &secrets(), NOW, false),
            Err(AuthFailure::Invalid)
        );
    }

    #[test]
    fn standard_webhooks_check_id_timestamp_and_any_of_several_signatures() {
        let body = b"{}";
        let good = sign::standard_webhooks("whsec_c2VjcmV0LWJ5dGVz", "msg_1", NOW, body);
        let secrets = [Secret::new("whsec_c2VjcmV0LWJ5dGVz")];
        let h = headers(&[
            ("webhook-id", "msg_1".into()),
            ("webhook-timestamp", NOW.to_string()),
            ("webhook-signature", format!("v1,AAAA {good}")),
        ]);
        let verified = verify(&h, body, &secrets, NOW, false).unwrap();
        assert_eq!(verified.delivery_id.as_deref(), Some("msg_1"));
        // Another id, an old or future timestamp, or a missing header fail.
        let h = headers(&[
            ("webhook-id", "msg_2".into()),
            ("webhook-timestamp", NOW.to_string()),
            ("webhook-signature", good.clone()),
        ]);
        assert_eq!(
            verify(&h, body, &secrets, NOW, false),
            Err(AuthFailure::Invalid)
        );
        for (timestamp, expected) in [
            (NOW - 301, AuthFailure::Stale),
            (NOW + 31, AuthFailure::Stale),
        ] {
            let sig = sign::standard_webhooks("whsec_c2VjcmV0LWJ5dGVz", "msg_1", timestamp, body);
            let h = headers(&[
                ("webhook-id", "msg_1".into()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", sig),
            ]);
            assert_eq!(verify(&h, body, &secrets, NOW, false), Err(expected));
        }
        let h = headers(&[("webhook-signature", good)]);
        assert_eq!(
            verify(&h, body, &secrets, NOW, false),
            Err(AuthFailure::Invalid)
        );
    }

    /// The reference implementation's vectors (standard-webhooks/
    /// standard-webhooks: the Python, JavaScript, Go, C#, PHP and Ruby
    /// libraries' tests, and the Rust library's).
    const VECTORS: [(&str, &str, i64, &str, &str); 2] = [
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
        (
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            r#"{"email":"test@example.com","username":"test_user"}"#,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
    ];

    #[test]
    fn standard_webhooks_agree_with_the_reference_implementations_vectors() {
        for (secret, id, timestamp, payload, expected) in VECTORS {
            assert_eq!(
                sign::standard_webhooks(secret, id, timestamp, payload.as_bytes()),
                expected
            );
            let h = headers(&[
                ("webhook-id", id.into()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", expected.into()),
            ]);
            let verified = verify(
                &h,
                payload.as_bytes(),
                &[Secret::new(secret)],
                timestamp,
                false,
            );
            assert_eq!(verified.map(|v| v.scheme), Ok(Scheme::StandardWebhooks));
        }
        let (secret, id, timestamp, payload, _) = VECTORS[0];
        let check = |signature: &str| {
            let h = headers(&[
                ("webhook-id", id.into()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature.into()),
            ]);
            verify(
                &h,
                payload.as_bytes(),
                &[Secret::new(secret)],
                timestamp,
                false,
            )
        };
        // One character changed; a partial signature; only unknown versions.
        assert_eq!(
            check("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=").map(|_| ()),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(check("v1,").map(|_| ()), Err(AuthFailure::Invalid));
        assert_eq!(check("v1,g0hM9SsE").map(|_| ()), Err(AuthFailure::Invalid));
        assert_eq!(
            check("v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=").map(|_| ()),
            Err(AuthFailure::Invalid)
        );
        // Several, one valid among decoys and another version: accepted.
        assert!(check("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=").is_ok());
        // Five minutes and a second either way: too far.
        let h = headers(&[
            ("webhook-id", id.into()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", VECTORS[0].4.into()),
        ]);
        assert_eq!(
            verify(
                &h,
                payload.as_bytes(),
                &[Secret::new(secret)],
                timestamp + 301,
                false
            ),
            Err(AuthFailure::Stale)
        );
    }

    #[test]
    fn a_new_secret_is_one_the_official_libraries_can_use() {
        let secret = Secret::generate_webhook_secret();
        let encoded = secret
            .expose()
            .strip_prefix("whsec_")
            .expect("whsec_ prefix");
        assert_eq!(STANDARD.decode(encoded).unwrap().len(), 32);
        assert_eq!(
            aia_http::standard_webhooks::key(secret.expose())
                .unwrap()
                .len(),
            32
        );
    }

    #[test]
    fn basic_and_bearer_carry_the_secret_where_static_secrets_are_allowed() {
        let basic = format!("Basic {}", STANDARD.encode("freshservice:previous-secret"));
        for value in [basic, "Bearer current-secret".to_owned()] {
            let h = headers(&[("authorization", value.clone())]);
            assert_eq!(
                verify(&h, b"{}", &secrets(), NOW, true).map(|v| v.scheme),
                Ok(Scheme::StaticSecret),
                "{value}"
            );
            assert_eq!(
                verify(&h, b"{}", &secrets(), NOW, false),
                Err(AuthFailure::Missing)
            );
        }
        let h = headers(&[(
            "authorization",
            format!("Basic {}", STANDARD.encode("x:wrong")),
        )]);
        assert_eq!(
            verify(&h, b"{}", &secrets(), NOW, true),
            Err(AuthFailure::Invalid)
        );
        let h = headers(&[("authorization", "Digest abc".into())]);
        assert_eq!(
            verify(&h, b"{}", &secrets(), NOW, true),
            Err(AuthFailure::Missing)
        );
    }

    #[test]
    fn hub_signatures_need_the_sha256_prefix() {
        let body = b"{}";
        let sig = sign::hex("current-secret", body);
        let h = headers(&[("x-hub-signature", format!("sha256={sig}"))]);
        assert_eq!(
            verify(&h, body, &secrets(), NOW, false).unwrap().scheme,
            Scheme::HubSignature
        );
        let h = headers(&[("x-hub-signature", sig)]);
        assert_eq!(
            verify(&h, body, &secrets(), NOW, false),
            Err(AuthFailure::Invalid)
        );
    }

    #[test]
    fn the_static_secret_works_only_where_allowed() {
        let h = headers(&[(STATIC_SECRET_HEADER, "previous-secret".into())]);
        assert_eq!(
            verify(&h, b"", &secrets(), NOW, true).unwrap().scheme,
            Scheme::StaticSecret
        );
        assert_eq!(
            verify(&h, b"", &secrets(), NOW, false),
            Err(AuthFailure::Missing)
        );
        let h = headers(&[(STATIC_SECRET_HEADER, "guess".into())]);
        assert_eq!(
            verify(&h, b"", &secrets(), NOW, true),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            verify(&HeaderMap::new(), b"", &secrets(), NOW, true),
            Err(AuthFailure::Missing)
        );
    }
}
