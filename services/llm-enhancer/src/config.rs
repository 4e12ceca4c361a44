//! Configuration of the llm-enhancer.

use std::time::Duration;

use aia_config::{ConfigError, optional, parsed, required};
use aia_llm::{Provider, ProviderKind};
use aia_store::Keyring;

use crate::cost::PriceTable;

#[derive(Debug)]
pub struct Config {
    pub nats_url: String,
    pub database_url: String,
    /// Decrypts the tenants' LLM keys.
    pub keyring: Keyring,
    /// How long a tenant read from the database is reused
    /// (`AI_AGENTS_TENANT_CACHE_TTL_SECS`, default 5; 0 reads it for
    /// every event).
    pub tenant_cache_ttl: Duration,
    /// The deployment's provider, for tenants without their own; `None`
    /// when no LLM is configured (every note is the raw-context note).
    pub provider: Option<Provider>,
    pub prices: PriceTable,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            nats_url: required("NATS_URL")?,
            database_url: required("DATABASE_URL")?,
            keyring: Keyring::from_env().map_err(|err| ConfigError::Invalid {
                name: "AI_AGENTS_SECRET_KEYS".into(),
                reason: err.to_string(),
            })?,
            tenant_cache_ttl: Duration::from_secs(parsed("TENANT_CACHE_TTL_SECS", 5)?),
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
            nats_url,
            database_url,
            keyring,
            tenant_cache_ttl: Duration::from_secs(5),
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
