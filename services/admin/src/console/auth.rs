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

/// Failed sign-ins a (user name, client address) pair may make before it
/// has to wait.
pub const FREE_FAILURES: i32 = 5;
/// Failures within [`FAILURE_WINDOW`] of one user name from every address,
/// or of one address for every user name, that mean an attack: then a pair
/// waits after its first failure.
pub const WIDE_FAILURES: i64 = 20;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest password a sign-in checks (bytes): far above any an
/// operator sets, far below what would make the hash's input costly.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// How long a sign-in waits for a turn at the password check before it is
/// answered "busy": a flood of sign-ins must not queue real ones for ever.
pub const CHECK_WAIT: Duration = Duration::from_secs(10);
/// The first wait after the free failures; each further failure doubles it,
/// up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(30);
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// A pair's failures are forgotten this long after its last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Password checks (Argon2id, about 19 MiB each) run at once at most:
/// a thousand sign-ins sent together wait their turn instead of taking
/// gigabytes before any of them is refused.
const CONCURRENT_CHECKS: usize = 4;
static CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_CHECKS);

/// The client as the sign-in limit counts it: an IPv4 address, or an IPv6
/// address's /64 — one host or one customer line holds a whole /64, so
/// counting its addresses one by one would give it unlimited tries.
pub fn throttled_client(client_address: &str) -> String {
    match client_address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            let network = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{network}/64")
        }
        Ok(std::net::IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(|| client_address.to_owned(), |v4| v4.to_string()),
        _ => client_address.to_owned(),
    }
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
    /// Too many recent failures of this name from this client: try again
    /// later (the password was not checked).
    Throttled {
        retry_after: Duration,
    },
    /// Every password check is taken and stayed so for [`CHECK_WAIT`]
    /// (the attempt is counted): try again in a moment.
    Busy,
}

