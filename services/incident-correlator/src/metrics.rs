//! Incidents by tenant: detected (what the alert fires on), tickets
//! joined, and ended by why. Tenant-labelled on purpose: an incident is
//! one customer's outage, and whom to page depends on which customer.

use aia_events::{Event, IncidentChange, Payload, TenantId};
use aia_telemetry::metrics::{SharedRegistry, TenantLabel};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndedLabels {
    pub tenant_id: String,
    /// `resolved`, `closed` or `quiet`.
    pub change: String,
}

#[derive(Clone)]
pub struct IncidentMetrics {
    pub detected: Family<TenantLabels, Counter>,
    pub tickets_added: Family<TenantLabels, Counter>,
    pub ended: Family<EndedLabels, Counter>,
    /// Caps the tenants with series of their own
    /// (`AI_AGENTS_METRICS_MAX_TENANTS`).
    tenant_label: TenantLabel,
}

impl Default for IncidentMetrics {
    /// Metrics that count but are not registered anywhere (tools, tests).
    fn default() -> Self {
        Self {
            detected: Family::default(),
            tickets_added: Family::default(),
            ended: Family::default(),
            tenant_label: TenantLabel::from_env(),
        }
    }
}

impl IncidentMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let metrics = Self::default();
        let mut registry = registry.lock().expect("registry lock");
        registry.register(
            "incidents_detected",
            "Incidents detected, by tenant",
            metrics.detected.clone(),
        );
        registry.register(
            "incident_tickets_added",
            "Tickets that joined an incident after it was detected, by tenant",
            metrics.tickets_added.clone(),
        );
        registry.register(
            "incidents_ended",
            "Incidents ended, by tenant and why (resolved, closed, quiet)",
            metrics.ended.clone(),
        );
        metrics
    }

    /// Exports the tenant's detected count (at 0 until its first
    /// incident), so an alert's `increase()` sees the first one.
    pub fn seen(&self, tenant: &TenantId) {
        let _exported = self.detected.get_or_create(&TenantLabels {
            tenant_id: self.tenant_label.of(tenant.as_str()),
        });
    }

    /// Counts committed incident events (each is decided once: a
    /// redelivery decides nothing new).
    pub fn count(&self, tenant: &TenantId, events: &[Event]) {
        let tenant_id = self.tenant_label.of(tenant.as_str());
        let labels = || TenantLabels {
            tenant_id: tenant_id.clone(),
        };
        for event in events {
            match &event.payload {
                Payload::IncidentDetected(_) => {
                    self.detected.get_or_create(&labels()).inc();
                }
                Payload::IncidentUpdated(updated) => match updated.change {
                    IncidentChange::TicketAdded => {
                        self.tickets_added.get_or_create(&labels()).inc();
                    }
                    IncidentChange::Resolved | IncidentChange::Closed | IncidentChange::Quiet => {
                        let change = match updated.change {
                            IncidentChange::Resolved => "resolved",
                            IncidentChange::Closed => "closed",
                            _ => "quiet",
                        };
                        self.ended
                            .get_or_create(&EndedLabels {
                                tenant_id: tenant_id.clone(),
                                change: change.into(),
                            })
                            .inc();
                    }
                    IncidentChange::Acknowledged => {}
                },
                _ => {}
            }
        }
    }
}
