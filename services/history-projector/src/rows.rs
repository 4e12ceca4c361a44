//! Reading and writing read-model rows: batches of them for the live
//! projector (statements prepared once per connection), by binary COPY for
//! a rebuild. Table names are parameters so a
//! rebuild can write to fresh tables before it swaps them in.

use aia_store::{GenericClient, StoreError, ToSql};
use chrono::NaiveDate;
use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::model::{Counters, RunRow, TicketRow};

/// Most rows sent in one pipeline: a whole tenant's rebuild stays bounded
/// in memory.
const PIPELINE: usize = 256;

/// Which tables to write.
#[derive(Debug, Clone, Copy)]
pub struct Tables<'a> {
    pub runs: &'a str,
    pub tickets: &'a str,
    pub daily: &'a str,
}

pub const LIVE: Tables<'static> = Tables {
    runs: "enhancement_history",
    tickets: "ticket_history",
    daily: "tenant_daily_stats",
};

pub(crate) const RUN_COLUMNS: &str = "tenant_id, correlation_id, ticket_id, status, source, subject, priority, \
    received_at, context_gathered_at, enhanced_at, written_back_at, failed_at, processing_ms, \
    context_summary, context, note_markdown, provider, model, prompt_version, tokens_in, tokens_out, \
    cost_usd, degraded, failed_stage, error, last_event_id, context_ms, llm_ms, writeback_ms, \
    rating_stars, rating_thumbs_up, rating_comment, rated_at, failed_attempts, failed_input_event_id, \
    posted_markdown, language, costed_rewrites, costed_notes";

const RUN_TYPES: &[Type] = &[
    Type::TEXT,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::TEXT,
    Type::JSONB,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::INT4,
    Type::FLOAT8,
    Type::BOOL,
    Type::TEXT,
    Type::TEXT,
    Type::UUID,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT2,
    Type::BOOL,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::INT4,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::UUID_ARRAY,
    Type::UUID_ARRAY,
];

fn run_values(row: &RunRow) -> [&(dyn ToSql + Sync); 39] {
    [
        &row.tenant_id,
        &row.correlation_id,
        &row.ticket_id,
        &row.status,
        &row.source,
        &row.subject,
        &row.priority,
        &row.received_at,
        &row.context_gathered_at,
        &row.enhanced_at,
        &row.written_back_at,
        &row.failed_at,
        &row.processing_ms,
        &row.context_summary,
        &row.context,
        &row.note_markdown,
        &row.provider,
        &row.model,
        &row.prompt_version,
        &row.tokens_in,
        &row.tokens_out,
        &row.cost_usd,
        &row.degraded,
        &row.failed_stage,
        &row.error,
        &row.last_event_id,
        &row.context_ms,
        &row.llm_ms,
        &row.writeback_ms,
        &row.rating_stars,
        &row.rating_thumbs_up,
        &row.rating_comment,
        &row.rated_at,
        &row.failed_attempts,
        &row.failed_input_event_id,
        &row.posted_markdown,
        &row.language,
        &row.costed_rewrites,
        &row.costed_notes,
    ]
}

pub(crate) const TICKET_COLUMNS: &str = "tenant_id, ticket_id, subject, description, resolution, priority, tags, \
    resolved_at, last_event_id, language";

fn ticket_values(row: &TicketRow) -> [&(dyn ToSql + Sync); 10] {
    [
        &row.tenant_id,
        &row.ticket_id,
        &row.subject,
        &row.description,
        &row.resolution,
        &row.priority,
        &row.tags,
        &row.resolved_at,
        &row.last_event_id,
        &row.language,
    ]
}

fn run_from(row: &tokio_postgres::Row) -> RunRow {
    RunRow {
        tenant_id: row.get(0),
        correlation_id: row.get(1),
        ticket_id: row.get(2),
        status: row.get(3),
        source: row.get(4),
        subject: row.get(5),
        priority: row.get(6),
        received_at: row.get(7),
        context_gathered_at: row.get(8),
        enhanced_at: row.get(9),
        written_back_at: row.get(10),
        failed_at: row.get(11),
        processing_ms: row.get(12),
        context_summary: row.get(13),
        context: row.get(14),
        note_markdown: row.get(15),
        provider: row.get(16),
        model: row.get(17),
        prompt_version: row.get(18),
        tokens_in: row.get(19),
        tokens_out: row.get(20),
        cost_usd: row.get(21),
        degraded: row.get(22),
        failed_stage: row.get(23),
        error: row.get(24),
        last_event_id: row.get(25),
        context_ms: row.get(26),
        llm_ms: row.get(27),
        writeback_ms: row.get(28),
        rating_stars: row.get(29),
        rating_thumbs_up: row.get(30),
        rating_comment: row.get(31),
        rated_at: row.get(32),
        failed_attempts: row.get(33),
        failed_input_event_id: row.get(34),
        posted_markdown: row.get(35),
        language: row.get(36),
        costed_rewrites: row.get(37),
        costed_notes: row.get(38),
    }
}

