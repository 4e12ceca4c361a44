//! Configuration of the llm-enhancer.

use aia_bus::StageSettings;
use aia_config::ConfigError;
use aia_llm::Provider;
use aia_llm::cost::PriceTable;
use aia_store::Keyring;

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
            provider: aia_llm::tenant::provider_from_env()?,
            prices: aia_llm::tenant::prices_from_env()?,
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
