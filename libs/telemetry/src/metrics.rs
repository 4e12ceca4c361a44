//! Prometheus metrics: every service keeps its metrics in one registry and
//! serves it on `GET /metrics` at `AI_AGENTS_METRICS_ADDR` (when set).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
pub use prometheus_client::registry::Registry;

/// A registry shared by the parts of a service.
pub type SharedRegistry = Arc<Mutex<Registry>>;

pub fn registry() -> SharedRegistry {
    Arc::new(Mutex::new(Registry::default()))
}

/// The registry in Prometheus text format.
pub fn encode(registry: &SharedRegistry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry.lock().expect("registry lock"))
        .expect("writing to a String cannot fail");
    out
}

async fn metrics(State(registry): State<SharedRegistry>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        encode(&registry),
    )
}

/// Serves `/metrics` (and `/health`) on `addr` until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    registry: SharedRegistry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .with_state(registry);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "Serving metrics");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
