//! Tenants (with decrypted webhook secrets) cached for a short time, so a
//! burst of webhooks costs one database read per tenant, and a rotated
//! secret or a deactivation takes effect within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aia_events::TenantId;
use aia_store::{Keyring, Pool, StoreError, Tenant, tenants};

/// When a tenant was read, and what was found (`None`: no such tenant).
type Entry = (Instant, Option<Arc<Tenant>>);

pub struct TenantCache {
    db: Pool,
    keyring: Arc<Keyring>,
    ttl: Duration,
    entries: Mutex<HashMap<TenantId, Entry>>,
}

impl TenantCache {
    pub fn new(db: Pool, keyring: Arc<Keyring>, ttl: Duration) -> Self {
        Self {
            db,
            keyring,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant, or `None` when it does not exist. Unknown tenants are
    /// cached too, so probing unknown ids does not reach the database.
    pub async fn get(&self, tenant_id: &TenantId) -> Result<Option<Arc<Tenant>>, StoreError> {
        let now = Instant::now();
        if let Some((fetched, tenant)) = self.entries.lock().expect("cache lock").get(tenant_id)
            && now.duration_since(*fetched) < self.ttl
        {
            return Ok(tenant.clone());
        }
        let tenant = tracing::Instrument::instrument(
            async {
                let mut client = self.db.get().await?;
                tenants::get(&mut client, &self.keyring, tenant_id).await
            },
            aia_telemetry::db_span("SELECT", "tenants"),
        )
        .await?
        .map(Arc::new);
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() > 50_000 {
            let ttl = self.ttl;
            entries.retain(|_, (fetched, _)| now.duration_since(*fetched) < ttl);
        }
        entries.insert(tenant_id.clone(), (now, tenant.clone()));
        Ok(tenant)
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn db(&self) -> &Pool {
        &self.db
    }
}
