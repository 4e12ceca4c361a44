//! Configuration of the admin service.

use std::net::SocketAddr;

use aia_config::{ConfigError, optional, parsed, required};
use aia_store::Keyring;

pub struct Config {
    /// For re-driving dead letters.
    pub nats_url: String,
    /// As the application role: writes of one tenant at a time.
    pub database_url: String,
    /// As the admin role: reads across tenants (lists).
    pub admin_database_url: String,
    pub keyring: Keyring,
    /// `AI_AGENTS_ADMIN_TOKEN`: the bearer token every request must carry.
    pub token: String,
    /// The ingress's public base URL, for the webhook URLs shown to operators.
    pub public_url: String,
    pub listen: SocketAddr,
    pub console: crate::console::ConsoleSettings,
}

/// Without the token and the database URLs (their passwords).
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("public_url", &self.public_url)
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let token = required("ADMIN_TOKEN")?;
        if token.len() < 24 {
            return Err(ConfigError::Invalid {
                name: "AI_AGENTS_ADMIN_TOKEN".into(),
                reason: "use at least 24 characters".into(),
            });
        }
        aia_config::shared()?;
        Ok(Self {
            nats_url: required("NATS_URL")?,
            database_url: required("DATABASE_URL")?,
            admin_database_url: required("ADMIN_DATABASE_URL")?,
            keyring: aia_bus::kit::keyring_from_env()?,
            token,
            public_url: optional("PUBLIC_URL").unwrap_or_else(|| "http://localhost:8080".into()),
            listen: parsed("ADMIN_ADDR", SocketAddr::from(([0, 0, 0, 0], 8081)))?,
            console: crate::console::ConsoleSettings {
                session_lifetime: std::time::Duration::from_secs(
                    3600 * parsed::<u64>("CONSOLE_SESSION_HOURS", 8)?.clamp(1, 24 * 7),
                ),
                trace_url: optional("CONSOLE_TRACE_URL"),
                trusted_proxies: crate::console::parse_trusted_proxies(
                    &optional("TRUSTED_PROXIES").unwrap_or_default(),
                )
                .map_err(|reason| ConfigError::Invalid {
                    name: "AI_AGENTS_TRUSTED_PROXIES".into(),
                    reason,
                })?,
                hsts: parsed("CONSOLE_HSTS", false)?,
                ..Default::default()
            },
        })
    }
}
