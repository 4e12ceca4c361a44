//! The operations an operator runs, shared by the CLI (`aiagents`) and the
//! admin service (its API and console): tenants, dead letters, pausing,
//! and replaying a ticket's events. Each call does one thing and says what
//! went wrong in an [`AdminError`] whose variant tells the caller how to
//! answer (404, 409, 422, 503).
//!
//! Writes go through the application role one tenant at a time; lists read
//! across tenants through the admin role. Dry-runs call the stages'
//! handlers in this process, which is why this crate, alone among the
//! libraries, depends on the stage crates.

pub mod dead_letters;
pub mod onboarding;
pub mod operators;
pub mod pause;
pub mod replay;
pub mod tenants;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

pub use tenants::{AdminError, TenantAdmin};

/// The tenant operations, connected to the configured databases.
pub fn tenant_admin(
    database_url: &str,
    admin_database_url: &str,
    keyring: aia_store::Keyring,
    public_url: String,
) -> anyhow::Result<TenantAdmin> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(TenantAdmin {
        patches: tenants::PatchTurns::default(),
        // Tenant changes and operators' incident actions: people wait on
        // them too, so a request waits at most 10 s for a connection.
        app: aia_store::bounded_pool(
            database_url,
            8,
            Duration::from_secs(30),
            Duration::from_secs(10),
        )
        .context("AI_AGENTS_DATABASE_URL")?,
        // The console's sessions, dashboards and history pages: people wait
        // on them, so each statement has 15 s and a request waits at most
        // 10 s for a connection.
        admin: aia_store::bounded_pool(
            admin_database_url,
            12,
            Duration::from_secs(15),
            Duration::from_secs(10),
        )
        .context("AI_AGENTS_ADMIN_DATABASE_URL")?,
        // CSV exports stream the history while the client reads, holding
        // their connection: two at once, apart from the pages, each for at
        // most 10 minutes; one whose client stops reading closes its
        // connection after a minute (admin's console history export).
        exports: aia_store::bounded_pool(
            admin_database_url,
            2,
            Duration::from_secs(600),
            Duration::from_secs(2),
        )
        .context("AI_AGENTS_ADMIN_DATABASE_URL")?,
        keyring: Arc::new(keyring),
        public_url,
        http: aia_http::outbound::client_builder()
            .timeout(Duration::from_secs(15))
            .build()
            .context("HTTP client")?,
    })
}
