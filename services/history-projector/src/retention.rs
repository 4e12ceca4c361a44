//! Purges enhancement history older than the retention period, on a
//! schedule. The stream's max age (`nats/stream.json`) is the same 90 days
//! by default, so a rebuild never resurrects purged runs.

use std::time::Duration;

use aia_store::{Pool, StoreError};

/// Deletes runs received before `now - older_than`; returns how many.
pub async fn purge(db: &Pool, older_than: Duration) -> Result<u64, StoreError> {
    let client = db.get().await?;
    let interval = format!("{} seconds", older_than.as_secs());
    let row = client
        .query_one(
            "select purge_enhancement_history($1::text::interval)",
            &[&interval],
        )
        .await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// Purges every `every` until aborted.
pub async fn run(db: Pool, older_than: Duration, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        match purge(&db, older_than).await {
            Ok(0) => {}
            Ok(n_deleted) => tracing::info!(n_deleted, "Purged enhancement history past retention"),
            Err(err) => tracing::warn!(error = %err, "Retention purge failed; will try again"),
        }
    }
}
