//! Signed feedback links: a technician rates a note by following a link in
//! it, without an account. The token binds tenant, ticket and run, so a link
//! cannot be edited to rate another ticket; it is derived from the
//! application keys, so every key in the keyring still accepts old links
//! during a key rotation.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::Keyring;

const PURPOSE: &str = "aiagents feedback links v1";

fn token_with(key: &[u8; 32], tenant: &str, ticket: &str, correlation: Uuid) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes 32-byte keys");
    mac.update(format!("{tenant}\n{ticket}\n{correlation}").as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The token for a run's feedback link.
pub fn token(keyring: &Keyring, tenant: &str, ticket: &str, correlation: Uuid) -> String {
    token_with(
        &keyring.derived_keys(PURPOSE)[0],
        tenant,
        ticket,
        correlation,
    )
}

/// Whether `given` is the token of this run under any key of the keyring.
pub fn verify(
    keyring: &Keyring,
    tenant: &str,
    ticket: &str,
    correlation: Uuid,
    given: &str,
) -> bool {
    keyring
        .derived_keys(PURPOSE)
        .iter()
        .fold(false, |found, key| {
            let expected = token_with(key, tenant, ticket, correlation);
            found
                | (expected.len() == given.len()
                    && bool::from(expected.as_bytes().ct_eq(given.as_bytes())))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_tenant_ticket_and_run_and_survive_key_rotation() {
        let old_spec = Keyring::generate_spec("old");
        let old = Keyring::parse(&old_spec).unwrap();
        let run = Uuid::now_v7();
        let token = token(&old, "acme", "SUP-1", run);
        assert!(verify(&old, "acme", "SUP-1", run, &token));
        assert!(!verify(&old, "acme", "SUP-2", run, &token));
        assert!(!verify(&old, "globex", "SUP-1", run, &token));
        assert!(!verify(&old, "acme", "SUP-1", Uuid::now_v7(), &token));
        let rotated =
            Keyring::parse(&format!("{},{old_spec}", Keyring::generate_spec("new"))).unwrap();
        assert!(verify(&rotated, "acme", "SUP-1", run, &token));
    }
}