/// How long a pair waits after its `failures`-th counted attempt, when
/// `free` attempts come without waiting.
pub fn backoff(counted: i32, free: i32) -> Duration {
    if counted < free {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(counted - free).unwrap_or(0).min(10);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

/// Counts the attempt of `username` from `client_address` before its
/// password is checked, or says how long it must wait. Attempts of one user
/// name are decided one at a time (a transaction-scoped advisory lock), so
/// however many arrive together, no more than the pair's allowance are let
/// through to the password check.
async fn reserve(
    admin: &Pool,
    username: &str,
    client_address: &str,
) -> Result<Option<Duration>, AuthError> {
    let mut client = admin.get().await.map_err(StoreError::from)?;
    let tx = client.transaction().await?;
    tx.execute(
        "select pg_advisory_xact_lock(hashtextextended('console-sign-in:' || $1, 0))",
        &[&username],
    )
    .await?;
    let window = format!("{} seconds", FAILURE_WINDOW.as_secs());
    let forget = format!("{} seconds", FORGET_AFTER.as_secs());
    let row = tx
        .query_one(
            "select coalesce((select failures from console_sign_in_throttle
                               where username = $1 and client_address = $2
                                 and last_failure_at > now() - $4::text::interval), 0),
                    coalesce((select extract(epoch from now() - last_failure_at)::float8
                                from console_sign_in_throttle
                               where username = $1 and client_address = $2
                                 and last_failure_at > now() - $4::text::interval), 0),
                    (select coalesce(sum(failures), 0)::int8 from console_sign_in_throttle
                      where username = $1 and last_failure_at > now() - $3::text::interval),
                    (select coalesce(sum(failures), 0)::int8 from console_sign_in_throttle
                      where client_address = $2 and last_failure_at > now() - $3::text::interval)",
            &[&username, &client_address, &window, &forget],
        )
        .await?;
    let (failures, since_secs, by_user, by_client): (i32, f64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    // An address that has not failed for this name is let through even
    // when the name or the address is under attack: its owner is not the
    // one guessing.
    let under_attack = by_user >= WIDE_FAILURES || by_client >= WIDE_FAILURES;
    let free = if under_attack { 0 } else { FREE_FAILURES };
    let wait = backoff(failures, free).as_secs_f64() - since_secs;
    if failures > 0 && wait > 0.0 {
        tx.commit().await?;
        return Ok(Some(Duration::from_secs_f64(wait.ceil())));
    }
    tx.execute(
        "insert into console_sign_in_throttle (username, client_address, failures, last_failure_at)
         values ($1, $2, $3, now())
         on conflict (username, client_address) do update
            set failures = excluded.failures, last_failure_at = now()",
        &[&username, &client_address, &(failures + 1)],
    )
    .await?;
    tx.commit().await?;
    Ok(None)
}

/// Checks the password (once the attempt is counted within its pair's
/// allowance) and opens a session.
pub async fn sign_in(
    admin: &Pool,
    username: &str,
    password: &str,
    client_address: &str,
    lifetime: Duration,
) -> Result<SignIn, AuthError> {
    // A name no operator can have, or a password longer than any an
    // operator sets, is refused before it costs a row or a hash: a flood
    // of such made-up attempts would otherwise fill the throttle's table
    // and the password checks' queue.
    if !aia_ops::operators::valid_username(username) || password.len() > MAX_PASSWORD_BYTES {
        return Ok(SignIn::Refused);
    }
    let client_address = throttled_client(client_address);
    let client_address = client_address.as_str();
    if let Some(retry_after) = reserve(admin, username, client_address).await? {
        return Ok(SignIn::Throttled { retry_after });
    }
    let client = admin.get().await.map_err(StoreError::from)?;
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
    let matches = {
        let Ok(turn) = tokio::time::timeout(CHECK_WAIT, CHECKS.acquire()).await else {
            // Not checked, so not a failure: the attempt counted when it
            // began is given back.
            let client = admin.get().await.map_err(StoreError::from)?;
            client
                .execute(
                    "update console_sign_in_throttle set failures = failures - 1
                      where username = $1 and client_address = $2 and failures > 0",
                    &[&username, &client_address],
                )
                .await?;
            return Ok(SignIn::Busy);
        };
        let _turn = turn.expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || password_matches(&password, &stored))
            .await
            .unwrap_or(false)
    };
    let client = admin.get().await.map_err(StoreError::from)?;
    let Some(user_id) = user.filter(|_| matches).map(|row| row.get::<_, i64>(0)) else {
        // The attempt was counted when it began.
        return Ok(SignIn::Refused);
    };
    client
        .execute(
            "delete from console_sign_in_throttle where username = $1 and client_address = $2",
            &[&username, &client_address],
        )
        .await?;
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
    // Expired sessions and forgotten failures go as new sessions come.
    client
        .execute("delete from console_sessions where expires_at < now()", &[])
        .await?;
    client
        .execute(
            "delete from console_sign_in_throttle where last_failure_at < now() - $1::text::interval",
            &[&format!("{} seconds", FORGET_AFTER.as_secs())],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_waits_only_after_its_free_failures_and_then_ever_longer_up_to_the_cap() {
        for counted in 1..FREE_FAILURES {
            assert_eq!(backoff(counted, FREE_FAILURES), Duration::ZERO);
        }
        assert_eq!(backoff(FREE_FAILURES, FREE_FAILURES), FIRST_BACKOFF);
        assert_eq!(backoff(FREE_FAILURES + 1, FREE_FAILURES), FIRST_BACKOFF * 2);
        assert_eq!(backoff(FREE_FAILURES + 2, FREE_FAILURES), FIRST_BACKOFF * 4);
        assert_eq!(backoff(1000, FREE_FAILURES), MAX_BACKOFF);
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_others_as_they_are() {
        for (address, counted) in [
            ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
            ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("192.0.2.7", "192.0.2.7"),
            ("unknown", "unknown"),
        ] {
            assert_eq!(throttled_client(address), counted, "{address}");
        }
    }

    #[test]
    fn under_attack_a_pair_waits_after_its_first_failure() {
        assert_eq!(backoff(1, 0), FIRST_BACKOFF * 2);
    }
}
