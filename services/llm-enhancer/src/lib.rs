//! The llm-enhancer stage: for each `context.gathered`, ask the tenant's
//! OpenAI-compatible models for a short, sourced note — redacted going in,
//! grounded coming out, within the tenant's budget — and publish
//! `enhancement.generated`.

mod config;
pub mod fallback;
pub mod generate;
pub mod ground;
mod handler;
pub mod incident;
pub mod labels;
pub mod markdown;
pub mod metrics;
pub mod prompt;

use std::future::Future;

use aia_bus::{Handler as _, StageDeps};

pub use config::Config;
pub use handler::LlmEnhancer;

/// Runs one instance of the stage until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let deps = StageDeps::connect(LlmEnhancer::NAME, config.stage).await?;
    match &config.provider {
        Some(provider) => {
            tracing::info!(provider = %provider.name, model = %provider.model, "Default LLM provider")
        }
        None => tracing::warn!(
            "AI_AGENTS_LLM_BASE_URL is not set: tenants without providers get the raw context"
        ),
    }
    let handler = LlmEnhancer {
        metrics: metrics::LlmMetrics::register(&deps.consumer.registry),
        tenants: deps.tenants.clone(),
        db: deps.db.clone(),
        http: aia_http::outbound::client_builder().build()?,
        chain: Default::default(),
        default_provider: config.provider,
        prices: config.prices,
        retry: Default::default(),
        dry_run: false,
    };
    deps.run(handler, shutdown).await?;
    Ok(())
}
