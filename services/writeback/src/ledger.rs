//! The write-back ledger: one row per ticket run, so a redelivered
//! enhancement never posts a second note.
//!
//! `posting` is written before the call to the help-desk tool and `posted`
//! after it. A run found in `posting` crashed or failed mid-call, so the
//! tool may or may not have the note: the caller looks for the note's
//! marker on the ticket before posting again.
//!
//! The claim is a lease: it names the delivery that holds it and until
//! when. Two deliveries of one run can overlap (a redelivery while the
//! first still works, a re-drive while the original is in flight); the one
//! that finds the lease held waits it out ([`Claim::Held`]) rather than
//! search the ticket for a note the holder has not landed yet and post a
//! second. A holder that gets a definite answer releases the lease; one
//! whose call timed out keeps it, so the next attempt searches only once
//! the help desk had time to store what it may have received.
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
    /// Another delivery of the run holds the lease for this long yet.
    Held { for_: std::time::Duration },
}

/// Claims the run's write-back for `lease_for`, as `holder`.
pub async fn claim(
    client: &mut Client,
    tenant: &TenantId,
    correlation_id: Uuid,
    ticket: &TicketId,
    holder: Uuid,
    lease_for: std::time::Duration,
) -> Result<Claim, StoreError> {
    let lease_secs = lease_for.as_secs_f64();
    let rows = tenant_query(
        client,
        tenant,
        "insert into writeback_ledger (tenant_id, correlation_id, ticket_id, state, attempts, lease, claimed_until)
         values ($1, $2, $3, 'posting', 1, $4, clock_timestamp() + make_interval(secs => $5))
         on conflict (tenant_id, correlation_id) do update
           set attempts = writeback_ledger.attempts + 1, updated_at = now(),
               lease = case when writeback_ledger.state = 'posting'
                              and writeback_ledger.claimed_until > clock_timestamp()
                            then writeback_ledger.lease else excluded.lease end,
               claimed_until = case when writeback_ledger.state = 'posting'
                                      and writeback_ledger.claimed_until > clock_timestamp()
                                    then writeback_ledger.claimed_until
                                    else clock_timestamp() + make_interval(secs => $5) end
         returning state, note_id, attempts, lease = $4,
                   greatest(extract(epoch from claimed_until - clock_timestamp()), 0)::float8",
        &[&tenant.as_str(), &correlation_id, &ticket.as_str(), &holder, &lease_secs],
    )
    .await?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("the ledger's upsert returned no row".into()))?;
    let state: String = row.get(0);
    let attempts: i32 = row.get(2);
    let ours: bool = row.get(3);
    let left: f64 = row.get(4);
    Ok(match (state.as_str(), ours, attempts) {
        ("posted", _, _) => Claim::Posted {
            note_id: row.get(1),
        },
        (_, false, _) => Claim::Held {
            for_: std::time::Duration::from_secs_f64(left.max(0.1)),
        },
        (_, true, 1) => Claim::Fresh,
        _ => Claim::Uncertain,
    })
}

/// Renews the lease `holder` holds for another `lease_for` (before the
/// post that follows a marker search). False when it is no longer
/// `holder`'s (it ran out and another delivery took it): then `holder`
/// must not post.
pub async fn renew(
    client: &mut Client,
    tenant: &TenantId,
    correlation_id: Uuid,
    holder: Uuid,
    lease_for: std::time::Duration,
) -> Result<bool, StoreError> {
    let renewed = tenant_query(
        client,
        tenant,
        "update writeback_ledger set claimed_until = clock_timestamp() + make_interval(secs => $4)
          where tenant_id = $1 and correlation_id = $2 and lease = $3 and state = 'posting'
          returning 1",
        &[
            &tenant.as_str(),
            &correlation_id,
            &holder,
            &lease_for.as_secs_f64(),
        ],
    )
    .await?;
    Ok(!renewed.is_empty())
}

/// Gives the lease up (a definite answer came back: the next attempt may
/// go at once).
pub async fn release(
    client: &mut Client,
    tenant: &TenantId,
    correlation_id: Uuid,
    holder: Uuid,
) -> Result<(), StoreError> {
    tenant_query_unflushed(
        client,
        tenant,
        "update writeback_ledger set claimed_until = null
          where tenant_id = $1 and correlation_id = $2 and lease = $3",
        &[&tenant.as_str(), &correlation_id, &holder],
    )
    .await?;
    Ok(())
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
        "update writeback_ledger set state = 'posted', note_id = $3, updated_at = now(),
                claimed_until = null
          where tenant_id = $1 and correlation_id = $2",
        &[&tenant.as_str(), &correlation_id, &note_id],
    )
    .await?;
    Ok(())
}
