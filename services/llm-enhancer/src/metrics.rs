//! What the llm-enhancer counts: tokens and cost by tenant and model,
//! provider calls by outcome, budget alerts and blocked runs.

use aia_telemetry::metrics::SharedRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub tenant_id: String,
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant_id: String,
}

#[derive(Clone, Default)]
pub struct LlmMetrics {
    pub tokens_in: Family<ModelLabels, Counter>,
    pub tokens_out: Family<ModelLabels, Counter>,
    pub cost_usd: Family<ModelLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    pub notes: Family<OutcomeLabels, Counter>,
    pub budget_alerts: Family<TenantLabels, Counter>,
    pub budget_exceeded: Family<TenantLabels, Counter>,
    /// The capped `tenant_id` label values.
    pub tenant: aia_telemetry::metrics::TenantLabel,
}

impl LlmMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let metrics = Self::default();
        let mut registry = registry.lock().expect("registry lock");
        registry.register(
            "llm_input_tokens",
            "Prompt tokens by tenant and model",
            metrics.tokens_in.clone(),
        );
        registry.register(
            "llm_output_tokens",
            "Completion tokens by tenant and model",
            metrics.tokens_out.clone(),
        );
        registry.register(
            "llm_cost_usd",
            "LLM spend in US dollars by tenant and model",
            metrics.cost_usd.clone(),
        );
        registry.register(
            "llm_notes",
            "Notes by outcome: model, degraded (raw context) or budget",
            metrics.notes.clone(),
        );
        registry.register(
            "llm_budget_alerts",
            "Tenants that reached the alert share of their LLM budget",
            metrics.budget_alerts.clone(),
        );
        registry.register(
            "llm_budget_exceeded",
            "Runs that got the raw context because the tenant was over budget",
            metrics.budget_exceeded.clone(),
        );
        metrics
    }

    /// Exports a budgeted tenant's alert and refusal counts (at 0 until
    /// the first), so an alert's `increase()` sees the first one: a series
    /// born at 1 has increased by nothing.
    pub fn seen(&self, tenant: &str) {
        let labels = TenantLabels {
            tenant_id: self.tenant.of(tenant),
        };
        let _exported = self.budget_alerts.get_or_create(&labels);
        let _exported = self.budget_exceeded.get_or_create(&labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budgeted_tenant_is_exported_at_zero_before_its_first_alert() {
        let registry = SharedRegistry::default();
        let metrics = LlmMetrics::register(&registry);
        metrics.seen("acme");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry.lock().unwrap()).unwrap();
        for name in ["llm_budget_alerts_total", "llm_budget_exceeded_total"] {
            assert!(
                text.contains(&format!("{name}{{tenant_id=\"acme\"}} 0\n")),
                "{text}"
            );
        }
    }
}
