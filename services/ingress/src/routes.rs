//! The HTTP endpoints and the state they share.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{MatchedPath, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::accept::{Endpoint, accept};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use aia_http::ApiError;
use aia_store::TenantCache;

/// Rate limits of this ingress instance.
pub struct Limits {
    pub requests: RateLimiter,
    pub failures: RateLimiter,
    pub default_per_minute: u32,
    pub failed_signatures_per_minute: u32,
}

#[derive(Clone)]
pub struct AppState {
    pub tenants: Arc<TenantCache>,
    pub nats: async_nats::Client,
    pub jetstream: aia_bus::JetStream,
    pub stream: async_nats::jetstream::stream::Stream,
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
    pub publish_timeout: Duration,
    /// How long a request's body may take to arrive.
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    /// How long a note's feedback links work after its run began.
    pub feedback_link_days: u32,
    /// Calls to help desks (a mentioned ticket, a ConnectWise key), never
    /// to a link-local or metadata address.
    pub http: reqwest::Client,
    /// ConnectWise callbacks' signing keys.
    pub signing_keys: Arc<crate::tools::SigningKeys>,
    /// Deliveries accepted lately, answered as duplicates on sight.
    pub recent: Arc<crate::recent::RecentDeliveries>,
    /// The tenant ids that exist.
    pub known: Arc<crate::known::KnownTenants>,
}

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

/// `POST /webhook/servicedesk`: a ticket was created or updated.
pub async fn servicedesk(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    accept(&state, Endpoint::ServiceDesk, None, &headers, body).await
}

/// `POST /webhook/servicedesk/resolved-ticket` (and `/resolved`): a
/// resolved ticket for the history corpus.
pub async fn servicedesk_resolved(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    accept(&state, Endpoint::ServiceDeskResolved, None, &headers, body).await
}

/// `POST /webhook/{tool}/{tenant_id}`: a webhook of the tenant's help desk
/// or PSA, in that tool's own shape (the tool named by the route).
pub async fn tool(
    State(state): State<AppState>,
    route: MatchedPath,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let kind = route
        .as_str()
        .split('/')
        .nth(2)
        .and_then(aia_events::ItsmKind::parse)
        .expect("every tool route names its tool");
    accept(
        &state,
        Endpoint::Tool(kind),
        Some(&tenant_id),
        &headers,
        body,
    )
    .await
}

/// `GET /health`: the process is alive.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /health/ready`: NATS and Postgres are reachable.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let nats_ok = state.nats.connection_state() == async_nats::connection::State::Connected;
    let db_ok = tokio::time::timeout(Duration::from_secs(2), aia_store::ping(state.tenants.db()))
        .await
        .is_ok_and(|result| result.is_ok());
    let status = if nats_ok && db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        Json(json!({
            "status": word(nats_ok && db_ok),
            "dependencies": {"nats": word(nats_ok), "postgres": word(db_ok)}
        })),
    )
}

/// The OpenAPI description of every endpoint and error body.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Unknown paths answer in the same error shape as everything else.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
