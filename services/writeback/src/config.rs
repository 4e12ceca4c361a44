//! Configuration of the writeback stage.

use std::time::Duration;

use aia_bus::StageSettings;
use aia_config::{ConfigError, optional, parsed};
use aia_store::Keyring;

#[derive(Debug)]
pub struct Config {
    /// Servers, keys (they decrypt the help-desk credentials and sign the
    /// feedback links), tenant cache, concurrency and metrics.
    pub stage: StageSettings,
    /// Timeout of each call to a help desk (`AI_AGENTS_ITSM_TIMEOUT_SECS`,
    /// default 10).
    pub http_timeout: Duration,
    /// The ingress's public base URL; notes link to its feedback endpoint.
    /// Without it, notes carry no feedback links.
    pub public_url: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            stage: StageSettings::from_env()?,
            http_timeout: Duration::from_secs(parsed("ITSM_TIMEOUT_SECS", 10)?),
            public_url: optional("PUBLIC_URL"),
        })
    }
}

impl Config {
    /// Defaults for everything but the servers, keys and public URL.
    pub fn new(
        nats_url: String,
        database_url: String,
        keyring: Keyring,
        public_url: Option<String>,
    ) -> Self {
        Self {
            stage: StageSettings::new(nats_url, database_url, keyring),
            http_timeout: Duration::from_secs(10),
            public_url,
        }
    }
}
