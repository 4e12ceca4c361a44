//! Configuration of the context-gatherer.

use std::time::Duration;

use aia_config::{ConfigError, parsed, required};

#[derive(Debug, Clone)]
pub struct Config {
    pub nats_url: String,
    pub database_url: String,
    /// Budget of one source.
    pub source_timeout: Duration,
    /// Similar resolved tickets put into the context.
    pub max_similar_tickets: i64,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            nats_url: required("NATS_URL")?,
            database_url: required("DATABASE_URL")?,
            source_timeout: Duration::from_secs(parsed("CONTEXT_SOURCE_TIMEOUT_SECS", 10)?),
            max_similar_tickets: parsed("CONTEXT_MAX_SIMILAR_TICKETS", 5)?,
        })
    }
}
