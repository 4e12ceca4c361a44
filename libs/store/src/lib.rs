//! Postgres access shared by every service: connection pools, tenant-scoped
//! transactions (row-level security), migrations, encrypted secrets and the
//! tenants table.
//!
//! Each service owns the SQL of its own tables; this crate holds only what
//! more than one of them needs.

pub mod embeddings;
pub mod feedback;
pub mod intake;
pub mod migrate;
pub mod open_tickets;
pub mod parking;
mod scoped;
pub mod secrets;
pub mod tenant_cache;
pub mod tenant_settings;
pub mod tenants;

use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

pub use deadpool_postgres::{Client, GenericClient, Pool, PoolError, Transaction};
pub use scoped::{
    search_query, set_tenant, tenant_query, tenant_query_unflushed, tenant_transaction,
};
pub use secrets::{Keyring, Secret};
pub use tenant_cache::TenantCache;
pub use tenant_settings::{
    EmbeddingEndpointSettings, EmbeddingSettings, IncidentCalibration, IncidentSettings,
    Integrations, LOCAL_EMBEDDING_MODEL, LanguageSettings, LlmProviderSettings, MonitoringQuery,
    NewTenant, Tenant, TenantSettings,
};
pub use tokio_postgres::Row;
pub use tokio_postgres::types::ToSql;

/// What went wrong talking to Postgres, sorted by what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Postgres could not be reached or the connection broke: retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The statement failed; retrying the same statement will fail again
    /// unless [`StoreError::is_transient`] says otherwise.
    #[error("database error: {}", describe(.0))]
    Query(tokio_postgres::Error),
    #[error("invalid database URL: {0}")]
    Config(String),
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

/// Whether a SQLSTATE says the statement failed on the values it was given
/// (a data exception, class 22; an integrity constraint, class 23; a value
/// past a limit, class 54 — a text too long for its search vector) rather
/// than on the database around it (a missing column in a deploy's version
/// skew, a read-only standby, a permission): only those are one event's
/// fault.
pub fn is_data_error(sqlstate: &str) -> bool {
    ["22", "23", "54"]
        .iter()
        .any(|class| sqlstate.starts_with(class))
}

impl StoreError {
    /// Whether the failure is the data's own (see [`is_data_error`]), or
    /// stored data that does not decode: the same input will always fail.
    pub fn is_about_the_data(&self) -> bool {
        match self {
            Self::Query(err) => err.code().is_some_and(|code| is_data_error(code.code())),
            Self::Corrupt(_) => true,
            _ => false,
        }
    }

    /// Whether the same operation may succeed later: the server could not
    /// be reached, or it refused for a passing reason (a deadlock, a lock
    /// or serialisation conflict, a cancelled statement, a shutdown, no
    /// resources), or a statement prepared on this connection went stale.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Query(err) => match err.code() {
                None => true,
                Some(code) => {
                    let code = code.code();
                    code.starts_with("08")
                        || code.starts_with("53")
                        || code.starts_with("57")
                        || matches!(code, "40001" | "40P01" | "55P03")
                        || self.is_stale_statement()
                }
            },
            _ => false,
        }
    }

    /// A statement prepared (and cached) on the connection no longer fits
    /// the schema — its result type changed under a migration, or the
    /// server forgot it. Making such an error forgets every cached
    /// statement of every pool of the process, so trying again succeeds.
    pub fn is_stale_statement(&self) -> bool {
        let Self::Query(err) = self else {
            return false;
        };
        match err.as_db_error() {
            Some(db) => {
                *db.code() == SqlState::INVALID_SQL_STATEMENT_NAME
                    || (*db.code() == SqlState::FEATURE_NOT_SUPPORTED
                        && db.message().contains("cached plan"))
            }
            None => false,
        }
    }
}

