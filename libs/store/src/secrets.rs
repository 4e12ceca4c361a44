//! Secrets at rest: AES-256-GCM under an application key with a key id.
//!
//! The keyring comes from `AI_AGENTS_SECRET_KEYS`: comma-separated
//! `<key id>:<base64 of 32 bytes>` entries, the first one used to encrypt and
//! all of them accepted to decrypt, so keys can be rotated and old rows
//! re-encrypted at leisure. Every ciphertext is bound to where it is stored
//! (its associated data names the table, column and tenant), so a secret
//! copied into another tenant's row does not decrypt.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// A secret value that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A random secret of `n_bytes` bytes, hex-encoded (64 characters for 32).
    pub fn generate(n_bytes: usize) -> Self {
        let mut bytes = vec![0u8; n_bytes];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// A new webhook signing secret in the Standard Webhooks form,
    /// `whsec_` + base64 of 32 random bytes: the official libraries (and
    /// Svix) sign with the decoded bytes, and tools that take a secret as
    /// text (Jira, a ServiceDesk Plus pre-function) sign with the text.
    pub fn generate_webhook_secret() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(format!("whsec_{}", STANDARD.encode(bytes)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first and last two characters, for showing that a secret is set.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() <= 8 {
            return "****".into();
        }
        let head: String = chars[..2].iter().collect();
        let tail: String = chars[chars.len() - 2..].iter().collect();
        format!("{head}…{tail}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "AI_AGENTS_SECRET_KEYS is not set; it must hold at least one '<key id>:<base64 of 32 bytes>' entry"
    )]
    MissingKeys,
    #[error("AI_AGENTS_SECRET_KEYS entry {0} is not '<key id>:<base64 of 32 bytes>'")]
    BadKey(usize),
    #[error("a stored secret was encrypted with key {0:?}, which is not in the keyring")]
    UnknownKey(String),
    #[error(
        "a stored secret could not be decrypted (wrong key, tampered, or stored for another row)"
    )]
    Decrypt,
}

struct Key {
    id: String,
    bytes: [u8; 32],
    cipher: Aes256Gcm,
}

/// The application keys. The first encrypts; all decrypt.
pub struct Keyring {
    keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|key| key.id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// Reads `AI_AGENTS_SECRET_KEYS`.
    pub fn from_env() -> Result<Self, SecretError> {
        match aia_config::optional("SECRET_KEYS") {
            Some(spec) => Self::parse(&spec),
            None => Err(SecretError::MissingKeys),
        }
    }

    pub fn parse(spec: &str) -> Result<Self, SecretError> {
        let mut keys = Vec::new();
        for (idx, entry) in spec.split(',').map(str::trim).enumerate() {
            let (id, encoded) = entry.split_once(':').ok_or(SecretError::BadKey(idx))?;
            let bytes = STANDARD
                .decode(encoded)
                .map_err(|_| SecretError::BadKey(idx))?;
            if id.is_empty() || id.len() > 32 || bytes.len() != 32 {
                return Err(SecretError::BadKey(idx));
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SecretError::BadKey(idx))?;
            keys.push(Key {
                id: id.to_owned(),
                bytes: bytes.try_into().map_err(|_| SecretError::BadKey(idx))?,
                cipher,
            });
        }
        if keys.is_empty() {
            return Err(SecretError::MissingKeys);
        }
        Ok(Self { keys })
    }

    /// A fresh keyring spec with one random key, for `aiagents keygen`.
    pub fn generate_spec(key_id: &str) -> String {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        format!("{key_id}:{}", STANDARD.encode(bytes))
    }

