//! The tenant ids that exist, held in memory: a webhook naming an id that
//! is not among them is answered (as a bad signature, against the decoy)
//! without a database read. Tenant ids arrive before anything is
//! authenticated, and a flood of made-up ones — each a read, and the
//! negative cache no help when every id is new — would otherwise hold the
//! pool's connections while real webhooks waited for one.
//!
//! An id not held is looked for again by reading every id, at most once a
//! second whatever the number of requests (one read at a time; those that
//! come meanwhile use what it finds), so a tenant created a moment ago is
//! found on its first webhook.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use aia_events::TenantId;
use aia_store::{Pool, StoreError};

/// How often the ids are read again at most.
pub const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct KnownTenants {
    db: Pool,
    ids: RwLock<Option<(Instant, HashSet<String>)>>,
    /// One read at a time.
    reading: tokio::sync::Mutex<()>,
    /// How many times the ids were read.
    reads: std::sync::atomic::AtomicU64,
}

impl KnownTenants {
    pub fn new(db: Pool) -> Self {
        Self {
            db,
            ids: RwLock::new(None),
            reading: tokio::sync::Mutex::new(()),
            reads: Default::default(),
        }
    }

    /// How many times the ids were read from the database.
    pub fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `tenant` may exist: held, or found when the ids are read
    /// again (if they were not read in the last second).
    pub async fn may_exist(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        if self.holds(tenant) {
            return Ok(true);
        }
        let _reading = self.reading.lock().await;
        // Read by whoever held the turn before us, or too recently.
        if self.holds(tenant) {
            return Ok(true);
        }
        let fresh = self
            .ids
            .read()
            .expect("tenant ids")
            .as_ref()
            .is_some_and(|(read_at, _)| read_at.elapsed() < REFRESH_AT_MOST_EVERY);
        if fresh {
            return Ok(false);
        }
        let client = self.db.get().await?;
        let ids: HashSet<String> = client
            .query("select tenant_ids()", &[])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let found = ids.contains(tenant.as_str());
        *self.ids.write().expect("tenant ids") = Some((Instant::now(), ids));
        Ok(found)
    }

    fn holds(&self, tenant: &TenantId) -> bool {
        self.ids
            .read()
            .expect("tenant ids")
            .as_ref()
            .is_some_and(|(_, ids)| ids.contains(tenant.as_str()))
    }
}
