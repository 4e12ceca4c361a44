//! The OpenAI-compatible embeddings API (`POST {base_url}/embeddings`), as
//! served by OpenAI, Azure OpenAI, LiteLLM, vLLM, Ollama — and by our own
//! embedder service for the local model.
//!
//! Texts go in batches; a timeout, a 429 (honouring `Retry-After`) or a 5xx
//! is retried with backoff, like the LLM client does; anything else is an
//! answer.

use aia_telemetry::http::TracedSend as _;
use std::sync::Arc;
use std::time::Duration;

use aia_llm::ProviderKind;
use aia_llm::chain::RetryPolicy;
use serde::{Deserialize, Serialize};

use crate::{EmbedError, Vector};

/// Where and how to reach one embeddings endpoint.
#[derive(Clone)]
pub struct EndpointConfig {
    pub kind: ProviderKind,
    /// The API root including its version, for example
    /// `https://api.openai.com/v1`, `http://localhost:11434/v1` or the
    /// embedder service's `http://embedder:8085/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    /// Per request.
    pub timeout: Duration,
    /// Texts per request.
    pub batch_size: usize,
    pub retry: RetryPolicy,
}

/// The most characters of one text sent to an embeddings endpoint: about
/// 2,000 tokens, within every provider's input limit — counting a
/// character of the scripts written without spaces as four (a token each:
/// 8,000 Chinese characters would pass OpenAI's 8,191 tokens).
pub const MAX_INPUT_CHARS: usize = 8_000;

/// `text` cut where it reaches [`MAX_INPUT_CHARS`], a character of the
/// unspaced scripts counted as four.
pub fn within_input_limit(text: &str) -> &str {
    let mut weight = 0;
    for (at, c) in text.char_indices() {
        weight += if aia_events::language::token_per_character(c) {
            4
        } else {
            1
        };
        if weight > MAX_INPUT_CHARS {
            return &text[..at];
        }
    }
    text
}

impl std::fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "****"))
            .finish_non_exhaustive()
    }
}

impl EndpointConfig {
    /// OpenAI-style defaults: 10 s per request, 64 texts per batch, three
    /// attempts.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            kind: ProviderKind::OpenAi,
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(10),
            batch_size: 64,
            retry: RetryPolicy::default(),
        }
    }
}

/// A client of one endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    http: reqwest::Client,
    config: Arc<EndpointConfig>,
}

/// The request body (`input` as a list, `encoding_format` float).
#[derive(Serialize)]
pub struct EmbeddingsRequest<'a> {
    pub model: &'a str,
    pub input: &'a [String],
}

/// The answer body.
#[derive(Deserialize, Serialize)]
pub struct EmbeddingsResponse {
    pub data: Vec<EmbeddingItem>,
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Deserialize, Serialize)]
pub struct EmbeddingItem {
    #[serde(default)]
    pub index: usize,
    pub embedding: Vec<f32>,
}

enum Attempt {
    Retry(EmbedError, Option<Duration>),
    Fail(EmbedError),
}

