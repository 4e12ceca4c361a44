//! How each context source fares: runs by outcome and their latency, by
//! source. No tenant label: a struggling source is a deployment problem
//! (the knowledge base, the monitoring API), and per-tenant detail is in
//! every `context.gathered` event's source reports.

use aia_events::SourceReport;
use aia_telemetry::metrics::SharedRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceStatusLabels {
    /// `similar_tickets`, `knowledge_base`, `inventory` or `monitoring`.
    pub source: String,
    /// `ok`, `empty`, `timeout`, `error` or `disabled`.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RewriteLabels {
    /// `used` (the searches had the LLM's terms) or `skipped`.
    pub outcome: String,
}

#[derive(Clone)]
pub struct SourceMetrics {
    runs: Family<SourceStatusLabels, Counter>,
    latency: Family<SourceLabels, Histogram>,
    rewrites: Family<RewriteLabels, Counter>,
    rewrite_cost_usd: Counter<f64, std::sync::atomic::AtomicU64>,
}

impl Default for SourceMetrics {
    /// Metrics that count but are not registered anywhere (tools, tests).
    fn default() -> Self {
        Self {
            runs: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 14))
            }),
            rewrites: Family::default(),
            rewrite_cost_usd: Counter::default(),
        }
    }
}

impl SourceMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let metrics = Self::default();
        let mut registry = registry.lock().expect("registry lock");
        registry.register(
            "context_source_runs",
            "Context source runs by source and outcome",
            metrics.runs.clone(),
        );
        registry.register(
            "context_source_duration_seconds",
            "Time one context source took, by source",
            metrics.latency.clone(),
        );
        registry.register(
            "context_query_rewrites",
            "Tickets of tenants with query_rewrite on, by whether the LLM's terms were used",
            metrics.rewrites.clone(),
        );
        registry.register(
            "context_query_rewrite_cost_usd",
            "LLM spend on query rewrites in US dollars",
            metrics.rewrite_cost_usd.clone(),
        );
        metrics
    }

    pub fn record_rewrite(&self, rewrite: &aia_events::QueryRewrite) {
        let outcome = if rewrite.terms.is_some() {
            "used"
        } else {
            "skipped"
        };
        self.rewrites
            .get_or_create(&RewriteLabels {
                outcome: outcome.into(),
            })
            .inc();
        self.rewrite_cost_usd.inc_by(rewrite.cost_usd);
    }

    pub fn record(&self, report: &SourceReport) {
        let source = name(&report.source);
        self.runs
            .get_or_create(&SourceStatusLabels {
                source: source.clone(),
                status: name(&report.status),
            })
            .inc();
        #[allow(clippy::cast_precision_loss)] // milliseconds well below 2^52
        self.latency
            .get_or_create(&SourceLabels { source })
            .observe(report.latency_ms as f64 / 1000.0);
    }
}

/// The wire name of a unit enum value (its snake_case serde name).
fn name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aia_events::{ContextSource, SourceStatus};

    #[test]
    fn reports_are_counted_by_source_and_outcome_with_latency() {
        let registry = aia_telemetry::metrics::registry();
        let metrics = SourceMetrics::register(&registry);
        for (source, status, latency_ms) in [
            (ContextSource::KnowledgeBase, SourceStatus::Timeout, 2000),
            (ContextSource::KnowledgeBase, SourceStatus::Ok, 40),
            (ContextSource::SimilarTickets, SourceStatus::Ok, 12),
        ] {
            metrics.record(&SourceReport {
                source,
                status,
                latency_ms,
                items: 0,
                detail: None,
            });
        }
        let text = aia_telemetry::metrics::encode(&registry);
        for line in [
            r#"context_source_runs_total{source="knowledge_base",status="timeout"} 1"#,
            r#"context_source_runs_total{source="knowledge_base",status="ok"} 1"#,
            r#"context_source_duration_seconds_count{source="knowledge_base"} 2"#,
            r#"context_source_duration_seconds_sum{source="similar_tickets"} 0.012"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
