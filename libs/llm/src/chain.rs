//! Calling providers resiliently: retries with exponential backoff and
//! jitter (honouring `Retry-After`) on transient failures, a circuit breaker
//! per provider, and an ordered fallback list.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::{Billed, Completion, LlmError, Message, Provider, complete};

/// Consecutive failures that open a provider's circuit.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long an open circuit stays open before one call may try again.
pub const BREAKER_COOL_DOWN: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Clone, Copy)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
}

/// Retry policy of one provider.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// What a successful chain call produced.
#[derive(Debug, Clone)]
pub struct ChainSuccess {
    pub completion: Completion,
    /// Index of the provider that answered.
    pub provider: usize,
    /// Calls made in all, across providers.
    pub attempts: u32,
    /// Answers billed before it that could not be used, and calls before
    /// it that timed out (at their estimate).
    pub billed: Vec<Billed>,
}

/// Why every provider failed.
#[derive(Debug, Clone)]
pub struct ChainFailure {
    /// One line per provider.
    pub reasons: Vec<String>,
    pub attempts: u32,
    /// Answers billed that could not be used, and calls that timed out
    /// (which may be billed, at their estimate).
    pub billed: Vec<Billed>,
}

impl std::fmt::Display for ChainFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "every LLM provider failed: {}", self.reasons.join("; "))
    }
}

/// The breakers of every provider this process talks to.
#[derive(Debug, Default)]
pub struct Chain {
    breakers: Mutex<HashMap<String, Breaker>>,
}

/// One circuit per account at a provider: tenants with keys of their own
/// at the same provider and model do not share one, so a revoked key
/// opens only its own tenant's circuit (the key itself is kept only as a
/// digest).
fn key(provider: &Provider) -> String {
    use sha2::Digest as _;
    let account = provider
        .api_key
        .as_deref()
        .map(|key| {
            let digest = sha2::Sha256::digest(key.as_bytes());
            digest[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        })
        .unwrap_or_default();
    format!(
        "{} {} {} {account}",
        provider.name, provider.base_url, provider.model
    )
}

impl Chain {
    /// Whether the provider's circuit lets a call through now.
    fn admits(&self, provider: &Provider) -> bool {
        let breakers = self.breakers.lock().expect("breaker lock");
        breakers
            .get(&key(provider))
            .and_then(|breaker| breaker.open_until)
            .is_none_or(|until| Instant::now() >= until)
    }

    fn record(&self, provider: &Provider, success: bool) {
        let mut breakers = self.breakers.lock().expect("breaker lock");
        let breaker = breakers.entry(key(provider)).or_default();
        if success {
            *breaker = Breaker::default();
        } else {
            breaker.consecutive_failures += 1;
            if breaker.consecutive_failures >= BREAKER_THRESHOLD {
                breaker.open_until = Some(Instant::now() + BREAKER_COOL_DOWN);
                tracing::warn!(provider = %provider.name, "Circuit opened after repeated failures");
            }
        }
    }

    /// Tries each provider in order until one answers.
    pub async fn complete(
        &self,
        http: &reqwest::Client,
        providers: &[Provider],
        messages: &[Message],
        max_tokens: u32,
        policy: RetryPolicy,
    ) -> Result<ChainSuccess, ChainFailure> {
        let mut reasons = Vec::new();
        let mut attempts = 0;
        let mut billed = Vec::new();
        for (index, provider) in providers.iter().enumerate() {
            if !self.admits(provider) {
                reasons.push(format!(
                    "{}: circuit open after repeated failures",
                    provider.name
                ));
                continue;
            }
            for attempt in 1..=policy.attempts.max(1) {
                attempts += 1;
                match complete(http, provider, messages, max_tokens).await {
                    Ok(completion) => {
                        self.record(provider, true);
                        return Ok(ChainSuccess {
                            completion,
                            provider: index,
                            attempts,
                            billed,
                        });
                    }
                    Err(LlmError::Unusable {
                        reason,
                        billed: paid,
                        again,
                    }) => {
                        // Paid for, and this request's: the circuit stays
                        // as it was.
                        billed.push(paid);
                        if !again || attempt == policy.attempts.max(1) {
                            reasons.push(reason);
                            break;
                        }
                    }
                    Err(LlmError::Permanent {
                        reason,
                        this_request_only,
                    }) => {
                        // A refusal of this request says nothing about the
                        // provider: its circuit stays as it was.
                        if !this_request_only {
                            self.record(provider, false);
                        }
                        reasons.push(reason);
                        break;
                    }
                    Err(LlmError::Transient {
                        reason,
                        retry_after,
                        may_be_billed,
                    }) => {
                        billed.extend(may_be_billed);
                        self.record(provider, false);
                        if attempt == policy.attempts.max(1) || !self.admits(provider) {
                            reasons.push(reason);
                            break;
                        }
                        tokio::time::sleep(delay(policy, attempt, retry_after)).await;
                    }
                }
            }
        }
        Err(ChainFailure {
            reasons,
            attempts,
            billed,
        })
    }
}

/// Exponential backoff with full jitter, or what the provider asked for.
fn delay(policy: RetryPolicy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(policy.max_delay.max(Duration::from_secs(30)));
    }
    let cap = policy
        .base_delay
        .saturating_mul(1 << (attempt - 1).min(10))
        .min(policy.max_delay);
    let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::thread_rng().gen_range(millis / 2..=millis))
}
