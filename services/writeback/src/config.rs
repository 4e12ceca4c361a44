//! Configuration of the writeback stage.

use std::time::Duration;

use aia_config::{ConfigError, optional, parsed, required};
use aia_store::Keyring;

#[derive(Debug)]
pub struct Config {
    pub nats_url: String,
    pub database_url: String,
    pub keyring: Keyring,
    /// How long a tenant read from the database is reused
    /// (`AI_AGENTS_TENANT_CACHE_TTL_SECS`, default 5; 0 reads it for
    /// every event).
    pub tenant_cache_ttl: Duration,
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
            tenant_cache_ttl: Duration::from_secs(parsed("TENANT_CACHE_TTL_SECS", 5)?),
            http_timeout: Duration::from_secs(parsed("ITSM_TIMEOUT_SECS", 10)?),
            public_url: optional("PUBLIC_URL"),
        })
    }
}