/// The runs of `tenant` among `correlation_ids` that exist, locked for this
/// transaction: one query for a whole batch.
pub async fn load_runs(
    client: &impl GenericClient,
    tables: Tables<'_>,
    tenant: &str,
    correlation_ids: &[Uuid],
) -> Result<Vec<RunRow>, StoreError> {
    let statement = client
        .prepare_cached(&format!(
            "select {RUN_COLUMNS} from {} where tenant_id = $1 and correlation_id = any($2) for update",
            tables.runs
        ))
        .await?;
    let rows = client
        .query(&statement, &[&tenant, &correlation_ids])
        .await?;
    Ok(rows.iter().map(run_from).collect())
}

/// Inserts or replaces runs: the statement is prepared once and the rows
/// are sent in one pipeline, so a batch costs one round trip, not one per
/// row. The caller has set the tenant of `rows` (row-level security).
pub async fn upsert_runs(
    client: &impl GenericClient,
    tables: Tables<'_>,
    rows: &[&RunRow],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (1..=RUN_TYPES.len()).map(|n| format!("${n}")).collect();
    let updates: Vec<String> = RUN_COLUMNS
        .split(", ")
        .skip(2)
        .map(|column| format!("{column} = excluded.{column}"))
        .collect();
    let statement = client
        .prepare_cached(&format!(
            "insert into {table} ({RUN_COLUMNS}) values ({values})
             on conflict (tenant_id, correlation_id) do update set {updates}, updated_at = now()",
            table = tables.runs,
            values = placeholders.join(", "),
            updates = updates.join(", "),
        ))
        .await?;
    let statement = &statement;
    for chunk in rows.chunks(PIPELINE) {
        futures::future::try_join_all(
            chunk
                .iter()
                .map(|row| async move { client.execute(statement, &run_values(row)).await }),
        )
        .await?;
    }
    Ok(())
}

pub async fn upsert_ticket(
    client: &impl GenericClient,
    tables: Tables<'_>,
    row: &TicketRow,
) -> Result<(), StoreError> {
    let statement = client
        .prepare_cached(&format!(
            "insert into {} ({TICKET_COLUMNS})
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 on conflict (tenant_id, ticket_id) do update
                    set subject = excluded.subject, description = excluded.description,
                        language = excluded.language,
                        resolution = excluded.resolution, priority = excluded.priority,
                        tags = excluded.tags, resolved_at = excluded.resolved_at,
                        last_event_id = excluded.last_event_id, updated_at = now()
                  where excluded.resolved_at >= {}.resolved_at",
            tables.tickets, tables.tickets
        ))
        .await?;
    client.execute(&statement, &ticket_values(row)).await?;
    Ok(())
}

/// The counters of `days` of `tenant` that exist, locked for this
/// transaction.
pub async fn load_days(
    client: &impl GenericClient,
    tables: Tables<'_>,
    tenant: &str,
    days: &[NaiveDate],
) -> Result<Vec<(NaiveDate, Counters)>, StoreError> {
    let statement = client
        .prepare_cached(&format!(
            "select day, received::int8, completed::int8, failed::int8, failed_budget::int8,
                    degraded::int8, tokens_in, tokens_out, cost_usd, processing_ms_total
             from {} where tenant_id = $1 and day = any($2) for update",
            tables.daily
        ))
        .await?;
    let rows = client.query(&statement, &[&tenant, &days]).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let counters = Counters {
                received: row.get(1),
                completed: row.get(2),
                failed: row.get(3),
                failed_budget: row.get(4),
                degraded: row.get(5),
                tokens_in: row.get(6),
                tokens_out: row.get(7),
                cost_usd: row.get(8),
                processing_ms_total: row.get(9),
            };
            (row.get(0), counters)
        })
        .collect())
}

