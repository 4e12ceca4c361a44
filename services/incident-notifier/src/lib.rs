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

/// The client notifications are posted with. It follows no redirect: a
/// receiver has no reason to move (its address is set in the tenant's
/// integrations), and one that answered a redirect — a compromised relay —
/// would have the signed body posted wherever it pointed, an address on
/// the deployment's own network included. A redirect is the receiver's
/// answer, recorded as it is.
pub fn client(timeout: std::time::Duration) -> Result<reqwest::Client, reqwest::Error> {
    aia_http::outbound::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
}

/// Runs one instance until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let deps = StageDeps::connect(IncidentNotifier::NAME, config.stage).await?;
    let handler = IncidentNotifier {
        metrics: metrics::NotifierMetrics::register(&deps.consumer.registry),
        tenants: deps.tenants.clone(),
        db: deps.db.clone(),
        http: client(config.http_timeout)?,
    };
    deps.run(handler, shutdown).await?;
    Ok(())
}
