//! Configuration from the environment. Every variable carries the
//! `AI_AGENTS_` prefix; `.env.example` at the repository root lists them all.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::OnceLock;

pub const PREFIX: &str = "AI_AGENTS_";

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(String),
    #[error("{name} has an invalid value: {reason}")]
    Invalid { name: String, reason: String },
}

/// The value of `AI_AGENTS_<name>`, if set and not empty.
pub fn optional(name: &str) -> Option<String> {
    std::env::var(format!("{PREFIX}{name}"))
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// The value of `AI_AGENTS_<name>`, or an error naming the variable.
pub fn required(name: &str) -> Result<String, ConfigError> {
    optional(name).ok_or_else(|| ConfigError::Missing(format!("{PREFIX}{name}")))
}

/// `AI_AGENTS_<name>` parsed, or `default` when unset.
pub fn parsed<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|err: T::Err| ConfigError::Invalid {
                name: format!("{PREFIX}{name}"),
                reason: err.to_string(),
            }),
    }
}

/// `AI_AGENTS_<name>` parsed and above zero, or `default` when unset.
pub fn positive<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Default,
    T::Err: std::fmt::Display,
{
    let value = parsed(name, default)?;
    if value > T::default() {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name: format!("{PREFIX}{name}"),
            reason: "must be greater than zero".into(),
        })
    }
}

/// The settings every service reads the same way, parsed once per process.
/// A service's `Config::from_env` asks for them first, so a malformed value
/// stops it at start with the variable's name; the libraries that use them
/// later (the consumer loop, publishing, metrics) read the parsed values.
#[derive(Debug, Clone, PartialEq)]
pub struct Shared {
    /// Messages a consumer works on at once (`AI_AGENTS_CONCURRENCY`,
    /// default 32).
    pub concurrency: usize,
    /// How long the events of a run stay in the stream
    /// (`AI_AGENTS_EVENT_TTL_SECS`, default 90 days).
    pub event_ttl_secs: u64,
    /// Where `/metrics` is served (`AI_AGENTS_METRICS_ADDR`); `None`: not
    /// served.
    pub metrics_addr: Option<SocketAddr>,
    /// Tenants that get series of their own before the rest share one
    /// (`AI_AGENTS_METRICS_MAX_TENANTS`, default 500).
    pub metrics_max_tenants: usize,
    /// Whether the services may call link-local and cloud metadata
    /// addresses (`AI_AGENTS_OUTBOUND_ALLOW_LINK_LOCAL`, default false).
    pub outbound_allow_link_local: bool,
    /// The proxy every outbound call goes through
    /// (`AI_AGENTS_OUTBOUND_PROXY`, an http(s) URL), if the deployment has
    /// one. The usual `HTTPS_PROXY` is not followed: through a proxy, the
    /// proxy resolves host names, not our guarded resolver, so only a
    /// proxy the operator names — and makes enforce the same refusals —
    /// is used.
    pub outbound_proxy: Option<String>,
    /// Database connections each process may hold at most
    /// (`AI_AGENTS_DB_POOL_SIZE`); `None`: each service's own (a stage 16,
    /// the ingress 32). Every instance's pool counts against the server's
    /// `max_connections`.
    pub db_pool_size: Option<usize>,
}

impl Shared {
    pub const DEFAULT_CONCURRENCY: usize = 32;
    pub const DEFAULT_EVENT_TTL_SECS: u64 = 90 * 86_400;
    pub const DEFAULT_METRICS_MAX_TENANTS: usize = 500;

    /// Reads and checks every shared variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            concurrency: positive("CONCURRENCY", Self::DEFAULT_CONCURRENCY)?,
            event_ttl_secs: positive("EVENT_TTL_SECS", Self::DEFAULT_EVENT_TTL_SECS)?,
            metrics_addr: optional("METRICS_ADDR")
                .map(|raw| {
                    raw.trim().parse().map_err(|err: std::net::AddrParseError| {
                        ConfigError::Invalid {
                            name: format!("{PREFIX}METRICS_ADDR"),
                            reason: format!("{err} (expected host:port)"),
                        }
                    })
                })
                .transpose()?,
            metrics_max_tenants: positive(
                "METRICS_MAX_TENANTS",
                Self::DEFAULT_METRICS_MAX_TENANTS,
            )?,
            outbound_allow_link_local: parsed("OUTBOUND_ALLOW_LINK_LOCAL", false)?,
            outbound_proxy: optional("OUTBOUND_PROXY")
                .map(|raw| {
                    let raw = raw.trim().to_owned();
                    if raw.starts_with("http://") || raw.starts_with("https://") {
                        Ok(raw)
                    } else {
                        Err(ConfigError::Invalid {
                            name: format!("{PREFIX}OUTBOUND_PROXY"),
                            reason: "expected an http:// or https:// URL".into(),
                        })
                    }
                })
                .transpose()?,
            db_pool_size: match optional("DB_POOL_SIZE") {
                None => None,
                Some(_) => Some(positive("DB_POOL_SIZE", 1)?),
            },
        })
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            concurrency: Self::DEFAULT_CONCURRENCY,
            event_ttl_secs: Self::DEFAULT_EVENT_TTL_SECS,
            metrics_addr: None,
            metrics_max_tenants: Self::DEFAULT_METRICS_MAX_TENANTS,
            outbound_allow_link_local: false,
            outbound_proxy: None,
            db_pool_size: None,
        }
    }
}

/// The process's [`Shared`] settings, read from the environment on the
/// first call; every later call answers the same.
pub fn shared() -> Result<&'static Shared, ConfigError> {
    static SHARED: OnceLock<Result<Shared, ConfigError>> = OnceLock::new();
    SHARED
        .get_or_init(Shared::from_env)
        .as_ref()
        .map_err(Clone::clone)
}

/// [`shared`], or the defaults when the environment is malformed. For the
/// libraries' late readers: every service has refused to start on a
/// malformed value before they run.
pub fn shared_or_default() -> Shared {
    shared().cloned().unwrap_or_default()
}
