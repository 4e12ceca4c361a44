//! Rebuilds the projections from the stream while the live projector keeps
//! serving.
//!
//! All tenants: fold every event up to the stream's last sequence in memory
//! (the same model the live projector applies), COPY the rows into fresh
//! tables, then in one transaction pause the live projector (by locking its
//! checkpoint), apply the events it handled meanwhile to the fresh tables,
//! secure them and swap them in. One tenant: fold that tenant's events, then
//! in one transaction (live projector paused the same way) replace the
//! tenant's rows.

use std::time::{Duration, Instant};

use aia_bus::{JetStream, STREAM};
use aia_events::{Event, TenantId};
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_postgres::Client;

use crate::model::Projection;
use crate::projection::PROJECTION;
use crate::rows::{self, Tables};

/// What a rebuild did, with its timings.
#[derive(Debug, Clone, Default)]
pub struct RebuildReport {
    pub events: u64,
    pub runs: usize,
    pub tickets: usize,
    pub days: usize,
    pub caught_up: u64,
    pub read_and_fold: Duration,
    pub write: Duration,
    pub swap: Duration,
}

impl RebuildReport {
    pub fn events_per_second(&self) -> f64 {
        let total = (self.read_and_fold + self.write + self.swap).as_secs_f64();
        self.events as f64 / total.max(1e-9)
    }
}

/// Reads events in `(after, until]` matching `filter`, in stream order.
async fn read_events(
    jetstream: &JetStream,
    filter: &str,
    after: u64,
    until: u64,
    progress: &ProgressBar,
    mut on_event: impl FnMut(Event),
) -> anyhow::Result<u64> {
    if until <= after {
        return Ok(0);
    }
    let stream = jetstream.get_stream(STREAM).await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter.to_owned(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ..Default::default()
        })
        .await?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(0);
    }
    let mut messages = consumer.messages().await?;
    let mut n_events = 0;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .map_err(|_| anyhow::anyhow!("the stream stopped delivering events"))?;
        let Some(message) = next else { break };
        let message = message?;
        let info = message.info().map_err(|err| anyhow::anyhow!("{err}"))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        if sequence > until {
            break;
        }
        match Event::from_json(&message.payload) {
            Ok(event) => on_event(event),
            Err(err) => tracing::warn!(sequence, error = %err, "Skipping an undecodable event"),
        }
        n_events += 1;
        progress.set_position(sequence - after);
        if sequence == until || pending == 0 {
            break;
        }
    }
    Ok(n_events)
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {wide_bar} {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .expect("valid template"),
    );
    bar
}

async fn stream_bounds(jetstream: &JetStream) -> anyhow::Result<(u64, u64)> {
    let mut stream = jetstream.get_stream(STREAM).await?;
    let state = stream.info().await?.state.clone();
    Ok((state.first_sequence.saturating_sub(1), state.last_sequence))
}

/// Locks the live projector's checkpoint (pausing it) and returns it.
async fn pause_live(tx: &tokio_postgres::Transaction<'_>) -> anyhow::Result<u64> {
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
    Ok(u64::try_from(checkpoint).unwrap_or(0))
}

