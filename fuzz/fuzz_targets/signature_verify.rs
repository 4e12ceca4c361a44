//! Signature verification on arbitrary headers and bodies: never panics,
//! never accepts a signature made with another secret, and always accepts
//! the signature a sender computes for the body.
#![no_main]

use aia_store::Secret;
use axum::http::{HeaderMap, HeaderValue};
use ingress::auth::{self, sign};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_764_072_000;

fuzz_target!(|input: (Vec<(u8, Vec<u8>)>, Vec<u8>)| {
    let (raw_headers, body) = input;
    let names = [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-servicedesk-signature",
        "x-hub-signature",
        "x-webhook-secret",
    ];
    let mut headers = HeaderMap::new();
    for (name, value) in raw_headers {
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            headers.insert(names[usize::from(name) % names.len()], value);
        }
    }
    let secrets = [Secret::new("fuzz-secret")];
    // Arbitrary headers: any answer but a panic, and never with a guessed secret
    // that the fuzzer could not know.
    let _ = auth::verify(&headers, &body, &secrets, NOW, true);

    let mut signed = HeaderMap::new();
    let signature = sign::hex("fuzz-secret", &body);
    signed.insert("x-servicedesk-signature", HeaderValue::from_str(&signature).unwrap());
    assert!(auth::verify(&signed, &body, &secrets, NOW, false).is_ok());
    assert!(auth::verify(&signed, &body, &[Secret::new("other")], NOW, false).is_err());
});
