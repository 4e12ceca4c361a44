//! The admin console's operators: who they are (a user name, an Argon2id
//! password hash, a role) and how one is made. The CLI makes the first
//! admin; the console signs them in (its sessions and sign-in limits live
//! with the console).

use aia_store::{Pool, StoreError};
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore as _;

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Read only: every state-changing request is refused with 403.
    Viewer,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "the user name must be 2–63 characters: lower-case letters, digits, '.', '_', '@' or '-'"
    )]
    InvalidUsername,
    #[error("the password must have at least 12 characters")]
    WeakPassword,
    #[error("user {0} already exists")]
    Duplicate(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<tokio_postgres::Error> for AuthError {
    fn from(err: tokio_postgres::Error) -> Self {
        Self::Store(err.into())
    }
}

pub fn valid_username(name: &str) -> bool {
    let bytes = name.as_bytes();
    (2..=63).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'@' | b'-')
        })
}

/// An Argon2id hash (PHC string) of `password` with a fresh salt.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
}

pub fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so that an
/// unknown name costs as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that matches nothing"))
}

/// Creates an operator (the CLI's `aiagents console-user add`).
pub async fn create_user(
    admin: &Pool,
    username: &str,
    password: &str,
    role: Role,
) -> Result<(), AuthError> {
    if !valid_username(username) {
        return Err(AuthError::InvalidUsername);
    }
    if password.chars().count() < 12 {
        return Err(AuthError::WeakPassword);
    }
    let hash = hash_password(password);
    let client = admin.get().await.map_err(StoreError::from)?;
    let inserted = client
        .execute(
            "insert into console_users (username, password_hash, role) values ($1, $2, $3)
             on conflict (username) do nothing",
            &[&username, &hash, &role.as_str()],
        )
        .await?;
    if inserted == 0 {
        return Err(AuthError::Duplicate(username.to_owned()));
    }
    Ok(())
}

/// A password for a throw-away operator (the demo's): 24 hex digits.
pub fn random_password() -> String {
    random_token()[..24].to_owned()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_own_hash_only() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse battery", &hash));
        assert!(!password_matches("correct horse batterz", &hash));
        assert!(!password_matches("correct horse battery", "not a hash"));
        assert_ne!(hash, hash_password("correct horse battery"), "salted");
    }

    #[test]
    fn user_names_are_plain() {
        assert!(valid_username("ops.admin@msp"));
        assert!(!valid_username("Admin"));
        assert!(!valid_username("a"));
        assert!(!valid_username("-x"));
        assert!(!valid_username("a b"));
    }
}