/// Rebuilds every projection of every tenant. `owner` connects as the
/// schema owner.
pub async fn rebuild_all(
    jetstream: &JetStream,
    owner: &mut Client,
) -> anyhow::Result<RebuildReport> {
    let mut report = RebuildReport::default();
    let started = Instant::now();
    let (after, until) = stream_bounds(jetstream).await?;
    let progress = progress_bar(until - after);
    let mut projection = Projection::default();
    report.events = read_events(jetstream, "tickets.>", after, until, &progress, |event| {
        projection.apply(&event)
    })
    .await?;
    progress.finish_and_clear();
    report.read_and_fold = started.elapsed();

    let started = Instant::now();
    let fresh = Tables {
        runs: "enhancement_history_rebuild",
        tickets: "ticket_history_rebuild",
        daily: "tenant_daily_stats_rebuild",
    };
    let tx = owner.transaction().await?;
    for (fresh_table, live_table) in [
        (fresh.runs, rows::LIVE.runs),
        (fresh.tickets, rows::LIVE.tickets),
        (fresh.daily, rows::LIVE.daily),
    ] {
        tx.batch_execute(&format!(
            "drop table if exists {fresh_table}; create table {fresh_table} (like {live_table} including all)"
        ))
        .await?;
    }
    rows::copy_runs(&tx, fresh.runs, projection.runs.values()).await?;
    rows::copy_tickets(&tx, fresh.tickets, projection.tickets.values()).await?;
    rows::copy_daily(&tx, fresh.daily, projection.daily.iter()).await?;
    tx.commit().await?;
    report.runs = projection.runs.len();
    report.tickets = projection.tickets.len();
    report.days = projection.daily.len();
    drop(projection);
    report.write = started.elapsed();

    let started = Instant::now();
    let tx = owner.transaction().await?;
    let checkpoint = pause_live(&tx).await?;
    // What the live projector applied while we copied goes into the fresh
    // tables too; after the swap it resumes from its checkpoint.
    let mut late = Vec::new();
    report.caught_up = read_events(
        jetstream,
        "tickets.>",
        until,
        checkpoint,
        &ProgressBar::hidden(),
        |event| late.push(event),
    )
    .await?;
    for event in &late {
        crate::projection::project_with(&tx, fresh, event).await?;
    }
    // The fresh tables hold every event up to the later of the snapshot and
    // the live checkpoint; the live projector resumes after that.
    let covered = i64::try_from(checkpoint.max(until)).unwrap_or(i64::MAX);
    tx.execute(
        "update projection_checkpoints set stream_sequence = $2, updated_at = now() where projection = $1",
        &[&PROJECTION, &covered],
    )
    .await?;
    for (table, owner_policy) in [
        (fresh.runs, true),
        (fresh.tickets, true),
        (fresh.daily, true),
    ] {
        tx.execute(
            "select secure_projection_table($1::text::regclass, $2)",
            &[&table, &owner_policy],
        )
        .await?;
    }
    for (fresh_table, live_table) in [
        (fresh.runs, rows::LIVE.runs),
        (fresh.tickets, rows::LIVE.tickets),
        (fresh.daily, rows::LIVE.daily),
    ] {
        tx.batch_execute(&format!(
            "lock table {live_table} in access exclusive mode;
             alter table {live_table} rename to {live_table}_retired;
             alter table {fresh_table} rename to {live_table};
             drop table {live_table}_retired;"
        ))
        .await?;
    }
    tx.commit().await?;
    report.swap = started.elapsed();
    Ok(report)
}

async fn wait_for_checkpoint(owner: &Client, sequence: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let checkpoint: i64 = owner
            .query_opt(
                "select stream_sequence from projection_checkpoints where projection = $1",
                &[&PROJECTION],
            )
            .await?
            .map_or(0, |row| row.get(0));
        if u64::try_from(checkpoint).unwrap_or(0) >= sequence {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the live projector is behind (at {checkpoint}, need {sequence}); is it running?"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rebuilds one tenant's rows in place.
pub async fn rebuild_tenant(
    jetstream: &JetStream,
    owner: &mut Client,
    tenant: &TenantId,
) -> anyhow::Result<RebuildReport> {
    let mut report = RebuildReport::default();
    let filter =
        aia_events::subject::filter_for_tenant(aia_events::subject::DEFAULT_PREFIX, tenant);
    let started = Instant::now();
    let (after, until) = stream_bounds(jetstream).await?;
    let progress = progress_bar(until - after);
    let mut projection = Projection::default();
    report.events = read_events(jetstream, &filter, after, until, &progress, |event| {
        projection.apply(&event)
    })
    .await?;
    progress.finish_and_clear();
    report.read_and_fold = started.elapsed();

    // The live projector must have applied everything we folded, or it would
    // apply some of it again after the swap.
    wait_for_checkpoint(owner, until).await?;
    let started = Instant::now();
    let tx = owner.transaction().await?;
    let checkpoint = pause_live(&tx).await?;
    report.caught_up = read_events(
        jetstream,
        &filter,
        until,
        checkpoint,
        &ProgressBar::hidden(),
        |event| projection.apply(&event),
    )
    .await?;
    tx.execute(
        "select set_config('app.tenant_id', $1, true)",
        &[&tenant.as_str()],
    )
    .await?;
    for table in [rows::LIVE.runs, rows::LIVE.tickets, rows::LIVE.daily] {
        tx.execute(
            &format!("delete from {table} where tenant_id = $1"),
            &[&tenant.as_str()],
        )
        .await?;
    }
    for row in projection.runs.values() {
        rows::upsert_run(&tx, rows::LIVE, row).await?;
    }
    for row in projection.tickets.values() {
        rows::upsert_ticket(&tx, rows::LIVE, row).await?;
    }
    for ((tenant_id, day), counters) in &projection.daily {
        rows::add_counters(&tx, rows::LIVE, tenant_id, *day, counters).await?;
    }
    tx.commit().await?;
    report.runs = projection.runs.len();
    report.tickets = projection.tickets.len();
    report.days = projection.daily.len();
    report.write = started.elapsed();
    Ok(report)
}
