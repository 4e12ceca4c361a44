//! Applies the SQL files of `migrations/` in order, once each.
//!
//! Each migration runs in its own transaction under an advisory lock, so
//! two instances migrating at once cannot interleave. An applied migration
//! whose file has since changed is refused: migrations are append-only.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use crate::StoreError;

/// Every migration, in order. Adding one means adding a file and a line here.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../../migrations/0001_init.sql"),
    ),
    (
        "0002_read_models",
        include_str!("../../../migrations/0002_read_models.sql"),
    ),
    (
        "0003_rebuild",
        include_str!("../../../migrations/0003_rebuild.sql"),
    ),
    (
        "0004_integrations",
        include_str!("../../../migrations/0004_integrations.sql"),
    ),
    (
        "0005_import_progress",
        include_str!("../../../migrations/0005_import_progress.sql"),
    ),
    (
        "0006_budget_alerts",
        include_str!("../../../migrations/0006_budget_alerts.sql"),
    ),
    (
        "0007_dead_letters",
        include_str!("../../../migrations/0007_dead_letters.sql"),
    ),
    (
        "0008_embeddings",
        include_str!("../../../migrations/0008_embeddings.sql"),
    ),
    (
        "0009_tenant_search_indexes",
        include_str!("../../../migrations/0009_tenant_search_indexes.sql"),
    ),
    (
        "0010_admin_console",
        include_str!("../../../migrations/0010_admin_console.sql"),
    ),
    (
        "0011_pause",
        include_str!("../../../migrations/0011_pause.sql"),
    ),
    (
        "0012_hardening",
        include_str!("../../../migrations/0012_hardening.sql"),
    ),
    (
        "0013_help_desks",
        include_str!("../../../migrations/0013_help_desks.sql"),
    ),
    (
        "0014_feedback",
        include_str!("../../../migrations/0014_feedback.sql"),
    ),
    (
        "0015_incidents",
        include_str!("../../../migrations/0015_incidents.sql"),
    ),
    (
        "0016_console_views",
        include_str!("../../../migrations/0016_console_views.sql"),
    ),
    (
        "0017_languages",
        include_str!("../../../migrations/0017_languages.sql"),
    ),
    (
        "0018_window_cache",
        include_str!("../../../migrations/0018_window_cache.sql"),
    ),
    (
        "0019_rated_citations",
        include_str!("../../../migrations/0019_rated_citations.sql"),
    ),
    (
        "0020_incident_members_by_version",
        include_str!("../../../migrations/0020_incident_members_by_version.sql"),
    ),
    (
        "0021_llm_budget_ledger",
        include_str!("../../../migrations/0021_llm_budget_ledger.sql"),
    ),
    (
        "0022_writeback_lease",
        include_str!("../../../migrations/0022_writeback_lease.sql"),
    ),
    (
        "0023_dead_letter_redrives",
        include_str!("../../../migrations/0023_dead_letter_redrives.sql"),
    ),
    (
        "0024_budget_alert_owner",
        include_str!("../../../migrations/0024_budget_alert_owner.sql"),
    ),
    (
        "0025_costed_inputs",
        include_str!("../../../migrations/0025_costed_inputs.sql"),
    ),
    (
        "0026_incident_retention",
        include_str!("../../../migrations/0026_incident_retention.sql"),
    ),
    (
        "0027_incident_messages",
        include_str!("../../../migrations/0027_incident_messages.sql"),
    ),
    (
        "0028_ingress_and_dead_letters",
        include_str!("../../../migrations/0028_ingress_and_dead_letters.sql"),
    ),
    (
        "0029_intake_in_one_statement",
        include_str!("../../../migrations/0029_intake_in_one_statement.sql"),
    ),
];

const LOCK_KEY: i64 = 0x6169_6167_656e_7473; // "aiagents"

/// What [`run`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub already_applied: Vec<String>,
}

pub async fn run(client: &mut Client) -> Result<MigrationReport, StoreError> {
    client
        .batch_execute(
            "create table if not exists schema_migrations (
               version text primary key,
               checksum text not null,
               applied_at timestamptz not null default now())",
        )
        .await?;
    client
        .execute("select pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply_all(client).await;
    client
        .execute("select pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await?;
    result
}

async fn apply_all(client: &mut Client) -> Result<MigrationReport, StoreError> {
    let mut report = MigrationReport::default();
    for (version, sql) in MIGRATIONS {
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        let row = client
            .query_opt(
                "select checksum from schema_migrations where version = $1",
                &[version],
            )
            .await?;
        match row {
            Some(row) => {
                let applied: String = row.get(0);
                if applied != checksum {
                    return Err(StoreError::Corrupt(format!(
                        "migration {version} was changed after it was applied; add a new migration instead"
                    )));
                }
                report.already_applied.push((*version).to_owned());
            }
            None => {
                let tx = client.transaction().await?;
                tx.batch_execute(sql).await?;
                tx.execute(
                    "insert into schema_migrations (version, checksum) values ($1, $2)",
                    &[version, &checksum],
                )
                .await?;
                tx.commit().await?;
                tracing::info!(version, "Applied migration");
                report.applied.push((*version).to_owned());
            }
        }
    }
    Ok(report)
}
