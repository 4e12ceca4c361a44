//! Configuration of the incident notifier.

use std::time::Duration;

use aia_bus::StageSettings;
use aia_config::{ConfigError, parsed};
use aia_store::Keyring;

#[derive(Debug)]
pub struct Config {
    /// Servers, keys (they decrypt the webhook secrets), tenant cache,
    /// concurrency and metrics.
    pub stage: StageSettings,
    /// Timeout of each post (`AI_AGENTS_INCIDENT_WEBHOOK_TIMEOUT_SECS`,
    /// default 10).
    pub http_timeout: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            stage: StageSettings::from_env()?,
            http_timeout: Duration::from_secs(parsed("INCIDENT_WEBHOOK_TIMEOUT_SECS", 10)?),
        })
    }

    /// Defaults for everything but the servers and keys.
    pub fn new(nats_url: String, database_url: String, keyring: Keyring) -> Self {
        Self {
            stage: StageSettings::new(nats_url, database_url, keyring),
            http_timeout: Duration::from_secs(10),
        }
    }
}
