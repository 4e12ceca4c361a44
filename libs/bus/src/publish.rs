//! Publishing one event: subject from the event, `Nats-Msg-Id` for
//! deduplication, W3C trace context for the trace, and a wait for the
//! stream's acknowledgement.

use aia_events::{Event, subject};
use async_nats::HeaderMap;
use async_nats::jetstream::publish::PublishAck;
use tracing::Instrument;

use crate::JetStream;

pub const EVENT_TYPE_HEADER: &str = "Ai-Event-Type";

/// How long the events of a run stay in the stream (`Nats-TTL`): as long as
/// enhancement history is kept, 90 days unless `AI_AGENTS_EVENT_TTL_SECS`
/// says otherwise (read through `aia_config::shared`, which every service
/// checks at start).
pub const DEFAULT_RUN_EVENT_TTL_SECS: u64 = aia_config::Shared::DEFAULT_EVENT_TTL_SECS;

/// The `Nats-TTL` of an event, in seconds; `None` keeps it for good.
/// `ticket.resolved` events are the tenant's history corpus — what the
/// history projection and the vectors are rebuilt from — so they have no
/// TTL; the events of enhancement runs expire with their history.
pub fn ttl_secs(event: &Event) -> Option<u64> {
    static RUN_TTL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    if matches!(event.payload, aia_events::Payload::TicketResolved(_)) {
        return None;
    }
    Some(*RUN_TTL.get_or_init(|| aia_config::shared_or_default().event_ttl_secs))
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// JetStream did not confirm storage; the event may or may not be
    /// stored. Publishing again with the same message id is safe.
    #[error("JetStream did not confirm the event: {0}")]
    Unconfirmed(String),
}

/// Publishes `event` and waits until JetStream has stored it.
///
/// `msg_id` must be deterministic for the input that produced the event (the
/// delivery id at ingress, `<cause>:<stage>` in a stage), so a retried or
/// redelivered input is absorbed by the stream's duplicate window. The
/// returned ack says whether the stream saw it as a duplicate.
pub async fn publish_event(
    jetstream: &JetStream,
    event: &Event,
    msg_id: &str,
) -> Result<PublishAck, PublishError> {
    let subject = subject::for_event(subject::DEFAULT_PREFIX, event);
    let span = tracing::info_span!(
        "send",
        otel.name = %format!("send {subject}"),
        otel.kind = "producer",
        messaging.system = "nats",
        messaging.operation.type = "send",
        messaging.destination.name = %subject,
        messaging.message.id = %event.event_id,
    );
    async move {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        headers.insert(EVENT_TYPE_HEADER, event.event_type());
        if let Some(ttl) = ttl_secs(event) {
            headers.insert("Nats-TTL", ttl.to_string().as_str());
        }
        // Inside the send span, so the consumer's span becomes its child.
        aia_telemetry::inject(&mut headers);
        let pending = jetstream
            .publish_with_headers(subject, headers, event.to_json().into())
            .await
            .map_err(|err| PublishError::Unconfirmed(err.to_string()))?;
        pending
            .await
            .map_err(|err| PublishError::Unconfirmed(err.to_string()))
    }
    .instrument(span)
    .await
}