    /// The keyring in `AI_AGENTS_SECRET_KEYS` form, to hand to another
    /// component of the same process.
    pub fn export_spec(&self) -> String {
        self.keys
            .iter()
            .map(|key| format!("{}:{}", key.id, STANDARD.encode(key.bytes)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A 32-byte key for `purpose` (for example signing feedback links),
    /// derived from each application key, primary first.
    pub fn derived_keys(&self, purpose: &str) -> Vec<[u8; 32]> {
        use hmac::{Hmac, KeyInit, Mac};
        self.keys
            .iter()
            .map(|key| {
                let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key.bytes)
                    .expect("HMAC takes 32-byte keys");
                mac.update(purpose.as_bytes());
                mac.finalize().into_bytes().into()
            })
            .collect()
    }

    pub fn primary_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Encrypts `secret` for the place named by `context` (for example
    /// `tenants.webhook_secret:acme`).
    pub fn encrypt(&self, secret: &Secret, context: &str) -> Vec<u8> {
        let key = &self.keys[0];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(2 + key.id.len() + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_VERSION);
        out.push(key.id.len() as u8);
        out.extend_from_slice(key.id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn decrypt(&self, stored: &[u8], context: &str) -> Result<Secret, SecretError> {
        let (key_id, nonce, ciphertext) = split(stored).ok_or(SecretError::Decrypt)?;
        let key = self
            .keys
            .iter()
            .find(|key| key.id == key_id)
            .ok_or_else(|| SecretError::UnknownKey(key_id.to_owned()))?;
        let plaintext = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(plaintext)
            .map(Secret)
            .map_err(|_| SecretError::Decrypt)
    }

    /// The key id a stored secret was encrypted with.
    pub fn key_id_of(stored: &[u8]) -> Option<&str> {
        split(stored).map(|(key_id, _, _)| key_id)
    }
}

fn split(stored: &[u8]) -> Option<(&str, &[u8], &[u8])> {
    let (&version, rest) = stored.split_first()?;
    if version != FORMAT_VERSION {
        return None;
    }
    let (&id_len, rest) = rest.split_first()?;
    let id_len = usize::from(id_len);
    if rest.len() < id_len + NONCE_LEN {
        return None;
    }
    let key_id = std::str::from_utf8(&rest[..id_len]).ok()?;
    let nonce = &rest[id_len..id_len + NONCE_LEN];
    Some((key_id, nonce, &rest[id_len + NONCE_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::parse(&Keyring::generate_spec("k1")).unwrap()
    }

    #[test]
    fn encrypted_secrets_decrypt_only_in_their_own_context() {
        let keys = keyring();
        let secret = Secret::new("sdp-api-key-123");
        let stored = keys.encrypt(&secret, "tenants.itsm:acme");
        assert!(
            !stored
                .windows(secret.expose().len())
                .any(|w| w == secret.expose().as_bytes()),
            "plaintext must not appear in the ciphertext"
        );
        assert_eq!(keys.decrypt(&stored, "tenants.itsm:acme").unwrap(), secret);
        assert!(matches!(
            keys.decrypt(&stored, "tenants.itsm:other"),
            Err(SecretError::Decrypt)
        ));
    }

    #[test]
    fn rotated_keyrings_still_read_rows_written_with_the_old_key() {
        let old_spec = Keyring::generate_spec("old");
        let old = Keyring::parse(&old_spec).unwrap();
        let stored = old.encrypt(&Secret::new("s"), "c");
        let rotated =
            Keyring::parse(&format!("{},{old_spec}", Keyring::generate_spec("new"))).unwrap();
        assert_eq!(rotated.primary_key_id(), "new");
        assert_eq!(Keyring::key_id_of(&stored), Some("old"));
        assert_eq!(rotated.decrypt(&stored, "c").unwrap().expose(), "s");
        let without_old = Keyring::parse(&Keyring::generate_spec("new")).unwrap();
        assert!(matches!(
            without_old.decrypt(&stored, "c"),
            Err(SecretError::UnknownKey(id)) if id == "old"
        ));
    }

    #[test]
    fn malformed_key_specs_are_refused() {
        for spec in ["", "k1", "k1:short", ":AAAA", "k1:not base64!"] {
            assert!(Keyring::parse(spec).is_err(), "{spec:?}");
        }
    }

    #[test]
    fn secrets_never_print_themselves() {
        let secret = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(****)");
        assert_eq!(secret.masked(), "hu…r2");
    }
}
