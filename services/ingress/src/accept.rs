//! The one path every webhook takes: content type, size, tenant, signature,
//! rate limit, payload, publish. Each step can refuse the request with a
//! clear answer, and a refused request publishes nothing.

use std::time::{Duration, Instant};

use aia_events::{Event, ItsmKind, Payload, TenantId};
use aia_itsm::inbound::{Inbound, InboundError};
use aia_itsm::servicedesk;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::auth::{AuthFailure, Scheme};
use crate::metrics::{RequestLabels, TenantEndpointLabels, TenantLabels};
use crate::routes::AppState;
use aia_http::ApiError;

/// The webhook endpoints: ServiceDesk Plus's two (the tenant in the body),
/// and one per other tool with the tenant in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ServiceDesk,
    ServiceDeskResolved,
    Tool(ItsmKind),
}

impl Endpoint {
    pub fn route(self) -> &'static str {
        match self {
            Self::ServiceDesk => "/webhook/servicedesk",
            Self::ServiceDeskResolved => "/webhook/servicedesk/resolved-ticket",
            Self::Tool(kind) => match kind {
                ItsmKind::ServicedeskPlus => "/webhook/servicedesk",
                ItsmKind::Jira => "/webhook/jira/{tenant_id}",
                ItsmKind::Zendesk => "/webhook/zendesk/{tenant_id}",
                ItsmKind::Freshservice => "/webhook/freshservice/{tenant_id}",
                ItsmKind::Servicenow => "/webhook/servicenow/{tenant_id}",
                ItsmKind::Connectwise => "/webhook/connectwise/{tenant_id}",
                ItsmKind::Autotask => "/webhook/autotask/{tenant_id}",
                ItsmKind::Halopsa => "/webhook/halopsa/{tenant_id}",
            },
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::ServiceDesk => "servicedesk",
            Self::ServiceDeskResolved => "servicedesk-resolved",
            Self::Tool(kind) => kind.as_str(),
        }
    }

    /// The tool whose webhooks come in here.
    fn kind(self) -> ItsmKind {
        match self {
            Self::ServiceDesk | Self::ServiceDeskResolved => ItsmKind::ServicedeskPlus,
            Self::Tool(kind) => kind,
        }
    }
}

/// The answer to a signature that did not verify (or to a tenant that does
/// not exist, which is answered the same way): 429 once the tenant id has
/// failed too often this minute, else 401, or 400 for a stale timestamp.
fn signature_refused(
    state: &AppState,
    tenant_id: &TenantId,
    failure: AuthFailure,
    now: Instant,
) -> ApiError {
    if let Err(wait) = state.limits.failures.record(
        tenant_id.as_str(),
        state.limits.failed_signatures_per_minute,
        now,
    ) {
        return ApiError::rate_limited(wait, "too many failed signatures; wait before retrying");
    }
    match failure {
        AuthFailure::Stale => ApiError::stale("the signed timestamp is too old or in the future"),
        AuthFailure::Missing | AuthFailure::Invalid => ApiError::unauthorized(),
    }
}

/// Runs the whole acceptance path inside an HTTP server span and records
/// the outcome.
pub async fn accept(
    state: &AppState,
    endpoint: Endpoint,
    path_tenant: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let span = tracing::info_span!(
        "webhook",
        otel.name = %format!("POST {}", endpoint.route()),
        otel.kind = "server",
        http.request.method = "POST",
        http.route = endpoint.route(),
        http.response.status_code = tracing::field::Empty,
        tenant_id = tracing::field::Empty,
        ticket_id = tracing::field::Empty,
        event_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    aia_telemetry::record_trace_ids(&span);
    let mut tenant_label = "unknown".to_owned();
    let mut refused_as = None;
    let result = run(
        state,
        endpoint,
        path_tenant,
        headers,
        body,
        &mut tenant_label,
        &mut refused_as,
    )
    .instrument(span.clone())
    .await;
    let (status, outcome) = match &result {
        Ok((status, body)) => (
            *status,
            body["status"].as_str().unwrap_or("accepted").to_owned(),
        ),
        // What the sender is told may hide why (an unknown tenant answers
        // as a bad signature); metrics and logs keep the reason.
        Err(err) => (err.status, refused_as.unwrap_or(err.code).to_owned()),
    };
    span.record("http.response.status_code", status.as_u16());
    if let Err(err) = &result {
        tracing::info!(parent: &span, status = status.as_u16(), code = err.code, reason = outcome, message = %err.message, "Webhook refused");
    }
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            tenant_id: tenant_label,
            endpoint: endpoint.key().to_owned(),
            outcome,
        })
        .inc();
    result
}

