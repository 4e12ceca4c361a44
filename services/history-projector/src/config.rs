//! Configuration of the history-projector.

use std::time::Duration;

use aia_config::{ConfigError, parsed, positive, required};

const DEFAULT_LINGER_MS: u64 = 100;

#[derive(Clone)]
pub struct Config {
    pub nats_url: String,
    pub database_url: String,
    /// Enhancement history older than this is purged (default 90 days, the
    /// stream's max age).
    pub retention: Duration,
    /// How often the purge runs (default hourly).
    pub retention_every: Duration,
    /// How long a batch waits for more events after its first one
    /// (`AI_AGENTS_PROJECTOR_LINGER_MS`, default 100): the read models trail
    /// the stream by that much more, and a steady trickle of events is
    /// applied in a few transactions instead of one per event.
    pub linger: Duration,
    /// The process's metrics; the projector adds its series to it.
    pub registry: aia_telemetry::metrics::SharedRegistry,
    /// Where to serve `/metrics` (`AI_AGENTS_METRICS_ADDR`); `None` when
    /// the process serves its registry itself, or not at all.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("retention", &self.retention)
            .field("retention_every", &self.retention_every)
            .field("linger", &self.linger)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            nats_url: required("NATS_URL")?,
            database_url: required("DATABASE_URL")?,
            retention: Duration::from_secs(86_400 * positive::<u64>("RETENTION_DAYS", 90)?),
            retention_every: Duration::from_secs(parsed("RETENTION_INTERVAL_SECS", 3600)?),
            linger: Duration::from_millis(parsed("PROJECTOR_LINGER_MS", DEFAULT_LINGER_MS)?),
            registry: aia_telemetry::metrics::registry(),
            metrics_addr: aia_config::shared()?.metrics_addr,
        })
    }

    /// Defaults for everything but the servers.
    pub fn new(nats_url: String, database_url: String) -> Self {
        Self {
            nats_url,
            database_url,
            retention: Duration::from_secs(86_400 * 90),
            retention_every: Duration::from_secs(3600),
            linger: Duration::from_millis(DEFAULT_LINGER_MS),
            registry: aia_telemetry::metrics::registry(),
            metrics_addr: None,
        }
    }
}
