//! Configuration of the ingress.

use std::net::SocketAddr;

use aia_config::{ConfigError, parsed, required};
use aia_store::Keyring;

#[derive(Debug)]
pub struct Config {
    pub nats_url: String,
    pub database_url: String,
    pub keyring: Keyring,
    /// Where to listen, `AI_AGENTS_INGRESS_ADDR` (default `0.0.0.0:8080`).
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
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
            listen: parsed("INGRESS_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            max_body_bytes: parsed("INGRESS_MAX_BODY_BYTES", 256 * 1024)?,
        })
    }
}
