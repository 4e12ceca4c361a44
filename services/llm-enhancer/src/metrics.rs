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
}
