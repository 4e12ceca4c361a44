//! The writeback stage: for each `enhancement.generated`, put the note on
//! the ticket in the tenant's help-desk tool exactly once, and publish
//! `writeback.completed` or `writeback.failed`.

mod config;
mod handler;
pub mod ledger;

use std::future::Future;
use std::sync::Arc;

use aia_bus::StageConfig;
use aia_events::Stage;
use anyhow::Context as _;

pub use config::Config;
pub use handler::{Writeback, marker};

/// Runs one instance of the stage until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = aia_store::pool(&config.database_url, 16).context("database URL")?;
    let (_client, jetstream) = aia_bus::connect(&config.nats_url, Stage::Writeback.as_str())
        .await
        .context("connecting to NATS")?;
    let handler = Arc::new(Writeback {
        tenants: Arc::new(aia_store::TenantCache::new(
            db.clone(),
            Arc::new(config.keyring),
            config.tenant_cache_ttl,
        )),
        db,
        public_url: config.public_url,
        http: reqwest::Client::builder()
            .timeout(config.http_timeout)
            .build()
            .context("HTTP client")?,
    });
    aia_bus::run_stage(
        jetstream,
        handler,
        StageConfig::from_env(Stage::Writeback),
        shutdown,
    )
    .await?;
    Ok(())
}
