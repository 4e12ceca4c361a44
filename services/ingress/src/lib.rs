//! The ingress: the only door into the system. It authenticates webhooks
//! per tenant, validates and normalises them, and publishes one immutable
//! event per accepted delivery, answering `202` only after JetStream has
//! stored it. It does no enrichment.

mod accept;
pub mod auth;
mod config;
pub mod feedback;
pub mod intake;
pub mod known;
pub mod metrics;
pub mod ratelimit;
pub mod recent;
mod routes;
pub mod tools;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use aia_store::TenantCache;
pub use config::Config;
pub use routes::{AppState, Limits, OPENAPI};

/// Every route, for the router and for the test that the OpenAPI document
/// describes them all.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/webhook/servicedesk"),
    ("post", "/webhook/servicedesk/resolved-ticket"),
    ("post", "/webhook/servicedesk/resolved"),
    ("post", "/webhook/jira/{tenant_id}"),
    ("post", "/webhook/zendesk/{tenant_id}"),
    ("post", "/webhook/freshservice/{tenant_id}"),
    ("post", "/webhook/servicenow/{tenant_id}"),
    ("post", "/webhook/connectwise/{tenant_id}"),
    ("post", "/webhook/autotask/{tenant_id}"),
    ("post", "/webhook/halopsa/{tenant_id}"),
    ("get", "/feedback/{tenant_id}/{ticket_id}/{run_id}/{token}"),
    ("post", "/feedback/{tenant_id}/{ticket_id}/{run_id}/{token}"),
    ("get", "/health"),
    ("get", "/health/ready"),
    ("get", "/openapi.json"),
];

/// The router, for serving and for tests.
pub fn app(state: AppState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    Router::new()
        .route("/webhook/servicedesk", post(routes::servicedesk))
        .route(
            "/webhook/servicedesk/resolved-ticket",
            post(routes::servicedesk_resolved),
        )
        .route(
            "/webhook/servicedesk/resolved",
            post(routes::servicedesk_resolved),
        )
        .route("/webhook/jira/{tenant_id}", post(routes::tool))
        .route("/webhook/zendesk/{tenant_id}", post(routes::tool))
        .route("/webhook/freshservice/{tenant_id}", post(routes::tool))
        .route("/webhook/servicenow/{tenant_id}", post(routes::tool))
        .route("/webhook/connectwise/{tenant_id}", post(routes::tool))
        .route("/webhook/autotask/{tenant_id}", post(routes::tool))
        .route("/webhook/halopsa/{tenant_id}", post(routes::tool))
        .route(
            "/feedback/{tenant_id}/{ticket_id}/{run_id}/{token}",
            get(feedback::click).post(feedback::submit),
        )
        .route("/health", get(routes::health))
        .route("/health/ready", get(routes::ready))
        .route("/openapi.json", get(routes::openapi))
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            within_time,
        ))
        .with_state(state)
}

/// A request whose body takes longer to arrive than the ingress allows is
/// answered 408: a client that trickles its body in a byte at a time holds
/// a task and a connection no longer. Only the body's arrival is bounded —
/// nothing has been claimed or published yet — never the work after it,
/// which a cancellation could cut between publishing an event and
/// recording that it was.
async fn within_time(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, state.max_body_bytes);
    let body = match tokio::time::timeout(state.request_timeout, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            // Too large (or cut off): answered as the handlers answer it.
            return aia_http::ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {} bytes", state.max_body_bytes),
            )
            .into_response();
        }
        Err(_) => {
            return aia_http::ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request took too long to arrive; send it again",
            )
            .into_response();
        }
    };
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(body),
    ))
    .await
}

/// Connects to NATS and Postgres and builds the shared state.
pub async fn state(config: Config) -> anyhow::Result<AppState> {
    let db = aia_store::pool(&config.database_url, config.pool_size).context("database URL")?;
    let (nats, jetstream) = aia_bus::connect(&config.nats_url, "ingress")
        .await
        .context("connecting to NATS")?;
    let stream = jetstream
        .get_stream(aia_bus::STREAM)
        .await
        .context("stream TICKETS is missing (run `aiagents nats apply`)")?;
    let known = Arc::new(known::KnownTenants::new(db.clone()));
    Ok(AppState {
        tenants: Arc::new(TenantCache::new(
            db,
            Arc::new(config.keyring),
            config.tenant_cache_ttl,
        )),
        nats,
        jetstream,
        stream,
        limits: Arc::new(Limits {
            requests: ratelimit::RateLimiter::new(Duration::from_secs(60)),
            failures: ratelimit::RateLimiter::new(Duration::from_secs(60)),
            default_per_minute: config.rate_limit_per_minute,
            failed_signatures_per_minute: config.failed_signatures_per_minute,
        }),
        metrics: Arc::new(metrics::Metrics::register(&config.registry)),
        publish_timeout: config.publish_timeout,
        request_timeout: config.request_timeout,
        feedback_link_days: config.feedback_link_days,
        http: aia_http::outbound::client_builder()
            .timeout(tools::TOOL_TIMEOUT)
            .build()
            .context("HTTP client")?,
        signing_keys: Arc::default(),
        recent: Arc::default(),
        known,
        max_body_bytes: config.max_body_bytes,
    })
}

/// Serves on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics_server = config
        .metrics_addr
        .map(|addr| aia_telemetry::metrics::spawn_server(addr, config.registry.clone()));
    let state = state(config).await?;
    tracing::info!(addr = %listener.local_addr()?, "Ingress listening");
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP");
    if let Some(server) = metrics_server {
        server.abort();
    }
    served
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
