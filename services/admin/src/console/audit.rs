//! The audit log: every state-changing action in the console, with who,
//! what, when and which tenant.

use aia_store::{Pool, StoreError};
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub username: String,
    pub action: String,
    pub tenant_id: Option<String>,
    pub detail: Value,
}

/// Records an action. `detail` must never hold a secret.
pub async fn record(
    admin: &Pool,
    username: &str,
    action: &str,
    tenant_id: Option<&str>,
    detail: Value,
) -> Result<(), StoreError> {
    let client = admin.get().await?;
    client
        .execute(
            "insert into console_audit (username, action, tenant_id, detail) values ($1, $2, $3, $4)",
            &[&username, &action, &tenant_id, &detail],
        )
        .await?;
    Ok(())
}

/// The newest entries, optionally of one tenant, before the entry id
/// `before` (keyset pagination).
pub async fn list(
    admin: &Pool,
    tenant_id: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<(Vec<Entry>, Option<i64>), StoreError> {
    let client = admin.get().await?;
    let rows = client
        .query(
            "select audit_id, at, username, action, tenant_id, detail from console_audit
              where ($1::text is null or tenant_id = $1) and ($2::int8 is null or audit_id < $2)
              order by audit_id desc limit $3",
            &[&tenant_id, &before, &(limit + 1)],
        )
        .await?;
    let more = rows.len() as i64 > limit;
    let entries: Vec<(i64, Entry)> = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|row| {
            (
                row.get(0),
                Entry {
                    at: row.get(1),
                    username: row.get(2),
                    action: row.get(3),
                    tenant_id: row.get(4),
                    detail: row.get(5),
                },
            )
        })
        .collect();
    let next = if more {
        entries.last().map(|(id, _)| *id)
    } else {
        None
    };
    Ok((entries.into_iter().map(|(_, entry)| entry).collect(), next))
}
