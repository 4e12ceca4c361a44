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
    /// The provider stopped at the token limit (`finish_reason: length`):
    /// the answer ends mid-way.
    pub truncated: bool,
}

/// Models that reason before they answer (OpenAI's o-series and GPT-5):
/// they take `max_completion_tokens`, which their reasoning spends too,
/// and only their default temperature — a request with `max_tokens` or a
/// temperature is refused.
pub fn reasons_first(model: &str) -> bool {
    let name = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|family| name.starts_with(family))
        && !name.starts_with("gpt-5-chat")
}

/// The completion tokens a call may use for an answer of `answer_tokens`:
/// a reasoning model's thinking counts against the same limit, so it gets
/// room for that as well (and a budget's estimate counts it).
pub fn completion_allowance(model: &str, answer_tokens: u32) -> u32 {
    if reasons_first(model) {
        answer_tokens.saturating_mul(4).max(4096)
    } else {
        answer_tokens
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// Worth retrying: timeouts, connection errors, 429 and 5xx.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
        /// What a call that timed out may be billed: the provider goes on
        /// generating the answer we stopped waiting for, and bills it. The
        /// prompt as estimated and the whole completion allowance, so a
        /// budget errs high rather than let slow calls through for free.
        may_be_billed: Option<Billed>,
    },
    /// Retrying the same request will fail the same way.
    #[error("{reason}")]
    Permanent {
        reason: String,
        /// The provider refused this request (too long, filtered), not
        /// every request: its circuit stays closed for the others.
        this_request_only: bool,
    },
    /// The provider answered, and bills the answer, but it holds no note:
    /// this request's, so its circuit stays closed. Asked again only when
    /// it may answer otherwise (`again`): a reasoning model that spent its
    /// whole allowance thinking would spend it again.
    #[error("{reason}")]
    Unusable {
        reason: String,
        billed: Billed,
        again: bool,
    },
}

/// What a provider bills for an answer that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billed {
    /// The model the provider is configured with.
    pub configured: String,
    /// The model the answer named (else the configured one).
    pub model: String,
    pub tokens_in: u32,
    pub tokens_out: u32,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
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
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    /// OpenAI's structured refusal, in place of content.
    #[serde(default)]
    refusal: Option<String>,
}

/// An OpenAI-style error body: `{"error": {"message", "type", "code"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

impl ErrorDetail {
    /// `code`, else `type`: what names the cause (`invalid_api_key`,
    /// `model_not_found`, `context_length_exceeded`, `insufficient_quota`).
    fn cause(&self) -> Option<String> {
        match &self.code {
            Some(serde_json::Value::String(code)) => Some(code.clone()),
            Some(serde_json::Value::Number(code)) => Some(code.to_string()),
            _ => self.kind.clone(),
        }
    }
}

/// A provider's refusal as the run records it: the status, the provider's
/// own name for the cause, and the start of its message (providers mask
/// keys in them; the message is cut, not trusted to be short).
fn refusal_reason(provider: &str, status: u16, body: Option<&ErrorDetail>) -> String {
    let mut reason = format!("{provider} answered HTTP {status}");
    if let Some(detail) = body {
        if let Some(cause) = detail.cause() {
            reason.push_str(&format!(" ({cause})"));
        }
        if let Some(message) = detail.message.as_deref().filter(|m| !m.trim().is_empty()) {
            let message: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
            let cut: String = message.chars().take(160).collect();
            reason.push_str(": ");
            reason.push_str(&cut);
            if cut.len() < message.len() {
                reason.push('…');
            }
        }
    }
    reason
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
}

