//! The ingress: the only door into the system. It verifies and normalises
//! webhooks and publishes one immutable event per accepted webhook,
//! answering `202` only after JetStream has stored it. It does no
//! enrichment.

mod config;
pub mod error;
mod routes;
pub mod servicedesk;
pub mod signature;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use config::Config;
pub use routes::AppState;

/// The router, for serving and for tests.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/webhook/servicedesk", post(routes::servicedesk_webhook))
        .route("/health", get(routes::health))
        .route("/health/ready", get(routes::ready))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let db = aia_store::pool(&config.database_url, 32).context("database URL")?;
    let (nats, jetstream) = aia_bus::connect(&config.nats_url, "ingress")
        .await
        .context("connecting to NATS")?;
    let state = AppState {
        db,
        keyring: Arc::new(config.keyring),
        nats,
        jetstream,
    };
    tracing::info!(addr = %listener.local_addr()?, "Ingress listening");
    axum::serve(listener, app(state, config.max_body_bytes))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")
}

/// Binds the configured address and serves until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    serve(config, listener, shutdown).await
}
