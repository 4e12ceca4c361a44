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
use aia_store::Client;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressStyle};

use crate::model::{Counters, Projection, RunRow};
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
    let consumer = aia_bus::patiently("Creating the rebuild's consumer", || async {
        let stream = jetstream.get_stream(STREAM).await?;
        stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: filter.to_owned(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(async_nats::Error::from)
    })
    .await
    .map_err(|err| anyhow::anyhow!("creating the rebuild's consumer: {err}"))?;
    if consumer.cached_info().num_pending == 0 {
        // Every subject of the stream, and it holds events up to `until`:
        // "none" is a count a moment stale (a cluster's new leader), and
        // believing it would swap empty read models in.
        anyhow::ensure!(
            filter != "tickets.>",
            "the stream holds events up to #{until} but reports none after #{after} \
             (a cluster's count a moment stale, or a stream purged of them); try again"
        );
        return Ok(0);
    }
    let mut messages = aia_bus::read::ToEnd::new(consumer.messages().await?, until);
    let mut n_events = 0;
    while let Some((message, sequence)) = messages.next().await? {
        match Event::from_json(&message.payload) {
            Ok(event) => on_event(event),
            // Rebuilt without it, the read models would lose it for good.
            Err(err) if err.is_from_a_newer_build() => anyhow::bail!(
                "stream sequence {sequence}: {err}, written by a newer build: rebuild with the upgraded `aiagents`"
            ),
            Err(err) => tracing::warn!(sequence, error = %err, "Skipping an undecodable event"),
        }
        n_events += 1;
        progress.set_position(sequence - after);
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
    aia_bus::stream_bounds(jetstream)
        .await
        .map_err(|err| anyhow::anyhow!("reading the stream's bounds: {err}"))
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

/// A connection of its own (pooled, for its statement cache), as the
/// schema owner.
async fn connect(url: &str) -> anyhow::Result<Client> {
    Ok(aia_store::pool(url, 1)?.get().await?)
}

/// The owner's connection for a rebuild, holding for its whole session the
/// lock that lets one rebuild run at a time: a second one's `drop table if
/// exists` of the fresh tables would drop the first's, which would then
/// swap empty tables in.
async fn connect_alone(url: &str) -> anyhow::Result<Client> {
    let client = connect(url).await?;
    let alone: bool = client
        .query_one(
            "select pg_try_advisory_lock(hashtext('aiagents rebuild of the read models'))",
            &[],
        )
        .await?
        .get(0);
    anyhow::ensure!(
        alone,
        "another rebuild of the read models is running; wait for it to finish"
    );
    Ok(client)
}

/// The fresh table beside each live one.
const FRESH: Tables<'static> = Tables {
    runs: "enhancement_history_rebuild",
    tickets: "ticket_history_rebuild",
    daily: "tenant_daily_stats_rebuild",
};

fn table_pairs() -> [(&'static str, &'static str); 3] {
    [
        (FRESH.runs, rows::LIVE.runs),
        (FRESH.tickets, rows::LIVE.tickets),
        (FRESH.daily, rows::LIVE.daily),
    ]
}

/// When the stream's first event happened (what the read models hold from
/// before it, the stream cannot rebuild); the end of time when it is empty.
async fn first_event_at(
    jetstream: &JetStream,
    after: u64,
    until: u64,
) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if until <= after {
        return Ok(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    }
    let stream = jetstream.get_stream(STREAM).await?;
    let first = stream.get_raw_message(after + 1).await?;
    Ok(Event::from_json(&first.payload)?.occurred_at)
}

/// Carries into the fresh tables what the live ones hold from before the
/// stream's first event: a run's events expire (`AI_AGENTS_EVENT_TTL_SECS`)
/// while the daily counters are kept for good and runs as long as the
/// history's retention, and resolved tickets may predate a stream that
/// once had a `max_age`. Rebuilt from the stream alone, those would be lost
/// for good; they are kept as they are (days before the first event's,
/// runs received before it, tickets the stream has no event of).
async fn keep_what_the_stream_no_longer_holds(
    owner: &Client,
    jetstream: &JetStream,
    after: u64,
    until: u64,
) -> anyhow::Result<()> {
    let before = first_event_at(jetstream, after, until).await?;
    let (runs, tickets, daily) = (rows::LIVE.runs, rows::LIVE.tickets, rows::LIVE.daily);
    let (fresh_runs, fresh_tickets, fresh_daily) = (FRESH.runs, FRESH.tickets, FRESH.daily);
    let (run_columns, ticket_columns) = (rows::RUN_COLUMNS, rows::TICKET_COLUMNS);
    let kept = owner
        .query_one(
            &format!(
                "with runs as (
                   insert into {fresh_runs} ({run_columns}) select {run_columns} from {runs} l
                    where l.received_at < $1
                      and not exists (select 1 from {fresh_runs} f
                                       where f.tenant_id = l.tenant_id
                                         and f.correlation_id = l.correlation_id)
                   returning 1),
                 tickets as (
                   insert into {fresh_tickets} ({ticket_columns}) select {ticket_columns} from {tickets} l
                    where not exists (select 1 from {fresh_tickets} f
                                       where f.tenant_id = l.tenant_id and f.ticket_id = l.ticket_id)
                   returning 1),
                 days as (
                   insert into {fresh_daily} select * from {daily} l
                    where l.day < ($1 at time zone 'utc')::date
                      and not exists (select 1 from {fresh_daily} f
                                       where f.tenant_id = l.tenant_id and f.day = l.day)
                   returning 1)
                 select (select count(*) from runs), (select count(*) from tickets),
                        (select count(*) from days)"
            ),
            &[&before],
        )
        .await?;
    let (runs, tickets, days): (i64, i64, i64) = (kept.get(0), kept.get(1), kept.get(2));
    if runs + tickets + days > 0 {
        tracing::info!(
            runs,
            tickets,
            days,
            "Kept from the live read models what the stream no longer holds"
        );
    }
    Ok(())
}

