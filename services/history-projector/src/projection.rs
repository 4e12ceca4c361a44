//! How each event changes the read models.
//!
//! Events are applied in one transaction together with the checkpoint (the
//! stream sequence of the last of them): a batch of the events at hand per
//! transaction, so a busy stream costs one commit per batch, not per event. An event at or below the checkpoint was
//! applied before and is skipped, so redelivery applies nothing twice; a
//! run's status only moves forward, so a late duplicate never moves a row
//! back.
//!
//! An event above the checkpoint's successor means events in between have
//! not been applied: after a crash JetStream hands out new events at once
//! and redelivers the unacknowledged ones only when their ack wait runs
//! out, and with several projector instances each holds part of the
//! stream. Those events are read from the stream by sequence ([`Gaps`]) and
//! applied first, in the same transaction, so the projection always
//! follows stream order, whichever instance holds which event.

use aia_events::Event;
use aia_store::{Client, GenericClient, StoreError, Transaction};

use crate::fold::Fold;
use crate::model::Counters;
use crate::rows::{self, Tables};

/// The checkpoint row of this projection.
pub const PROJECTION: &str = "history";

#[derive(Debug, PartialEq)]
pub enum Applied {
    Applied(Effect),
    AlreadyApplied,
    /// Missing events before this one were applied (in `Effect::filled`),
    /// more remain: apply the same event again.
    FilledGap(Effect),
}

