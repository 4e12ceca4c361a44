//! One enhancement per ticket: the ingress claims a ticket's run here
//! before it publishes the run's first event, so a webhook delivered again
//! — by the help desk's retries, or replayed by someone who kept the signed
//! bytes — starts no second run, however long after.
//!
//! A claim holds the event itself until the stream confirms it. A delivery
//! that finds a claim not yet confirmed publishes that same event under the
//! same message id: the stream keeps one copy, so a crash between claim and
//! publish loses nothing and doubles nothing.

use std::time::Duration;

use aia_events::{TenantId, TicketId};
use uuid::Uuid;

use crate::{Client, StoreError, tenant_query, tenant_query_unflushed};

/// The kind of change that asks for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Created,
    Updated,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
        }
    }
}

/// What a claim came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This delivery starts the ticket's run: publish the event.
    New,
    /// The ticket already has a run, stored in the stream.
    Duplicate { event_id: Uuid },
    /// The ticket's run was claimed but its event is not confirmed: publish
    /// this one (its JSON) under this message id.
    Unconfirmed {
        event_id: Uuid,
        msg_id: String,
        event: Vec<u8>,
    },
}

/// Claims `ticket`'s run for the event `event_id` (`event`, its JSON, to
/// publish under `msg_id`). A ticket that has a run keeps it, except that an
/// update re-claims it when `reenhance_after` is given and the last run is
/// at least that old.
#[allow(clippy::too_many_arguments)]
pub async fn claim(
    client: &mut Client,
    tenant: &TenantId,
    ticket: &TicketId,
    kind: Kind,
    event_id: Uuid,
    msg_id: &str,
    event: &[u8],
    reenhance_after: Option<Duration>,
) -> Result<Claim, StoreError> {
    let reclaim_secs = match kind {
        Kind::Updated => reenhance_after.map(|after| after.as_secs_f64()),
        Kind::Created => None,
    };
    let claimed = tenant_query(
        client,
        tenant,
        "insert into ticket_intake as t (tenant_id, ticket_id, kind, event_id, msg_id, event)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (tenant_id, ticket_id) do update
            set kind = excluded.kind, event_id = excluded.event_id, msg_id = excluded.msg_id,
                event = excluded.event, claimed_at = now(), published_at = null
          where $7::float8 is not null and t.published_at is not null
            and t.claimed_at <= now() - make_interval(secs => $7::float8)
         returning event_id",
        &[
            &tenant.as_str(),
            &ticket.as_str(),
            &kind.as_str(),
            &event_id,
            &msg_id,
            &event,
            &reclaim_secs,
        ],
    )
    .await?;
    if !claimed.is_empty() {
        return Ok(Claim::New);
    }
    // A new statement sees a claim another delivery has just committed.
    let rows = tenant_query(
        client,
        tenant,
        "select event_id, msg_id, event, published_at is not null
           from ticket_intake where tenant_id = $1 and ticket_id = $2",
        &[&tenant.as_str(), &ticket.as_str()],
    )
    .await?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("a claimed ticket has no claim".into()))?;
    Ok(if row.get::<_, bool>(3) {
        Claim::Duplicate {
            event_id: row.get(0),
        }
    } else {
        Claim::Unconfirmed {
            event_id: row.get(0),
            msg_id: row.get(1),
            event: row.get(2),
        }
    })
}

/// Records that the stream confirmed the claim's event. The mark commits
/// without waiting for the WAL flush: one lost in a database crash reads
/// as a claim not confirmed, whose next delivery publishes the same event
/// under the same message id — the stream or the stages' idempotency take
/// it once — so the webhook's one durable commit is the claim's.
pub async fn confirmed(
    client: &mut Client,
    tenant: &TenantId,
    ticket: &TicketId,
    event_id: Uuid,
) -> Result<(), StoreError> {
    tenant_query_unflushed(
        client,
        tenant,
        "update ticket_intake set published_at = now()
          where tenant_id = $1 and ticket_id = $2 and event_id = $3 and published_at is null",
        &[&tenant.as_str(), &ticket.as_str(), &event_id],
    )
    .await?;
    Ok(())
}
