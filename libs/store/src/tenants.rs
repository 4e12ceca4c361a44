//! The tenants table: who may send us webhooks, where their help desk is,
//! and how their tickets are enhanced. Secrets are stored encrypted and only
//! ever decrypted into [`Secret`] values.

use aia_events::{ItsmKind, TenantId};
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;

use crate::secrets::{Keyring, Secret};
use crate::{Client, StoreError, tenant_transaction};

/// Per-tenant switches and limits. Every field has a default, so settings
/// written by an older version still read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    /// Upper bound on the note's length in words (100–2000).
    pub max_note_words: u32,
    pub similar_tickets_enabled: bool,
    pub knowledge_base_enabled: bool,
    pub inventory_enabled: bool,
    pub monitoring_enabled: bool,
    /// Accepted webhooks per minute and endpoint; `None` is the deployment's
    /// default.
    pub webhook_rate_limit_per_minute: Option<u32>,
    /// Whether a static shared-secret header authenticates webhooks, for
    /// tools that cannot sign (ServiceDesk Plus's native webhooks).
    pub allow_static_secret: bool,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            max_note_words: 500,
            similar_tickets_enabled: true,
            knowledge_base_enabled: true,
            inventory_enabled: true,
            monitoring_enabled: false,
            webhook_rate_limit_per_minute: None,
            allow_static_secret: true,
        }
    }
}

/// A tenant as the services use it, with its secrets decrypted.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub tenant_id: TenantId,
    pub name: String,
    pub itsm: ItsmKind,
    pub itsm_base_url: String,
    /// Tool-specific credentials as JSON (for ServiceDesk Plus on-prem:
    /// `{"authtoken": "…"}`).
    pub itsm_credentials: Secret,
    /// The current webhook secret first, then the previous one while a
    /// rotation is under way.
    pub webhook_secrets: Vec<Secret>,
    pub settings: TenantSettings,
    pub active: bool,
}

/// What it takes to create a tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub tenant_id: TenantId,
    pub name: String,
    pub itsm: ItsmKind,
    pub itsm_base_url: String,
    pub itsm_credentials: Secret,
    pub webhook_secret: Secret,
    pub settings: TenantSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateTenantError {
    #[error("tenant {0} already exists")]
    Duplicate(TenantId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn context(column: &str, tenant: &TenantId) -> String {
    format!("tenants.{column}:{tenant}")
}

pub async fn create(
    client: &mut Client,
    keyring: &Keyring,
    tenant: &NewTenant,
) -> Result<(), CreateTenantError> {
    let id = &tenant.tenant_id;
    let tx = tenant_transaction(client, id).await?;
    let settings = serde_json::to_value(&tenant.settings).expect("settings serialise");
    let result = tx
        .execute(
            "insert into tenants (tenant_id, name, itsm_kind, itsm_base_url,
                 itsm_credentials_enc, webhook_secret_enc, settings)
             values ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &id.as_str(),
                &tenant.name,
                &tenant.itsm.as_str(),
                &tenant.itsm_base_url,
                &keyring.encrypt(&tenant.itsm_credentials, &context("itsm_credentials", id)),
                &keyring.encrypt(&tenant.webhook_secret, &context("webhook_secret", id)),
                &settings,
            ],
        )
        .await;
    match result {
        Ok(_) => {}
        Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(CreateTenantError::Duplicate(id.clone()));
        }
        Err(err) => return Err(StoreError::from(err).into()),
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// The tenant, unless it does not exist or was deleted.
pub async fn get(
    client: &mut Client,
    keyring: &Keyring,
    tenant_id: &TenantId,
) -> Result<Option<Tenant>, StoreError> {
    let tx = tenant_transaction(client, tenant_id).await?;
    let row = tx
        .query_opt(
            "select name, itsm_kind, itsm_base_url, itsm_credentials_enc, webhook_secret_enc,
                    webhook_secret_prev_enc, settings, active
               from tenants where tenant_id = $1 and deleted_at is null",
            &[&tenant_id.as_str()],
        )
        .await?;
    tx.commit().await?;
    let Some(row) = row else { return Ok(None) };
    let itsm_kind: String = row.get(1);
    let itsm: ItsmKind = serde_json::from_value(serde_json::Value::String(itsm_kind.clone()))
        .map_err(|_| StoreError::Corrupt(format!("unknown ITSM kind {itsm_kind:?}")))?;
    let credentials: Vec<u8> = row.get(3);
    let secret: Vec<u8> = row.get(4);
    let previous: Option<Vec<u8>> = row.get(5);
    let mut webhook_secrets =
        vec![keyring.decrypt(&secret, &context("webhook_secret", tenant_id))?];
    if let Some(previous) = previous {
        webhook_secrets.push(keyring.decrypt(&previous, &context("webhook_secret", tenant_id))?);
    }
    let settings: serde_json::Value = row.get(6);
    Ok(Some(Tenant {
        tenant_id: tenant_id.clone(),
        name: row.get(0),
        itsm,
        itsm_base_url: row.get(2),
        itsm_credentials: keyring.decrypt(&credentials, &context("itsm_credentials", tenant_id))?,
        webhook_secrets,
        settings: serde_json::from_value(settings)
            .map_err(|err| StoreError::Corrupt(format!("tenant settings: {err}")))?,
        active: row.get(7),
    }))
}

/// A tenant's settings and whether it is active, without touching secrets:
/// for stages that have no business decrypting them.
pub async fn settings(
    client: &mut Client,
    tenant_id: &TenantId,
) -> Result<Option<(TenantSettings, bool)>, StoreError> {
    let tx = tenant_transaction(client, tenant_id).await?;
    let row = tx
        .query_opt(
            "select settings, active from tenants where tenant_id = $1 and deleted_at is null",
            &[&tenant_id.as_str()],
        )
        .await?;
    tx.commit().await?;
    row.map(|row| {
        let settings: serde_json::Value = row.get(0);
        let settings = serde_json::from_value(settings)
            .map_err(|err| StoreError::Corrupt(format!("tenant settings: {err}")))?;
        Ok((settings, row.get(1)))
    })
    .transpose()
}

/// Replaces the webhook secret with a new random one, keeping the current
/// one valid as the previous secret until the next rotation. Returns the new
/// secret (to show once), or `None` when the tenant does not exist.
pub async fn rotate_webhook_secret(
    client: &mut Client,
    keyring: &Keyring,
    tenant_id: &TenantId,
) -> Result<Option<Secret>, StoreError> {
    let secret = Secret::generate(32);
    let tx = tenant_transaction(client, tenant_id).await?;
    let updated = tx
        .execute(
            "update tenants
                set webhook_secret_prev_enc = webhook_secret_enc,
                    webhook_secret_enc = $2,
                    updated_at = now()
              where tenant_id = $1 and deleted_at is null",
            &[
                &tenant_id.as_str(),
                &keyring.encrypt(&secret, &context("webhook_secret", tenant_id)),
            ],
        )
        .await?;
    tx.commit().await?;
    Ok((updated == 1).then_some(secret))
}
