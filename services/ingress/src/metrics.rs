//! The ingress's Prometheus metrics, served on `AI_AGENTS_METRICS_ADDR`
//! like every service's — never on the public webhook listener, where they
//! would list every tenant to anyone.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub tenant_id: String,
    pub endpoint: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantEndpointLabels {
    pub tenant_id: String,
    pub endpoint: String,
}

pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub signature_failures: Family<TenantLabels, Counter>,
    pub rate_limited: Family<TenantEndpointLabels, Counter>,
    /// Deliveries answered as duplicates of one accepted lately, before
    /// the rate limit.
    pub duplicates: Family<TenantEndpointLabels, Counter>,
    pub publish_seconds: Histogram,
    /// The capped `tenant_id` label values.
    pub tenant: aia_telemetry::metrics::TenantLabel,
}

impl Metrics {
    /// The ingress's series, added to the process's `registry`.
    pub fn register(registry: &aia_telemetry::metrics::SharedRegistry) -> Self {
        let mut registry = registry.lock().expect("registry lock");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "webhook_requests",
            "Webhook requests by tenant, endpoint and outcome",
            requests.clone(),
        );
        let signature_failures = Family::<TenantLabels, Counter>::default();
        registry.register(
            "webhook_signature_failures",
            "Webhooks refused for a missing, invalid or stale signature",
            signature_failures.clone(),
        );
        let rate_limited = Family::<TenantEndpointLabels, Counter>::default();
        registry.register(
            "webhook_rate_limit_exceeded",
            "Webhooks refused with 429 by the per-tenant rate limits",
            rate_limited.clone(),
        );
        let duplicates = Family::<TenantEndpointLabels, Counter>::default();
        registry.register(
            "webhook_recent_duplicates",
            "Webhook deliveries answered as a duplicate of one this instance accepted lately",
            duplicates.clone(),
        );
        let publish_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "webhook_publish_duration_seconds",
            "Time from publish to JetStream's storage acknowledgement",
            publish_seconds.clone(),
        );
        Self {
            requests,
            signature_failures,
            rate_limited,
            duplicates,
            publish_seconds,
            tenant: aia_telemetry::metrics::TenantLabel::from_env(),
        }
    }
}