/// The live table's indexes as statements that build them on the fresh
/// table under temporary names, with the primary key attached afterwards.
async fn fresh_indexes(owner: &Client, live: &str, fresh: &str) -> anyhow::Result<Vec<String>> {
    let rows = owner
        .query(
            "select i.indexname, i.indexdef, c.conname
               from pg_indexes i
               left join pg_constraint c on c.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass
                                        and c.contype = 'p'
              where i.schemaname = 'public' and i.tablename = $1",
            &[&live],
        )
        .await?;
    let mut statements = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        let definition: String = row.get(1);
        let primary_key: Option<String> = row.get(2);
        let statement = definition.replacen(
            &format!("INDEX {name} ON public.{live} "),
            &format!("INDEX {name}_rb ON public.{fresh} "),
            1,
        );
        anyhow::ensure!(
            statement != definition,
            "cannot rewrite index {name}: {definition}"
        );
        statements.push(statement);
        if primary_key.is_some() {
            statements.push(format!(
                "alter table {fresh} add constraint {name}_rb primary key using index {name}_rb"
            ));
        }
    }
    Ok(statements)
}

async fn copy_runs_committed(client: &mut Client, runs: &[&RunRow]) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    rows::copy_runs(&tx, FRESH.runs, runs.iter().copied()).await?;
    tx.commit().await?;
    Ok(())
}

