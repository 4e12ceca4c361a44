//! The projector's metrics: the original's enhancement series, counted once
//! per run as the read model records it (so redelivered or replayed events,
//! which the checkpoint skips, are never counted twice), plus the lag of its
//! consumer.

use aia_telemetry::metrics::{SharedRegistry, TenantLabel};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::projection::Effect;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantStatusLabels {
    pub tenant_id: String,
    /// `received`, `completed`, `failed` or `failed_budget`.
    pub status: String,
}

/// The exemplar of a latency observation: the run's trace, so a slow point
/// on a dashboard opens the ticket's trace.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceLabels {
    pub trace_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant_id: String,
}

/// Webhook → note seconds: the original's buckets stretched to the 120 s
/// alert threshold and beyond.
const DURATION_BUCKETS: [f64; 14] = [
    0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

#[derive(Clone)]
pub struct ProjectorMetrics {
    requests: Family<TenantStatusLabels, Counter>,
    duration: HistogramWithExemplars<TraceLabels>,
    success_rate: Family<TenantLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    history_stored: Family<TenantLabels, Counter>,
    tenant: TenantLabel,
}

impl ProjectorMetrics {
    pub fn register(registry: &SharedRegistry, tenant: TenantLabel) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: HistogramWithExemplars::new(DURATION_BUCKETS.into_iter()),
            success_rate: Family::default(),
            history_stored: Family::default(),
            tenant,
        };
        let mut registry = registry.lock().expect("registry lock");
        registry.register(
            "enhancement_requests",
            "Ticket runs by tenant and status (received, completed, failed, failed_budget)",
            metrics.requests.clone(),
        );
        registry.register(
            "enhancement_duration_seconds",
            "End to end: webhook accepted to note written back",
            metrics.duration.clone(),
        );
        registry.register(
            "enhancement_success_rate",
            "Completed share of the runs this projector saw finish since it started, by tenant",
            metrics.success_rate.clone(),
        );
        registry.register(
            "ticket_history_stored",
            "Resolved tickets stored in the history corpus, by tenant",
            metrics.history_stored.clone(),
        );
        metrics
    }

    /// Counts what applying one event of `tenant` changed; `trace_id` (the
    /// run's) becomes the latency's exemplar.
    pub fn record(&self, tenant: &str, effect: &Effect, trace_id: Option<String>) {
        let tenant_id = self.tenant.of(tenant);
        if effect.ticket_stored {
            self.history_stored
                .get_or_create(&TenantLabels {
                    tenant_id: tenant_id.clone(),
                })
                .inc();
        }
        let counters = &effect.counters;
        for (status, count) in [
            ("received", counters.received),
            ("completed", counters.completed),
            ("failed", counters.failed),
            ("failed_budget", counters.failed_budget),
        ] {
            if count > 0 {
                self.requests
                    .get_or_create(&TenantStatusLabels {
                        tenant_id: tenant_id.clone(),
                        status: status.to_owned(),
                    })
                    .inc_by(count.unsigned_abs());
            }
        }
        if counters.completed > 0 {
            #[allow(clippy::cast_precision_loss)] // milliseconds well below 2^52
            self.duration.observe(
                counters.processing_ms_total as f64 / 1000.0,
                trace_id.map(|trace_id| TraceLabels { trace_id }),
                None,
            );
        }
        if counters.completed + counters.failed > 0 {
            // From the run counters this process already holds.
            let runs = |status: &str| {
                self.requests
                    .get_or_create(&TenantStatusLabels {
                        tenant_id: tenant_id.clone(),
                        status: status.to_owned(),
                    })
                    .get()
            };
            let (completed, failed) = (runs("completed"), runs("failed"));
            #[allow(clippy::cast_precision_loss)] // counts well below 2^52
            let rate = completed as f64 / (completed + failed) as f64;
            self.success_rate
                .get_or_create(&TenantLabels { tenant_id })
                .set(rate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Counters;

    fn run(completed: i64, failed: i64, ms: i64) -> Effect {
        Effect {
            ticket_stored: false,
            filled: Vec::new(),
            counters: Counters {
                completed,
                failed,
                processing_ms_total: ms,
                ..Counters::default()
            },
        }
    }

    #[test]
    fn runs_are_counted_by_status_with_their_latency_and_success_rate() {
        let registry = aia_telemetry::metrics::registry();
        let metrics = ProjectorMetrics::register(&registry, TenantLabel::new(10));
        metrics.record("acme", &run(1, 0, 4_000), None);
        metrics.record(
            "acme",
            &run(1, 0, 130_000),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        );
        metrics.record("acme", &run(0, 1, 0), None);
        metrics.record("acme", &run(1, 0, 1_000), None);
        metrics.record(
            "acme",
            &Effect {
                ticket_stored: true,
                ..Effect::default()
            },
            None,
        );
        let text = aia_telemetry::metrics::encode(&registry);
        for line in [
            r#"enhancement_requests_total{tenant_id="acme",status="completed"} 3"#,
            r#"enhancement_requests_total{tenant_id="acme",status="failed"} 1"#,
            r#"enhancement_success_rate{tenant_id="acme"} 0.75"#,
            r#"ticket_history_stored_total{tenant_id="acme"} 1"#,
            "enhancement_duration_seconds_count 3",
            "enhancement_duration_seconds_sum 135.0",
            r#"enhancement_duration_seconds_bucket{le="120.0"} 2"#,
            // The slow run's trace is one click away from the panel.
            r#"enhancement_duration_seconds_bucket{le="300.0"} 3 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 130.0"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
