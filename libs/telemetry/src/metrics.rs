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

/// Serves `registry` on `addr` in the background until the task is aborted;
/// a server that cannot start (the address is taken) says so in the log
/// rather than vanishing.
pub fn spawn_server(addr: SocketAddr, registry: SharedRegistry) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(err) = serve(addr, registry, std::future::pending()).await {
            tracing::error!(%addr, error = %err, "Metrics are not served");
        }
    })
}

/// The value a series gets for its `tenant_id` label. A deployment of many
/// MSPs must not grow Prometheus without bound: the first `max` tenants a
/// process sees keep their own series, every later one shares
/// [`TenantLabel::OVERFLOW`]. `AI_AGENTS_METRICS_MAX_TENANTS` sets `max`
/// (default 500).
#[derive(Clone, Debug)]
pub struct TenantLabel {
    max: usize,
    seen: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl TenantLabel {
    /// The label of tenants past the cap.
    pub const OVERFLOW: &'static str = "_other";

    pub fn new(max: usize) -> Self {
        Self {
            max,
            seen: Arc::default(),
        }
    }

    pub fn from_env() -> Self {
        Self::new(aia_config::shared_or_default().metrics_max_tenants)
    }

    /// `tenant`, or [`Self::OVERFLOW`] once the cap is reached by others.
    pub fn of(&self, tenant: &str) -> String {
        let mut seen = self.seen.lock().expect("tenant label lock");
        if seen.contains(tenant) {
            return tenant.to_owned();
        }
        if seen.len() < self.max {
            seen.insert(tenant.to_owned());
            return tenant.to_owned();
        }
        Self::OVERFLOW.to_owned()
    }
}

impl Default for TenantLabel {
    fn default() -> Self {
        Self::from_env()
    }
}

#[cfg(test)]
mod tests {
    use super::TenantLabel;

    #[test]
    fn tenants_past_the_cap_share_one_label_and_earlier_ones_keep_theirs() {
        let labels = TenantLabel::new(2);
        assert_eq!(labels.of("acme"), "acme");
        assert_eq!(labels.of("globex"), "globex");
        assert_eq!(labels.of("initech"), TenantLabel::OVERFLOW);
        assert_eq!(labels.of("acme"), "acme");
        assert_eq!(labels.of("umbrella"), TenantLabel::OVERFLOW);
    }
}
