//! The incident notifier: posts each of a tenant's incident events to the
//! tenant's own webhook (the integrations' `incident_webhook_url`), signed with
//! Standard Webhooks under the secret in its integrations, so an MSP can
//! page someone. At least once, under one `webhook-id` per incident
//! version, so a receiver drops a repeat; a delivered event is never sent
//! again (the `incident_notifications` ledger); failures retry on the
//! consumer's backoff and end recorded in the ledger.

mod config;
mod handler;
pub mod ledger;
pub mod metrics;
pub mod sign;

use std::future::Future;

use aia_bus::{Handler as _, StageDeps};

pub use config::Config;
pub use handler::{IncidentNotifier, body, webhook_id};

/// Runs one instance until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let deps = StageDeps::connect(IncidentNotifier::NAME, config.stage).await?;
    let handler = IncidentNotifier {
        metrics: metrics::NotifierMetrics::register(&deps.consumer.registry),
        tenants: deps.tenants.clone(),
        db: deps.db.clone(),
        http: aia_http::outbound::client_builder()
            .timeout(config.http_timeout)
            .build()?,
    };
    deps.run(handler, shutdown).await?;
    Ok(())
}
