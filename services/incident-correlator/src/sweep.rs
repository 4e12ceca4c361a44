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
use aia_store::{Pool, StoreError, TenantCache, tenant_transaction};
use chrono::Utc;

use crate::decide::Rules;
use crate::handler::quiet_ends;
use crate::metrics::IncidentMetrics;
use crate::{outbox, store};

pub const EVERY: Duration = Duration::from_secs(60);

pub struct Sweep {
    pub db: Pool,
    pub jetstream: JetStream,
    pub tenants: std::sync::Arc<TenantCache>,
    pub metrics: IncidentMetrics,
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
            ended += self.end_quiet(&tenant).await?;
            published += outbox::flush(&self.db, &self.jetstream, &tenant).await?;
        }
        Ok((ended, published))
    }

    async fn end_quiet(&self, tenant: &TenantId) -> Result<usize, anyhow::Error> {
        let rules = match self.tenants.get(tenant).await? {
            Some(found) => Rules::from(&found.settings.incidents),
            None => return Ok(0),
        };
        let mut client = self.db.get().await.map_err(StoreError::from)?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        store::lock_tenant(&tx, tenant).await?;
        let mut live = store::live(&tx, tenant, None).await?;
        let events = quiet_ends(tenant, &mut live, Utc::now(), &rules, None);
        for event in &events {
            store::apply(&tx, event).await?;
            store::outbox_put(&tx, event, &outbox::msg_id(event)).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.metrics.count(tenant, &events);
        Ok(events.len())
    }
}
