//! What every stage counts: messages by outcome, processing time, messages
//! in flight, redeliveries, its worker slots, and its consumer's lag.

use std::sync::atomic::AtomicI64;

use aia_telemetry::metrics::SharedRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub stage: String,
    /// `done`, `retry`, `gave_up` or `undecodable`.
    pub outcome: String,
}

#[derive(Clone)]
pub struct StageMetrics {
    stage: String,
    messages: Family<OutcomeLabels, Counter>,
    processing: Family<StageLabels, Histogram>,
    in_flight: Family<StageLabels, Gauge<i64, AtomicI64>>,
    redeliveries: Family<StageLabels, Counter>,
    workers: Family<StageLabels, Gauge<i64, AtomicI64>>,
}

impl StageMetrics {
    pub fn register(registry: &SharedRegistry, stage: &str) -> Self {
        let metrics = Self {
            stage: stage.to_owned(),
            messages: Family::default(),
            processing: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            in_flight: Family::default(),
            redeliveries: Family::default(),
            workers: Family::default(),
        };
        let mut registry = registry.lock().expect("registry lock");
        registry.register(
            "stage_messages",
            "Messages a stage finished, by outcome",
            metrics.messages.clone(),
        );
        registry.register(
            "stage_processing_seconds",
            "Time to handle one message",
            metrics.processing.clone(),
        );
        registry.register(
            "stage_in_flight",
            "Messages being handled now",
            metrics.in_flight.clone(),
        );
        registry.register(
            "stage_redeliveries",
            "Messages handled again after an earlier delivery",
            metrics.redeliveries.clone(),
        );
        registry.register(
            "stage_workers",
            "Messages this instance may work on at once (its concurrency)",
            metrics.workers.clone(),
        );
        drop(registry);
        // Series exist from the start, so dashboards and alerts see zeros
        // rather than nothing.
        let _ = metrics.redeliveries.get_or_create(&metrics.labels());
        let _ = metrics.in_flight.get_or_create(&metrics.labels());
        for outcome in ["done", "retry", "gave_up", "undecodable"] {
            let _ = metrics.messages.get_or_create(&OutcomeLabels {
                stage: metrics.stage.clone(),
                outcome: outcome.to_owned(),
            });
        }
        metrics
    }

    fn labels(&self) -> StageLabels {
        StageLabels {
            stage: self.stage.clone(),
        }
    }

    pub fn set_workers(&self, workers: usize) {
        self.workers
            .get_or_create(&self.labels())
            .set(i64::try_from(workers).unwrap_or(i64::MAX));
    }

    pub fn started(&self, attempt: u32) {
        self.in_flight.get_or_create(&self.labels()).inc();
        if attempt > 1 {
            self.redeliveries.get_or_create(&self.labels()).inc();
        }
    }

    /// Counts a message ended outside a delivery (its deliveries ran out
    /// and the max-deliveries advisory ended its run).
    pub fn ended(&self, outcome: &str) {
        self.messages
            .get_or_create(&OutcomeLabels {
                stage: self.stage.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn finished(&self, outcome: &str, seconds: f64) {
        self.in_flight.get_or_create(&self.labels()).dec();
        self.processing
            .get_or_create(&self.labels())
            .observe(seconds);
        self.messages
            .get_or_create(&OutcomeLabels {
                stage: self.stage.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

/// How far a durable consumer is behind: what the scaler and the lag alert
/// read. JetStream keeps these numbers per consumer, so every instance of a
/// stage reports the same values (take `max` across instances, not `sum`).
#[derive(Clone)]
pub struct ConsumerLag {
    stage: StageLabels,
    pending: Family<StageLabels, Gauge<i64, AtomicI64>>,
    ack_pending: Family<StageLabels, Gauge<i64, AtomicI64>>,
    redelivered: Family<StageLabels, Gauge<i64, AtomicI64>>,
}

impl ConsumerLag {
    pub fn register(registry: &SharedRegistry, stage: &str) -> Self {
        let lag = Self {
            stage: StageLabels {
                stage: stage.to_owned(),
            },
            pending: Family::default(),
            ack_pending: Family::default(),
            redelivered: Family::default(),
        };
        let mut registry = registry.lock().expect("registry lock");
        registry.register(
            "stage_consumer_pending",
            "Messages in the stream not yet delivered to the stage's durable consumer",
            lag.pending.clone(),
        );
        registry.register(
            "stage_consumer_ack_pending",
            "Messages delivered to the stage and not yet acknowledged",
            lag.ack_pending.clone(),
        );
        registry.register(
            "stage_consumer_redelivered",
            "Messages of the stage's consumer delivered more than once and still unacknowledged",
            lag.redelivered.clone(),
        );
        drop(registry);
        lag.set(0, 0, 0);
        lag
    }

    fn set(&self, pending: u64, ack_pending: usize, redelivered: usize) {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.pending.get_or_create(&self.stage).set(gauge(pending));
        self.ack_pending
            .get_or_create(&self.stage)
            .set(gauge(ack_pending as u64));
        self.redelivered
            .get_or_create(&self.stage)
            .set(gauge(redelivered as u64));
    }

    /// Reads the consumer's numbers from JetStream every `every` until the
    /// task is aborted; a failed read keeps the last values.
    pub fn watch(
        self,
        mut consumer: async_nats::jetstream::consumer::PullConsumer,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match consumer.info().await {
                    Ok(info) => {
                        self.set(info.num_pending, info.num_ack_pending, info.num_redelivered)
                    }
                    Err(err) => tracing::debug!(error = %err, "Reading consumer lag failed"),
                }
            }
        })
    }
}
