//! Incidents by tenant: detected (what the alert fires on), tickets
//! joined, and ended by why. Tenant-labelled on purpose: an incident is
//! one customer's outage, and whom to page depends on which customer.

use aia_events::{Event, IncidentChange, Payload, TenantId};
use aia_telemetry::metrics::{SharedRegistry, TenantLabel};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

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
    /// Live incidents by tenant, as the tables hold them (the sweep's).
    pub live: Family<TenantLabels, Gauge>,
    /// The tenant labels `live` was last set for, to zero those gone.
    live_labels: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
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
            live: Family::default(),
            live_labels: Default::default(),
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
            "Incidents the correlator ended, by tenant and why (resolved, quiet); an operator's close is counted by incidents_live, not here",
            metrics.ended.clone(),
        );
        registry.register(
            "incidents_live",
            "Incidents not ended, by tenant (detected less ended, an operator's close included)",
            metrics.live.clone(),
        );
        metrics
    }

    /// Sets the live gauge from `counts` (tenant, live incidents): tenants
    /// past the label cap add up under theirs, and a tenant no longer
    /// listed goes to 0.
    pub fn set_live(&self, counts: &[(String, i64)]) {
        let mut by_label: std::collections::HashMap<String, i64> = Default::default();
        for (tenant, live) in counts {
            *by_label.entry(self.tenant_label.of(tenant)).or_default() += live;
        }
        let mut previous = self.live_labels.lock().expect("live labels");
        for gone in previous
            .iter()
            .filter(|label| !by_label.contains_key(*label))
        {
            self.live
                .get_or_create(&TenantLabels {
                    tenant_id: gone.clone(),
                })
                .set(0);
        }
        for (label, live) in &by_label {
            self.live
                .get_or_create(&TenantLabels {
                    tenant_id: label.clone(),
                })
                .set(*live);
        }
        *previous = by_label.into_keys().collect();
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

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    fn exported(metrics: &IncidentMetrics) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("incidents_live", "", metrics.live.clone());
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn the_live_gauge_follows_the_tables_and_a_tenant_gone_from_them_reads_zero() {
        let metrics = IncidentMetrics::default();
        metrics.set_live(&[("acme".into(), 2), ("globex".into(), 1)]);
        let text = exported(&metrics);
        assert!(
            text.contains(r#"incidents_live{tenant_id="acme"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"incidents_live{tenant_id="globex"} 1"#),
            "{text}"
        );
        // acme's incidents closed (by anyone): no row for it any more.
        metrics.set_live(&[("globex".into(), 1)]);
        let text = exported(&metrics);
        assert!(
            text.contains(r#"incidents_live{tenant_id="acme"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"incidents_live{tenant_id="globex"} 1"#),
            "{text}"
        );
    }
}
