//! The key a Standard Webhooks secret stands for, the same for the ingress
//! that verifies and the notifier that signs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The HMAC key of `secret`: the base64 after `whsec_`, as the
/// specification's libraries read it, or a secret without the prefix as it
/// is. `None` for a `whsec_` secret that is not base64: no key can be made
/// of it, and guessing one (the text itself, say) would only sign what
/// the other side cannot verify.
pub fn key(secret: &str) -> Option<Vec<u8>> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => STANDARD.decode(encoded).ok(),
        None => Some(secret.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefixed_secret_is_its_base64_and_a_bare_one_its_text() {
        assert_eq!(key("whsec_AAEC").as_deref(), Some(&[0u8, 1, 2][..]));
        assert_eq!(key("plain").as_deref(), Some(&b"plain"[..]));
        assert_eq!(key("whsec_not base64!"), None);
    }
}
