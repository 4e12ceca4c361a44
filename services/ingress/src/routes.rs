//! The HTTP endpoints.

use std::sync::Arc;
use std::time::Duration;

use aia_events::{Event, Payload};
use aia_store::{Keyring, Pool, tenants};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::error::ApiError;
use crate::{servicedesk, signature};

#[derive(Clone)]
pub struct AppState {
    pub db: Pool,
    pub keyring: Arc<Keyring>,
    pub nats: async_nats::Client,
    pub jetstream: aia_bus::JetStream,
}

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// `POST /webhook/servicedesk`: a ticket was created or updated.
pub async fn servicedesk_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let span = tracing::info_span!(
        "POST /webhook/servicedesk",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = "/webhook/servicedesk",
        http.response.status_code = tracing::field::Empty,
        tenant_id = tracing::field::Empty,
        ticket_id = tracing::field::Empty,
        event_id = tracing::field::Empty,
    );
    let result = accept_servicedesk(&state, &headers, body)
        .instrument(span.clone())
        .await;
    let status = match &result {
        Ok((status, _)) => *status,
        Err(err) => err.status,
    };
    span.record("http.response.status_code", status.as_u16());
    if let Err(err) = &result {
        tracing::info!(parent: &span, code = err.code, message = %err.message, "Webhook rejected");
    }
    result
}

async fn accept_servicedesk(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/json",
        ));
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is too large",
            )
        } else {
            ApiError::bad_request("the body could not be read")
        }
    })?;
    let json: Value = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_request(format!("malformed JSON: {err}")))?;
    let tenant_id = servicedesk::tenant_of(&json)?;
    let span = tracing::Span::current();
    span.record("tenant_id", tenant_id.as_str());

    let tenant = {
        let mut client = state
            .db
            .get()
            .await
            .map_err(|_| ApiError::unavailable("the tenant store is unavailable"))?;
        tenants::get(&mut client, &state.keyring, &tenant_id)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "Tenant lookup failed");
                ApiError::unavailable("the tenant store is unavailable")
            })?
    };
    let Some(tenant) = tenant else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_tenant",
            "unknown tenant",
        ));
    };
    let signature_header = headers
        .get("x-servicedesk-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !signature::verify_hex_hmac(&tenant.webhook_secrets, &body, signature_header) {
        return Err(ApiError::unauthorized());
    }
    if !tenant.active {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "inactive_tenant",
            "the tenant is inactive",
        ));
    }

    let (ticket_id, mut received) = servicedesk::parse(json)?;
    span.record("ticket_id", ticket_id.as_str());
    // The same body delivered twice is the same delivery.
    received.delivery_id = format!("sdp:{}", hex::encode(Sha256::digest(&body)));
    let event = Event::new_run(
        tenant_id,
        ticket_id,
        Payload::TicketReceived(received.clone()),
    );
    span.record("event_id", tracing::field::display(event.event_id));
    let published = tokio::time::timeout(
        PUBLISH_TIMEOUT,
        aia_bus::publish_event(&state.jetstream, &event, &received.delivery_id),
    )
    .await;
    match published {
        Ok(Ok(_ack)) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"status": "accepted", "event_id": event.event_id})),
        )),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "Event was not stored");
            Err(ApiError::unavailable(
                "the event could not be stored; retry later",
            ))
        }
        Err(_) => Err(ApiError::unavailable(
            "the event store did not confirm in time; retry later",
        )),
    }
}

/// `GET /health`: the process is alive.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /health/ready`: NATS and Postgres are reachable.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let nats_ok = state.nats.connection_state() == async_nats::connection::State::Connected;
    let db_ok = tokio::time::timeout(Duration::from_secs(2), aia_store::ping(&state.db))
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
