//! OAuth access tokens, cached per process until shortly before they
//! expire and forgotten when a tool refuses one (then fetched again, once).
//! ServiceDesk Plus Cloud (a Zoho refresh token) and HaloPSA (client
//! credentials) keep theirs here.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::ItsmError;

/// Tokens by the digest of what obtained them.
static TOKENS: LazyLock<Mutex<HashMap<String, (String, Instant)>>> = LazyLock::new(Mutex::default);

/// A cache key for the credentials `parts` (never the credentials
/// themselves).
pub(crate) fn key(parts: &[&str]) -> String {
    hex::encode(Sha256::digest(parts.join("\n")))
}

/// The cached token for `key`, or a new one from `fetch` (its token and
/// lifetime).
pub(crate) async fn token<F>(key: &str, fetch: F) -> Result<String, ItsmError>
where
    F: Future<Output = Result<(String, Duration), ItsmError>>,
{
    if let Some((token, expires)) = TOKENS.lock().expect("token cache").get(key)
        && Instant::now() + Duration::from_secs(60) < *expires
    {
        return Ok(token.clone());
    }
    let (token, lifetime) = fetch.await?;
    TOKENS
        .lock()
        .expect("token cache")
        .insert(key.to_owned(), (token.clone(), Instant::now() + lifetime));
    Ok(token)
}

/// Forgets the token for `key` (the tool refused it).
pub(crate) fn forget(key: &str) {
    TOKENS.lock().expect("token cache").remove(key);
}

/// A token endpoint's answer.
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    pub access_token: Option<String>,
    pub expires_in: Option<u64>,
    pub error: Option<String>,
}

/// Reads a token endpoint's answer: the token and its lifetime, a
/// transient failure for a 5xx, a permanent one (`"{who} refused the OAuth
/// {what}"`) otherwise.
pub(crate) async fn read_answer(
    response: reqwest::Response,
    who: &str,
    what: &str,
) -> Result<(String, Duration), ItsmError> {
    let status = response.status();
    if status.is_redirection() {
        // Not followed (see `aia_http::outbound`): a token endpoint behind
        // a redirect is a misconfigured URL, not a passing failure.
        return Err(ItsmError::Permanent {
            reason: format!(
                "{who}'s token endpoint redirects (HTTP {}); set its URL to the address it redirects to",
                status.as_u16()
            ),
            http_status: Some(status.as_u16()),
        });
    }
    let answer: TokenAnswer =
        aia_http::answer::json(response)
            .await
            .map_err(|_| ItsmError::Transient {
                reason: format!("{who} sent an unreadable token answer"),
                http_status: Some(status.as_u16()),
                retry_after: None,
            })?;
    match (answer.access_token, answer.error) {
        (Some(token), None) if status.is_success() => Ok((
            token,
            Duration::from_secs(answer.expires_in.unwrap_or(3600)),
        )),
        (_, error) if status.is_server_error() || status.as_u16() == 429 => {
            Err(ItsmError::Transient {
                reason: format!(
                    "{who} answered HTTP {} ({})",
                    status.as_u16(),
                    error.unwrap_or_default()
                ),
                http_status: Some(status.as_u16()),
                retry_after: None,
            })
        }
        (_, error) => Err(ItsmError::Permanent {
            reason: format!(
                "{who} refused the OAuth {what} ({})",
                error.unwrap_or_else(|| format!("HTTP {}", status.as_u16()))
            ),
            http_status: Some(status.as_u16()),
        }),
    }
}
