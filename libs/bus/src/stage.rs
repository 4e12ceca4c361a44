//! The consumer loop every pipeline stage runs.
//!
//! A stage pulls from its durable consumer, works on up to `concurrency`
//! messages at once, publishes the events its handler returns (with
//! `Nats-Msg-Id` = `<input event id>:<stage>`, so a redelivered input never
//! yields a second output) and acks only after JetStream has stored them.
//! Long handlers keep their message alive with in-progress acks. A transient
//! failure is retried by a delayed nak; when the deliveries run out the
//! handler names the failure event to publish instead, so no ticket is
//! dropped silently.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aia_events::Event;
use aia_store::StoreError;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{PullConsumer, pull};
use futures::FutureExt as _;
use futures::StreamExt;
use rand::Rng;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::handler::{Delivery, Failure, Handled, Handler, dispatch};
use crate::{JetStream, STREAM, msg_id, publish_event};

/// How long a pull request waits for messages before the next is sent. A
/// consumer that was paused and resumed serves the next pull, so this bounds
/// how long a resumed stage takes to start again.
pub const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// How often a stage reads its consumer's delivery limits again.
const LIMITS_EVERY: Duration = Duration::from_secs(30);

/// How long pulls may fail without a break before the stage checks that
/// its consumer still exists.
const PULLS_FAILING: Duration = Duration::from_secs(10);

/// How often a stage reads its consumer's lag from JetStream.
pub const LAG_EVERY: Duration = Duration::from_secs(5);

