//! Configuration of the llm-enhancer.

use std::time::Duration;

use aia_config::{ConfigError, optional, parsed, required};
use aia_llm::Provider;

#[derive(Debug, Clone)]
pub struct Config {
    pub nats_url: String,
    /// `None` when no LLM is configured: every note is the raw-context note.
    pub provider: Option<Provider>,
    pub max_note_words: usize,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            nats_url: required("NATS_URL")?,
            provider: provider_from_env()?,
            max_note_words: parsed("MAX_NOTE_WORDS", 500)?,
        })
    }
}

/// The provider named by `AI_AGENTS_LLM_*`, or `None` when
/// `AI_AGENTS_LLM_BASE_URL` is unset.
pub fn provider_from_env() -> Result<Option<Provider>, ConfigError> {
    optional("LLM_BASE_URL")
        .map(|base_url| -> Result<Provider, ConfigError> {
            Ok(Provider {
                name: optional("LLM_PROVIDER_NAME").unwrap_or_else(|| "default".into()),
                base_url,
                api_key: optional("LLM_API_KEY"),
                model: optional("LLM_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
                timeout: Duration::from_secs(parsed("LLM_TIMEOUT_SECS", 30)?),
            })
        })
        .transpose()
}
