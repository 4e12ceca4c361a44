//! OAuth access tokens, cached per process until shortly before they
//! expire and forgotten when a tool refuses one (then fetched again, once).
//! ServiceDesk Plus Cloud (a Zoho refresh token) and HaloPSA (client
//! credentials) keep theirs here.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::ItsmError;

/// Tokens by the digest of what obtained them.
static TOKENS: LazyLock<Mutex<HashMap<String, (String, Instant)>>> = LazyLock::new(Mutex::default);

/// One fetch at a time per key: a burst of requests finding the token
/// missing waits for one fetch instead of each making its own (Zoho issues
/// at most ten access tokens per refresh token in ten minutes, keeps
/// fifteen alive and refuses the rest as "Access Denied"). A fetch that
/// failed is the answer of those that waited for it, and of those that
/// come for a little while after (its `Retry-After`, else a few seconds),
/// rather than each trying again in turn.
static FETCHES: LazyLock<Mutex<HashMap<String, Turn>>> = LazyLock::new(Mutex::default);

/// One key's turn to fetch, holding the last fetch's failure.
type Turn = Arc<tokio::sync::Mutex<Option<Failed>>>;

/// A fetch that failed, and until when its failure is the answer.
type Failed = (Instant, ItsmError);

/// How long a failed fetch answers for the others, without a `Retry-After`.
const FAILURE_HELD: Duration = Duration::from_secs(5);

/// A cache key for the credentials `parts` (never the credentials
/// themselves).
pub(crate) fn key(parts: &[&str]) -> String {
    hex::encode(Sha256::digest(parts.join("\n")))
}

fn cached(key: &str) -> Option<String> {
    TOKENS
        .lock()
        .expect("token cache")
        .get(key)
        .filter(|(_, expires)| Instant::now() + Duration::from_secs(60) < *expires)
        .map(|(token, _)| token.clone())
}

/// The cached token for `key`, or a new one from `fetch` (its token and
/// lifetime), fetched by one caller while the others for `key` wait.
pub(crate) async fn token<F>(key: &str, fetch: F) -> Result<String, ItsmError>
where
    F: Future<Output = Result<(String, Duration), ItsmError>>,
{
    if let Some(token) = cached(key) {
        return Ok(token);
    }
    let turn = FETCHES
        .lock()
        .expect("token fetches")
        .entry(key.to_owned())
        .or_default()
        .clone();
    let mut turn = turn.lock().await;
    // Fetched by the caller before us while we waited, or failed lately.
    if let Some(token) = cached(key) {
        return Ok(token);
    }
    if let Some((until, failure)) = turn.as_ref()
        && Instant::now() < *until
    {
        return Err(failure.clone());
    }
    let (token, lifetime) = match fetch.await {
        Ok(fetched) => {
            *turn = None;
            fetched
        }
        Err(failure) => {
            let held = match &failure {
                ItsmError::Transient {
                    retry_after: Some(wait),
                    ..
                } => *wait,
                _ => FAILURE_HELD,
            };
            *turn = Some((Instant::now() + held, failure.clone()));
            return Err(failure);
        }
    };
    TOKENS
        .lock()
        .expect("token cache")
        .insert(key.to_owned(), (token.clone(), Instant::now() + lifetime));
    Ok(token)
}

/// Forgets the token for `key` if it is still `refused` (the tool refused
/// it): a token another request has fetched since is kept.
pub(crate) fn forget(key: &str, refused: &str) {
    let mut tokens = TOKENS.lock().expect("token cache");
    if tokens.get(key).is_some_and(|(token, _)| token == refused) {
        tokens.remove(key);
    }
}

