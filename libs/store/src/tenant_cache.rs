//! Tenants (with their secrets decrypted) cached for a short time, so a
//! burst of webhooks or events costs one database read per tenant and
//! process, and an edit, a rotated secret or a deactivation takes effect
//! within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aia_events::TenantId;

use crate::{Keyring, Pool, StoreError, Tenant, tenants};

/// When a tenant was read, and what was found (`None`: no such tenant).
type Entry = (Instant, Option<Arc<Tenant>>);

pub struct TenantCache {
    db: Pool,
    keyring: Arc<Keyring>,
    ttl: Duration,
    entries: Mutex<HashMap<TenantId, Entry>>,
    capacity: usize,
}

/// How many tenants (known and unknown) a cache holds at most.
const CAPACITY: usize = 50_000;

impl TenantCache {
    /// A cache keeping each tenant for `ttl` (zero: no caching).
    pub fn new(db: Pool, keyring: Arc<Keyring>, ttl: Duration) -> Self {
        Self {
            db,
            keyring,
            ttl,
            entries: Mutex::new(HashMap::new()),
            capacity: CAPACITY,
        }
    }

    /// The same, holding at most `capacity` tenants.
    pub fn with_capacity(self, capacity: usize) -> Self {
        Self { capacity, ..self }
    }

    /// How many tenants are held now (known and unknown).
    pub fn held(&self) -> usize {
        self.entries.lock().expect("cache lock").len()
    }

    /// The tenant, or `None` when it does not exist. Unknown tenants are
    /// cached too, so probing unknown ids does not reach the database.
    pub async fn get(&self, tenant_id: &TenantId) -> Result<Option<Arc<Tenant>>, StoreError> {
        if !self.ttl.is_zero()
            && let Some((fetched, tenant)) = self.entries.lock().expect("cache lock").get(tenant_id)
            && fetched.elapsed() < self.ttl
        {
            return Ok(tenant.clone());
        }
        self.fresh(tenant_id).await
    }

    /// The tenant as stored now, which also replaces the cached copy. A
    /// stage reads it before failing a ticket on the tenant's account
    /// (unknown, inactive, credentials refused), so an operator's fix
    /// followed by a re-drive is honoured at once, not after the TTL.
    pub async fn fresh(&self, tenant_id: &TenantId) -> Result<Option<Arc<Tenant>>, StoreError> {
        let now = Instant::now();
        let tenant = tracing::Instrument::instrument(
            async {
                let mut client = self.db.get().await?;
                tenants::get(&mut client, &self.keyring, tenant_id).await
            },
            tracing::info_span!(
                "db client",
                otel.name = "SELECT tenants",
                otel.kind = "client",
                db.system.name = "postgresql",
                db.operation.name = "SELECT",
                db.collection.name = "tenants",
            ),
        )
        .await?
        .map(Arc::new);
        if self.ttl.is_zero() {
            return Ok(tenant);
        }
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= self.capacity && !entries.contains_key(tenant_id) {
            let ttl = self.ttl;
            entries.retain(|_, (fetched, _)| now.duration_since(*fetched) < ttl);
            // Made-up tenant ids arrive before anything is authenticated:
            // a flood of them within the TTL is dropped before any tenant,
            // and the cache never grows past its capacity (what is not
            // held is read again next time).
            if entries.len() >= self.capacity {
                entries.retain(|_, (_, tenant)| tenant.is_some());
            }
            if entries.len() >= self.capacity {
                return Ok(tenant);
            }
        }
        entries.insert(tenant_id.clone(), (now, tenant.clone()));
        Ok(tenant)
    }

    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    pub fn db(&self) -> &Pool {
        &self.db
    }
}
