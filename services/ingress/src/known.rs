//! The tenant ids that exist, held in memory: a webhook naming an id that
//! is not among them is answered (as a bad signature, against the decoy)
//! without a database read. Tenant ids arrive before anything is
//! authenticated, and a flood of made-up ones — each a read, and the
//! negative cache no help when every id is new — would otherwise hold the
//! pool's connections while real webhooks waited for one.
//!
//! An id not held is looked for again by reading every id, at most once a
//! second whatever the number of requests: one read at a time, begun after
//! the request asked. Those that asked before a read began use what it
//! found; one that asks within a second of the last read waits out the rest
//! of that second for the next. So a tenant created a moment ago is found on
//! its first webhook, and a flood of made-up ids costs one read a second,
//! each answered within about a second.

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
    /// The ids, and when the read that found them began.
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

    /// Whether `tenant` may exist: held, or found by a read of the ids begun
    /// after this call (waiting, if the last read was less than a second
    /// ago, for the rest of that second).
    pub async fn may_exist(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        if self.holds(tenant) {
            return Ok(true);
        }
        let asked_at = Instant::now();
        let _reading = self.reading.lock().await;
        if let Some(began) = self.last_read_began() {
            if began >= asked_at {
                // Whoever held the turn before us read after we asked.
                return Ok(self.holds(tenant));
            }
            tokio::time::sleep_until((began + REFRESH_AT_MOST_EVERY).into()).await;
        }
        let began = Instant::now();
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
        *self.ids.write().expect("tenant ids") = Some((began, ids));
        Ok(found)
    }

    /// When the last read of the ids began.
    fn last_read_began(&self) -> Option<Instant> {
        self.ids
            .read()
            .expect("tenant ids")
            .as_ref()
            .map(|(began, _)| *began)
    }

    fn holds(&self, tenant: &TenantId) -> bool {
        self.ids
            .read()
            .expect("tenant ids")
            .as_ref()
            .is_some_and(|(_, ids)| ids.contains(tenant.as_str()))
    }
}