/// Rebuilds every projection of every tenant. `owner_url` connects as the
/// schema owner.
pub async fn rebuild_all(jetstream: &JetStream, owner_url: &str) -> anyhow::Result<RebuildReport> {
    let mut report = RebuildReport::default();
    let mut owner = connect_alone(owner_url).await?;
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

    // Fresh tables without indexes: COPY first, then build each index in
    // one sorted pass, which is far faster than maintaining it per row.
    let started = Instant::now();
    for (fresh, live) in table_pairs() {
        owner
            .batch_execute(&format!(
                "drop table if exists {fresh};
                 create table {fresh} (like {live} including all excluding indexes)"
            ))
            .await?;
    }
    // Two connections share the COPY: one takes half of the runs, the other
    // the rest of the runs, the resolved tickets and the counters.
    let runs: Vec<&RunRow> = projection.runs.values().collect();
    let (first, second) = runs.split_at(runs.len() / 2);
    let mut other = connect(owner_url).await?;
    let rest = async {
        copy_runs_committed(&mut owner, second).await?;
        let tx = owner.transaction().await?;
        rows::copy_tickets(&tx, FRESH.tickets, projection.tickets.values()).await?;
        rows::copy_daily(&tx, FRESH.daily, projection.daily.iter()).await?;
        tx.commit().await?;
        anyhow::Ok(())
    };
    let (copied_first, copied_rest) = tokio::join!(copy_runs_committed(&mut other, first), rest);
    copied_first?;
    copied_rest?;
    report.runs = projection.runs.len();
    report.tickets = projection.tickets.len();
    report.days = projection.daily.len();
    drop(runs);
    drop(projection);
    owner
        .batch_execute("set maintenance_work_mem = '256MB'")
        .await?;
    for (fresh, live) in table_pairs() {
        for statement in fresh_indexes(&owner, live, fresh).await? {
            owner.batch_execute(&statement).await?;
        }
    }
    keep_what_the_stream_no_longer_holds(&owner, jetstream, after, until).await?;
    report.write = started.elapsed();

    let started = Instant::now();
    let tx = owner.transaction().await?;
    // The swap waits for its locks at most this long: behind a long read
    // (a CSV export of the history) its lock request would queue every
    // other reader of the tables, the console's and the stages', for as
    // long as that read lasts, with the live projector paused.
    tx.batch_execute("set local lock_timeout = '10s'").await?;
    let checkpoint = pause_live(&tx).await?;
    // A checkpoint past the stream's last event belongs to another history
    // of the stream (one restored from an older backup than the database,
    // or made anew): the live projector would take every new event up to it
    // for one already applied. The fresh tables cover the stream as it is,
    // and the projector resumes after its last event.
    let (_, last_now) = stream_bounds(jetstream).await?;
    let applied_up_to = if checkpoint > last_now {
        tracing::warn!(
            checkpoint,
            last_now,
            "The projection's checkpoint is past the stream's last event (a stream restored \
             from an older backup, or made anew); the rebuilt tables follow the stream"
        );
        last_now
    } else {
        checkpoint
    };
    // What the live projector applied while we copied goes into the fresh
    // tables too; after the swap it resumes from its checkpoint.
    let mut late = Vec::new();
    report.caught_up = read_events(
        jetstream,
        "tickets.>",
        until,
        applied_up_to,
        &ProgressBar::hidden(),
        |event| late.push(event),
    )
    .await?;
    crate::projection::project_events(&tx, FRESH, &late).await?;
    // The fresh tables hold every event up to the later of the snapshot and
    // what the live projector applied; the live projector resumes after it.
    let covered = i64::try_from(applied_up_to.max(until)).unwrap_or(i64::MAX);
    tx.execute(
        "update projection_checkpoints set stream_sequence = $2, updated_at = now() where projection = $1",
        &[&PROJECTION, &covered],
    )
    .await?;
    for (fresh, live) in table_pairs() {
        tx.execute(
            "select secure_projection_table($1::text::regclass, true)",
            &[&fresh],
        )
        .await?;
        let index_names: Vec<String> = tx
            .query(
                "select indexname from pg_indexes where schemaname = 'public' and tablename = $1",
                &[&live],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        tx.batch_execute(&format!(
            "lock table {live} in access exclusive mode;
             alter table {live} rename to {live}_retired;
             alter table {fresh} rename to {live};
             drop table {live}_retired;"
        ))
        .await?;
        // The fresh indexes take the names the retired ones had.
        for name in index_names {
            tx.batch_execute(&format!("alter index if exists {name}_rb rename to {name}"))
                .await?;
        }
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
    owner_url: &str,
    tenant: &TenantId,
) -> anyhow::Result<RebuildReport> {
    let mut report = RebuildReport::default();
    let mut owner = connect_alone(owner_url).await?;
    let owner = &mut owner;
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
    aia_store::set_tenant(&tx, tenant.as_str()).await?;
    // Replaced: what the stream can rebuild. Kept as it is: what the read
    // models hold from before its first event (run events expire; counters
    // and resolved tickets are kept for good).
    let before = first_event_at(jetstream, after, until).await?;
    let (runs_table, tickets_table, daily_table) =
        (rows::LIVE.runs, rows::LIVE.tickets, rows::LIVE.daily);
    let rebuilt_tickets: Vec<&str> = projection
        .tickets
        .values()
        .map(|ticket| ticket.ticket_id.as_str())
        .collect();
    tx.execute(
        &format!(
            "delete from {runs_table} where tenant_id = $1 and (received_at is null or received_at >= $2)"
        ),
        &[&tenant.as_str(), &before],
    )
    .await?;
    tx.execute(
        &format!("delete from {tickets_table} where tenant_id = $1 and ticket_id = any($2)"),
        &[&tenant.as_str(), &rebuilt_tickets],
    )
    .await?;
    tx.execute(
        &format!(
            "delete from {daily_table} where tenant_id = $1 and day >= ($2 at time zone 'utc')::date"
        ),
        &[&tenant.as_str(), &before],
    )
    .await?;
    let runs: Vec<&RunRow> = projection.runs.values().collect();
    rows::upsert_runs(&tx, rows::LIVE, &runs).await?;
    for row in projection.tickets.values() {
        rows::upsert_ticket(&tx, rows::LIVE, row).await?;
    }
    let days: Vec<(NaiveDate, &Counters)> = projection
        .daily
        .iter()
        .map(|((_, day), counters)| (*day, counters))
        .collect();
    rows::store_days(&tx, rows::LIVE, tenant.as_str(), &days).await?;
    tx.commit().await?;
    report.runs = projection.runs.len();
    report.tickets = projection.tickets.len();
    report.days = projection.daily.len();
    report.write = started.elapsed();
    Ok(report)
}
