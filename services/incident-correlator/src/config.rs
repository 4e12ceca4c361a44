//! Configuration of the incident correlator.

use std::time::Duration;

use aia_bus::StageSettings;
use aia_config::{ConfigError, parsed};
use aia_store::Keyring;

#[derive(Debug)]
pub struct Config {
    /// Servers, keys, tenant cache, concurrency and metrics.
    pub stage: StageSettings,
    /// How often quiet incidents are ended and the outbox is emptied
    /// (`AI_AGENTS_INCIDENT_SWEEP_SECS`, default 60).
    pub sweep_every: Duration,
    /// Tenants whose windows of open tickets the process holds
    /// (`AI_AGENTS_WINDOW_CACHE_TENANTS`, default 128; 0 reads each window
    /// in full for every ticket).
    pub window_tenants: usize,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            stage: StageSettings::from_env()?,
            sweep_every: Duration::from_secs(parsed("INCIDENT_SWEEP_SECS", 60)?.max(1)),
            window_tenants: aia_store::open_tickets::configured_tenants()?,
        })
    }

    /// Defaults for everything but the servers and keys.
    pub fn new(nats_url: String, database_url: String, keyring: Keyring) -> Self {
        Self {
            stage: StageSettings::new(nats_url, database_url, keyring),
            sweep_every: crate::sweep::EVERY,
            window_tenants: aia_store::open_tickets::DEFAULT_TENANTS,
        }
    }
}
