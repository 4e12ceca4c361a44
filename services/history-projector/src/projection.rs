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

/// Upserts the run's row, moving its status forward only, and returns the
/// status it had before (`None` for a new run) and has now.
const UPSERT_RUN: &str = "
with before as (
  select status from enhancement_history where tenant_id = $1 and correlation_id = $2
)
insert into enhancement_history as h (tenant_id, correlation_id, ticket_id, status, last_event_id)
values ($1, $2, $3, $4, $5)
on conflict (tenant_id, correlation_id) do update
   set status = case when enhancement_status_rank(excluded.status) > enhancement_status_rank(h.status)
                     then excluded.status else h.status end,
       last_event_id = excluded.last_event_id,
       updated_at = now()
returning (select status from before), h.status";

/// Adds to one counter of the day the run was received on.
fn bump(counter: &str) -> String {
    format!(
        "insert into tenant_daily_stats (tenant_id, day, {counter})
         select $1, (coalesce(received_at, $3) at time zone 'UTC')::date, $4::bigint
           from enhancement_history where tenant_id = $1 and correlation_id = $2
         on conflict (tenant_id, day) do update
            set {counter} = tenant_daily_stats.{counter} + excluded.{counter}"
    )
}

async fn project(tx: &Transaction<'_>, event: &Event) -> Result<(), StoreError> {
    let tenant = event.tenant_id.as_str();
    let ticket = event.ticket_id.as_str();
    let key: [&(dyn aia_store::ToSql + Sync); 2] = [&tenant, &event.correlation_id];
    // Moves the run to `status`; true when this event is what moved it, so
    // counters count each run once however often its events are seen.
    let advance = |status: &'static str| async move {
        let row = tx
            .query_one(
                UPSERT_RUN,
                &[
                    &tenant,
                    &event.correlation_id,
                    &ticket,
                    &status,
                    &event.event_id,
                ],
            )
            .await?;
        let before: Option<String> = row.get(0);
        let now: String = row.get(1);
        Ok::<bool, tokio_postgres::Error>(before.as_deref() != Some(now.as_str()) && now == status)
    };
    let count = |counter: &'static str, amount: i64| async move {
        tx.execute(
            bump(counter).as_str(),
            &[&tenant, &event.correlation_id, &event.occurred_at, &amount],
        )
        .await
    };
    let count_f64 = |amount: f64| async move {
        tx.execute(
            "insert into tenant_daily_stats (tenant_id, day, cost_usd)
             select $1, (coalesce(received_at, $3) at time zone 'UTC')::date, $4::float8
               from enhancement_history where tenant_id = $1 and correlation_id = $2
             on conflict (tenant_id, day) do update
                set cost_usd = tenant_daily_stats.cost_usd + excluded.cost_usd",
            &[&tenant, &event.correlation_id, &event.occurred_at, &amount],
        )
        .await
    };
    match &event.payload {
        Payload::TicketReceived(received) => {
            let moved = advance("received").await?;
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
            if moved {
                count("received", 1).await?;
            }
        }
        Payload::ContextGathered(context) => {
            advance("context_gathered").await?;
            let context_json = serde_json::json!({
                "similar_tickets": context.similar_tickets,
                "knowledge_articles": context.knowledge_articles,
                "systems": context.systems,
                "monitoring": context.monitoring,
                "sources": context.sources,
            });
            tx.execute(
                "update enhancement_history set context_gathered_at = $3, context = $4,
                        received_at = coalesce(received_at, $5),
                        context_ms = (extract(epoch from ($3 - coalesce(received_at, $5))) * 1000)::bigint
                  where tenant_id = $1 and correlation_id = $2",
                &[key[0], key[1], &event.occurred_at, &context_json, &context.received_at],
            )
            .await?;
        }
        Payload::EnhancementGenerated(generated) => {
            let moved = advance("enhanced").await?;
            tx.execute(
                "update enhancement_history set enhanced_at = $3, note_markdown = $4, provider = $5,
                        model = $6, prompt_version = $7, tokens_in = $8, tokens_out = $9,
                        cost_usd = $10, degraded = $11, context_summary = $12,
                        received_at = coalesce(received_at, $13),
                        llm_ms = (extract(epoch from ($3 - context_gathered_at)) * 1000)::bigint
                  where tenant_id = $1 and correlation_id = $2",
                &[key[0], key[1], &event.occurred_at, &generated.note_markdown,
                  &generated.provider, &generated.model, &generated.prompt_version,
                  &i32::try_from(generated.tokens_in).unwrap_or(i32::MAX),
                  &i32::try_from(generated.tokens_out).unwrap_or(i32::MAX),
                  &generated.cost_usd, &generated.degraded, &generated.context_summary,
                  &generated.received_at],
            )
            .await?;
            if moved {
                count("tokens_in", i64::from(generated.tokens_in)).await?;
                count("tokens_out", i64::from(generated.tokens_out)).await?;
                count_f64(generated.cost_usd).await?;
                if generated.degraded {
                    count("degraded", 1).await?;
                }
            }
        }
        Payload::EnhancementFailed(failed) => {
            let moved = advance("failed").await?;
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
            if moved {
                count("failed", 1).await?;
            }
        }
        Payload::WritebackCompleted(completed) => {
            let moved = advance("completed").await?;
            let row = tx
                .query_one(
                    "update enhancement_history set written_back_at = $3,
                            received_at = coalesce(received_at, $4),
                            writeback_ms = (extract(epoch from ($3 - enhanced_at)) * 1000)::bigint,
                            processing_ms = (extract(epoch from ($3 - coalesce(received_at, $4))) * 1000)::bigint
                      where tenant_id = $1 and correlation_id = $2
                  returning coalesce(processing_ms, 0)",
                    &[key[0], key[1], &event.occurred_at, &completed.received_at],
                )
                .await?;
            if moved {
                count("completed", 1).await?;
                count("processing_ms_total", row.get::<_, i64>(0)).await?;
            }
        }
        Payload::WritebackFailed(failed) => {
            let moved = advance("failed").await?;
            tx.execute(
                "update enhancement_history set failed_at = $3, failed_stage = 'writeback', error = $4
                  where tenant_id = $1 and correlation_id = $2",
                &[key[0], key[1], &event.occurred_at, &failed.reason],
            )
            .await?;
            if moved {
                count("failed", 1).await?;
            }
        }
        Payload::EnhancementRated(rated) => {
            // Ratings do not move a run; the latest one stands.
            tx.execute(
                "update enhancement_history set rating_stars = $3, rating_thumbs_up = $4,
                        rating_comment = $5, rated_at = $6
                  where tenant_id = $1 and correlation_id = $2
                    and (rated_at is null or rated_at <= $6)",
                &[
                    key[0],
                    key[1],
                    &rated.stars.map(i16::from),
                    &rated.thumbs_up,
                    &rated.comment,
                    &event.occurred_at,
                ],
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