/// How one stage instance consumes.
#[derive(Clone)]
pub struct StageConfig {
    /// The stage's name in logs, spans and metric labels.
    pub stage: &'static str,
    /// The durable consumer, as named in `nats/consumers/`.
    pub durable: String,
    /// Messages worked on at once by this instance.
    pub concurrency: usize,
    /// The service's metrics; the stage adds its own.
    pub registry: aia_telemetry::metrics::SharedRegistry,
    /// Where to serve `/metrics` (`AI_AGENTS_METRICS_ADDR`), if anywhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for StageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageConfig")
            .field("stage", &self.stage)
            .field("durable", &self.durable)
            .field("concurrency", &self.concurrency)
            .field("metrics_addr", &self.metrics_addr)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("consumer {durable} is not available (run `aiagents nats apply`): {reason}")]
    Consumer { durable: String, reason: String },
    #[error("database: {0}")]
    Database(#[source] StoreError),
    #[error("connecting to NATS: {0}")]
    Nats(#[source] async_nats::ConnectError),
}

/// Runs a stage until `shutdown` completes, then stops pulling, lets the
/// messages in hand finish, and returns.
pub async fn run_stage<H: Handler>(
    jetstream: JetStream,
    handler: Arc<H>,
    config: StageConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StageError> {
    let consumer_error = |err: &dyn std::fmt::Display| StageError::Consumer {
        durable: config.durable.clone(),
        reason: err.to_string(),
    };
    tokio::pin!(shutdown);
    // A stop asked for while the consumer is still being waited for is a
    // stop, not a minute's wait.
    let (stream, mut consumer) = tokio::select! {
        _ = &mut shutdown => return Ok(()),
        found = find_consumer(&jetstream, &config.durable) => found,
    }
    .map_err(|err| consumer_error(&err))?;
    let metrics = crate::metrics::StageMetrics::register(&config.registry, config.stage);
    // The deliveries being worked on, and the runs the advisory is ending:
    // a stopping stage waits for both.
    let tasks = TaskTracker::new();
    let exhausted = crate::advisory::watch(
        jetstream.clone(),
        stream,
        handler.clone(),
        config.stage,
        config.durable.clone(),
        metrics.clone(),
        tasks.clone(),
    )
    .await;
    let consumer_config = &consumer.cached_info().config;
    metrics.set_workers(config.concurrency);
    let lag = crate::metrics::ConsumerLag::register(&config.registry, config.stage)
        .watch(consumer.clone(), LAG_EVERY);
    let metrics_server = config
        .metrics_addr
        .map(|addr| aia_telemetry::metrics::spawn_server(addr, config.registry.clone()));
    let mut limits = Arc::new(Limits::of(consumer_config, config.stage, metrics));
    tracing::info!(
        stage = config.stage,
        concurrency = config.concurrency,
        "Stage started"
    );

    // Each pull asks for exactly as many messages as there are free
    // workers: a message delivered is a message being worked on, whose
    // ack wait progress acks extend. A buffer of prefetched messages
    // waiting for a busy worker would run out their ack wait unseen, be
    // redelivered to another instance (a second LLM call), and use up
    // their deliveries without ever being tried.
    let permits = Arc::new(Semaphore::new(config.concurrency));
    // Since when pulls have failed without a break.
    let mut failing_since: Option<tokio::time::Instant> = None;
    // Why the stage stops, when it is not asked to.
    let mut stopped_by: Option<StageError> = None;
    let mut limits_read = tokio::time::Instant::now();
    'pulling: loop {
        // `nats apply` changes a consumer in place (its deliveries, its
        // backoff): the limits are read again now and then, so the last
        // attempt is the consumer's last, not the one it had at start.
        if limits_read.elapsed() >= LIMITS_EVERY {
            limits_read = tokio::time::Instant::now();
            let info = tokio::select! {
                _ = &mut shutdown => break,
                info = consumer.info() => info.map(|info| info.config.clone()),
            };
            if let Ok(consumer_config) = info {
                let fresh = Limits::of(&consumer_config, config.stage, limits.metrics.clone());
                if fresh.max_deliver != limits.max_deliver || fresh.backoff != limits.backoff {
                    tracing::info!(
                        stage = config.stage,
                        "The consumer's delivery limits changed; following them"
                    );
                    limits = Arc::new(fresh);
                }
            }
        }
        // Pulls that keep failing: the consumer may have been deleted (a
        // stage without one must stop, loudly, and be restarted after
        // `nats apply`), or recreated (the handle to it is then stale).
        if failing_since.is_some_and(|since| since.elapsed() >= PULLS_FAILING) {
            let asked = tokio::time::Instant::now();
            let found = tokio::select! {
                _ = &mut shutdown => break,
                found = find_consumer(&jetstream, &config.durable) => found,
            };
            match found {
                Ok((_, found)) => {
                    // A recreated consumer may deliver on other terms.
                    limits = Arc::new(Limits::of(
                        &found.cached_info().config,
                        config.stage,
                        limits.metrics.clone(),
                    ));
                    consumer = found;
                }
                // Gone: the server said so at once. The stage stops, as
                // a stopping one does: what it holds is finished and acked.
                Err(err) if asked.elapsed() < CONSUMER_WAIT => {
                    stopped_by = Some(consumer_error(&err));
                    break;
                }
                // Not answering for a minute (a cluster without quorum):
                // keep pulling, as a starting stage would keep waiting.
                Err(err) => {
                    tracing::warn!(stage = config.stage, error = %err, "The consumer does not answer; still pulling");
                }
            }
            failing_since = None;
        }
        let first = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
        };
        let mut free = vec![first];
        while let Ok(permit) = permits.clone().try_acquire_owned() {
            free.push(permit);
        }
        let batch = tokio::select! {
            _ = &mut shutdown => break,
            batch = consumer.batch().max_messages(free.len()).expires(PULL_EXPIRES).messages() => batch,
        };
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(err) => {
                tracing::warn!(stage = config.stage, error = %err, "Pulling messages failed; retrying");
                failing_since.get_or_insert_with(tokio::time::Instant::now);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        while !free.is_empty() {
            let next = tokio::select! {
                _ = &mut shutdown => None,
                next = batch.next() => Some(next),
            };
            let Some(next) = next else {
                // Stopping with a pull under way: what it has brought and
                // no worker has started is offered back at once. Left
                // unread, each would wait out its ack wait — or, delivered
                // before, the consumer's backoff, minutes — for another
                // instance to take it. (What is still on its way is not
                // waited for.)
                while let Some(Some(Ok(message))) = batch.next().now_or_never() {
                    let _ = message.ack_with(AckKind::Nak(None)).await;
                }
                break 'pulling;
            };
            match next {
                Some(Ok(message)) => {
                    failing_since = None;
                    let permit = free.pop().expect("a free worker per message asked for");
                    let handler = handler.clone();
                    let jetstream = jetstream.clone();
                    let limits = limits.clone();
                    tasks.spawn(async move {
                        let attempt = message.info().map(|info| info.delivered).unwrap_or(1);
                        limits
                            .metrics
                            .started(u32::try_from(attempt).unwrap_or(u32::MAX));
                        let started = std::time::Instant::now();
                        let outcome = process(&*handler, &jetstream, message, &limits).await;
                        limits
                            .metrics
                            .finished(outcome, started.elapsed().as_secs_f64());
                        drop(permit);
                    });
                }
                Some(Err(err)) => {
                    tracing::warn!(stage = config.stage, error = %err, "Pulling messages failed; retrying");
                    failing_since.get_or_insert_with(tokio::time::Instant::now);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                // The pull expired with workers still free: ask again.
                None => {
                    failing_since = None;
                    break;
                }
            }
        }
    }
    // No more advisories taken (the queue group gives the next to another
    // instance); those being ended finish with the deliveries.
    if let Some(exhausted) = exhausted {
        exhausted.abort();
        // Ended, so nothing it was spawning lands after the wait below.
        let _ = exhausted.await;
    }
    tasks.close();
    tasks.wait().await;
    // Acks are sent without waiting for the server's confirmation: make
    // sure the last of them have left before the process does, unless NATS
    // is away (then their inputs are redelivered, which changes nothing).
    match tokio::time::timeout(crate::FLUSH_TIMEOUT, jetstream.client().flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "Could not flush the last acks"),
        Err(_) => tracing::warn!("NATS did not take the last acks in time"),
    }
    lag.abort();
    if let Some(server) = metrics_server {
        server.abort();
    }
    match stopped_by {
        Some(err) => Err(err),
        None => {
            tracing::info!(stage = config.stage, "Stage stopped");
            Ok(())
        }
    }
}

/// How long a starting stage waits for its consumer to answer: on a
/// cluster, a stage started while the stream or its consumer elects a
/// leader gets no answer for a few seconds, and must not exit for that.
const CONSUMER_WAIT: Duration = Duration::from_secs(60);

/// The stream and a stage's durable consumer. A stream or consumer that
/// does not exist fails at once (the topology was never applied); no
/// answer, or an answer without a leader, is waited out for up to
/// [`CONSUMER_WAIT`].
pub async fn find_consumer(
    jetstream: &JetStream,
    durable: &str,
) -> Result<(async_nats::jetstream::stream::Stream, PullConsumer), async_nats::Error> {
    use async_nats::jetstream::context::{
        ConsumerInfoError, ConsumerInfoErrorKind, GetStreamError, GetStreamErrorKind,
    };
    use async_nats::jetstream::{Error as JsError, ErrorCode};

    // Answers that no wait will change: the topology is not there, or
    // JetStream is not enabled on the server.
    let permanent = |e: &JsError| {
        [
            ErrorCode::STREAM_NOT_FOUND,
            ErrorCode::CONSUMER_NOT_FOUND,
            ErrorCode::JETSTREAM_NOT_ENABLED,
            ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT,
        ]
        .contains(&e.error_code())
    };
    let deadline = tokio::time::Instant::now() + CONSUMER_WAIT;
    loop {
        let found = match jetstream.get_stream(STREAM).await {
            Ok(stream) => match stream.get_consumer::<pull::Config>(durable).await {
                Ok(consumer) => Ok((stream, consumer)),
                Err(err) => Err(err),
            },
            Err(err) => Err(err.into()),
        };
        let err = match found {
            Ok(found) => return Ok(found),
            Err(err) => err,
        };
        // `get_stream` fails with a `GetStreamError`; `get_consumer` boxes
        // the `ConsumerInfoError` of its info request, or an I/O error for
        // a consumer that is not a pull consumer.
        let missing = if let Some(e) = err.downcast_ref::<GetStreamError>() {
            matches!(e.kind(), GetStreamErrorKind::JetStream(e) if permanent(&e))
                || matches!(e.kind(), GetStreamErrorKind::InvalidStreamName)
        } else if let Some(e) = err.downcast_ref::<ConsumerInfoError>() {
            match e.kind() {
                ConsumerInfoErrorKind::NotFound
                | ConsumerInfoErrorKind::StreamNotFound
                | ConsumerInfoErrorKind::InvalidName => true,
                ConsumerInfoErrorKind::JetStream(e) => permanent(&e),
                _ => false,
            }
        } else {
            err.downcast_ref::<std::io::Error>().is_some()
        };
        if missing || tokio::time::Instant::now() >= deadline {
            return Err(err);
        }
        tracing::warn!(durable, error = %err, "Consumer not answering yet; waiting");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Limits {
    max_deliver: Option<u32>,
    /// The consumer's redelivery schedule (empty: none).
    backoff: Vec<Duration>,
    progress_every: Duration,
    stage: &'static str,
    metrics: crate::metrics::StageMetrics,
}

impl Limits {
    /// The limits a consumer's configuration sets.
    fn of(
        consumer: &async_nats::jetstream::consumer::Config,
        stage: &'static str,
        metrics: crate::metrics::StageMetrics,
    ) -> Self {
        Self {
            max_deliver: u32::try_from(consumer.max_deliver).ok().filter(|n| *n > 0),
            progress_every: progress_interval(consumer.ack_wait, &consumer.backoff),
            backoff: consumer.backoff.clone(),
            stage,
            metrics,
        }
    }
}

/// In-progress acks must arrive well before the redelivery timer fires,
/// which is the first backoff step when one is set.
fn progress_interval(ack_wait: Duration, backoff: &[Duration]) -> Duration {
    let timer = backoff.first().copied().unwrap_or(ack_wait).min(ack_wait);
    (timer / 3).max(Duration::from_millis(500))
}

/// Delay before retrying after the `attempt`-th delivery failed
/// transiently. The first two retries, for a blip: what the far end asked
/// for, else exponential from a second. From the third on: the consumer's
/// own `backoff` step for this delivery, or longer if the far end asked
/// for longer — a delayed nak replaces the server's backoff, so the stage
/// must follow it itself, or a writeback would give up an ITSM outage
/// after minutes instead of the hour its schedule rides out. Consumers
/// without a schedule: exponential, capped at a minute. Always with
/// jitter, so a burst's retries do not come back as one.
fn retry_delay(attempt: u32, retry_after: Option<Duration>, backoff: &[Duration]) -> Duration {
    let step = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
    let cap = match backoff.get(step.min(backoff.len().saturating_sub(1))) {
        Some(scheduled) if attempt > 2 => *scheduled,
        _ => Duration::from_secs(1 << attempt.min(6)).min(Duration::from_secs(60)),
    };
    let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    let scheduled = Duration::from_millis(rand::thread_rng().gen_range(millis * 3 / 4..=millis));
    // What the far end (or the handler) asked for is a floor, never a way
    // around the schedule: a lease of 20 s must not turn an hour's
    // retries into eight 20-second ones.
    match retry_after {
        Some(asked) if attempt <= 2 => asked.min(Duration::from_secs(600)),
        Some(asked) => asked.min(Duration::from_secs(600)).max(scheduled),
        None => scheduled,
    }
}

/// The consumer span of one delivered message (OpenTelemetry messaging
/// conventions), a child of the `send` span whose context the message's
/// headers carry; the event's ids are filled in by [`record_event`] once it
/// is decoded, the outcome by the caller.
pub fn process_span(message: &async_nats::jetstream::Message, stage: &str) -> tracing::Span {
    let subject = message.subject.as_str();
    let attempt = message.info().map(|info| info.delivered).unwrap_or(1);
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("process {subject}"),
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.operation.type = "process",
        messaging.destination.name = %subject,
        messaging.message.delivery_count = attempt,
        stage = stage,
        tenant_id = tracing::field::Empty,
        ticket_id = tracing::field::Empty,
        correlation_id = tracing::field::Empty,
        event_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    aia_telemetry::set_parent_from(&span, message.headers.as_ref());
    aia_telemetry::record_trace_ids(&span);
    span
}

/// Records the decoded event's tenant, ticket, correlation and event ids on
/// its [`process_span`], so every log line inside carries them.
pub fn record_event(span: &tracing::Span, event: &Event) {
    span.record("tenant_id", event.tenant_id.as_str());
    span.record("ticket_id", event.ticket_id.as_str());
    span.record(
        "correlation_id",
        tracing::field::display(event.correlation_id),
    );
    span.record("event_id", tracing::field::display(event.event_id));
}

/// How long an event from a newer build waits before it is offered again.
const NEWER_BUILD_WAIT: Duration = Duration::from_secs(60);

async fn process<H: Handler>(
    handler: &H,
    jetstream: &JetStream,
    message: async_nats::jetstream::Message,
    limits: &Limits,
) -> &'static str {
    let (attempt, stream_sequence) = match message.info() {
        Ok(info) => (
            u32::try_from(info.delivered).unwrap_or(u32::MAX),
            info.stream_sequence,
        ),
        Err(_) => (1, 0),
    };
    let span = process_span(&message, limits.stage);
    async {
        let event = match Event::from_json(&message.payload) {
            Ok(event) => event,
            Err(err) if err.is_from_a_newer_build() => {
                // Mid-upgrade: an instance running the new build (they share
                // the consumer) reads it; this one gives it back for a while.
                tracing::warn!(error = %err, stream_sequence, "An event from a newer build; leaving it for an upgraded instance");
                tracing::Span::current().record("outcome", "newer");
                let _ = message.ack_with(AckKind::Nak(Some(NEWER_BUILD_WAIT))).await;
                return "newer";
            }
            Err(err) => {
                // The same bytes will never decode: stop redelivering them.
                tracing::error!(error = %err, stream_sequence, "Undecodable event; terminating it");
                tracing::Span::current().record("outcome", "undecodable");
                let _ = message.ack_with(AckKind::Term).await;
                return "undecodable";
            }
        };
        let span = tracing::Span::current();
        record_event(&span, &event);
        let delivery = Delivery {
            attempt,
            max_deliver: limits.max_deliver,
            stream_sequence,
        };

        let result = {
            let work = dispatch(handler, &event, delivery.clone());
            tokio::pin!(work);
            loop {
                tokio::select! {
                    result = &mut work => break result,
                    _ = tokio::time::sleep(limits.progress_every) => {
                        let _ = message.ack_with(AckKind::Progress).await;
                    }
                }
            }
        };
        let mut outcome = "done";
        let outputs = match result {
            Ok(Handled::Publish(events)) => events,
            Ok(Handled::Nothing) => vec![],
            Err(err) if delivery.is_last_attempt() => {
                tracing::warn!(error = %err, attempt, "Last delivery failed; recording the failure");
                outcome = "gave_up";
                handler
                    .failed(
                        &event,
                        Failure {
                            reason: &err.reason,
                            attempts: attempt,
                            permanent: false,
                        },
                    )
                    .into_iter()
                    .collect()
            }
            Err(err) => {
                let delay = retry_delay(attempt, err.retry_after, &limits.backoff);
                tracing::warn!(error = %err, attempt, retry_in_ms = delay.as_millis() as u64, "Transient failure; will retry");
                span.record("outcome", "retry");
                let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                return "retry";
            }
        };
        let stage = limits.stage;
        for (idx, output) in outputs.iter().enumerate() {
            let msg_id = msg_id::stage_output(event.event_id, stage, idx);
            if let Err(err) = publish_patiently(jetstream, &message, output, &msg_id).await {
                // Nothing was acked; the redelivery republishes under the
                // same message id, which the stream deduplicates — within
                // its duplicate window, so the redelivery comes well inside
                // it, not on the handler's backoff (up to half an hour).
                tracing::warn!(error = %err, "Publishing the output failed; will retry");
                span.record("outcome", "retry");
                let delay = retry_delay(attempt, None, &limits.backoff).min(PUBLISH_RETRY_AFTER);
                let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                return "retry";
            }
        }
        span.record("outcome", outcome);
        if let Err(err) = message.ack().await {
            tracing::warn!(error = %err, "Ack was not sent; the input will be redelivered");
        }
        outcome
    }
    .instrument(span)
    .await
}

/// The longest a redelivery waits after its outputs could not be published:
/// well inside the stream's duplicate window (10 minutes), so the same
/// outputs published again are dropped as the duplicates they are.
const PUBLISH_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Publishes `output`, trying again twice within a few seconds (a cluster
/// electing a leader, a reconnect) before the input is handed back; the
/// input is kept from redelivery meanwhile (a progress ack before each
/// try), so no other instance handles it at the same time.
async fn publish_patiently(
    jetstream: &JetStream,
    input: &async_nats::jetstream::Message,
    output: &Event,
    msg_id: &str,
) -> Result<(), crate::PublishError> {
    let mut waits = [Duration::from_millis(500), Duration::from_secs(2)].into_iter();
    loop {
        match publish_event(jetstream, output, msg_id).await {
            Ok(_) => return Ok(()),
            Err(err) => match waits.next() {
                Some(wait) => {
                    tracing::debug!(error = %err, "Publishing an output failed; trying again");
                    let _ = input.ack_with(AckKind::Progress).await;
                    tokio::time::sleep(wait).await;
                    let _ = input.ack_with(AckKind::Progress).await;
                }
                None => return Err(err),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_acks_come_well_before_the_first_redelivery_timer() {
        let interval = progress_interval(Duration::from_secs(60), &[Duration::from_secs(5)]);
        assert!(interval < Duration::from_secs(5));
        let interval = progress_interval(Duration::from_secs(30), &[]);
        assert_eq!(interval, Duration::from_secs(10));
    }

    #[test]
    fn retry_delays_grow_are_capped_and_honour_the_far_end() {
        for attempt in 1..20 {
            assert!(retry_delay(attempt, None, &[]) <= Duration::from_secs(60));
        }
        assert!(retry_delay(1, None, &[]) <= Duration::from_secs(2));
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(7)), &[]),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn after_two_quick_retries_the_consumers_backoff_is_followed() {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        let backoff = [Duration::from_secs(10), minutes(1), minutes(5), minutes(30)];
        assert!(retry_delay(1, None, &backoff) <= Duration::from_secs(2));
        assert!(retry_delay(2, None, &backoff) <= Duration::from_secs(4));
        for (attempt, step) in [(3, minutes(5)), (4, minutes(30)), (9, minutes(30))] {
            let delay = retry_delay(attempt, None, &backoff);
            assert!(
                delay <= step && delay >= step * 3 / 4,
                "{attempt}: {delay:?}"
            );
        }
        // The whole schedule of deliveries 2 to 8 rides out an hour, not
        // the few minutes delayed naks of a minute at most would.
        let writeback = [10, 60, 120, 300, 600, 900, 1800].map(Duration::from_secs);
        let least: Duration = (1..8)
            .map(|attempt| retry_delay(attempt, None, &writeback))
            .sum();
        assert!(least >= minutes(40), "{least:?}");
        // Asked-for delays are a floor from the third retry on: a handler's
        // 20-second lease does not shorten the schedule.
        assert_eq!(
            retry_delay(2, Some(Duration::from_secs(7)), &backoff),
            Duration::from_secs(7)
        );
        let asked = retry_delay(4, Some(Duration::from_secs(20)), &backoff);
        assert!(asked >= minutes(30) * 3 / 4, "{asked:?}");
        let least: Duration = (1..8)
            .map(|attempt| retry_delay(attempt, Some(Duration::from_secs(20)), &writeback))
            .sum();
        assert!(least >= minutes(40), "{least:?}");
    }

    #[test]
    fn the_last_attempt_is_known_only_when_deliveries_are_limited() {
        let delivery = |attempt, max_deliver| Delivery {
            attempt,
            max_deliver,
            stream_sequence: 1,
        };
        assert!(delivery(6, Some(6)).is_last_attempt());
        assert!(!delivery(5, Some(6)).is_last_attempt());
        assert!(!delivery(100, None).is_last_attempt());
    }
}
