//! The context-gatherer stage: for each `ticket.received`, find what may
//! help — the tenant's similar resolved tickets, knowledge-base articles,
//! the inventory entries of the hosts the ticket mentions and what
//! monitoring says about them — and publish `context.gathered`.

mod config;
pub mod extract;
mod gather;
mod handler;
pub mod metrics;
mod query;
pub mod rewrite;
pub mod sources;

use std::future::Future;

use aia_bus::{Handler as _, StageDeps};

pub use config::{
    Config, DEFAULT_BUDGET, DEFAULT_MAX_SIMILAR_TICKETS, DEFAULT_MONITORING_TIMEOUT,
    DEFAULT_SOURCE_TIMEOUT, embedder_service,
};
pub use handler::ContextGatherer;

/// Runs one instance of the stage until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let deps = StageDeps::connect(ContextGatherer::NAME, config.stage).await?;
    let http = aia_http::outbound::client_builder().build()?;
    let local_embedder = config
        .embeddings_url
        .as_deref()
        .map(|url| embedder_service(&http, url, config.embeddings_api_key.clone()));
    if local_embedder.is_none() {
        tracing::warn!(
            "AI_AGENTS_EMBEDDINGS_URL is not set: tenants on the local model are searched by words only"
        );
    }
    let handler = ContextGatherer {
        metrics: metrics::SourceMetrics::register(&deps.consumer.registry),
        tenants: deps.tenants.clone(),
        db: deps.db.clone(),
        http,
        local_embedder,
        knowledge_cache: Default::default(),
        source_timeout: config.source_timeout,
        budget: config.budget,
        monitoring_timeout: config.monitoring_timeout,
        max_similar_tickets: config.max_similar_tickets,
        related: sources::related::Related::live(config.window_tenants),
        rewriter: Some(rewrite::Rewriter {
            chain: Default::default(),
            default_provider: config.llm_provider,
            prices: config.llm_prices,
        }),
    };
    deps.run(handler, shutdown).await?;
    Ok(())
}
