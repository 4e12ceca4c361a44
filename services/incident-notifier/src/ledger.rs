//! The notification ledger: one row per (tenant, webhook id), so an
//! incident event delivered once is never posted again, and one that could
//! not be delivered says why (`aiagents`'s SQL, the console later).

use aia_events::TenantId;
use aia_store::{Client, StoreError, tenant_query};

/// Where one notification stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not delivered yet (perhaps tried).
    Pending,
    Delivered,
    /// Given up: refused for good, or out of deliveries.
    Failed,
    /// Not posted: the tenant had no webhook when it came.
    Skipped,
}

impl State {
    fn parse(state: &str) -> Self {
        match state {
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            "skipped" => Self::Skipped,
            _ => Self::Pending,
        }
    }

    fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// Which version of which incident a notification tells of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub incident: uuid::Uuid,
    pub version: u32,
}

impl Version {
    /// The version before this one, if there is one.
    pub fn previous(&self) -> Option<Self> {
        (self.version > 1).then(|| Self {
            incident: self.incident,
            version: self.version - 1,
        })
    }

    fn number(&self) -> i32 {
        i32::try_from(self.version).unwrap_or(i32::MAX)
    }
}

/// Records an attempt; returns the notification's state before it. A
/// version a previous release settled under its older id
/// (`incident:<tenant>:<incident>:v<version>`, no digest) counts as this
/// one, so an upgrade does not post it again.
pub async fn attempt(
    client: &mut Client,
    tenant: &TenantId,
    webhook_id: &str,
    version: &Version,
    event_type: &str,
) -> Result<State, StoreError> {
    let legacy = format!(
        "incident:{tenant}:{}:v{}",
        version.incident, version.version
    );
    let settled_before = tenant_query(
        client,
        tenant,
        "select state from incident_notifications
          where tenant_id = $1 and webhook_id = $2 and state <> 'pending'",
        &[&tenant.as_str(), &legacy],
    )
    .await?;
    if let Some(row) = settled_before.first() {
        return Ok(State::parse(row.get(0)));
    }
    let rows = tenant_query(
        client,
        tenant,
        "insert into incident_notifications
                (tenant_id, webhook_id, event_type, state, attempts, incident_id, version)
         values ($1, $2, $3, 'pending', 1, $4, $5)
         on conflict (tenant_id, webhook_id) do update
            set attempts = incident_notifications.attempts
                           + case when incident_notifications.state = 'pending' then 1 else 0 end,
                updated_at = now()
         returning state",
        &[
            &tenant.as_str(),
            &webhook_id,
            &event_type,
            &version.incident,
            &version.number(),
        ],
    )
    .await?;
    let state: String = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("the ledger's upsert returned no row".into()))?
        .get(0);
    Ok(State::parse(&state))
}

/// Records a version that was not posted (the tenant has no webhook).
pub async fn skip(
    client: &mut Client,
    tenant: &TenantId,
    webhook_id: &str,
    version: &Version,
    event_type: &str,
) -> Result<(), StoreError> {
    tenant_query(
        client,
        tenant,
        "insert into incident_notifications
                (tenant_id, webhook_id, event_type, state, attempts, incident_id, version)
         values ($1, $2, $3, 'skipped', 0, $4, $5)
         on conflict (tenant_id, webhook_id) do nothing",
        &[
            &tenant.as_str(),
            &webhook_id,
            &event_type,
            &version.incident,
            &version.number(),
        ],
    )
    .await?;
    Ok(())
}

/// Whether a notification of `version` is delivered, given up on or
/// skipped (not pending, and not unknown).
pub async fn settled(
    client: &mut Client,
    tenant: &TenantId,
    version: &Version,
) -> Result<bool, StoreError> {
    let rows = tenant_query(
        client,
        tenant,
        "select 1 from incident_notifications
          where tenant_id = $1 and incident_id = $2 and version = $3 and state <> 'pending'",
        &[&tenant.as_str(), &version.incident, &version.number()],
    )
    .await?;
    Ok(!rows.is_empty())
}

/// Marks the notification `delivered` or `failed` (with why), or records
/// why a try failed while it stays `pending`.
pub async fn finish(
    client: &mut Client,
    tenant: &TenantId,
    webhook_id: &str,
    state: State,
    error: Option<&str>,
    http_status: Option<u16>,
) -> Result<(), StoreError> {
    let state = state.as_str();
    let status = http_status.map(i32::from);
    tenant_query(
        client,
        tenant,
        "update incident_notifications
            set state = $3, last_error = $4, http_status = $5, updated_at = now(),
                delivered_at = case when $3 = 'delivered' then now() end
          where tenant_id = $1 and webhook_id = $2 and state = 'pending'",
        &[&tenant.as_str(), &webhook_id, &state, &error, &status],
    )
    .await?;
    Ok(())
}

/// A notification given up on.
#[derive(Debug, Clone)]
pub struct Failed {
    pub tenant_id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub attempts: i32,
    pub http_status: Option<i32>,
    pub last_error: Option<String>,
    pub failed_at: chrono::DateTime<chrono::Utc>,
}

/// How long a notification may stay pending: longer than every delivery's
/// backoff together (about 65 minutes, `nats/consumers/incident-notifier.json`).
/// One still pending after that had its last delivery end without an answer
/// recorded (the process died, the database was away) and will not be
/// tried again: it is listed with the failed ones.
const STALE_PENDING: &str = "2 hours";

/// The latest notifications given up on, of one tenant or all (the
/// caller's role decides what it may read), and those left pending for
/// longer than every retry takes.
pub async fn failed(
    client: &impl aia_store::GenericClient,
    tenant: Option<&str>,
    limit: i64,
) -> Result<Vec<Failed>, StoreError> {
    Ok(client
        .query(
            "select tenant_id, webhook_id, event_type, attempts, http_status,
                    case when state = 'failed' then last_error
                         else 'no final answer recorded: the last delivery ended without one'
                              || coalesce(' (last error: ' || last_error || ')', '') end,
                    updated_at
               from incident_notifications
              where ($1::text is null or tenant_id = $1)
                and (state = 'failed'
                     or (state = 'pending' and updated_at < now() - $3::text::interval))
              order by updated_at desc limit $2",
            &[&tenant, &limit, &STALE_PENDING],
        )
        .await?
        .iter()
        .map(|row| Failed {
            tenant_id: row.get(0),
            webhook_id: row.get(1),
            event_type: row.get(2),
            attempts: row.get(3),
            http_status: row.get(4),
            last_error: row.get(5),
            failed_at: row.get(6),
        })
        .collect())
}