/// Stores the counters of days of one tenant (set by the caller) as they
/// are now, in one pipeline as [`upsert_runs`] does. The caller read them
/// with [`load_days`] and added to them in stream order, so the sums (the
/// cost in floating point too) come out exactly as a rebuild's.
pub async fn store_days(
    client: &impl GenericClient,
    tables: Tables<'_>,
    tenant: &str,
    days: &[(NaiveDate, &Counters)],
) -> Result<(), StoreError> {
    if days.is_empty() {
        return Ok(());
    }
    let statement = client
        .prepare_cached(&format!(
            "insert into {table} (tenant_id, day, received, completed, failed, failed_budget, degraded,
                    tokens_in, tokens_out, cost_usd, processing_ms_total)
             values ($1, $2, $3::int8, $4::int8, $5::int8, $6::int8, $7::int8, $8, $9, $10, $11)
             on conflict (tenant_id, day) do update set
                received = excluded.received, completed = excluded.completed, failed = excluded.failed,
                failed_budget = excluded.failed_budget, degraded = excluded.degraded,
                tokens_in = excluded.tokens_in, tokens_out = excluded.tokens_out,
                cost_usd = excluded.cost_usd, processing_ms_total = excluded.processing_ms_total",
            table = tables.daily
        ))
        .await?;
    let statement = &statement;
    for chunk in days.chunks(PIPELINE) {
        futures::future::try_join_all(chunk.iter().map(|(day, counters)| async move {
            client
                .execute(
                    statement,
                    &[
                        &tenant,
                        day,
                        &counters.received,
                        &counters.completed,
                        &counters.failed,
                        &counters.failed_budget,
                        &counters.degraded,
                        &counters.tokens_in,
                        &counters.tokens_out,
                        &counters.cost_usd,
                        &counters.processing_ms_total,
                    ],
                )
                .await
        }))
        .await?;
    }
    Ok(())
}

/// Writes rows by binary COPY, the fastest way into PostgreSQL.
pub async fn copy_runs<'a>(
    client: &tokio_postgres::Transaction<'_>,
    table: &str,
    rows: impl Iterator<Item = &'a RunRow>,
) -> Result<u64, StoreError> {
    let sink = client
        .copy_in(&format!("copy {table} ({RUN_COLUMNS}) from stdin binary"))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, RUN_TYPES);
    pin_mut!(writer);
    for row in rows {
        writer.as_mut().write(&run_values(row)).await?;
    }
    Ok(writer.finish().await?)
}

pub async fn copy_tickets<'a>(
    client: &tokio_postgres::Transaction<'_>,
    table: &str,
    rows: impl Iterator<Item = &'a TicketRow>,
) -> Result<u64, StoreError> {
    let sink = client
        .copy_in(&format!(
            "copy {table} ({TICKET_COLUMNS}) from stdin binary"
        ))
        .await?;
    let types = [
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT_ARRAY,
        Type::TIMESTAMPTZ,
        Type::UUID,
        Type::TEXT,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for row in rows {
        writer.as_mut().write(&ticket_values(row)).await?;
    }
    Ok(writer.finish().await?)
}

pub async fn copy_daily<'a>(
    client: &tokio_postgres::Transaction<'_>,
    table: &str,
    rows: impl Iterator<Item = (&'a (String, NaiveDate), &'a Counters)>,
) -> Result<u64, StoreError> {
    let sink = client
        .copy_in(&format!(
            "copy {table} (tenant_id, day, received, completed, failed, failed_budget, degraded, tokens_in,
                    tokens_out, cost_usd, processing_ms_total) from stdin binary"
        ))
        .await?;
    let types = [
        Type::TEXT,
        Type::DATE,
        Type::INT4,
        Type::INT4,
        Type::INT4,
        Type::INT4,
        Type::INT4,
        Type::INT8,
        Type::INT8,
        Type::FLOAT8,
        Type::INT8,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for ((tenant, day), counters) in rows {
        let small = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        writer
            .as_mut()
            .write(&[
                tenant,
                day,
                &small(counters.received),
                &small(counters.completed),
                &small(counters.failed),
                &small(counters.failed_budget),
                &small(counters.degraded),
                &counters.tokens_in,
                &counters.tokens_out,
                &counters.cost_usd,
                &counters.processing_ms_total,
            ])
            .await?;
    }
    Ok(writer.finish().await?)
}
