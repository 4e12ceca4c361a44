//! The end of a run whose last delivery was never answered.
//!
//! A stage that fails on a message's last delivery publishes the run's
//! `*.failed` event itself. One whose process dies during that delivery
//! cannot: the server just stops delivering, and the run would stay where
//! it was for ever. The server says so on JetStream's max-deliveries
//! advisory; each stage listens for its own consumer's (one instance per
//! advisory, through a queue group), reads the message from the stream and
//! handles it once more as its last attempt — the dying process may have
//! done its work (a write-back finds its note by the marker and completes
//! the run), else the failure is published, as the last delivery would
//! have, under the same message ids.

use std::sync::Arc;

use aia_events::Event;
use futures::StreamExt as _;
use serde::Deserialize;
use tracing::Instrument as _;

use crate::handler::{Delivery, Failure, Handled, Handler, dispatch};
use crate::{JetStream, STREAM, msg_id, patiently, publish_event};

/// What the advisory says (`io.nats.jetstream.advisory.v1.max_deliver`).
#[derive(Debug, Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: u64,
}

/// Runs ended at once by one process at most: a burst of advisories (a
/// process holding many last deliveries died) does not become unbounded
/// work beside the stage's own.
static ENDING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// The advisory subject of `durable`'s exhausted messages.
pub fn subject(durable: &str) -> String {
    format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM}.{durable}")
}

/// Subscribes, then listens until aborted. Subscribed before the stage
/// pulls: a restarted lone instance's first pull can be what makes the
/// server give up on a message, and its advisory must find a listener.
pub(crate) async fn watch<H: Handler>(
    jetstream: JetStream,
    stream: async_nats::jetstream::stream::Stream,
    handler: Arc<H>,
    stage: &'static str,
    durable: String,
    metrics: crate::metrics::StageMetrics,
    tasks: tokio_util::task::TaskTracker,
) -> Option<tokio::task::JoinHandle<()>> {
    let client = jetstream.client();
    let mut advisories = match client
        .queue_subscribe(subject(&durable), durable.clone())
        .await
    {
        Ok(advisories) => advisories,
        Err(err) => {
            tracing::warn!(stage, error = %err, "Not listening for exhausted deliveries");
            return None;
        }
    };
    let _ = client.flush().await;
    Some(tokio::spawn(async move {
        while let Some(advisory) = advisories.next().await {
            let Ok(exhausted) = serde_json::from_slice::<MaxDeliveries>(&advisory.payload) else {
                continue;
            };
            let (jetstream, stream, handler, metrics) = (
                jetstream.clone(),
                stream.clone(),
                handler.clone(),
                metrics.clone(),
            );
            // On the stage's tracker: a stopping stage waits for the runs
            // it is ending as for its deliveries (the advisory comes once;
            // cut off, nothing else would end the run), and a few at a time.
            tasks.spawn(async move {
                let Ok(_turn) = ENDING.acquire().await else {
                    return;
                };
                let ended = end_run(&jetstream, &stream, &*handler, stage, &exhausted).await;
                // Counted with the stage's own outcomes: a run the advisory
                // ended as failed is a dead letter the `DeadLetters` alert
                // and the dashboard must see.
                match &ended {
                    Ok(Ended::Done) => metrics.ended("done"),
                    Ok(Ended::GaveUp) => metrics.ended("gave_up"),
                    Err(_) => {}
                }
                if let Err(reason) = ended {
                    tracing::error!(
                        stage,
                        stream_sequence = exhausted.stream_seq,
                        reason,
                        "A message ran out of deliveries and its run could not be ended"
                    );
                }
            });
        }
    }))
}

/// How a run the advisory ended came to its end.
enum Ended {
    /// Handled once more, it completed.
    Done,
    /// It failed once more: its failure is published.
    GaveUp,
}

async fn end_run<H: Handler>(
    jetstream: &JetStream,
    stream: &async_nats::jetstream::stream::Stream,
    handler: &H,
    stage: &'static str,
    exhausted: &MaxDeliveries,
) -> Result<Ended, String> {
    // Reading the message and publishing the run's end are asked again
    // for a minute: the advisory comes once, often while the cluster that
    // lost the process settles, and nothing else would end the run.
    let message = patiently("Reading a message that ran out of deliveries", || {
        stream.get_raw_message(exhausted.stream_seq)
    })
    .await
    .map_err(|err| format!("reading it: {err}"))?;
    let event = Event::from_json(&message.payload).map_err(|err| format!("decoding it: {err}"))?;
    // In the ticket's trace, as its deliveries were.
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("process {} (deliveries ran out)", message.subject),
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.operation.type = "process",
        messaging.destination.name = %message.subject,
        messaging.consumer.group.name = stage,
        tenant_id = event.tenant_id.as_str(),
        ticket_id = event.ticket_id.as_str(),
        correlation_id = %event.correlation_id,
        event_id = %event.event_id,
    );
    aia_telemetry::set_parent_from(&span, Some(&message.headers));
    end_with(jetstream, handler, stage, exhausted, &event)
        .instrument(span)
        .await
}

/// Handles `event` once more as its last delivery and publishes what
/// follows, or its failure.
async fn end_with<H: Handler>(
    jetstream: &JetStream,
    handler: &H,
    stage: &'static str,
    exhausted: &MaxDeliveries,
    event: &Event,
) -> Result<Ended, String> {
    let attempts = u32::try_from(exhausted.deliveries)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    tracing::warn!(
        stage,
        stream_sequence = exhausted.stream_seq,
        "A message ran out of deliveries; handling it once more to end its run"
    );
    let last = Delivery {
        attempt: attempts,
        max_deliver: Some(attempts),
        stream_sequence: exhausted.stream_seq,
    };
    let mut ended = Ended::Done;
    let outputs = match dispatch(handler, event, last).await {
        Ok(Handled::Publish(events)) => events,
        Ok(Handled::Nothing) => vec![],
        Err(err) => {
            ended = Ended::GaveUp;
            let reason = format!(
                "its deliveries ran out (the process working on the last one stopped); once more: {}",
                err.reason
            );
            handler
                .failed(
                    event,
                    Failure {
                        reason: &reason,
                        attempts,
                        permanent: false,
                    },
                )
                .into_iter()
                .collect()
        }
    };
    for (index, output) in outputs.iter().enumerate() {
        let id = msg_id::stage_output(event.event_id, stage, index);
        patiently("Publishing the end of a run", || {
            publish_event(jetstream, output, &id)
        })
        .await
        .map_err(|err| format!("publishing its end: {err}"))?;
    }
    Ok(ended)
}
