//! Configuration of the llm-enhancer.

use std::time::Duration;

use aia_bus::StageSettings;
use aia_config::{ConfigError, optional, parsed};
use aia_llm::{Provider, ProviderKind};
use aia_store::Keyring;

use crate::cost::PriceTable;

#[derive(Debug)]
pub struct Config {
    /// Servers, keys (they decrypt the tenants' LLM keys), tenant cache,
    /// concurrency and metrics.
    pub stage: StageSettings,
    /// The deployment's provider, for tenants without their own; `None`
    /// when no LLM is configured (every note is the raw-context note).
    pub provider: Option<Provider>,
    pub prices: PriceTable,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            stage: StageSettings::from_env()?,
            provider: provider_from_env()?,
            prices: match optional("LLM_PRICES") {
                Some(json) => {
                    PriceTable::from_json(&json).map_err(|reason| ConfigError::Invalid {
                        name: "AI_AGENTS_LLM_PRICES".into(),
                        reason,
                    })?
                }
                None => PriceTable::default(),
            },
        })
    }

    /// Defaults for everything but the servers and keys.
    pub fn new(
        nats_url: String,
        database_url: String,
        keyring: Keyring,
        provider: Option<Provider>,
    ) -> Self {
        Self {
            stage: StageSettings::new(nats_url, database_url, keyring),
            provider,
            prices: PriceTable::default(),
        }
    }
}

/// The provider named by `AI_AGENTS_LLM_*`, or `None` when
/// `AI_AGENTS_LLM_BASE_URL` is unset. `AI_AGENTS_LLM_AZURE_API_VERSION`
/// makes it an Azure OpenAI deployment.
pub fn provider_from_env() -> Result<Option<Provider>, ConfigError> {
    optional("LLM_BASE_URL")
        .map(|base_url| -> Result<Provider, ConfigError> {
            Ok(Provider {
                name: optional("LLM_PROVIDER_NAME").unwrap_or_else(|| "default".into()),
                kind: match optional("LLM_AZURE_API_VERSION") {
                    Some(api_version) => ProviderKind::Azure { api_version },
                    None => ProviderKind::OpenAi,
                },
                base_url,
                api_key: optional("LLM_API_KEY"),
                model: optional("LLM_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
                timeout: Duration::from_secs(parsed("LLM_TIMEOUT_SECS", 30)?),
            })
        })
        .transpose()
}
