//! The context-gatherer stage: for each `ticket.received`, find what may
//! help — the tenant's similar resolved tickets, knowledge-base articles,
//! the inventory entries of the hosts the ticket mentions and what
//! monitoring says about them — and publish `context.gathered`.

mod config;
pub mod extract;
mod handler;
pub mod metrics;
pub mod sources;

use std::future::Future;
use std::sync::Arc;

use aia_bus::StageConfig;
use aia_events::Stage;
use anyhow::Context as _;

pub use config::{
    Config, DEFAULT_BUDGET, DEFAULT_MAX_SIMILAR_TICKETS, DEFAULT_MONITORING_TIMEOUT,
    DEFAULT_SOURCE_TIMEOUT, embedder_service,
};
pub use handler::ContextGatherer;

/// Runs one instance of the stage until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = aia_store::pool(&config.database_url, 16).context("database URL")?;
    let (_client, jetstream) = aia_bus::connect(&config.nats_url, Stage::ContextGatherer.as_str())
        .await
        .context("connecting to NATS")?;
    let stage = StageConfig::from_env(Stage::ContextGatherer);
    let http = reqwest::Client::builder().build().context("HTTP client")?;
    let local_embedder = config.local_embedder(&http);
    if local_embedder.is_none() {
        tracing::warn!(
            "AI_AGENTS_EMBEDDINGS_URL is not set: tenants on the local model are searched by words only"
        );
    }
    let handler = Arc::new(ContextGatherer {
        metrics: metrics::SourceMetrics::register(&stage.registry),
        tenants: Arc::new(aia_store::TenantCache::new(
            db.clone(),
            Arc::new(config.keyring),
            config.tenant_cache_ttl,
        )),
        db,
        http,
        local_embedder,
        knowledge_cache: Default::default(),
        source_timeout: config.source_timeout,
        budget: config.budget,
        monitoring_timeout: config.monitoring_timeout,
        max_similar_tickets: config.max_similar_tickets,
    });
    aia_bus::run_stage(jetstream, handler, stage, shutdown).await?;
    Ok(())
}
