//! `X-ServiceDesk-Signature`: hex HMAC-SHA256 of the raw body with the
//! tenant's secret, with or without a `sha256=` prefix.

use aia_store::Secret;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// True when `header` is a valid signature of `body` under any of
/// `secrets` (two are valid during a rotation). Constant-time per secret.
pub fn verify_hex_hmac(secrets: &[Secret], body: &[u8], header: &str) -> bool {
    let hex_sig = header.trim();
    let hex_sig = hex_sig.strip_prefix("sha256=").unwrap_or(hex_sig);
    let Ok(signature) = hex::decode(hex_sig) else {
        return false;
    };
    secrets.iter().any(|secret| {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(body);
        mac.verify_slice(&signature).is_ok()
    })
}

/// The signature a sender computes, for tests and the demo.
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_or_without_prefix_and_with_either_rotation_secret() {
        let body = br#"{"a":1}"#;
        let sig = sign_hex("new-secret", body);
        let secrets = [Secret::new("new-secret"), Secret::new("old-secret")];
        assert!(verify_hex_hmac(&secrets, body, &sig));
        assert!(verify_hex_hmac(&secrets, body, &format!("sha256={sig}")));
        assert!(verify_hex_hmac(
            &secrets,
            body,
            &sign_hex("old-secret", body)
        ));
    }

    #[test]
    fn wrong_secrets_other_bodies_and_garbage_are_refused() {
        let body = br#"{"a":1}"#;
        let secrets = [Secret::new("s")];
        assert!(!verify_hex_hmac(&secrets, body, &sign_hex("t", body)));
        assert!(!verify_hex_hmac(
            &secrets,
            br#"{"a":2}"#,
            &sign_hex("s", body)
        ));
        assert!(!verify_hex_hmac(&secrets, body, "not hex"));
        assert!(!verify_hex_hmac(&secrets, body, ""));
    }
}