async fn run(
    state: &AppState,
    endpoint: Endpoint,
    path_tenant: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    tenant_label: &mut String,
    refused_as: &mut Option<&'static str>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
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
                format!("the body is larger than {} bytes", state.max_body_bytes),
            )
        } else {
            ApiError::bad_request("the body could not be read")
        }
    })?;

    let tenant_id = match path_tenant {
        Some(raw) => TenantId::parse(raw)
            .map_err(|err| ApiError::bad_request(format!("tenant_id: {err}")))?,
        None => servicedesk::webhook::tenant_of(&body).map_err(inbound_error)?,
    };
    let span = tracing::Span::current();
    span.record("tenant_id", tenant_id.as_str());
    let unavailable = |err: aia_store::StoreError| {
        tracing::error!(error = %err, "Tenant lookup failed");
        ApiError::unavailable("the tenant store is unavailable; retry later")
    };
    // A made-up id is told from the ids held in memory, without a read.
    let tenant = if state
        .known
        .may_exist(&tenant_id)
        .await
        .map_err(unavailable)?
    {
        state.tenants.get(&tenant_id).await.map_err(unavailable)?
    } else {
        None
    };
    let now = Instant::now();
    let Some(tenant) = tenant else {
        // Answered exactly as a bad signature, after the same work, so the
        // answer does not tell which tenants exist.
        *refused_as = Some("unknown_tenant");
        let decoy = crate::tools::decoy(endpoint.kind(), tenant_id.clone());
        let failure = match crate::tools::authenticate(
            state,
            endpoint.kind(),
            &decoy,
            headers,
            &body,
            Utc::now(),
        )
        .await
        {
            Err(failure) => failure,
            Ok(_) => AuthFailure::Invalid,
        };
        return Err(signature_refused(state, &tenant_id, failure, now));
    };
    *tenant_label = state.metrics.tenant.of(tenant_id.as_str());

    let verified =
        crate::tools::authenticate(state, endpoint.kind(), &tenant, headers, &body, Utc::now())
            .await;
    let verified = match verified {
        Ok(verified) => verified,
        Err(failure) => {
            state
                .metrics
                .signature_failures
                .get_or_create(&TenantLabels {
                    tenant_id: state.metrics.tenant.of(tenant_id.as_str()),
                })
                .inc();
            return Err(signature_refused(state, &tenant_id, failure, now));
        }
    };
    if !tenant.active {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "inactive_tenant",
            "the tenant is inactive",
        ));
    }

    // The sender's own delivery id when it has one, else the body: the same
    // delivery twice is one event.
    let delivery = verified
        .delivery_id
        .as_ref()
        .map(|id| format!("id:{id}"))
        .or_else(|| {
            // Jira's own delivery id (the same on its retries), on Jira's
            // route only: the header is not signed, and on another tool's
            // route a made-up one would only dodge the duplicate window.
            headers
                .get("x-atlassian-webhook-identifier")
                .filter(|_| endpoint.kind() == ItsmKind::Jira)
                .and_then(|value| value.to_str().ok())
                .map(|id| format!("atlassian:{id}"))
        })
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(&body))));
    let msg_id = aia_bus::msg_id::webhook_delivery(tenant_id.as_str(), endpoint.key(), &delivery);
    // What the replay check goes by is only what the signature covers: a
    // delivery id from an unsigned header (Jira's, Zendesk's invocation
    // id) would let a replay dodge it by changing the header.
    let replay_key = {
        let signed = match verified.scheme {
            Scheme::StandardWebhooks => verified.delivery_id.clone().unwrap_or_default(),
            Scheme::ZendeskSignature => headers
                .get("x-zendesk-webhook-signature-timestamp")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        let mut digest = Sha256::new();
        digest.update(signed.as_bytes());
        digest.update(b"\n");
        digest.update(&body);
        aia_bus::msg_id::webhook_delivery(
            tenant_id.as_str(),
            endpoint.key(),
            &hex::encode(digest.finalize()),
        )
    };
    // A delivery this instance accepted lately is answered as the
    // duplicate it is before it counts against the limit (a replayed
    // request would otherwise use up the tenant's).
    if let Some(event_id) = state.recent.accepted(&replay_key, now) {
        state
            .metrics
            .duplicates
            .get_or_create(&TenantEndpointLabels {
                tenant_id: state.metrics.tenant.of(tenant_id.as_str()),
                endpoint: endpoint.key().to_owned(),
            })
            .inc();
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"status": "duplicate", "event_id": event_id, "duplicate": true})),
        ));
    }

    let limit = tenant
        .settings
        .webhook_rate_limit_per_minute
        .unwrap_or(state.limits.default_per_minute);
    let limit_key = format!("{tenant_id}:{}", endpoint.key());
    if let Err(wait) = state.limits.requests.acquire(&limit_key, limit, now) {
        state
            .metrics
            .rate_limited
            .get_or_create(&TenantEndpointLabels {
                tenant_id: state.metrics.tenant.of(tenant_id.as_str()),
                endpoint: endpoint.key().to_owned(),
            })
            .inc();
        return Err(ApiError::rate_limited(
            wait,
            "rate limit exceeded for this tenant and endpoint",
        ));
    }

    let inbound = match endpoint {
        Endpoint::ServiceDeskResolved => servicedesk::webhook::parse_resolved(&body),
        endpoint => aia_itsm::Itsm::parse_webhook(endpoint.kind(), &body, Utc::now()),
    }
    .map_err(inbound_error)?;
    // A webhook that only names its ticket is completed from the tool.
    let inbound = match inbound {
        Inbound::Mention { ticket_id, change } => {
            // Read from the tenant's own tool, which must be the one that
            // sent it.
            if tenant.itsm != endpoint.kind() {
                return Err(ApiError::unprocessable(format!(
                    "the tenant's help desk is {}; this endpoint is {}'s",
                    tenant.itsm.display_name(),
                    endpoint.kind().display_name()
                )));
            }
            crate::tools::complete_mention(state, &tenant, ticket_id, change, Utc::now()).await?
        }
        inbound => inbound,
    };

    let (event, starts_run) = match inbound {
        Inbound::Ignored { reason } => {
            return Ok((
                StatusCode::ACCEPTED,
                axum::Json(json!({"status": "ignored", "event_id": null, "reason": reason})),
            ));
        }
        Inbound::Received {
            ticket_id,
            mut ticket,
        } => {
            ticket.delivery_id = msg_id.clone();
            let event = Event::new_run(tenant_id, ticket_id, Payload::TicketReceived(ticket));
            (event, true)
        }
        // A resolved ticket delivered again updates the same history row.
        Inbound::Resolved {
            ticket_id,
            mut ticket,
        } => {
            // Its language is decided here, with the tenant's settings, so
            // a fixed or default language holds for the history too.
            ticket.language = Some(tenant.settings.languages.ticket_language(&ticket.words()));
            let event = Event::new_run(tenant_id, ticket_id, Payload::TicketResolved(ticket));
            (event, false)
        }
        Inbound::Mention { .. } => unreachable!("completed above"),
    };
    span.record("ticket_id", event.ticket_id.as_str());
    let answer = if starts_run {
        crate::intake::start_run(state, &tenant, &event, &msg_id).await
    } else {
        publish(state, &event, &msg_id).await
    };
    if let Ok((_, body)) = &answer
        && let Some(event_id) = body["event_id"]
            .as_str()
            .and_then(|id| id.parse::<uuid::Uuid>().ok())
    {
        state.recent.remember(&replay_key, event_id, Instant::now());
    }
    answer
}

