//! How each event changes the read models.
//!
//! An event is applied in one transaction together with the checkpoint (the
//! stream sequence it came from). An event at or below the checkpoint was
//! applied before and is skipped, so redelivery applies nothing twice; a
//! run's status only moves forward, so a late duplicate never moves a row
//! back.

use aia_events::{Event, Payload};
use aia_store::{Client, StoreError, Transaction, tenant_transaction};

use crate::model::{Counters, RunRow, TicketRow};
use crate::rows::{self, Tables};

/// The checkpoint row of this projection.
pub const PROJECTION: &str = "history";

#[derive(Debug, PartialEq)]
pub enum Applied {
    Applied(Effect),
    AlreadyApplied,
}

/// What applying one event changed, for the projector's metrics.
#[derive(Debug, Default, PartialEq)]
pub struct Effect {
    /// A resolved ticket entered (or was updated in) the history corpus.
    pub ticket_stored: bool,
    /// What the event added to its run's day: a received, completed or
    /// failed run, and for a completed one its webhook-to-note time.
    pub counters: Counters,
}

pub async fn apply(
    client: &mut Client,
    event: &Event,
    stream_sequence: u64,
) -> Result<Applied, StoreError> {
    let sequence = i64::try_from(stream_sequence).unwrap_or(i64::MAX);
    let tx = tenant_transaction(client, &event.tenant_id).await?;
    // The row lock also makes a second projector instance wait its turn.
    tx.execute(
        "insert into projection_checkpoints (projection, stream_sequence) values ($1, 0)
         on conflict (projection) do nothing",
        &[&PROJECTION],
    )
    .await?;
    let checkpoint: i64 = tx
        .query_one(
            "select stream_sequence from projection_checkpoints where projection = $1 for update",
            &[&PROJECTION],
        )
        .await?
        .get(0);
    if sequence <= checkpoint {
        return Ok(Applied::AlreadyApplied);
    }
    let effect = project(&tx, rows::LIVE, event).await?;
    tx.execute(
        "update projection_checkpoints set stream_sequence = $2, updated_at = now() where projection = $1",
        &[&PROJECTION, &sequence],
    )
    .await?;
    tx.commit().await?;
    Ok(Applied::Applied(effect))
}

/// Applies one event to the live tables (or, during a rebuild's catch-up,
/// to the tables named by `tables`) with the same model the rebuild folds.
pub async fn project(
    tx: &Transaction<'_>,
    tables: Tables<'_>,
    event: &Event,
) -> Result<Effect, StoreError> {
    project_with(tx, tables, event).await
}

/// [`project`] on a plain transaction (the rebuild's owner connection).
pub async fn project_with(
    tx: &tokio_postgres::Transaction<'_>,
    tables: Tables<'_>,
    event: &Event,
) -> Result<Effect, StoreError> {
    if let Some(ticket) = TicketRow::from_event(event) {
        rows::upsert_ticket(tx, tables, &ticket).await?;
        return Ok(Effect {
            ticket_stored: true,
            ..Effect::default()
        });
    }
    if !crate::model::concerns_a_run(&event.payload) {
        return Ok(Effect::default());
    }
    let tenant = event.tenant_id.as_str();
    let existing = rows::load_run(tx, tables, tenant, event.correlation_id).await?;
    if existing.is_none() && matches!(event.payload, Payload::EnhancementRated(_)) {
        return Ok(Effect::default()); // a rating for a run we do not have
    }
    let mut row = existing.unwrap_or_else(|| RunRow::new(event));
    let counters = row.apply(event).unwrap_or_default();
    rows::upsert_run(tx, tables, &row).await?;
    if !counters.is_zero() {
        rows::add_counters(tx, tables, tenant, row.day(event), &counters).await?;
    }
    Ok(Effect {
        ticket_stored: false,
        counters,
    })
}
