//! How each event changes the read models.
//!
//! An event is applied in one transaction together with the checkpoint (the
//! stream sequence it came from). An event at or below the checkpoint was
//! applied before and is skipped, so redelivery applies nothing twice; a
//! run's status only moves forward, so a late duplicate never moves a row
//! back.

use aia_events::{Event, Payload};
use aia_store::{Client, StoreError, Transaction, tenant_transaction};

/// The checkpoint row of this projection.
pub const PROJECTION: &str = "history";

#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Applied,
    AlreadyApplied,
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
    project(&tx, event).await?;
    tx.execute(
        "update projection_checkpoints set stream_sequence = $2, updated_at = now() where projection = $1",
        &[&PROJECTION, &sequence],
    )
    .await?;
    tx.commit().await?;
    Ok(Applied::Applied)
}

/// Upserts the run's row, moving its status forward only.
const UPSERT_RUN: &str = "
insert into enhancement_history as h (tenant_id, correlation_id, ticket_id, status, last_event_id)
values ($1, $2, $3, $4, $5)
on conflict (tenant_id, correlation_id) do update
   set status = case when enhancement_status_rank(excluded.status) > enhancement_status_rank(h.status)
                     then excluded.status else h.status end,
       last_event_id = excluded.last_event_id,
       updated_at = now()";

async fn project(tx: &Transaction<'_>, event: &Event) -> Result<(), StoreError> {
    let tenant = event.tenant_id.as_str();
    let ticket = event.ticket_id.as_str();
    let run = |status: &'static str| async move {
        tx.execute(
            UPSERT_RUN,
            &[
                &tenant,
                &event.correlation_id,
                &ticket,
                &status,
                &event.event_id,
            ],
        )
        .await
    };
    let key: [&(dyn aia_store::ToSql + Sync); 2] = [&tenant, &event.correlation_id];
    match &event.payload {
        Payload::TicketReceived(received) => {
            run("received").await?;
            tx.execute(
                "update enhancement_history set source = $3, subject = $4, priority = $5,
                        received_at = coalesce(received_at, $6)
                  where tenant_id = $1 and correlation_id = $2",
                &[
                    key[0],
                    key[1],
                    &received.source.as_str(),
                    &received.subject,
                    &received.priority.as_str(),
                    &event.occurred_at,
                ],
            )
            .await?;
        }
        Payload::ContextGathered(context) => {
            run("context_gathered").await?;
            let context_json = serde_json::json!({
                "similar_tickets": context.similar_tickets,
                "knowledge_articles": context.knowledge_articles,
                "systems": context.systems,
                "monitoring": context.monitoring,
                "sources": context.sources,
            });
            tx.execute(
                "update enhancement_history set context_gathered_at = $3, context = $4,
                        received_at = coalesce(received_at, $5)
                  where tenant_id = $1 and correlation_id = $2",
                &[
                    key[0],
                    key[1],
                    &event.occurred_at,
                    &context_json,
                    &context.received_at,
                ],
            )
            .await?;
        }
        Payload::EnhancementGenerated(generated) => {
            run("enhanced").await?;
            tx.execute(
                "update enhancement_history set enhanced_at = $3, note_markdown = $4, provider = $5,
                        model = $6, prompt_version = $7, tokens_in = $8, tokens_out = $9,
                        cost_usd = $10, degraded = $11, context_summary = $12,
                        received_at = coalesce(received_at, $13)
                  where tenant_id = $1 and correlation_id = $2",
                &[key[0], key[1], &event.occurred_at, &generated.note_markdown,
                  &generated.provider, &generated.model, &generated.prompt_version,
                  &(generated.tokens_in as i32), &(generated.tokens_out as i32),
                  &generated.cost_usd, &generated.degraded, &generated.context_summary,
                  &generated.received_at],
            )
            .await?;
        }
        Payload::EnhancementFailed(failed) => {
            run("failed").await?;
            tx.execute(
                "update enhancement_history set failed_at = $3, failed_stage = $4, error = $5
                  where tenant_id = $1 and correlation_id = $2",
                &[
                    key[0],
                    key[1],
                    &event.occurred_at,
                    &failed.stage.as_str(),
                    &failed.reason,
                ],
            )
            .await?;
        }
        Payload::WritebackCompleted(completed) => {
            run("completed").await?;
            tx.execute(
                "update enhancement_history set written_back_at = $3,
                        received_at = coalesce(received_at, $4),
                        processing_ms = (extract(epoch from ($3 - coalesce(received_at, $4))) * 1000)::bigint
                  where tenant_id = $1 and correlation_id = $2",
                &[key[0], key[1], &event.occurred_at, &completed.received_at],
            )
            .await?;
        }
        Payload::WritebackFailed(failed) => {
            run("failed").await?;
            tx.execute(
                "update enhancement_history set failed_at = $3, failed_stage = 'writeback', error = $4
                  where tenant_id = $1 and correlation_id = $2",
                &[key[0], key[1], &event.occurred_at, &failed.reason],
            )
            .await?;
        }
        Payload::TicketResolved(resolved) => {
            tx.execute(
                "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution,
                        priority, tags, resolved_at, last_event_id)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 on conflict (tenant_id, ticket_id) do update
                    set subject = excluded.subject, description = excluded.description,
                        resolution = excluded.resolution, priority = excluded.priority,
                        tags = excluded.tags, resolved_at = excluded.resolved_at,
                        last_event_id = excluded.last_event_id, updated_at = now()",
                &[&tenant, &ticket, &resolved.subject, &resolved.description, &resolved.resolution,
                  &resolved.priority.as_str(), &resolved.tags, &resolved.resolved_at, &event.event_id],
            )
            .await?;
        }
    }
    Ok(())
}
