//! Configuration of the ingress.

use std::net::SocketAddr;
use std::time::Duration;

use aia_config::{ConfigError, parsed, required};
use aia_store::Keyring;

pub struct Config {
    pub nats_url: String,
    pub database_url: String,
    pub keyring: Keyring,
    /// `AI_AGENTS_INGRESS_ADDR` (default `0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// Larger bodies are refused with 413 (default 256 KiB).
    pub max_body_bytes: usize,
    /// Accepted webhooks per tenant, endpoint and minute, unless the tenant
    /// overrides it (default 100).
    pub rate_limit_per_minute: u32,
    /// Failed signatures per tenant and minute before 429 (default 10).
    pub failed_signatures_per_minute: u32,
    /// How long tenants and their secrets are cached (default 30 s).
    pub tenant_cache_ttl: Duration,
    /// How long to wait for JetStream to confirm an event before 503.
    pub publish_timeout: Duration,
    /// How long a request's body may take to arrive
    /// (`AI_AGENTS_INGRESS_REQUEST_TIMEOUT_SECS`, default 30), then 408.
    pub request_timeout: Duration,
    /// How long a note's feedback links work after its run began
    /// (`AI_AGENTS_FEEDBACK_LINK_DAYS`, default 30).
    pub feedback_link_days: u32,
    /// The process's metrics; the ingress adds its series to it.
    pub registry: aia_telemetry::metrics::SharedRegistry,
    /// Where `/metrics` is served (`AI_AGENTS_METRICS_ADDR`), apart from
    /// the public webhook listener; `None` when the process serves its
    /// registry itself, or not at all.
    pub metrics_addr: Option<SocketAddr>,
    /// Database connections this instance may hold
    /// (`AI_AGENTS_DB_POOL_SIZE`, default 32).
    pub pool_size: usize,
}

/// The ingress's database connections unless `AI_AGENTS_DB_POOL_SIZE`
/// says: every webhook claims its run before it is published.
pub const POOL_SIZE: usize = 32;

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("metrics_addr", &self.metrics_addr)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let shared = aia_config::shared()?;
        Ok(Self {
            nats_url: required("NATS_URL")?,
            database_url: required("DATABASE_URL")?,
            keyring: aia_bus::kit::keyring_from_env()?,
            listen: parsed("INGRESS_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            max_body_bytes: parsed("INGRESS_MAX_BODY_BYTES", 256 * 1024)?,
            rate_limit_per_minute: parsed("INGRESS_RATE_LIMIT_PER_MINUTE", 100)?,
            failed_signatures_per_minute: parsed("INGRESS_FAILED_SIGNATURES_PER_MINUTE", 10)?,
            tenant_cache_ttl: Duration::from_secs(parsed("INGRESS_TENANT_CACHE_TTL_SECS", 30)?),
            publish_timeout: Duration::from_millis(parsed("INGRESS_PUBLISH_TIMEOUT_MS", 5000)?),
            request_timeout: Duration::from_secs(parsed("INGRESS_REQUEST_TIMEOUT_SECS", 30)?),
            feedback_link_days: aia_config::positive("FEEDBACK_LINK_DAYS", 30)?,
            registry: aia_telemetry::metrics::registry(),
            metrics_addr: shared.metrics_addr,
            pool_size: shared.db_pool_size.unwrap_or(POOL_SIZE),
        })
    }

    /// Defaults for everything but the servers and keys.
    pub fn new(nats_url: String, database_url: String, keyring: Keyring) -> Self {
        Self {
            nats_url,
            database_url,
            keyring,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_body_bytes: 256 * 1024,
            rate_limit_per_minute: 100,
            failed_signatures_per_minute: 10,
            tenant_cache_ttl: Duration::from_secs(30),
            publish_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            feedback_link_days: 30,
            registry: aia_telemetry::metrics::registry(),
            metrics_addr: None,
            pool_size: POOL_SIZE,
        }
    }
}
