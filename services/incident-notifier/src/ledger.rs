//! The notification ledger: one row per (tenant, webhook id), so an
//! incident event delivered once is never posted again, and one that could
//! not be delivered says why (`aiagents`'s SQL, the console later).

use aia_events::TenantId;
use aia_store::{Client, StoreError, tenant_query};

/// Where one notification stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not delivered yet (perhaps tried).
    Pending,
    Delivered,
    /// Given up: refused for good, or out of deliveries.
    Failed,
}

/// Records an attempt; returns the notification's state before it.
pub async fn attempt(
    client: &mut Client,
    tenant: &TenantId,
    webhook_id: &str,
    event_type: &str,
) -> Result<State, StoreError> {
    let rows = tenant_query(
        client,
        tenant,
        "insert into incident_notifications (tenant_id, webhook_id, event_type, state, attempts)
         values ($1, $2, $3, 'pending', 1)
         on conflict (tenant_id, webhook_id) do update
            set attempts = incident_notifications.attempts
                           + case when incident_notifications.state = 'pending' then 1 else 0 end,
                updated_at = now()
         returning state",
        &[&tenant.as_str(), &webhook_id, &event_type],
    )
    .await?;
    let state: String = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("the ledger's upsert returned no row".into()))?
        .get(0);
    Ok(match state.as_str() {
        "delivered" => State::Delivered,
        "failed" => State::Failed,
        _ => State::Pending,
    })
}

/// Marks the notification `delivered` or `failed` (with why), or records
/// why a try failed while it stays `pending`.
pub async fn finish(
    client: &mut Client,
    tenant: &TenantId,
    webhook_id: &str,
    state: State,
    error: Option<&str>,
    http_status: Option<u16>,
) -> Result<(), StoreError> {
    let state = match state {
        State::Pending => "pending",
        State::Delivered => "delivered",
        State::Failed => "failed",
    };
    let status = http_status.map(i32::from);
    tenant_query(
        client,
        tenant,
        "update incident_notifications
            set state = $3, last_error = $4, http_status = $5, updated_at = now(),
                delivered_at = case when $3 = 'delivered' then now() end
          where tenant_id = $1 and webhook_id = $2 and state = 'pending'",
        &[&tenant.as_str(), &webhook_id, &state, &error, &status],
    )
    .await?;
    Ok(())
}
