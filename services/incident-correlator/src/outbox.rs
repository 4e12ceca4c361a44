//! Publishing decided incident events: after the deciding transaction
//! commits, each of the tenant's unpublished events goes to JetStream under
//! its deterministic message id and is marked once acknowledged. Whoever
//! flushes first (the handler, a redelivery, the sweep, another instance)
//! publishes; a second publish of the same id within the stream's
//! duplicate window is dropped by the stream.

use aia_bus::JetStream;
use aia_events::{Event, TenantId};
use aia_store::{Pool, StoreError, tenant_transaction};

use crate::store;

/// One id per decided version of an incident
/// ([`aia_bus::msg_id::incident`]).
pub fn msg_id(event: &Event) -> String {
    aia_bus::msg_id::incident(event).unwrap_or_else(|| event.event_id.to_string())
}

/// Why the outbox could not be emptied.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error("database: {0}")]
    Database(#[from] StoreError),
    #[error("an incident event in the outbox does not decode: {0}")]
    Corrupt(#[from] aia_events::DecodeError),
    #[error(transparent)]
    Publish(#[from] aia_bus::PublishError),
}

/// Publishes the tenant's unpublished incident events, oldest first;
/// returns how many.
pub async fn flush(
    db: &Pool,
    jetstream: &JetStream,
    tenant: &TenantId,
) -> Result<usize, FlushError> {
    let mut client = db.get().await.map_err(StoreError::from)?;
    let pending = {
        let tx = tenant_transaction(&mut client, tenant).await?;
        let pending = store::outbox_pending(&tx, tenant).await?;
        tx.commit().await.map_err(StoreError::from)?;
        pending
    };
    for (msg_id, bytes) in &pending {
        let event = Event::from_json(bytes)?;
        aia_bus::publish_event(jetstream, &event, msg_id).await?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        store::outbox_published(&tx, tenant, msg_id).await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    Ok(pending.len())
}
