//! The correlator's clock: every minute, for each tenant with a live
//! incident or an unpublished event, end the incidents that went quiet and
//! publish what the outbox still holds (an instance that died between
//! commit and publish leaves it there). Under the tenant's lock like every
//! decision, so instances sweeping at once end an incident once; its event's
//! message id is the incident's next version, so a second publish is
//! dropped by the stream.

use std::time::Duration;

use aia_bus::JetStream;
use aia_events::TenantId;
use aia_store::{Pool, StoreError, TenantCache};
use chrono::Utc;

use crate::decide::Rules;
use crate::handler::quiet_ends;
use crate::metrics::IncidentMetrics;
use crate::{outbox, store};

pub const EVERY: Duration = Duration::from_secs(60);

/// How often the caches are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Longer than the longest related window (24 h) and quiet period (48 h)
/// a tenant may set.
const OPEN_TICKETS_KEPT: &str = "49 hours";
const PUBLISHED_KEPT: &str = "1 day";

pub struct Sweep {
    pub db: Pool,
    pub jetstream: JetStream,
    pub tenants: std::sync::Arc<TenantCache>,
    pub metrics: IncidentMetrics,
    /// When this instance last purged.
    pub last_purge: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl Sweep {
    /// Sweeps every `every` until `shutdown` completes.
    pub async fn run(self, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            if let Err(err) = self.once().await {
                tracing::warn!(error = %err, "Incident sweep failed; trying again next time");
            }
        }
    }

    /// One sweep of every tenant that needs one; returns the incidents
    /// ended and events published.
    pub async fn once(&self) -> Result<(usize, usize), anyhow::Error> {
        let due: Vec<String> = {
            let client = self.db.get().await.map_err(StoreError::from)?;
            client
                .query("select incident_tenants_due()", &[])
                .await
                .map_err(StoreError::from)?
                .iter()
                .map(|row| row.get(0))
                .collect()
        };
        let (mut ended, mut published) = (0, 0);
        for tenant in due {
            let Ok(tenant) = TenantId::parse(&tenant) else {
                continue;
            };
            // One tenant's trouble (an outbox row that does not publish)
            // holds up no other tenant.
            match self.end_quiet(&tenant).await {
                Ok(n) => ended += n,
                Err(err) => {
                    tracing::warn!(tenant_id = %tenant, error = %err, "Ending quiet incidents failed");
                }
            }
            match outbox::flush(&self.db, &self.jetstream, &tenant).await {
                Ok(n) => published += n,
                Err(err) => {
                    tracing::warn!(tenant_id = %tenant, error = %err, "Publishing incident events failed");
                }
            }
        }
        self.purge_now_and_then().await;
        if let Err(err) = self.count_live().await {
            tracing::warn!(error = %err, "Counting live incidents failed");
        }
        Ok((ended, published))
    }

    /// Sets the gauge of live incidents by tenant from the tables, whoever
    /// opened or ended them (an operator's close in the console included).
    async fn count_live(&self) -> Result<(), StoreError> {
        let client = self.db.get().await?;
        let counts: Vec<(String, i64)> = client
            .query("select tenant_id, live from incident_live_counts()", &[])
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        self.metrics.set_live(&counts);
        Ok(())
    }

    /// Retention of the window, of published events and of incidents, at
    /// most hourly: open tickets are kept past the longest window and quiet
    /// period a tenant may set, and for as long as their incident is live
    /// (its centroid needs its tickets' vectors); published events a day;
    /// ended incidents as long as their events stay in the stream
    /// (`AI_AGENTS_EVENT_TTL_SECS`), so a rebuild reproduces the tables.
    async fn purge_now_and_then(&self) {
        let mut last = self.last_purge.lock().await;
        if last.is_some_and(|at| at.elapsed() < PURGE_EVERY) {
            return;
        }
        *last = Some(std::time::Instant::now());
        let purged = async {
            let client = self.db.get().await.map_err(StoreError::from)?;
            let row = client
                .query_one(
                    "select purge_incident_caches($1::text::interval, $2::text::interval),
                            purge_old_incidents(make_interval(secs => $3::float8))",
                    &[
                        &OPEN_TICKETS_KEPT,
                        &PUBLISHED_KEPT,
                        &(aia_config::shared_or_default().event_ttl_secs as f64),
                    ],
                )
                .await
                .map_err(StoreError::from)?;
            Ok::<i64, StoreError>(row.get::<_, i64>(0) + row.get::<_, i64>(1))
        };
        match purged.await {
            Ok(n_deleted) => tracing::info!(
                n_deleted,
                "Purged open tickets, published incident events and ended incidents past retention"
            ),
            Err(err) => tracing::warn!(error = %err, "Purging incident caches failed"),
        }
    }

    async fn end_quiet(&self, tenant: &TenantId) -> Result<usize, anyhow::Error> {
        let rules = match self.tenants.get(tenant).await? {
            Some(found) => Rules::from(&found.settings.incidents),
            None => return Ok(0),
        };
        let mut client = self.db.get().await.map_err(StoreError::from)?;
        let tx = store::locked_tenant_transaction(&mut client, tenant).await?;
        let mut live = store::live(&tx, tenant).await?;
        // By the clock, from the incident's last ticket, its detection or
        // a ticket's joining (an incident the correlator works on while
        // catching up on old tickets gets its whole quiet period); an
        // acknowledgement does not keep it open.
        let quiet = store::quiet_since(&tx, tenant, Utc::now() - rules.quiet).await?;
        let events = quiet_ends(tenant, &mut live, &quiet, None);
        for event in &events {
            store::apply(&tx, event).await?;
            store::outbox_put(&tx, event, &outbox::msg_id(event)).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.metrics.count(tenant, &events);
        Ok(events.len())
    }
}
