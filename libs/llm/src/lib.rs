//! A client for the OpenAI-compatible chat-completions API, so the same code
//! talks to a LiteLLM proxy, OpenAI, vLLM or Ollama by configuration alone.

use aia_telemetry::http::TracedSend as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod budget;
pub mod chain;
pub mod cost;
pub mod redact;
pub mod tenant;

/// How a provider wants to be addressed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI and everything that speaks its API (LiteLLM, vLLM, Ollama):
    /// `{base_url}/chat/completions`, `Authorization: Bearer`.
    #[default]
    OpenAi,
    /// Azure OpenAI: `base_url` is the deployment URL
    /// (`https://{resource}.openai.azure.com/openai/deployments/{deployment}`),
    /// `?api-version=` is required, the key goes in `api-key`.
    Azure { api_version: String },
}

/// Where and how to reach one provider.
#[derive(Clone)]
pub struct Provider {
    /// A short name for logs and events, for example `litellm`.
    pub name: String,
    pub kind: ProviderKind,
    /// The API root including its version, for example
    /// `https://api.openai.com/v1` or `http://localhost:4000/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "****"))
            .finish()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system",
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user",
            content: content.into(),
        }
    }
}

/// What the model answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub content: String,
    pub model: String,
    pub tokens_in: u32,
    pub tokens_out: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// Worth retrying: timeouts, connection errors, 429 and 5xx.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying the same request will fail the same way.
    #[error("{reason}")]
    Permanent { reason: String },
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    max_tokens: u32,
    temperature: f32,
}

#[derive(Deserialize)]
struct ChatResponse {
    model: Option<String>,
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
}

/// About how many tokens a text is to a GPT-style tokenizer: one per four
/// characters, rounded up.
pub fn estimated_tokens(text: &str) -> u32 {
    u32::try_from(text.chars().count().div_ceil(4)).unwrap_or(u32::MAX)
}

/// One chat completion, without retries (the caller decides those).
pub async fn complete(
    http: &reqwest::Client,
    provider: &Provider,
    messages: &[Message],
    max_tokens: u32,
) -> Result<Completion, LlmError> {
    aia_http::outbound::check_url(&provider.base_url).map_err(|err| LlmError::Permanent {
        reason: format!("{}: {err}", provider.name),
    })?;
    let url = format!(
        "{}/chat/completions",
        provider.base_url.trim_end_matches('/')
    );
    let mut request = http
        .post(&url)
        .timeout(provider.timeout)
        .json(&ChatRequest {
            model: &provider.model,
            messages,
            max_tokens,
            temperature: 0.3,
        });
    match (&provider.kind, &provider.api_key) {
        (ProviderKind::OpenAi, Some(key)) => request = request.bearer_auth(key),
        (ProviderKind::OpenAi, None) => {}
        (ProviderKind::Azure { api_version }, key) => {
            request = request.query(&[("api-version", api_version.as_str())]);
            if let Some(key) = key {
                request = request.header("api-key", key);
            }
        }
    }
    let response =
        request
            .send_traced("llm-provider")
            .await
            .map_err(|err| LlmError::Transient {
                reason: if err.is_timeout() {
                    format!(
                        "{} did not answer within {:?}",
                        provider.name, provider.timeout
                    )
                } else {
                    format!("{} could not be reached: {err}", provider.name)
                },
                retry_after: None,
            })?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = aia_http::retry_after(response.headers());
        let reason = format!("{} answered HTTP {}", provider.name, status.as_u16());
        return Err(if status.as_u16() == 429 || status.is_server_error() {
            LlmError::Transient {
                reason,
                retry_after,
            }
        } else {
            LlmError::Permanent { reason }
        });
    }
    let body: ChatResponse = response.json().await.map_err(|err| LlmError::Transient {
        reason: format!("{} sent an unreadable answer: {err}", provider.name),
        retry_after: None,
    })?;
    let content = body
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.message.content)
        .filter(|content| !content.trim().is_empty())
        .ok_or_else(|| LlmError::Transient {
            reason: format!("{} answered with no content", provider.name),
            retry_after: None,
        })?;
    // A provider that reports no usage (some proxies and local servers)
    // is charged an estimate, not nothing: a budget must still be reached.
    let usage = body.usage.unwrap_or_else(|| Usage {
        prompt_tokens: messages
            .iter()
            .map(|message| estimated_tokens(&message.content))
            .sum(),
        completion_tokens: estimated_tokens(&content),
    });
    Ok(Completion {
        content,
        model: body.model.unwrap_or_else(|| provider.model.clone()),
        tokens_in: usage.prompt_tokens,
        tokens_out: usage.completion_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::estimated_tokens;

    #[test]
    fn a_text_without_reported_usage_is_estimated_at_a_token_per_four_characters() {
        assert_eq!(estimated_tokens(""), 0);
        assert_eq!(estimated_tokens("abcd"), 1);
        assert_eq!(estimated_tokens("abcde"), 2);
        // Characters, not bytes: "ü" is two bytes and one character.
        assert_eq!(estimated_tokens("üüüü"), 1);
    }
}
