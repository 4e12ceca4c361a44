//! Pausing and resuming processing, per tenant and per stage. Nothing
//! paused is lost: a paused stage's events wait in the stream (its durable
//! consumer is paused by JetStream itself); a paused tenant's events are set
//! aside by the stages (see `aia_store::parking`) and published again, in
//! stream order, on resume.

use aia_bus::{JetStream, STREAM};
use aia_events::{Event, TenantId};
use aia_store::{StoreError, parking, tenants};
use async_nats::jetstream::stream::RawMessageErrorKind;
use tracing::Instrument as _;

use crate::tenants::{AdminError, TenantAdmin};

/// The consumers an operator may pause.
pub const STAGES: &[&str] = &[
    "context-gatherer",
    "llm-enhancer",
    "writeback",
    "history-projector",
    "embedding-indexer",
    "incident-correlator",
    "incident-notifier",
];

fn tenant_id(raw: &str) -> Result<TenantId, AdminError> {
    TenantId::parse(raw).map_err(|err| AdminError::Invalid(format!("tenant_id: {err}")))
}

pub async fn pause_tenant(admin: &TenantAdmin, tenant: &str) -> Result<(), AdminError> {
    let id = tenant_id(tenant)?;
    let mut client = admin.app.get().await.map_err(StoreError::from)?;
    if !tenants::set_paused(&mut client, &id, true).await? {
        return Err(AdminError::NotFound(tenant.to_owned()));
    }
    Ok(())
}

/// How many events the tenant has set aside while paused.
pub async fn parked_count(admin: &TenantAdmin, tenant: &str) -> Result<i64, AdminError> {
    let id = tenant_id(tenant)?;
    let mut client = admin.app.get().await.map_err(StoreError::from)?;
    Ok(parking::count(&mut client, &id).await?)
}

/// Resumes the tenant and publishes its set-aside events again, oldest
/// first; returns how many. Each is published with a message id of its
/// own, so two resumes at once publish it once. Only the events set aside
/// before the resume are published: should the tenant be paused again
/// meanwhile, what is set aside from then on waits for the next resume. A
/// resume that fails half-way leaves the rest set aside; resuming again (the
/// console offers it while any are left) publishes them.
pub async fn resume_tenant(
    admin: &TenantAdmin,
    jetstream: &JetStream,
    tenant: &str,
) -> Result<usize, AdminError> {
    let id = tenant_id(tenant)?;
    let mut client = admin.app.get().await.map_err(StoreError::from)?;
    if !tenants::set_paused(&mut client, &id, false).await? {
        return Err(AdminError::NotFound(tenant.to_owned()));
    }
    let Some(up_to) = parking::last_sequence(&mut client, &id).await? else {
        return Ok(0);
    };
    let stream = jetstream
        .get_stream(STREAM)
        .await
        .map_err(|err| AdminError::nats("reading the stream", err))?;
    let mut published = 0;
    loop {
        let batch = parking::parked(&mut client, &id, up_to, 100).await?;
        if batch.is_empty() {
            return Ok(published);
        }
        for parked in batch {
            // Only the stream's own "no such message" means gone (its
            // retention dropped it): any other error (an election, a lost
            // connection) stops the resume with the rest still set aside.
            let original = match stream.get_raw_message(parked.stream_sequence).await {
                Ok(message) => Event::from_json(&message.payload)
                    .ok()
                    .filter(|event| event.event_id == parked.event_id)
                    .map(|event| (event, message.headers)),
                Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => None,
                Err(err) => return Err(AdminError::nats("reading a set-aside event", err)),
            };
            match original {
                Some((original, headers)) => {
                    let copy = Event::republished(&original);
                    let msg_id = aia_bus::msg_id::resumed(original.event_id, &parked.stage);
                    // In the ticket's trace, as the event set aside was.
                    let span = tracing::info_span!("resume", otel.kind = "producer");
                    aia_telemetry::set_parent_from(&span, Some(&headers));
                    aia_bus::publish_event(jetstream, &copy, &msg_id)
                        .instrument(span)
                        .await
                        .map_err(|err| AdminError::nats("publishing a set-aside event", err))?;
                    published += 1;
                }
                None => tracing::warn!(
                    tenant_id = %id,
                    stream_sequence = parked.stream_sequence,
                    "A set-aside event is no longer in the stream; dropping its record"
                ),
            }
            parking::release(&mut client, &id, &parked).await?;
        }
    }
}

fn stage_name(stage: &str) -> Result<&'static str, AdminError> {
    STAGES
        .iter()
        .find(|known| **known == stage)
        .copied()
        .ok_or_else(|| AdminError::Invalid(format!("unknown stage {stage:?}")))
}

/// Pauses the stage's durable consumer: every instance stops receiving,
/// events wait in the stream until [`resume_stage`].
pub async fn pause_stage(jetstream: &JetStream, stage: &str) -> Result<(), AdminError> {
    let name = stage_name(stage)?;
    let stream = jetstream
        .get_stream(STREAM)
        .await
        .map_err(|err| AdminError::nats("reading the stream", err))?;
    // JetStream pauses until a time; ten years is "until resumed".
    let until = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    stream
        .pause_consumer(name, until)
        .await
        .map_err(|err| AdminError::nats("pausing the consumer", err))?;
    Ok(())
}

pub async fn resume_stage(jetstream: &JetStream, stage: &str) -> Result<(), AdminError> {
    let name = stage_name(stage)?;
    let stream = jetstream
        .get_stream(STREAM)
        .await
        .map_err(|err| AdminError::nats("reading the stream", err))?;
    stream
        .resume_consumer(name)
        .await
        .map_err(|err| AdminError::nats("resuming the consumer", err))?;
    Ok(())
}
