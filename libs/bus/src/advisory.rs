//! The end of a run whose last delivery was never answered.
//!
//! A stage that fails on a message's last delivery publishes the run's
//! `*.failed` event itself. One whose process dies during that delivery
//! cannot: the server just stops delivering, and the run would stay where
//! it was for ever. The server says so on JetStream's max-deliveries
//! advisory; each stage listens for its own consumer's (one instance per
//! advisory, through a queue group), reads the message from the stream and
//! publishes the same failure event the last delivery would have, under
//! the same message id — so if that delivery did publish it, the stream
//! keeps one.

use std::sync::Arc;

use aia_events::Event;
use futures::StreamExt as _;
use serde::Deserialize;

use crate::handler::{Failure, Handler};
use crate::{JetStream, STREAM, msg_id, publish_event};

/// What the advisory says (`io.nats.jetstream.advisory.v1.max_deliver`).
#[derive(Debug, Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: u64,
}

/// The advisory subject of `durable`'s exhausted messages.
pub fn subject(durable: &str) -> String {
    format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM}.{durable}")
}

/// Listens until aborted.
pub(crate) fn watch<H: Handler>(
    jetstream: JetStream,
    stream: async_nats::jetstream::stream::Stream,
    handler: Arc<H>,
    stage: &'static str,
    durable: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = jetstream.client();
        let mut advisories = match client
            .queue_subscribe(subject(&durable), durable.clone())
            .await
        {
            Ok(advisories) => advisories,
            Err(err) => {
                tracing::warn!(stage, error = %err, "Not listening for exhausted deliveries");
                return;
            }
        };
        while let Some(advisory) = advisories.next().await {
            let Ok(exhausted) = serde_json::from_slice::<MaxDeliveries>(&advisory.payload) else {
                continue;
            };
            if let Err(reason) = end_run(&jetstream, &stream, &*handler, stage, &exhausted).await {
                tracing::error!(
                    stage,
                    stream_sequence = exhausted.stream_seq,
                    reason,
                    "A message ran out of deliveries and its run could not be ended"
                );
            }
        }
    })
}

async fn end_run<H: Handler>(
    jetstream: &JetStream,
    stream: &async_nats::jetstream::stream::Stream,
    handler: &H,
    stage: &'static str,
    exhausted: &MaxDeliveries,
) -> Result<(), String> {
    let message = stream
        .get_raw_message(exhausted.stream_seq)
        .await
        .map_err(|err| format!("reading it: {err}"))?;
    let event = Event::from_json(&message.payload).map_err(|err| format!("decoding it: {err}"))?;
    let attempts = u32::try_from(exhausted.deliveries).unwrap_or(u32::MAX);
    let failure = Failure {
        reason: "its deliveries ran out: the process working on the last one stopped",
        attempts,
        permanent: false,
    };
    if let Some(failed) = handler.failed(&event, failure) {
        tracing::warn!(
            stage,
            stream_sequence = exhausted.stream_seq,
            attempts,
            "A message ran out of deliveries; ending its run"
        );
        publish_event(
            jetstream,
            &failed,
            &msg_id::stage_output(event.event_id, stage, 0),
        )
        .await
        .map_err(|err| format!("publishing its failure: {err}"))?;
    }
    Ok(())
}
