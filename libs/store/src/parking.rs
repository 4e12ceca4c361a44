//! Events set aside while their tenant is paused. A stage that meets a
//! paused tenant's event records it here and acknowledges it; the event
//! itself stays in the stream, and resuming publishes each set-aside event
//! again in stream order (the admin service does that).
//!
//! Parking re-checks the pause under a lock on the tenant's row, so an
//! event is never set aside after a resume has listed what to publish: it
//! either is parked before the resume (and listed), or sees the tenant
//! resumed and is worked on.

use std::sync::Arc;

use aia_events::{Event, TenantId};
use uuid::Uuid;

use crate::{Client, Pool, StoreError, Tenant, TenantCache, tenant_transaction};

/// Sets `event` aside for `stage` if its tenant is still paused; false when
/// the tenant is no longer paused (work on it).
pub async fn park(
    pool: &Pool,
    stage: &str,
    event: &Event,
    stream_sequence: u64,
) -> Result<bool, StoreError> {
    let mut client = pool.get().await?;
    let tx = tenant_transaction(&mut client, &event.tenant_id).await?;
    let paused = tx
        .query_opt(
            &tx.prepare_cached(
                "select 1 from tenants where tenant_id = $1 and paused_at is not null for share",
            )
            .await?,
            &[&event.tenant_id.as_str()],
        )
        .await?
        .is_some();
    if paused {
        tx.execute(
            &tx.prepare_cached(
                "insert into parked_events (tenant_id, stage, event_id, stream_sequence)
                 values ($1, $2, $3, $4) on conflict do nothing",
            )
            .await?,
            &[
                &event.tenant_id.as_str(),
                &stage,
                &event.event_id,
                &i64::try_from(stream_sequence).unwrap_or(i64::MAX),
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(paused)
}

/// What a stage does with an event, by its tenant.
#[derive(Debug)]
pub enum Hold {
    /// The tenant is paused and the event was set aside: acknowledge it.
    SetAside,
    /// Work on it with this tenant (`None`: it does not exist; it may be
    /// inactive, which each stage answers in its own way).
    Proceed(Option<Arc<Tenant>>),
}

/// The tenant a stage works on `event` with. The cached copy serves; a
/// tenant missing or inactive there is read again before a stage acts on
/// that (an operator's fix is honoured at once, not after the cache's TTL);
/// a paused tenant's event is set aside, once the pause is confirmed under
/// the tenant row's lock.
pub async fn tenant_for(
    tenants: &TenantCache,
    stage: &str,
    event: &Event,
    stream_sequence: u64,
) -> Result<Hold, StoreError> {
    let tenant = match tenants.get(&event.tenant_id).await? {
        Some(tenant) if tenant.active => Some(tenant),
        _ => tenants.fresh(&event.tenant_id).await?,
    };
    if !tenant.as_ref().is_some_and(|tenant| tenant.paused) {
        return Ok(Hold::Proceed(tenant));
    }
    if park(tenants.db(), stage, event, stream_sequence).await? {
        tracing::info!(stage, "Tenant paused; event set aside");
        return Ok(Hold::SetAside);
    }
    // Resumed since it was cached.
    Ok(Hold::Proceed(tenants.fresh(&event.tenant_id).await?))
}

/// One set-aside event.
#[derive(Debug, Clone, PartialEq)]
pub struct Parked {
    pub stage: String,
    pub event_id: Uuid,
    pub stream_sequence: u64,
}

/// The tenant's set-aside events up to stream sequence `up_to`, in stream
/// order, at most `limit`.
pub async fn parked(
    client: &mut Client,
    tenant: &TenantId,
    up_to: u64,
    limit: i64,
) -> Result<Vec<Parked>, StoreError> {
    let tx = tenant_transaction(client, tenant).await?;
    let rows = tx
        .query(
            "select stage, event_id, stream_sequence from parked_events
              where tenant_id = $1 and stream_sequence <= $2 order by stream_sequence limit $3",
            &[
                &tenant.as_str(),
                &i64::try_from(up_to).unwrap_or(i64::MAX),
                &limit,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(rows
        .iter()
        .map(|row| Parked {
            stage: row.get(0),
            event_id: row.get(1),
            stream_sequence: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
        })
        .collect())
}

/// The stream sequence of the tenant's latest set-aside event, if any.
pub async fn last_sequence(
    client: &mut Client,
    tenant: &TenantId,
) -> Result<Option<u64>, StoreError> {
    let tx = tenant_transaction(client, tenant).await?;
    let row = tx
        .query_one(
            "select max(stream_sequence) from parked_events where tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await?;
    tx.commit().await?;
    Ok(row
        .get::<_, Option<i64>>(0)
        .and_then(|n| u64::try_from(n).ok()))
}

/// How many events the tenant has set aside.
pub async fn count(client: &mut Client, tenant: &TenantId) -> Result<i64, StoreError> {
    let tx = tenant_transaction(client, tenant).await?;
    let row = tx
        .query_one(
            "select count(*) from parked_events where tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await?;
    tx.commit().await?;
    Ok(row.get(0))
}

/// Forgets a set-aside event once it has been published again.
pub async fn release(
    client: &mut Client,
    tenant: &TenantId,
    parked: &Parked,
) -> Result<(), StoreError> {
    let tx = tenant_transaction(client, tenant).await?;
    tx.execute(
        "delete from parked_events where tenant_id = $1 and stage = $2 and event_id = $3",
        &[&tenant.as_str(), &parked.stage, &parked.event_id],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
