//! What every stage counts: messages by outcome, processing time, messages
//! in flight and redeliveries.

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

    pub fn started(&self, attempt: u32) {
        self.in_flight.get_or_create(&self.labels()).inc();
        if attempt > 1 {
            self.redeliveries.get_or_create(&self.labels()).inc();
        }
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
