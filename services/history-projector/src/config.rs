//! Configuration of the history-projector.

use aia_config::{ConfigError, required};

#[derive(Debug, Clone)]
pub struct Config {
    pub nats_url: String,
    pub database_url: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            nats_url: required("NATS_URL")?,
            database_url: required("DATABASE_URL")?,
        })
    }
}
