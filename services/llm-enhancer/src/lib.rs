//! The llm-enhancer stage: for each `context.gathered`, ask the tenant's
//! OpenAI-compatible models for a short, sourced note — redacted going in,
//! grounded coming out, within the tenant's budget — and publish
//! `enhancement.generated`.

pub mod budget;
mod config;
pub mod cost;
pub mod fallback;
pub mod ground;
mod handler;
pub mod metrics;
pub mod prompt;
pub mod redact;

use std::future::Future;
use std::sync::Arc;

use aia_bus::StageConfig;
use aia_events::Stage;
use anyhow::Context as _;

pub use config::{Config, provider_from_env};
pub use handler::LlmEnhancer;

/// Runs one instance of the stage until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = aia_store::pool(&config.database_url, 16).context("database URL")?;
    let (_client, jetstream) = aia_bus::connect(&config.nats_url, Stage::LlmEnhancer.as_str())
        .await
        .context("connecting to NATS")?;
    match &config.provider {
        Some(provider) => {
            tracing::info!(provider = %provider.name, model = %provider.model, "Default LLM provider")
        }
        None => tracing::warn!(
            "AI_AGENTS_LLM_BASE_URL is not set: tenants without providers get the raw context"
        ),
    }
    let stage = StageConfig::from_env(Stage::LlmEnhancer);
    let metrics = metrics::LlmMetrics::register(&stage.registry);
    let handler = Arc::new(LlmEnhancer {
        tenants: Arc::new(aia_store::TenantCache::new(
            db.clone(),
            Arc::new(config.keyring),
            config.tenant_cache_ttl,
        )),
        db,
        http: reqwest::Client::builder().build().context("HTTP client")?,
        chain: Default::default(),
        default_provider: config.provider,
        prices: config.prices,
        retry: Default::default(),
        metrics,
        dry_run: false,
    });
    aia_bus::run_stage(jetstream, handler, stage, shutdown).await?;
    Ok(())
}
