//! The history-projector: applies every event, in stream order, to the
//! Postgres read models (enhancement history, ticket history). It is the
//! only writer of those tables.
//!
//! Unlike the stages it never naks: an event that cannot be applied yet is
//! retried in place, because applying a later event first would move the
//! checkpoint past it.

mod config;
mod fold;
pub mod metrics;
pub mod model;
pub mod projection;
pub mod rebuild;
pub mod retention;
pub mod rows;

use std::future::Future;
use std::time::Duration;

use aia_events::{Event, Stage};
use aia_store::Pool;
use anyhow::Context as _;
use async_nats::jetstream::AckKind;
use futures::StreamExt;
use tracing::Instrument;

pub use config::Config;

/// Most events applied in one transaction.
const MAX_BATCH: usize = 256;

/// Runs the projector until `shutdown` completes.
/// Refuses to start while the projection's checkpoint is past the stream's
/// last event: the stream is then another history than the one the read
/// models follow (restored from an older backup than the database, or made
/// anew), and every new event up to the checkpoint would be taken for one
/// already applied, and dropped without a word. `aiagents rebuild` makes
/// the read models follow the stream as it is.
async fn checkpoint_within_the_stream(
    db: &aia_store::Pool,
    jetstream: &aia_bus::JetStream,
) -> anyhow::Result<()> {
    let checkpoint: i64 = db
        .get()
        .await?
        .query_opt(
            "select stream_sequence from projection_checkpoints where projection = $1",
            &[&projection::PROJECTION],
        )
        .await?
        .map_or(0, |row| row.get(0));
    let (_, last) = aia_bus::stream_bounds(jetstream)
        .await
        .map_err(|err| anyhow::anyhow!("reading the stream's bounds: {err}"))?;
    anyhow::ensure!(
        u64::try_from(checkpoint).unwrap_or(0) <= last,
        "the read models were projected up to stream sequence #{checkpoint}, but the stream \
         ends at #{last}: it was restored from an older backup than the database, or made \
         anew; run `aiagents rebuild` so the read models follow the stream as it is"
    );
    Ok(())
}

pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let db = aia_store::pool(&config.database_url, 4).context("database URL")?;
    let (client, jetstream) = aia_bus::connect(&config.nats_url, Stage::HistoryProjector.as_str())
        .await
        .context("connecting to NATS")?;
    tokio::pin!(shutdown);
    let (stream, consumer) = tokio::select! {
        _ = &mut shutdown => return Ok(()),
        found = aia_bus::stage::find_consumer(&jetstream, Stage::HistoryProjector.as_str()) => found,
    }
    .map_err(|err| anyhow::anyhow!("consumer history-projector (run `aiagents nats apply`): {err}"))?;
    checkpoint_within_the_stream(&db, &jetstream).await?;
    let registry = config.registry.clone();
    let metrics = metrics::ProjectorMetrics::register(
        &registry,
        aia_telemetry::metrics::TenantLabel::from_env(),
    );
    let lag = aia_bus::metrics::ConsumerLag::register(&registry, Stage::HistoryProjector.as_str())
        .watch(consumer.clone(), aia_bus::stage::LAG_EVERY);
    let metrics_server = config
        .metrics_addr
        .map(|addr| aia_telemetry::metrics::spawn_server(addr, registry.clone()));
    let gaps = StreamGaps { stream };
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(256)
        .expires(aia_bus::stage::PULL_EXPIRES)
        .messages()
        .await
        .context("pulling from history-projector")?;
    tracing::info!("History projector started");
    let retention = tokio::spawn(retention::run(
        db.clone(),
        config.retention,
        config.retention_every,
    ));
    loop {
        let message = tokio::select! {
            _ = &mut shutdown => break,
            message = messages.next() => message,
        };
        match message {
            Some(Ok(message)) => {
                // What else arrives within the linger is applied with it,
                // in one transaction.
                let mut batch = vec![message];
                let until = tokio::time::Instant::now() + config.linger;
                while batch.len() < MAX_BATCH {
                    match tokio::time::timeout_at(until, messages.next()).await {
                        Ok(Some(Ok(message))) => batch.push(message),
                        Ok(Some(Err(err))) => {
                            tracing::warn!(error = %err, "Pulling events failed; applying what arrived");
                            break;
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                project_batch(&db, &metrics, &gaps, batch, &mut shutdown).await;
            }
            Some(Err(err)) => {
                tracing::warn!(error = %err, "Pulling events failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            None => break,
        }
    }
    retention.abort();
    lag.abort();
    if let Some(server) = metrics_server {
        server.abort();
    }
    // The last acks leave before the process does (unless NATS is away:
    // then their events are redelivered and skipped).
    match tokio::time::timeout(aia_bus::FLUSH_TIMEOUT, client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "Could not flush the last acks"),
        Err(_) => tracing::warn!("NATS did not take the last acks in time"),
    }
    tracing::info!("History projector stopped");
    Ok(())
}

/// Reads the events a projector instance has not been handed, from the
/// stream's leader by sequence.
struct StreamGaps {
    stream: async_nats::jetstream::stream::Stream,
}

impl projection::Gaps for StreamGaps {
    async fn between(
        &self,
        after: u64,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Event)>, aia_store::StoreError> {
        let mut events = Vec::new();
        let mut next = after + 1;
        while next < before && events.len() < limit {
            let message = self
                .stream
                .raw_message_builder()
                .sequence(next)
                .next_by_subject(">")
                .send()
                .await;
            let message = match message {
                Ok(message) => message,
                Err(err)
                    if matches!(
                        err.kind(),
                        async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound
                    ) =>
                {
                    break;
                }
                Err(err) => {
                    return Err(aia_store::StoreError::Unavailable(format!(
                        "reading stream sequence {next}: {err}"
                    )));
                }
            };
            if message.sequence >= before {
                break;
            }
            match Event::from_json(&message.payload) {
                Ok(event) => events.push((message.sequence, event)),
                // Not past it: the checkpoint would move beyond an event an
                // upgraded projector must still apply. The batch waits, and
                // is tried again, until this projector is replaced.
                Err(err) if err.is_from_a_newer_build() => {
                    return Err(aia_store::StoreError::Unavailable(format!(
                        "stream sequence {}: {err}, written by a newer build; waiting for an upgraded projector",
                        message.sequence
                    )));
                }
                Err(err) => {
                    tracing::error!(error = %err, sequence = message.sequence, "Undecodable event; skipping it")
                }
            }
            next = message.sequence + 1;
        }
        Ok(events)
    }
}

/// A delivered event, decoded, with the span its processing is traced in.
struct Delivered {
    sequence: u64,
    event: Event,
    message: async_nats::jetstream::Message,
    span: tracing::Span,
}

/// Applies a batch of delivered events in stream order, one transaction
/// (or a few, after a long gap), then acknowledges them. An event whose
/// statement fails on its data aborts the batch's transaction; the batch is
/// then applied event by event, so only that event is skipped.
async fn project_batch(
    db: &Pool,
    metrics: &metrics::ProjectorMetrics,
    gaps: &StreamGaps,
    messages: Vec<async_nats::jetstream::Message>,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) {
    let mut batch = Vec::with_capacity(messages.len());
    for message in messages {
        let sequence = message.info().map(|info| info.stream_sequence).unwrap_or(0);
        let span = aia_bus::stage::process_span(&message, Stage::HistoryProjector.as_str());
        match Event::from_json(&message.payload) {
            Ok(event) => {
                aia_bus::stage::record_event(&span, &event);
                batch.push(Delivered {
                    sequence,
                    event,
                    message,
                    span,
                });
            }
            Err(err) if err.is_from_a_newer_build() => {
                // Mid-upgrade: the upgraded projector reads it when it is
                // offered again; a skipped event would be missing for good.
                span.in_scope(|| {
                    tracing::warn!(error = %err, sequence, "An event from a newer build; leaving it for an upgraded projector")
                });
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(60))))
                    .await;
            }
            Err(err) => {
                span.in_scope(
                    || tracing::error!(error = %err, sequence, "Undecodable event; skipping it"),
                );
                let _ = message.ack_with(AckKind::Term).await;
            }
        }
    }
    batch.sort_by_key(|delivered| delivered.sequence);
    let mut done = 0;
    let mut delay = Duration::from_millis(100);
    while done < batch.len() {
        let events: Vec<(u64, &Event)> = batch[done..]
            .iter()
            .map(|delivered| (delivered.sequence, &delivered.event))
            .collect();
        let result = async {
            let mut client = db.get().await?;
            projection::apply_batch(&mut client, &events, gaps).await
        }
        .instrument(aia_telemetry::db_span("UPSERT", "enhancement_history"))
        .await;
        match result {
            Ok(outcomes) => {
                let mut applied = 0;
                for (delivered, outcome) in batch[done..].iter().zip(&outcomes) {
                    let effect = match outcome {
                        projection::Applied::Applied(effect) => effect,
                        projection::Applied::AlreadyApplied => {
                            applied += 1;
                            continue;
                        }
                        projection::Applied::FilledGap(effect) => {
                            // More missing events before this one: it and the
                            // rest go again.
                            for (tenant, filled) in &effect.filled {
                                metrics.record(tenant, filled, None);
                            }
                            break;
                        }
                    };
                    applied += 1;
                    for (tenant, filled) in &effect.filled {
                        metrics.record(tenant, filled, None);
                    }
                    let trace_id = delivered.span.in_scope(aia_telemetry::current_trace_id);
                    metrics.record(delivered.event.tenant_id.as_str(), effect, trace_id);
                    delivered.span.in_scope(|| {
                        tracing::debug!(sequence = delivered.sequence, "Projected event")
                    });
                }
                done += applied;
                if done < batch.len() {
                    for delivered in &batch[done..] {
                        let _ = delivered.message.ack_with(AckKind::Progress).await;
                    }
                }
            }
            Err(err) if err.is_transient() => {
                tracing::warn!(error = %err, "Database unavailable; retrying the events");
                for delivered in &batch[done..] {
                    let _ = delivered.message.ack_with(AckKind::Progress).await;
                }
                tokio::select! {
                    _ = &mut *shutdown => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(err) => {
                // Some event fails on its data. From the checkpoint on, the
                // events are applied one at a time from the stream, and the
                // one that fails is skipped (loudly), so the projection goes
                // on past it — for this batch and for every later one.
                tracing::warn!(error = %err, "A batch could not be projected; applying its events one by one");
                let last = batch.last().map_or(0, |delivered| delivered.sequence);
                loop {
                    let advanced = async {
                        let mut client = db.get().await?;
                        projection::advance_one(&mut client, gaps).await
                    }
                    .await;
                    match advanced {
                        Ok(projection::Advanced::Applied(sequence, tenant, effect)) => {
                            metrics.record(&tenant, &effect, None);
                            if sequence >= last {
                                break;
                            }
                        }
                        Ok(projection::Advanced::Skipped(sequence, reason)) => {
                            tracing::error!(sequence, error = %reason, "Event could not be projected; skipped it");
                            if sequence >= last {
                                break;
                            }
                        }
                        Ok(projection::Advanced::UpToDate) => break,
                        Err(err) => {
                            tracing::warn!(error = %err, "Database unavailable; retrying");
                            tokio::select! {
                                _ = &mut *shutdown => return,
                                _ = tokio::time::sleep(delay) => {}
                            }
                            delay = (delay * 2).min(Duration::from_secs(5));
                        }
                    }
                }
                break;
            }
        }
    }
    ack_all(&batch).await;
}

/// Acknowledges applied events. Acks are not confirmed: a lost one means a
/// redelivery of an event at or below the checkpoint, which is skipped.
async fn ack_all(batch: &[Delivered]) {
    let acks = batch.iter().map(|delivered| async move {
        if let Err(err) = delivered.message.ack().await {
            delivered.span.in_scope(|| {
                tracing::warn!(error = %err, "Ack was not sent; the event will be redelivered and skipped")
            });
        }
    });
    futures::future::join_all(acks).await;
}
