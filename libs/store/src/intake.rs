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

use crate::{Client, StoreError};

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
    // One statement (migration 0029): the tenant is set inside, and an
    // insert that finds another delivery's claim reads it in the same call.
    let statement = client
        .prepare_cached(
            "select claimed, claim_event_id, claim_msg_id, claim_event, published
               from intake_claim($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    let row = client
        .query_opt(
            &statement,
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
        .await?
        .ok_or_else(|| StoreError::Corrupt("a claimed ticket has no claim".into()))?;
    Ok(if row.get::<_, bool>(0) {
        Claim::New
    } else if row.get::<_, bool>(4) {
        Claim::Duplicate {
            event_id: row.get(1),
        }
    } else {
        Claim::Unconfirmed {
            event_id: row.get(1),
            msg_id: row.get(2),
            event: row.get(3),
        }
    })
}

/// Records that the stream confirmed the claim's event, in one statement
/// (migration 0029). The mark commits without waiting for the WAL flush:
/// one lost in a database crash reads as a claim not confirmed, whose next
/// delivery publishes the same event under the same message id — the
/// stream or the stages' idempotency take it once — so the webhook's one
/// durable commit is the claim's.
pub async fn confirmed(
    client: &mut Client,
    tenant: &TenantId,
    ticket: &TicketId,
    event_id: Uuid,
) -> Result<(), StoreError> {
    let statement = client
        .prepare_cached("select intake_confirmed($1, $2, $3)")
        .await?;
    client
        .execute(&statement, &[&tenant.as_str(), &ticket.as_str(), &event_id])
        .await?;
    Ok(())
}
