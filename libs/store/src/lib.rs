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
    search_query, set_tenant, tenant_query, tenant_query_unflushed, tenant_query_within,
    tenant_transaction, tenant_transaction_unflushed, tenant_transaction_within,
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
    /// resources, a primary demoted to read-only mid-failover), or a
    /// statement prepared on this connection went stale.
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
                        || matches!(code, "40001" | "40P01" | "55P03" | "25006")
                        || self.is_stale_statement()
                }
            },
            _ => false,
        }
    }

    /// The statement was cancelled (SQLSTATE 57014): by its own statement
    /// timeout, most often — the same statement would take as long again.
    pub fn is_cut_short(&self) -> bool {
        matches!(self, Self::Query(err) if err.code() == Some(&SqlState::QUERY_CANCELED))
    }

    /// The server refused a write as read-only (SQLSTATE 25006): it is a
    /// standby now, or fenced; a connection to the new primary will not.
    pub fn is_read_only(&self) -> bool {
        matches!(self, Self::Query(err) if err.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION))
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
        if err.is_read_only() {
            // The server these connections reach is no longer the primary
            // (demoted, or fenced read-only): new ones find the one that is.
            forget_idle_connections();
        }
        err
    }
}

/// Closes every idle connection of every pool of this process; each pool
/// opens new ones as it needs them.
pub fn forget_idle_connections() {
    let pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    for pool in pools
        .iter()
        .filter_map(deadpool_postgres::WeakPool::upgrade)
    {
        pool.retain(|_, _| false);
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

/// One connection of its own, outside any pool, for an operator's command
/// (migrations, re-encryption): with the pool's failover defaults, so a URL
/// naming a primary and its standby reaches whichever is writable now, and
/// a host that vanished is given up on instead of waited for.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let config =
        tokio_postgres::Config::from_str(url).map_err(|err| StoreError::Config(err.to_string()))?;
    let (client, connection) = with_failover_defaults(config).connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "an operator's connection ended");
        }
    });
    Ok(client)
}

/// A connection pool for a parsed configuration.
pub fn pool_from_config(
    config: tokio_postgres::Config,
    max_size: usize,
) -> Result<Pool, StoreError> {
    build_pool(config, max_size, None)
}

/// How long a connection may take to open, unless the URL says.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may leave what we sent unacknowledged before the
/// connection counts as dead, unless the URL says (`tcp_user_timeout`).
const UNACKNOWLEDGED: Duration = Duration::from_secs(30);
/// tokio-postgres's keepalive idle time when the URL names none.
const DRIVER_KEEPALIVE_IDLE: Duration = Duration::from_secs(2 * 60 * 60);
/// How long a pool waits for a connection to be checked.
const RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a pool waits for a connection to open: every host of the URL
/// its connect timeout (a vanished primary before the promoted standby;
/// a host's two addresses count twice), and a little for the handshake.
fn create_timeout(config: &tokio_postgres::Config) -> Duration {
    let per_host = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    let attempts = u32::try_from(config.get_hosts().len().max(1) * 2).unwrap_or(u32::MAX);
    per_host.saturating_mul(attempts) + Duration::from_secs(5)
}

/// What a failover needs of a connection that the driver leaves off: a
/// host that vanished (a lost node, a partition) sends no reset, so
/// without timeouts and keepalives a connection to it hangs for the
/// kernel's retransmissions (about 15 minutes) or keepalive (2 hours), and
/// the next host of a multi-host URL is tried only after the SYN times
/// out. A URL naming several hosts is for a primary that fails over: it
/// connects to whichever is writable now (`target_session_attrs`), unless
/// it says otherwise.
fn with_failover_defaults(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(UNACKNOWLEDGED);
    }
    // Keepalives stay as the URL sets them (`keepalives=0` turns them off);
    // left at the driver's defaults, they probe after 30 s, not 2 hours.
    if config.get_keepalives() {
        if config.get_keepalives_idle() == DRIVER_KEEPALIVE_IDLE {
            config.keepalives_idle(Duration::from_secs(30));
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(Duration::from_secs(10));
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(3);
        }
    }
    if config.get_hosts().len() > 1
        && config.get_target_session_attrs() == tokio_postgres::config::TargetSessionAttrs::Any
    {
        config.target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
    }
    config
}

/// The pool: connections recycled cheaply, handed out last in, first out
/// (at a low rate the same few connections, and server processes with warm
/// caches, serve every request, instead of a burst's whole pool taking
/// turns), opened and checked within bounds, and a wait for one bounded
/// by `wait` when given.
fn build_pool(
    config: tokio_postgres::Config,
    max_size: usize,
    wait: Option<Duration>,
) -> Result<Pool, StoreError> {
    let config = with_failover_defaults(config);
    let create = create_timeout(&config);
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let builder = Pool::builder(manager)
        .max_size(max_size)
        .queue_mode(deadpool_postgres::QueueMode::Lifo)
        .create_timeout(Some(create))
        .recycle_timeout(Some(RECYCLE_TIMEOUT))
        .wait_timeout(wait)
        .runtime(deadpool_postgres::Runtime::Tokio1);
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
    use super::{CONNECT_TIMEOUT, UNACKNOWLEDGED, is_data_error, with_failover_defaults};
    use std::str::FromStr;
    use std::time::Duration;
    use tokio_postgres::config::TargetSessionAttrs;

    fn config(url: &str) -> tokio_postgres::Config {
        with_failover_defaults(tokio_postgres::Config::from_str(url).unwrap())
    }

    #[test]
    fn a_connection_gives_up_on_a_vanished_host_and_a_failover_url_finds_the_primary() {
        let two = config("postgres://app@pg-a,pg-b/aiagents");
        assert_eq!(
            two.get_target_session_attrs(),
            TargetSessionAttrs::ReadWrite
        );
        assert_eq!(two.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(two.get_tcp_user_timeout(), Some(&UNACKNOWLEDGED));
        assert_eq!(two.get_keepalives_idle(), Duration::from_secs(30));
        let one = config("postgres://app@pg-a/aiagents");
        assert_eq!(one.get_target_session_attrs(), TargetSessionAttrs::Any);
        // What the URL says stays.
        let said = config("postgres://app@pg-a/aiagents?connect_timeout=3");
        assert_eq!(said.get_connect_timeout(), Some(&Duration::from_secs(3)));
        let said = config("postgres://app@pg-a/aiagents?keepalives_idle=600");
        assert_eq!(said.get_keepalives_idle(), Duration::from_secs(600));
        let off = config("postgres://app@pg-a/aiagents?keepalives=0");
        assert!(!off.get_keepalives());
        // Opening a connection may take every host's connect timeout.
        assert!(super::create_timeout(&two) > CONNECT_TIMEOUT * 2);
    }

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