pub(crate) async fn publish(
    state: &AppState,
    event: &Event,
    msg_id: &str,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    // A publish made while disconnected would wait in the client's buffer
    // and might be stored after we answered 503; refuse it up front. (A late
    // store is still safe: the sender's retry carries the same message id.)
    if state.nats.connection_state() != async_nats::connection::State::Connected {
        return Err(ApiError::unavailable(
            "the event store is unreachable; retry later",
        ));
    }
    let started = Instant::now();
    let published = tokio::time::timeout(
        state.publish_timeout,
        aia_bus::publish_event(&state.jetstream, event, msg_id),
    )
    .await;
    state
        .metrics
        .publish_seconds
        .observe(started.elapsed().as_secs_f64());
    let ack = match published {
        Ok(Ok(ack)) => ack,
        Ok(Err(err)) => {
            tracing::error!(error = %err, "Event was not stored");
            return Err(ApiError::unavailable(
                "the event could not be stored; retry later",
            ));
        }
        Err(_) => {
            return Err(ApiError::unavailable(
                "the event store did not confirm in time; retry later",
            ));
        }
    };
    let event_id = if ack.duplicate {
        original_event_id(state, ack.sequence)
            .await
            .unwrap_or(event.event_id)
    } else {
        event.event_id
    };
    tracing::Span::current().record("event_id", tracing::field::display(event_id));
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "accepted", "event_id": event_id, "duplicate": ack.duplicate})),
    ))
}

/// The id of the event a duplicate publish matched, so a redelivered
/// webhook gets the answer the first delivery got.
async fn original_event_id(state: &AppState, sequence: u64) -> Option<uuid::Uuid> {
    let lookup = tokio::time::timeout(
        Duration::from_secs(2),
        state.stream.get_raw_message(sequence),
    )
    .await;
    match lookup {
        Ok(Ok(message)) => Event::from_json(&message.payload)
            .ok()
            .map(|event| event.event_id),
        other => {
            tracing::warn!(
                sequence,
                ok = other.is_ok(),
                "Could not read the original of a duplicate"
            );
            None
        }
    }
}

fn inbound_error(err: InboundError) -> ApiError {
    match err {
        InboundError::Malformed(message) => ApiError::bad_request(message),
        InboundError::Invalid(message) => ApiError::unprocessable(message),
        InboundError::Stale(message) => ApiError::stale(message),
    }
}
