//! Standard Webhooks signing (<https://www.standardwebhooks.com>): the
//! `webhook-signature` is `v1,` and the base64 HMAC-SHA256 of
//! `<webhook-id>.<webhook-timestamp>.<body>`, keyed by the secret's bytes
//! (the base64 after `whsec_`, or the secret as it is without the prefix:
//! [`aia_http::standard_webhooks::key`], as the ingress reads it).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The `webhook-signature` header value; `None` for a `whsec_` secret that
/// is not base64 (refused when it is set, so only a secret stored some
/// other way).
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = aia_http::standard_webhooks::key(secret)?;
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification and its
    /// reference libraries' tests.
    #[test]
    fn the_specifications_example_signs_as_published() {
        assert_eq!(
            signature(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#,
            ),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_owned())
        );
    }
}
