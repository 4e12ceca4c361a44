//! Each stage consumer's lag, sampled once a minute into
//! `stage_lag_samples`, so the console charts a day and a week of it
//! without Prometheus. JetStream only knows the lag of now.
//!
//! Every admin replica samples; the first row of a minute stands (the
//! others' inserts do nothing), and samples older than 15 days are
//! dropped once an hour.

use std::time::Duration;

use aia_bus::STREAM;
use aia_store::{Pool, StoreError};

/// How long samples are kept: the week charted and the week before it.
const KEEP: &str = "15 days";

/// Samples every minute until the task is dropped.
pub async fn sample_forever(admin: Pool, jetstream: aia_bus::JetStream) {
    let mut ticks = tokio::time::interval(Duration::from_secs(60));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut count: u64 = 0;
    loop {
        ticks.tick().await;
        if let Err(err) = sample(&admin, &jetstream, count.is_multiple_of(60)).await {
            // A missed minute is a gap in a chart, not an outage.
            tracing::warn!(error = %err, "Could not sample the stages' lag");
        }
        count += 1;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("reading the consumers: {0}")]
    Nats(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
}

/// One sample of every stage's consumer; with `purge`, old samples go.
pub async fn sample(
    admin: &Pool,
    jetstream: &aia_bus::JetStream,
    purge: bool,
) -> Result<usize, SampleError> {
    let stream = jetstream
        .get_stream(STREAM)
        .await
        .map_err(|err| SampleError::Nats(err.to_string()))?;
    let stages = aia_ops::pause::STAGES;
    let infos =
        futures::future::join_all(stages.iter().map(|name| stream.consumer_info(name))).await;
    let mut consumers = Vec::new();
    let mut pending = Vec::new();
    let mut in_flight = Vec::new();
    for (name, info) in stages.iter().zip(infos) {
        // A stage not deployed has no consumer: nothing to chart.
        if let Ok(info) = info {
            consumers.push(*name);
            pending.push(i64::try_from(info.num_pending).unwrap_or(i64::MAX));
            in_flight.push(i64::try_from(info.num_ack_pending).unwrap_or(i64::MAX));
        }
    }
    let client = admin.get().await.map_err(StoreError::from)?;
    let written = client
        .execute(
            "insert into stage_lag_samples (consumer, sampled_at, pending, in_flight)
             select consumer, date_trunc('minute', now()), pending, in_flight
               from unnest($1::text[], $2::int8[], $3::int8[]) as s(consumer, pending, in_flight)
             on conflict do nothing",
            &[&consumers, &pending, &in_flight],
        )
        .await?;
    if purge {
        client
            .execute(
                &format!(
                    "delete from stage_lag_samples where sampled_at < now() - interval '{KEEP}'"
                ),
                &[],
            )
            .await?;
    }
    Ok(written as usize)
}
