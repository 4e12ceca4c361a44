//! Configuration of the writeback stage.

use std::time::Duration;

use aia_config::{ConfigError, optional, parsed, required};
use aia_store::Keyring;

#[derive(Debug)]
pub struct Config {
    pub nats_url: String,
    pub database_url: String,
    pub keyring: Keyring,
    pub http_timeout: Duration,
    /// The ingress's public base URL; notes link to its feedback endpoint.
    /// Without it, notes carry no feedback links.
    pub public_url: Option<String>,
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
            http_timeout: Duration::from_secs(parsed("ITSM_TIMEOUT_SECS", 10)?),
            public_url: optional("PUBLIC_URL"),
        })
    }
}
