//! Who may use the console: operators with an Argon2id password hash and a
//! role, their sessions, and the limit on failed sign-ins.
//!
//! A session's cookie carries 32 random bytes; the database keeps only
//! their SHA-256, so reading `console_sessions` yields no usable cookie.
//! Each session has its own CSRF token, put in every form and compared on
//! every state-changing request.

use std::time::Duration;

use aia_store::{Pool, StoreError};
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

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

/// A signed-in operator, as the pages see them.
#[derive(Debug, Clone)]
pub struct Operator {
    pub username: String,
    pub role: Role,
    /// This session's CSRF token.
    pub csrf: String,
}

impl Operator {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Failed sign-ins tolerated per user name, and per client address, within
/// [`FAILURE_WINDOW`].
pub const MAX_FAILURES_PER_USER: i64 = 5;
pub const MAX_FAILURES_PER_CLIENT: i64 = 20;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

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

fn valid_username(name: &str) -> bool {
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

fn password_matches(password: &str, stored: &str) -> bool {
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
fn decoy_hash() -> &'static str {
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

/// What a sign-in attempt came to.
#[derive(Debug)]
pub enum SignIn {
    /// The cookie's token and the session's lifetime.
    Signed {
        token: String,
        lifetime: Duration,
    },
    Refused,
    /// Too many recent failures for this name or client: try again later.
    Throttled {
        retry_after: Duration,
    },
}

/// Checks the password (after the failure limits) and opens a session.
pub async fn sign_in(
    admin: &Pool,
    username: &str,
    password: &str,
    client_address: &str,
    lifetime: Duration,
) -> Result<SignIn, AuthError> {
    let client = admin.get().await.map_err(StoreError::from)?;
    let window = format!("{} seconds", FAILURE_WINDOW.as_secs());
    let counts = client
        .query_one(
            "select (select count(*) from console_sign_in_failures
                      where username = $1 and at > now() - $3::text::interval),
                    (select count(*) from console_sign_in_failures
                      where client_address = $2 and at > now() - $3::text::interval)",
            &[&username, &client_address, &window],
        )
        .await?;
    let (by_user, by_client): (i64, i64) = (counts.get(0), counts.get(1));
    if by_user >= MAX_FAILURES_PER_USER || by_client >= MAX_FAILURES_PER_CLIENT {
        return Ok(SignIn::Throttled {
            retry_after: FAILURE_WINDOW,
        });
    }
    let user = client
        .query_opt(
            "select user_id, password_hash from console_users
              where username = $1 and disabled_at is null",
            &[&username],
        )
        .await?;
    let stored = user
        .as_ref()
        .map(|row| row.get::<_, String>(1))
        .unwrap_or_else(|| decoy_hash().to_owned());
    // No connection is held through the deliberately slow hash check.
    drop(client);
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || password_matches(&password, &stored))
        .await
        .unwrap_or(false);
    let client = admin.get().await.map_err(StoreError::from)?;
    let Some(user_id) = user.filter(|_| matches).map(|row| row.get::<_, i64>(0)) else {
        client
            .execute(
                "insert into console_sign_in_failures (username, client_address) values ($1, $2)",
                &[&username, &client_address],
            )
            .await?;
        return Ok(SignIn::Refused);
    };
    let token = random_token();
    let csrf = random_token();
    let seconds = format!("{} seconds", lifetime.as_secs());
    client
        .execute(
            "insert into console_sessions (token_sha256, user_id, csrf_token, expires_at)
             values ($1, $2, $3, now() + $4::text::interval)",
            &[&token_digest(&token), &user_id, &csrf, &seconds],
        )
        .await?;
    // Expired sessions and old failures go as new sessions come.
    client
        .execute("delete from console_sessions where expires_at < now()", &[])
        .await?;
    client
        .execute(
            "delete from console_sign_in_failures where at < now() - $1::text::interval",
            &[&window],
        )
        .await?;
    Ok(SignIn::Signed { token, lifetime })
}

/// The operator whose unexpired session the token opens.
pub async fn session(admin: &Pool, token: &str) -> Result<Option<Operator>, StoreError> {
    let client = admin.get().await?;
    let row = client
        .query_opt(
            "select u.username, u.role, s.csrf_token
               from console_sessions s join console_users u using (user_id)
              where s.token_sha256 = $1 and s.expires_at > now() and u.disabled_at is null",
            &[&token_digest(token)],
        )
        .await?;
    Ok(row.and_then(|row| {
        Some(Operator {
            username: row.get(0),
            role: Role::parse(row.get(1))?,
            csrf: row.get(2),
        })
    }))
}

pub async fn sign_out(admin: &Pool, token: &str) -> Result<(), StoreError> {
    let client = admin.get().await?;
    client
        .execute(
            "delete from console_sessions where token_sha256 = $1",
            &[&token_digest(token)],
        )
        .await?;
    Ok(())
}

/// Whether a form's token is this session's, compared in constant time.
pub fn csrf_matches(operator: &Operator, submitted: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    !submitted.is_empty() && bool::from(operator.csrf.as_bytes().ct_eq(submitted.as_bytes()))
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

fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
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
