//! The embedder service holds the local embedding model (all-MiniLM-L6-v2,
//! about 90 MB) so that no other process has to. It serves the model over
//! the OpenAI-compatible embeddings API — the one code path every caller
//! uses, whether a tenant is on the local model or its own provider — and
//! runs the embedding indexer, which embeds each resolved ticket once.
//!
//! It refuses to start without the model: `./dev` obtains it (see
//! `scripts/stack.sh model`).

mod api;
mod config;
mod indexer;

use std::future::Future;
use std::sync::Arc;

use aia_bus::StageDeps;
use aia_embed::Embedder;
use aia_embed::local::MiniLm;
use anyhow::Context as _;

pub use api::SHORT_NAME;
pub use config::Config;
pub use indexer::Indexer;

/// The indexer's durable consumer and name in metrics.
pub const INDEXER: &str = "embedding-indexer";

/// Runs the service until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let model = Arc::new(MiniLm::load_with(
        &config.model_dir,
        aia_embed::local::configured_precision()?,
    )?);
    tracing::info!(
        dir = %config.model_dir.display(),
        precision = ?model.precision(),
        "Embedding model loaded"
    );
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    serve(config, model, listener, shutdown).await
}

/// Runs the service on an already bound listener (tests bind port 0).
pub async fn serve(
    config: Config,
    model: Arc<MiniLm>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(config.max_parallel.max(1)));
    let state = Arc::new(api::ApiState {
        model: model.clone(),
        api_key: config.api_key.clone(),
        max_inputs: config.max_inputs,
        permits: permits.clone(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let server =
        axum::serve(listener, api::router(state)).with_graceful_shutdown(stopped(stop_rx.clone()));
    let Config {
        mut stage,
        indexer: index,
        max_parallel,
        ..
    } = config;
    let indexer = async {
        if !index {
            return Ok(());
        }
        stage.tenant_cache_ttl = std::time::Duration::ZERO;
        stage.concurrency = stage.concurrency.min(max_parallel.max(1) * 2);
        let deps = StageDeps::connect(INDEXER, stage).await?;
        let handler = Indexer {
            db: deps.db.clone(),
            tenants: deps.tenants.clone(),
            http: aia_http::outbound::client_builder().build()?,
            local: Embedder::Local(model),
            permits,
        };
        deps.run(handler, stopped(stop_rx.clone())).await?;
        anyhow::Ok(())
    };
    // The API stops too when the indexer cannot run.
    let indexer = async {
        let result = indexer.await;
        if result.is_err() {
            let _ = stop_tx.send(true);
        }
        result
    };
    let stop = async {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let (served, indexed, ()) = tokio::join!(server.into_future(), indexer, stop);
    served.context("embeddings API")?;
    indexed
}