/// What the server said (its SQLSTATE and message; not the DETAIL, where
/// it quotes whole rows, though a message can quote the value it refused),
/// or the client's error with its cause: tokio-postgres's own `Display`
/// says only "db error".
fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{} {}", db.code().code(), db.message());
    }
    match std::error::Error::source(err) {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        let err = Self::Query(err);
        if err.is_stale_statement() {
            // The schema changed under every connection, not only this one.
            forget_prepared_statements();
        }
        err
    }
}

/// Every pool of this process (as weak references), so that a statement
/// gone stale clears the statement caches of all of them.
static POOLS: Mutex<Vec<deadpool_postgres::WeakPool>> = Mutex::new(Vec::new());

fn register(pool: &Pool) {
    let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    pools.retain(|weak| weak.upgrade().is_some());
    pools.push(pool.weak());
}

/// Forgets the prepared statements every pool of this process has cached;
/// each is prepared again on its next use.
pub fn forget_prepared_statements() {
    let pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    for pool in pools
        .iter()
        .filter_map(deadpool_postgres::WeakPool::upgrade)
    {
        pool.manager().statement_caches.clear();
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

/// A connection pool for one database URL.
pub fn pool(url: &str, max_size: usize) -> Result<Pool, StoreError> {
    let config =
        tokio_postgres::Config::from_str(url).map_err(|err| StoreError::Config(err.to_string()))?;
    pool_from_config(config, max_size)
}

/// A pool for requests people wait on (the console, the admin API): each
/// statement ends after `statement_timeout`, a transaction left idle after
/// a minute, and a request that finds every connection busy gives up after
/// `wait` instead of queueing for ever — a handful of slow clients or heavy
/// queries cannot hang every page.
pub fn bounded_pool(
    url: &str,
    max_size: usize,
    statement_timeout: Duration,
    wait: Duration,
) -> Result<Pool, StoreError> {
    let mut config =
        tokio_postgres::Config::from_str(url).map_err(|err| StoreError::Config(err.to_string()))?;
    config.options(format!(
        "-c statement_timeout={}ms -c idle_in_transaction_session_timeout=60000ms",
        statement_timeout.as_millis()
    ));
    build_pool(config, max_size, Some(wait))
}

/// The same server and credentials as `url`, another database.
pub fn with_database(url: &str, database: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config =
        tokio_postgres::Config::from_str(url).map_err(|err| StoreError::Config(err.to_string()))?;
    config.dbname(database);
    Ok(config)
}

/// A connection pool for a parsed configuration.
pub fn pool_from_config(
    config: tokio_postgres::Config,
    max_size: usize,
) -> Result<Pool, StoreError> {
    build_pool(config, max_size, None)
}

/// The pool: connections recycled cheaply, handed out last in, first out
/// (at a low rate the same few connections, and server processes with warm
/// caches, serve every request, instead of a burst's whole pool taking
/// turns), and a wait for one bounded by `wait` when given.
fn build_pool(
    config: tokio_postgres::Config,
    max_size: usize,
    wait: Option<Duration>,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let mut builder = Pool::builder(manager)
        .max_size(max_size)
        .queue_mode(deadpool_postgres::QueueMode::Lifo);
    if wait.is_some() {
        builder = builder
            .wait_timeout(wait)
            .runtime(deadpool_postgres::Runtime::Tokio1);
    }
    let pool = builder
        .build()
        .map_err(|err| StoreError::Config(err.to_string()))?;
    register(&pool);
    Ok(pool)
}

/// Checks that the database answers, for readiness probes.
pub async fn ping(pool: &Pool) -> Result<(), StoreError> {
    let client = pool.get().await?;
    client.simple_query("select 1").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_data_error;

    #[test]
    fn only_a_statements_own_values_are_its_data_error() {
        // Invalid text, a value out of range, a NUL, a duplicate key, a
        // check, a string too long for a tsvector.
        for code in ["22P02", "22003", "22021", "23505", "23514", "54000"] {
            assert!(is_data_error(code), "{code}");
        }
        // A missing column or table, a read-only standby, a permission, a
        // lost connection.
        for code in ["42703", "42P01", "25006", "42501", "08006"] {
            assert!(!is_data_error(code), "{code}");
        }
    }
}
