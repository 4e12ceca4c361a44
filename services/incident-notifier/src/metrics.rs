//! Incident notifications by outcome.

use aia_telemetry::metrics::SharedRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `delivered`, `retrying`, `failed`, `already_delivered` or `no_webhook`.
    pub outcome: String,
}

#[derive(Clone, Default)]
pub struct NotifierMetrics {
    pub notifications: Family<OutcomeLabels, Counter>,
}

impl NotifierMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let metrics = Self::default();
        registry.lock().expect("registry lock").register(
            "incident_notifications",
            "Incident events posted to tenants' webhooks, by outcome",
            metrics.notifications.clone(),
        );
        metrics
    }

    pub fn count(&self, outcome: &str) {
        self.notifications
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}