/// A token endpoint's answer.
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    pub access_token: Option<String>,
    pub expires_in: Option<u64>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl TokenAnswer {
    /// Zoho throttles a refresh token with `"error": "Access Denied"` and
    /// "You have made too many requests continuously".
    fn is_throttled(&self) -> bool {
        self.access_token.is_none()
            && (self.error.as_deref() == Some("Access Denied")
                || self
                    .error_description
                    .as_deref()
                    .is_some_and(|text| text.to_lowercase().contains("too many requests")))
    }
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
    let passing = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
    let answer: TokenAnswer = match aia_http::answer::json(response).await {
        Ok(answer) => answer,
        // A refusal in HTML (a gateway's, a firewall's) is still a refusal.
        Err(_) if status.is_client_error() && !passing => {
            return Err(ItsmError::Permanent {
                reason: format!("{who} refused the OAuth {what} (HTTP {})", status.as_u16()),
                http_status: Some(status.as_u16()),
            });
        }
        Err(_) => {
            return Err(ItsmError::Transient {
                reason: format!("{who} sent an unreadable token answer"),
                http_status: Some(status.as_u16()),
                retry_after: None,
            });
        }
    };
    if answer.is_throttled() {
        // Zoho's answer to more tokens than it issues in ten minutes: it
        // passes once those ten minutes have.
        return Err(ItsmError::Transient {
            reason: format!("{who} is refusing new tokens for a while (too many requested)"),
            http_status: Some(status.as_u16()),
            retry_after: Some(Duration::from_secs(600)),
        });
    }
    match (answer.access_token, answer.error) {
        (Some(token), None) if status.is_success() => Ok((
            token,
            Duration::from_secs(answer.expires_in.unwrap_or(3600)),
        )),
        (_, error) if passing => Err(ItsmError::Transient {
            reason: format!(
                "{who} answered HTTP {} ({})",
                status.as_u16(),
                error.unwrap_or_default()
            ),
            http_status: Some(status.as_u16()),
            retry_after: None,
        }),
        (_, error) => Err(ItsmError::Permanent {
            reason: format!(
                "{who} refused the OAuth {what} ({})",
                error.unwrap_or_else(|| format!("HTTP {}", status.as_u16()))
            ),
            http_status: Some(status.as_u16()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn answer(status: u16, body: &str) -> reqwest::Response {
        reqwest::Response::from(
            http::Response::builder()
                .status(status)
                .body(body.to_owned())
                .unwrap(),
        )
    }

    /// `callers` at once asking for `key`'s token, each fetch answering
    /// `fetched` after a moment; their answers and how many fetches ran.
    async fn at_once(
        key: &str,
        callers: usize,
        fetched: Result<(String, Duration), ItsmError>,
    ) -> (Vec<Result<String, ItsmError>>, usize) {
        let fetches = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let (key, fetches, fetched) = (key.to_owned(), fetches.clone(), fetched.clone());
                tokio::spawn(async move {
                    token(&key, async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        fetched
                    })
                    .await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        (answers, fetches.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_hundred_requests_finding_no_token_fetch_it_once() {
        let key = key(&["test", "a hundred at once"]);
        let (answers, fetches) =
            at_once(&key, 100, Ok(("t1".to_owned(), Duration::from_secs(3600)))).await;
        assert!(
            answers
                .iter()
                .all(|answer| answer.as_deref().ok() == Some("t1"))
        );
        assert_eq!(fetches, 1);
    }

    /// A fetch that fails is the answer of those waiting for it (Zoho's
    /// throttle would only be met again, one after another).
    #[tokio::test]
    async fn a_failed_fetch_answers_those_that_waited_for_it() {
        let key = key(&["test", "failing at once"]);
        let throttled = ItsmError::Transient {
            reason: "throttled".into(),
            http_status: Some(400),
            retry_after: Some(Duration::from_secs(600)),
        };
        let (answers, fetches) = at_once(&key, 20, Err(throttled)).await;
        assert!(answers.iter().all(Result::is_err));
        assert_eq!(fetches, 1);
    }

    #[tokio::test]
    async fn only_the_refused_token_is_forgotten() {
        let key = key(&["test", "forget"]);
        let fresh = || async { Ok(("t2".to_owned(), Duration::from_secs(3600))) };
        assert_eq!(token(&key, fresh()).await.unwrap(), "t2");
        // A request refused with an older token leaves the newer one.
        forget(&key, "t1");
        assert_eq!(cached(&key).as_deref(), Some("t2"));
        forget(&key, "t2");
        assert_eq!(cached(&key), None);
    }

    #[tokio::test]
    async fn zohos_throttle_is_waited_out_and_a_refusal_in_html_is_final() {
        let throttled = read_answer(
            answer(
                400,
                r#"{"error_description":"You have made too many requests continuously. Please try again after some time.","error":"Access Denied","status":"failure"}"#,
            ),
            "Zoho",
            "refresh token",
        )
        .await;
        assert!(
            matches!(throttled, Err(ItsmError::Transient { retry_after: Some(wait), .. }) if wait == Duration::from_secs(600)),
            "{throttled:?}"
        );
        let refused =
            read_answer(answer(403, "<html>Forbidden</html>"), "Halo", "credentials").await;
        assert!(
            matches!(
                refused,
                Err(ItsmError::Permanent {
                    http_status: Some(403),
                    ..
                })
            ),
            "{refused:?}"
        );
        let down = read_answer(
            answer(502, "<html>Bad gateway</html>"),
            "Halo",
            "credentials",
        )
        .await;
        assert!(
            matches!(
                down,
                Err(ItsmError::Transient {
                    http_status: Some(502),
                    ..
                })
            ),
            "{down:?}"
        );
        let bad = read_answer(
            answer(400, r#"{"error":"invalid_code"}"#),
            "Zoho",
            "refresh token",
        )
        .await;
        assert!(matches!(bad, Err(ItsmError::Permanent { .. })), "{bad:?}");
    }
}