/// Where the events between the checkpoint and the event in hand come from.
pub trait Gaps: Sync {
    /// The first `limit` events with stream sequences strictly between
    /// `after` and `before`, in order; sequences that no longer exist
    /// (expired) are simply absent.
    fn between(
        &self,
        after: u64,
        before: u64,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<(u64, Event)>, StoreError>> + Send;
}

/// Missing events applied per transaction: a long gap (a projector that was
/// down for a while) is filled in steps, never in one huge transaction.
pub const FILL_BATCH: usize = 500;

/// Events in memory (a rebuild's catch-up, tests).
impl Gaps for Vec<(u64, Event)> {
    async fn between(
        &self,
        after: u64,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Event)>, StoreError> {
        Ok(self
            .iter()
            .filter(|(sequence, _)| *sequence > after && *sequence < before)
            .take(limit)
            .cloned()
            .collect())
    }
}

/// What applying one event changed, for the projector's metrics.
#[derive(Debug, Default, PartialEq)]
pub struct Effect {
    /// A resolved ticket entered (or was updated in) the history corpus.
    pub ticket_stored: bool,
    /// What the event added to its run's day: a received, completed or
    /// failed run, and for a completed one its webhook-to-note time.
    pub counters: Counters,
    /// Events before it that were missing and applied with it (tenant and
    /// effect each), so the metrics count them too.
    pub filled: Vec<(String, Effect)>,
}

/// The checkpoint, locked for this transaction: the lock also makes a second
/// projector instance wait its turn.
async fn lock_checkpoint(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let select = tx
        .prepare_cached(
            "select stream_sequence from projection_checkpoints where projection = $1 for update",
        )
        .await?;
    let stored: i64 = match tx.query_opt(&select, &[&PROJECTION]).await? {
        Some(row) => row.get(0),
        None => {
            // The very first batch: create the row (another instance may
            // be doing the same), then lock it.
            tx.execute(
                "insert into projection_checkpoints (projection, stream_sequence) values ($1, 0)
                 on conflict (projection) do nothing",
                &[&PROJECTION],
            )
            .await?;
            tx.query_one(&select, &[&PROJECTION]).await?.get(0)
        }
    };
    Ok(u64::try_from(stored).unwrap_or(0))
}

async fn store_checkpoint(tx: &Transaction<'_>, sequence: u64) -> Result<(), StoreError> {
    tx.execute(
        &tx.prepare_cached(
            "update projection_checkpoints set stream_sequence = $2, updated_at = now() where projection = $1",
        )
        .await?,
        &[&PROJECTION, &i64::try_from(sequence).unwrap_or(i64::MAX)],
    )
    .await?;
    Ok(())
}

/// Applies one event with the checkpoint, as [`apply_batch`] does a batch.
pub async fn apply(
    client: &mut Client,
    event: &Event,
    stream_sequence: u64,
    gaps: &impl Gaps,
) -> Result<Applied, StoreError> {
    let mut outcomes = apply_batch(client, &[(stream_sequence, event)], gaps).await?;
    Ok(outcomes
        .pop()
        .expect("one outcome per event up to the first not applied"))
}

/// Applies events (in ascending stream order) in one transaction with the
/// checkpoint: one commit for the batch instead of one per event. The
/// outcomes come in the events' order; when a long gap was met, the last
/// outcome is [`Applied::FilledGap`] for the event before which it was
/// partly filled, and that event and those after it were not applied (no
/// outcome): apply them again. A gap that cannot be filled yet (an event
/// of a newer build in it) ends the outcomes before the event after it;
/// met first, it is the error.
pub async fn apply_batch(
    client: &mut Client,
    events: &[(u64, &Event)],
    gaps: &impl Gaps,
) -> Result<Vec<Applied>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let tx = client.transaction().await?;
    let mut checkpoint = lock_checkpoint(&tx).await?;
    let mut fold = Fold::new(rows::LIVE);
    fold.prefetch(
        &tx,
        events
            .iter()
            .filter(|(sequence, _)| *sequence > checkpoint)
            .map(|(_, event)| *event),
    )
    .await?;
    let mut outcomes = Vec::with_capacity(events.len());
    for &(sequence, event) in events {
        if sequence <= checkpoint {
            outcomes.push(Applied::AlreadyApplied);
            continue;
        }
        let mut filled = Vec::new();
        if sequence > checkpoint + 1 {
            let missing = match gaps.between(checkpoint, sequence, FILL_BATCH).await {
                Ok(missing) => missing,
                // A gap that cannot be filled now (an event of a newer
                // build in it, the stream away): what came before it is
                // kept; it and the events after it wait.
                Err(err) if !outcomes.is_empty() => {
                    tracing::warn!(error = %err, sequence, "Stopped before a gap that cannot be filled yet");
                    break;
                }
                Err(err) => return Err(err),
            };
            let more = missing.len() == FILL_BATCH;
            for (missed_sequence, missed) in missing {
                let effect = fold.add(&tx, &missed).await?;
                tracing::info!(
                    sequence = missed_sequence,
                    "Applied an event missing before this one"
                );
                filled.push((missed.tenant_id.to_string(), effect));
                checkpoint = missed_sequence;
            }
            if more {
                outcomes.push(Applied::FilledGap(Effect {
                    filled,
                    ..Effect::default()
                }));
                break;
            }
        }
        let mut effect = fold.add(&tx, event).await?;
        effect.filled = filled;
        checkpoint = sequence;
        outcomes.push(Applied::Applied(effect));
    }
    fold.write(&tx).await?;
    store_checkpoint(&tx, checkpoint).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// What [`advance_one`] did with the event after the checkpoint.
#[derive(Debug)]
pub enum Advanced {
    /// Applied it (its sequence, tenant and effect).
    Applied(u64, String, Effect),
    /// It fails on its data: the checkpoint moved past it.
    Skipped(u64, String),
    /// No event after the checkpoint (up to the stream's end).
    UpToDate,
}

/// Applies the single event after the checkpoint, read from the stream, or,
/// when it fails on its data, moves the checkpoint past it: the projection
/// goes on after a poison event instead of stopping at it. The caller
/// repeats this until the events it holds are at or below the checkpoint.
pub async fn advance_one(client: &mut Client, gaps: &impl Gaps) -> Result<Advanced, StoreError> {
    let mut tx = client.transaction().await?;
    let after = lock_checkpoint(&tx).await?;
    let Some((sequence, event)) = gaps.between(after, u64::MAX, 1).await?.into_iter().next() else {
        return Ok(Advanced::UpToDate);
    };
    let tenant = event.tenant_id.to_string();
    let outcome = {
        let savepoint = tx.savepoint("one_event").await?;
        match project_events(&savepoint, rows::LIVE, [&event]).await {
            Ok(mut effects) => {
                let effect = effects.pop().unwrap_or_default();
                savepoint.commit().await?;
                Advanced::Applied(sequence, tenant, effect)
            }
            // Only an event that fails on its own data is skipped; a
            // database that cannot take any event now (a column a deploy has
            // not added yet, a read-only standby, a permission) is waited
            // for, or every event of that window would be skipped for good.
            Err(err) if !err.is_about_the_data() => return Err(err),
            Err(err) => {
                savepoint.rollback().await?;
                Advanced::Skipped(sequence, err.to_string())
            }
        }
    };
    store_checkpoint(&tx, sequence).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Applies events in order to the tables named by `tables` (a rebuild's
/// catch-up; one event at a time while [`advance_one`] steps past a poison
/// event), with the same model the rebuild folds: what the live projector
/// does with a batch.
pub async fn project_events<'e>(
    tx: &impl GenericClient,
    tables: Tables<'_>,
    events: impl IntoIterator<Item = &'e Event>,
) -> Result<Vec<Effect>, StoreError> {
    let mut fold = Fold::new(tables);
    let mut effects = Vec::new();
    for event in events {
        effects.push(fold.add(tx, event).await?);
    }
    fold.write(tx).await?;
    Ok(effects)
}