/// About how many tokens a text is to a GPT-style tokenizer: one per four
/// characters, rounded up — and one per character of the scripts written
/// without spaces (Chinese, Japanese, Korean, Thai), which the four would
/// count at a quarter of their cost.
pub fn estimated_tokens(text: &str) -> u32 {
    let (wide, other) = text.chars().fold((0usize, 0usize), |(wide, other), c| {
        if aia_events::language::token_per_character(c) {
            (wide + 1, other)
        } else {
            (wide, other + 1)
        }
    });
    u32::try_from(wide + other.div_ceil(4)).unwrap_or(u32::MAX)
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
        this_request_only: false,
    })?;
    let reasoning = reasons_first(&provider.model);
    let allowance = completion_allowance(&provider.model, max_tokens);
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
            max_tokens: (!reasoning).then_some(allowance),
            max_completion_tokens: reasoning.then_some(allowance),
            temperature: (!reasoning).then_some(0.3),
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
    let response = request.send_traced("llm-provider").await.map_err(|err| {
        // A connection never made sent nothing to bill.
        if err.is_timeout() && !err.is_connect() {
            LlmError::Transient {
                reason: format!(
                    "{} did not answer within {:?}",
                    provider.name, provider.timeout
                ),
                retry_after: None,
                may_be_billed: Some(Billed {
                    configured: provider.model.clone(),
                    model: provider.model.clone(),
                    tokens_in: messages
                        .iter()
                        .map(|message| estimated_tokens(&message.content))
                        .fold(0, u32::saturating_add),
                    tokens_out: allowance,
                }),
            }
        } else {
            LlmError::Transient {
                reason: format!("{} could not be reached: {err}", provider.name),
                retry_after: None,
                may_be_billed: None,
            }
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = aia_http::retry_after(response.headers());
        let body = aia_http::answer::bytes_within(response, 64 * 1024)
            .await
            .ok()
            .and_then(|body| serde_json::from_slice::<ErrorBody>(&body).ok());
        let detail = body.as_ref().map(|body| &body.error);
        let reason = refusal_reason(&provider.name, status.as_u16(), detail);
        let cause = detail.and_then(ErrorDetail::cause);
        let code = status.as_u16();
        // A 429 for an exhausted quota is billing, not a burst: it lasts.
        let out_of_quota = cause.as_deref() == Some("insufficient_quota");
        return Err(
            if !out_of_quota && (matches!(code, 408 | 409 | 429) || status.is_server_error()) {
                LlmError::Transient {
                    reason,
                    retry_after,
                    may_be_billed: None,
                }
            } else {
                LlmError::Permanent {
                    reason,
                    // Too long, unprocessable or filtered: this request's.
                    this_request_only: matches!(code, 400 | 413 | 422) && !out_of_quota,
                }
            },
        );
    }
    let body: ChatResponse =
        aia_http::answer::json(response)
            .await
            .map_err(|err| LlmError::Transient {
                reason: format!("{} sent an unreadable answer: {err}", provider.name),
                retry_after: None,
                may_be_billed: None,
            })?;
    let choice = body.choices.into_iter().next();
    let finish_reason = choice
        .as_ref()
        .and_then(|choice| choice.finish_reason.clone())
        .unwrap_or_default();
    if finish_reason == "content_filter"
        || choice
            .as_ref()
            .is_some_and(|choice| choice.message.refusal.is_some())
    {
        // Asking again gets the same refusal, and pays for it again.
        return Err(LlmError::Permanent {
            reason: format!(
                "{} refused to answer (its content filter or a refusal)",
                provider.name
            ),
            this_request_only: true,
        });
    }
    let content = choice
        .and_then(|choice| choice.message.content)
        .filter(|content| !content.trim().is_empty());
    let prompt_tokens = || {
        messages
            .iter()
            .map(|message| estimated_tokens(&message.content))
            .sum()
    };
    let model = body.model.unwrap_or_else(|| provider.model.clone());
    let Some(content) = content else {
        // Billed all the same: what it used, or (unreported) the prompt
        // and the whole allowance, the most it can have used.
        let usage = body.usage.unwrap_or_else(|| Usage {
            prompt_tokens: prompt_tokens(),
            completion_tokens: completion_allowance(&provider.model, max_tokens),
        });
        return Err(LlmError::Unusable {
            reason: if finish_reason == "length" {
                format!(
                    "{} spent its whole token allowance before answering",
                    provider.name
                )
            } else {
                format!("{} answered with no content", provider.name)
            },
            billed: Billed {
                configured: provider.model.clone(),
                model,
                tokens_in: usage.prompt_tokens,
                tokens_out: usage.completion_tokens,
            },
            again: finish_reason != "length",
        });
    };
    // A provider that reports no usage (some proxies and local servers)
    // is charged an estimate, not nothing: a budget must still be reached.
    let usage = body.usage.unwrap_or_else(|| Usage {
        prompt_tokens: prompt_tokens(),
        completion_tokens: estimated_tokens(&content),
    });
    Ok(Completion {
        content,
        model,
        tokens_in: usage.prompt_tokens,
        tokens_out: usage.completion_tokens,
        truncated: finish_reason == "length",
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
        // A character each where words are not spaced.
        assert_eq!(estimated_tokens("打印机无法打印"), 7);
        assert_eq!(estimated_tokens("プリンター abcd"), 5 + 2);
    }
}