impl Endpoint {
    pub fn new(http: reqwest::Client, config: EndpointConfig) -> Self {
        Self {
            http,
            config: Arc::new(config),
        }
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// Embeds `texts` in order, batch by batch.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vector>, EmbedError> {
        // Cut to what any provider takes (OpenAI's refuse past 8,191
        // tokens, vLLM and TEI without truncation past their model's): a
        // ticket with a pasted log would otherwise be refused, never
        // embedded, and stop a move to the model. What a ticket is about is
        // in its opening; the content digest is still the whole text's.
        let texts: Vec<String> = texts
            .iter()
            .map(|text| within_input_limit(text).to_owned())
            .collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size.max(1)) {
            let batch_vectors = self.embed_batch(batch).await?;
            if let (Some(first), Some(new)) = (vectors.first(), batch_vectors.first()) {
                let (first, new): (&Vector, &Vector) = (first, new);
                if first.dim() != new.dim() {
                    return Err(EmbedError::ModelMismatch {
                        expected: format!("{} dimensions", first.dim()),
                        actual: format!("{} dimensions", new.dim()),
                    });
                }
            }
            vectors.extend(batch_vectors);
        }
        Ok(vectors)
    }

    async fn embed_batch(&self, batch: &[String]) -> Result<Vec<Vector>, EmbedError> {
        let policy = self.config.retry;
        let mut attempt = 1;
        loop {
            match self.request(batch).await {
                Ok(vectors) => return Ok(vectors),
                Err(Attempt::Fail(err)) => return Err(err),
                Err(Attempt::Retry(err, retry_after)) => {
                    if attempt >= policy.attempts {
                        return Err(err);
                    }
                    let backoff = policy.base_delay * 2u32.saturating_pow(attempt - 1);
                    let wait = retry_after.unwrap_or(backoff).min(policy.max_delay);
                    tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %err, "Retrying embeddings");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn request(&self, batch: &[String]) -> Result<Vec<Vector>, Attempt> {
        let config = &self.config;
        aia_http::outbound::check_url(&config.base_url)
            .map_err(|err| Attempt::Fail(EmbedError::Refused(err.to_string())))?;
        let base = config.base_url.trim_end_matches('/');
        let mut request = self
            .http
            .post(format!("{base}/embeddings"))
            .timeout(config.timeout)
            .json(&EmbeddingsRequest {
                model: &config.model,
                input: batch,
            });
        match (&config.kind, &config.api_key) {
            (ProviderKind::OpenAi, Some(key)) => request = request.bearer_auth(key),
            (ProviderKind::OpenAi, None) => {}
            (ProviderKind::Azure { api_version }, key) => {
                request = request.query(&[("api-version", api_version.as_str())]);
                if let Some(key) = key {
                    request = request.header("api-key", key);
                }
            }
        }
        let response = request.send_traced("embeddings").await.map_err(|err| {
            let what = if err.is_timeout() {
                format!("no answer within {} ms", config.timeout.as_millis())
            } else {
                "connection failed".to_owned()
            };
            Attempt::Retry(EmbedError::Unavailable(what), None)
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(Attempt::Retry(
                EmbedError::Unavailable(format!("HTTP {}", status.as_u16())),
                retry_after,
            ));
        }
        if !status.is_success() {
            return Err(Attempt::Fail(EmbedError::Refused(format!(
                "HTTP {}",
                status.as_u16()
            ))));
        }
        let body: EmbeddingsResponse =
            aia_http::answer::json(response)
                .await
                .map_err(|err| match err {
                    aia_http::answer::AnswerError::Read(err) if err.is_timeout() => {
                        Attempt::Retry(EmbedError::Unavailable("answer cut short".into()), None)
                    }
                    _ => Attempt::Fail(EmbedError::Malformed("not an embeddings answer".into())),
                })?;
        vectors_in_order(body, batch.len()).map_err(Attempt::Fail)
    }
}

/// The answer's vectors in input order, normalised, all of one dimension.
fn vectors_in_order(body: EmbeddingsResponse, expected: usize) -> Result<Vec<Vector>, EmbedError> {
    if body.data.len() != expected {
        return Err(EmbedError::Malformed(format!(
            "{} vectors for {expected} texts",
            body.data.len()
        )));
    }
    let mut slots: Vec<Option<Vector>> = vec![None; expected];
    let mut dim = None;
    for item in body.data {
        let slot = slots
            .get_mut(item.index)
            .ok_or_else(|| EmbedError::Malformed(format!("index {} out of range", item.index)))?;
        let vector = Vector::normalised(item.embedding)
            .ok_or_else(|| EmbedError::Malformed("an empty, zero or non-finite vector".into()))?;
        if *dim.get_or_insert(vector.dim()) != vector.dim() {
            return Err(EmbedError::Malformed(
                "vectors of different dimensions".into(),
            ));
        }
        if slot.replace(vector).is_some() {
            return Err(EmbedError::Malformed(format!("index {} twice", item.index)));
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_cut_at_its_token_weight_not_its_characters() {
        let latin = "a".repeat(MAX_INPUT_CHARS + 10);
        assert_eq!(within_input_limit(&latin).chars().count(), MAX_INPUT_CHARS);
        let chinese = "打".repeat(MAX_INPUT_CHARS);
        assert_eq!(
            within_input_limit(&chinese).chars().count(),
            MAX_INPUT_CHARS / 4
        );
        assert_eq!(within_input_limit("short"), "short");
    }
}
