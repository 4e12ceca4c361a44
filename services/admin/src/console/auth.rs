//! Who may use the console: operators with an Argon2id password hash and a
//! role, their sessions, and the limit on failed sign-ins.
//!
//! A session's cookie carries 32 random bytes; the database keeps only
//! their SHA-256, so reading `console_sessions` yields no usable cookie.
//! Each session has its own CSRF token, put in every form and compared on
//! every state-changing request.

use std::time::Duration;

use aia_store::{Pool, StoreError};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

pub use aia_ops::operators::{
    AuthError, Role, create_user, decoy_hash, hash_password, password_matches, random_password,
};

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

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
