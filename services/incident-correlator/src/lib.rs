//! The incident correlator: groups a tenant's related open tickets into
//! incidents (`incident.detected`, `incident.updated`) from the
//! `context.gathered` events that list them, ends an incident when its
//! tickets are resolved or it goes quiet, and keeps `incidents` and
//! `incident_tickets` as its events leave them. See ARCHITECTURE.md,
//! "Incidents".

pub mod centroids;
mod config;
pub mod decide;
mod handler;
pub mod metrics;
pub mod operator;
pub mod outbox;
pub mod rebuild;
pub mod store;
pub mod sweep;

use std::future::Future;

use aia_bus::{Handler as _, StageDeps};

pub use config::Config;
pub use handler::{IncidentCorrelator, incident_event};

/// Runs one instance of the stage, and its sweep, until `shutdown`
/// completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let deps = StageDeps::connect(IncidentCorrelator::NAME, config.stage).await?;
    let metrics = metrics::IncidentMetrics::register(&deps.consumer.registry);
    let sweep = sweep::Sweep {
        db: deps.db.clone(),
        jetstream: deps.jetstream.clone(),
        tenants: deps.tenants.clone(),
        metrics: metrics.clone(),
        last_purge: Default::default(),
    };
    let handler = IncidentCorrelator {
        db: deps.db.clone(),
        jetstream: deps.jetstream.clone(),
        tenants: deps.tenants.clone(),
        metrics,
        windows: aia_store::open_tickets::WindowCache::new(config.window_tenants),
        centroids: Default::default(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let sweeping = tokio::spawn(sweep.run(config.sweep_every, stop.clone().cancelled_owned()));
    let result = deps.run(handler, shutdown).await;
    stop.cancel();
    let _ = sweeping.await;
    result?;
    Ok(())
}
