//! What every stage process is made of, built one way: its settings from
//! the environment, a database pool, a NATS connection, the tenant cache
//! and its consumer's configuration. A stage's `run` builds its handler from
//! a [`StageDeps`] and hands both to [`StageDeps::run`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aia_config::ConfigError;
use aia_store::{Keyring, Pool, TenantCache};

use crate::handler::Handler;
use crate::stage::{StageConfig, StageError, run_stage};
use crate::{JetStream, connect};

/// Database connections per stage instance unless `AI_AGENTS_DB_POOL_SIZE`
/// says. A handler holds one at a time, so this bounds the queries in
/// flight, not the messages.
pub const POOL_SIZE: usize = 16;

/// The settings every stage reads the same way.
#[derive(Debug)]
pub struct StageSettings {
    pub nats_url: String,
    /// Connects as the application role.
    pub database_url: String,
    /// Decrypts the tenants' secrets.
    pub keyring: Keyring,
    /// How long a tenant read from the database is reused
    /// (`AI_AGENTS_TENANT_CACHE_TTL_SECS`, default 5; 0 reads it for
    /// every event).
    pub tenant_cache_ttl: Duration,
    /// Messages worked on at once by this instance
    /// (`AI_AGENTS_CONCURRENCY`, default 32).
    pub concurrency: usize,
    /// Database connections this instance may hold
    /// (`AI_AGENTS_DB_POOL_SIZE`, default [`POOL_SIZE`]).
    pub pool_size: usize,
    /// The process's metrics; the stage adds its series to it.
    pub registry: aia_telemetry::metrics::SharedRegistry,
    /// Where to serve `/metrics` (`AI_AGENTS_METRICS_ADDR`); `None` when
    /// the process serves its registry itself, or not at all.
    pub metrics_addr: Option<SocketAddr>,
}

impl StageSettings {
    /// From `AI_AGENTS_NATS_URL`, `AI_AGENTS_DATABASE_URL`,
    /// `AI_AGENTS_SECRET_KEYS` and the shared variables; a malformed value
    /// is refused with its name.
    pub fn from_env() -> Result<Self, ConfigError> {
        let shared = aia_config::shared()?;
        Ok(Self {
            nats_url: aia_config::required("NATS_URL")?,
            database_url: aia_config::required("DATABASE_URL")?,
            keyring: keyring_from_env()?,
            tenant_cache_ttl: Duration::from_secs(aia_config::parsed("TENANT_CACHE_TTL_SECS", 5)?),
            concurrency: shared.concurrency,
            pool_size: shared.db_pool_size.unwrap_or(POOL_SIZE),
            registry: aia_telemetry::metrics::registry(),
            metrics_addr: shared.metrics_addr,
        })
    }

    /// Defaults for everything but the servers and keys; metrics are kept
    /// in a registry of their own and not served.
    pub fn new(nats_url: String, database_url: String, keyring: Keyring) -> Self {
        Self {
            nats_url,
            database_url,
            keyring,
            tenant_cache_ttl: Duration::from_secs(5),
            concurrency: aia_config::Shared::DEFAULT_CONCURRENCY,
            pool_size: POOL_SIZE,
            registry: aia_telemetry::metrics::registry(),
            metrics_addr: None,
        }
    }
}

/// `AI_AGENTS_SECRET_KEYS` as a keyring, its error named like every other
/// configuration error.
pub fn keyring_from_env() -> Result<Keyring, ConfigError> {
    Keyring::from_env().map_err(|err| ConfigError::Invalid {
        name: format!("{}SECRET_KEYS", aia_config::PREFIX),
        reason: err.to_string(),
    })
}

/// A stage instance's connections, ready for its handler.
pub struct StageDeps {
    pub db: Pool,
    pub jetstream: JetStream,
    /// The tenants, each read at most once per TTL.
    pub tenants: Arc<TenantCache>,
    /// How the instance consumes; `consumer.registry` takes the handler's
    /// own series.
    pub consumer: StageConfig,
}

impl std::fmt::Debug for StageDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageDeps")
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

impl StageDeps {
    /// Connects `name` (the stage, and its durable consumer) to its
    /// servers. NATS is retried until it answers, so a stage started with
    /// the servers does not die in the race.
    pub async fn connect(name: &'static str, settings: StageSettings) -> Result<Self, StageError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = aia_store::pool(&settings.database_url, settings.pool_size)
            .map_err(StageError::Database)?;
        let (_client, jetstream) = connect(&settings.nats_url, name)
            .await
            .map_err(StageError::Nats)?;
        Ok(Self {
            tenants: Arc::new(TenantCache::new(
                db.clone(),
                Arc::new(settings.keyring),
                settings.tenant_cache_ttl,
            )),
            db,
            jetstream,
            consumer: StageConfig {
                stage: name,
                durable: name.to_owned(),
                concurrency: settings.concurrency,
                registry: settings.registry,
                metrics_addr: settings.metrics_addr,
            },
        })
    }

    /// Consumes with `handler` until `shutdown` completes.
    pub async fn run<H: Handler>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StageError> {
        run_stage(self.jetstream, Arc::new(handler), self.consumer, shutdown).await
    }
}
