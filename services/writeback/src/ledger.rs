//! The write-back ledger: one row per ticket run, so a redelivered
//! enhancement never posts a second note.
//!
//! `posting` is written before the call to the help-desk tool and `posted`
//! after it. A run found in `posting` crashed or failed mid-call, so the
//! tool may or may not have the note: the caller looks for the note's
//! marker on the ticket before posting again.
//!
//! Only the claim must be durable before the call. `posted` is committed
//! without waiting for the WAL flush (`synchronous_commit = off` for that
//! transaction): if the database loses it in a crash, the run reads as
//! `posting` again, and the marker on the ticket answers the question — no
//! note is posted twice, and each write-back costs one disk flush, not two.

use aia_events::{TenantId, TicketId};
use aia_store::{Client, StoreError, tenant_query, tenant_query_unflushed};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Nobody tried before.
    Fresh,
    /// An earlier attempt may have posted the note.
    Uncertain,
    /// The note is on the ticket.
    Posted { note_id: Option<String> },
}

pub async fn claim(
    client: &mut Client,
    tenant: &TenantId,
    correlation_id: Uuid,
    ticket: &TicketId,
) -> Result<Claim, StoreError> {
    let rows = tenant_query(
        client,
        tenant,
        "insert into writeback_ledger (tenant_id, correlation_id, ticket_id, state, attempts)
         values ($1, $2, $3, 'posting', 1)
         on conflict (tenant_id, correlation_id)
           do update set attempts = writeback_ledger.attempts + 1, updated_at = now()
         returning state, note_id, attempts",
        &[&tenant.as_str(), &correlation_id, &ticket.as_str()],
    )
    .await?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("the ledger's upsert returned no row".into()))?;
    let state: String = row.get(0);
    let attempts: i32 = row.get(2);
    Ok(match (state.as_str(), attempts) {
        ("posted", _) => Claim::Posted {
            note_id: row.get(1),
        },
        (_, 1) => Claim::Fresh,
        _ => Claim::Uncertain,
    })
}

pub async fn mark_posted(
    client: &mut Client,
    tenant: &TenantId,
    correlation_id: Uuid,
    note_id: Option<&str>,
) -> Result<(), StoreError> {
    tenant_query_unflushed(
        client,
        tenant,
        "update writeback_ledger set state = 'posted', note_id = $3, updated_at = now()
          where tenant_id = $1 and correlation_id = $2",
        &[&tenant.as_str(), &correlation_id, &note_id],
    )
    .await?;
    Ok(())
}
