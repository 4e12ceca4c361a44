//! Configuration of the context-gatherer.

use std::time::Duration;

use aia_config::{ConfigError, parsed, required};
use aia_store::Keyring;

#[derive(Debug)]
pub struct Config {
    pub nats_url: String,
    pub database_url: String,
    /// Decrypts the tenants' integration tokens (knowledge base, monitoring).
    pub keyring: Keyring,
    /// Timeout of each source without one of its own (default 10 s).
    pub source_timeout: Duration,
    /// The stage's overall budget (default 30 s).
    pub budget: Duration,
    /// Timeout of the monitoring source (default 15 s).
    pub monitoring_timeout: Duration,
    /// Similar resolved tickets put into the context (default 5).
    pub max_similar_tickets: i64,
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
            source_timeout: Duration::from_secs(parsed("CONTEXT_SOURCE_TIMEOUT_SECS", 10)?),
            budget: Duration::from_secs(parsed("CONTEXT_BUDGET_SECS", 30)?),
            monitoring_timeout: Duration::from_secs(parsed("CONTEXT_MONITORING_TIMEOUT_SECS", 15)?),
            max_similar_tickets: parsed("CONTEXT_MAX_SIMILAR_TICKETS", 5)?,
        })
    }

    /// Defaults for everything but the servers and keys.
    pub fn new(nats_url: String, database_url: String, keyring: Keyring) -> Self {
        Self {
            nats_url,
            database_url,
            keyring,
            source_timeout: Duration::from_secs(10),
            budget: Duration::from_secs(30),
            monitoring_timeout: Duration::from_secs(15),
            max_similar_tickets: 5,
        }
    }
}
