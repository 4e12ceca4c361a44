//! The tenants table: who may send us webhooks, where their help desk is,
//! and how their tickets are enhanced (the types are in
//! [`crate::tenant_settings`]). Secrets are stored encrypted and only ever
//! decrypted into [`Secret`] values.

use aia_events::{ItsmKind, TenantId};
use serde::Serialize;
use tokio_postgres::error::SqlState;

use crate::secrets::{Keyring, Secret};
use crate::{Client, StoreError, tenant_query, tenant_transaction};

pub use crate::tenant_settings::{
    EmbeddingEndpointSettings, EmbeddingSettings, Integrations, LlmProviderSettings,
    MonitoringQuery, NewTenant, Tenant, TenantSettings,
};

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
    let integrations = (tenant.integrations != Integrations::default()).then(|| {
        let json = Secret::new(
            serde_json::to_string(&tenant.integrations).expect("integrations serialise"),
        );
        keyring.encrypt(&json, &context("integrations", id))
    });
    let result = tx
        .execute(
            &tx.prepare_cached(
                "insert into tenants (tenant_id, name, itsm_kind, itsm_base_url,
                 itsm_credentials_enc, webhook_secret_enc, settings, integrations_enc)
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .await
            .map_err(StoreError::from)?,
            &[
                &id.as_str(),
                &tenant.name,
                &tenant.itsm.as_str(),
                &tenant.itsm_base_url,
                &keyring.encrypt(&tenant.itsm_credentials, &context("itsm_credentials", id)),
                &keyring.encrypt(&tenant.webhook_secret, &context("webhook_secret", id)),
                &settings,
                &integrations,
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
            &tx.prepare_cached(
                "select name, itsm_kind, itsm_base_url, itsm_credentials_enc, webhook_secret_enc,
                    case when webhook_secret_prev_expires_at > now() then webhook_secret_prev_enc end,
                    settings, active, integrations_enc, updated_at, paused_at is not null
               from tenants where tenant_id = $1 and deleted_at is null",
            )
            .await
            .map_err(StoreError::from)?,
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
    let integrations: Option<Vec<u8>> = row.get(8);
    let integrations = match integrations {
        Some(stored) => {
            let json = keyring.decrypt(&stored, &context("integrations", tenant_id))?;
            serde_json::from_str(json.expose())
                .map_err(|err| StoreError::Corrupt(format!("tenant integrations: {err}")))?
        }
        None => Integrations::default(),
    };
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
        integrations,
        updated_at: row.get(9),
        paused: row.get(10),
    }))
}

/// Stores the tenant's integration tokens (encrypted); false when the
/// tenant does not exist.
pub async fn set_integrations(
    client: &mut Client,
    keyring: &Keyring,
    tenant_id: &TenantId,
    integrations: &Integrations,
) -> Result<bool, StoreError> {
    let json = Secret::new(serde_json::to_string(integrations).expect("integrations serialise"));
    let stored = keyring.encrypt(&json, &context("integrations", tenant_id));
    let tx = tenant_transaction(client, tenant_id).await?;
    let n_updated = tx
        .execute(
            &tx.prepare_cached(
                "update tenants set integrations_enc = $2, updated_at = now()
              where tenant_id = $1 and deleted_at is null",
            )
            .await
            .map_err(StoreError::from)?,
            &[&tenant_id.as_str(), &stored],
        )
        .await?;
    tx.commit().await?;
    Ok(n_updated == 1)
}

/// Changes some of the tenant's integration tokens and keeps the rest, as
/// one read-modify-write under the tenant row's lock: two operators, one
/// saving an LLM key and one replacing a leaked webhook secret at once,
/// each keep the other's change. False when there is no such tenant.
pub async fn modify_integrations(
    client: &mut Client,
    keyring: &Keyring,
    tenant_id: &TenantId,
    change: impl FnOnce(&mut Integrations),
) -> Result<bool, StoreError> {
    let tx = tenant_transaction(client, tenant_id).await?;
    let row = tx
        .query_opt(
            &tx.prepare_cached(
                "select integrations_enc from tenants
                  where tenant_id = $1 and deleted_at is null for update",
            )
            .await
            .map_err(StoreError::from)?,
            &[&tenant_id.as_str()],
        )
        .await?;
    let Some(row) = row else { return Ok(false) };
    let stored: Option<Vec<u8>> = row.get(0);
    let mut integrations: Integrations = match stored {
        Some(stored) => {
            let json = keyring.decrypt(&stored, &context("integrations", tenant_id))?;
            serde_json::from_str(json.expose())
                .map_err(|err| StoreError::Corrupt(format!("tenant integrations: {err}")))?
        }
        None => Integrations::default(),
    };
    change(&mut integrations);
    let json = Secret::new(serde_json::to_string(&integrations).expect("integrations serialise"));
    let stored = keyring.encrypt(&json, &context("integrations", tenant_id));
    tx.execute(
        &tx.prepare_cached(
            "update tenants set integrations_enc = $2, updated_at = now() where tenant_id = $1",
        )
        .await
        .map_err(StoreError::from)?,
        &[&tenant_id.as_str(), &stored],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// The tenant's settings as stored (the JSON itself, for a change made
/// from them: see [`TenantUpdate::settings_were`]).
pub async fn stored_settings(
    client: &mut Client,
    tenant_id: &TenantId,
) -> Result<Option<serde_json::Value>, StoreError> {
    let rows = tenant_query(
        client,
        tenant_id,
        "select settings from tenants where tenant_id = $1 and deleted_at is null",
        &[&tenant_id.as_str()],
    )
    .await?;
    Ok(rows.first().map(|row| row.get(0)))
}

/// Removes the incident webhook address an older version kept in the
/// tenant's settings (only that key: the rest of the settings is not
/// rewritten, so a change made meanwhile stays).
pub async fn forget_settings_incident_webhook(
    client: &mut Client,
    tenant_id: &TenantId,
) -> Result<(), StoreError> {
    tenant_query(
        client,
        tenant_id,
        "update tenants set settings = settings #- '{incidents,webhook_url}', updated_at = now()
          where tenant_id = $1 and settings #>> '{incidents,webhook_url}' is not null",
        &[&tenant_id.as_str()],
    )
    .await?;
    Ok(())
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
            &tx.prepare_cached(
                "select settings, active from tenants where tenant_id = $1 and deleted_at is null",
            )
            .await
            .map_err(StoreError::from)?,
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

/// Replaces the webhook secret with a new random one. The current one
/// stays valid as the previous secret for `keep_previous` (senders are
/// switched over meanwhile); with zero it is revoked at once. Returns the
/// new secret (to show once), or `None` when the tenant does not exist.
pub async fn rotate_webhook_secret(
    client: &mut Client,
    keyring: &Keyring,
    tenant_id: &TenantId,
    keep_previous: std::time::Duration,
) -> Result<Option<Secret>, StoreError> {
    let secret = Secret::generate_webhook_secret();
    let keep = keep_previous.as_secs_f64();
    let tx = tenant_transaction(client, tenant_id).await?;
    let updated = tx
        .execute(
            &tx.prepare_cached(
                "update tenants
                set webhook_secret_prev_enc = case when $3::float8 > 0 then webhook_secret_enc end,
                    webhook_secret_prev_expires_at =
                        case when $3::float8 > 0 then now() + make_interval(secs => $3::float8) end,
                    webhook_secret_enc = $2,
                    updated_at = now()
              where tenant_id = $1 and deleted_at is null
                -- A rotation that keeps the previous secret is refused
                -- while an earlier one's previous is still valid: a second
                -- would drop the secret the help desk may still send.
                and ($3::float8 <= 0 or webhook_secret_prev_expires_at is null
                     or webhook_secret_prev_expires_at <= now())",
            )
            .await
            .map_err(StoreError::from)?,
            &[
                &tenant_id.as_str(),
                &keyring.encrypt(&secret, &context("webhook_secret", tenant_id)),
                &keep,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok((updated == 1).then_some(secret))
}

/// What an operator sees of a tenant in a list: no secrets at all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantSummary {
    pub tenant_id: String,
    pub name: String,
    pub itsm: String,
    pub itsm_base_url: String,
    pub active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Tenants whose id or name contains `search`, ordered by id, after the
/// cursor `after` (keyset pagination). Needs a connection as the admin role,
/// which reads across tenants.
/// Ends a rotation early: the previous webhook secret stops working, the
/// current one stays. False when there is no such tenant.
pub async fn end_rotation(client: &mut Client, tenant_id: &TenantId) -> Result<bool, StoreError> {
    let updated = tenant_query(
        client,
        tenant_id,
        "update tenants
            set webhook_secret_prev_enc = null, webhook_secret_prev_expires_at = null,
                updated_at = now()
          where tenant_id = $1 and deleted_at is null
          returning 1",
        &[&tenant_id.as_str()],
    )
    .await?;
    Ok(!updated.is_empty())
}

pub async fn list(
    admin: &tokio_postgres::Client,
    search: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<TenantSummary>, StoreError> {
    let pattern = search.map(|text| {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows = admin
        .query(
            "select tenant_id, name, itsm_kind, itsm_base_url, active, created_at, updated_at
               from tenants
              where deleted_at is null
                and ($1::text is null or tenant_id ilike $1 or name ilike $1)
                and ($2::text is null or tenant_id > $2)
              order by tenant_id
              limit $3",
            &[&pattern, &after, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| TenantSummary {
            tenant_id: row.get(0),
            name: row.get(1),
            itsm: row.get(2),
            itsm_base_url: row.get(3),
            active: row.get(4),
            created_at: row.get(5),
            updated_at: row.get(6),
        })
        .collect())
}

/// A change to a tenant; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TenantUpdate {
    /// The settings as stored when the change was made from them: the
    /// change is made only while they still are (a read-modify-write that
    /// would undo a change made meanwhile changes nothing instead).
    pub settings_were: Option<serde_json::Value>,
    /// The help desk's address as stored when the change was made: a new
    /// address without credentials, or credentials without an address,
    /// land only while it still is (the stored credentials go only to the
    /// origin they were given for, and new ones only to the origin they
    /// were meant for).
    pub base_url_were: Option<String>,
    pub name: Option<String>,
    pub itsm_base_url: Option<String>,
    pub itsm_credentials: Option<Secret>,
    pub active: Option<bool>,
    pub settings: Option<TenantSettings>,
}

/// Applies `update`; false when the tenant does not exist or was deleted.
pub async fn update(
    client: &mut Client,
    keyring: &Keyring,
    tenant_id: &TenantId,
    update: &TenantUpdate,
) -> Result<bool, StoreError> {
    let credentials = update
        .itsm_credentials
        .as_ref()
        .map(|secret| keyring.encrypt(secret, &context("itsm_credentials", tenant_id)));
    let settings = update
        .settings
        .as_ref()
        .map(|settings| serde_json::to_value(settings).expect("settings serialise"));
    let tx = tenant_transaction(client, tenant_id).await?;
    let n_updated = tx
        .execute(
            &tx.prepare_cached(
                "update tenants
                set name = coalesce($2, name),
                    itsm_base_url = coalesce($3, itsm_base_url),
                    itsm_credentials_enc = coalesce($4, itsm_credentials_enc),
                    active = coalesce($5, active),
                    settings = coalesce($6, settings),
                    updated_at = now()
              where tenant_id = $1 and deleted_at is null
                and ($7::jsonb is null or settings = $7::jsonb)
                and ($8::text is null or itsm_base_url = $8)",
            )
            .await
            .map_err(StoreError::from)?,
            &[
                &tenant_id.as_str(),
                &update.name,
                &update.itsm_base_url,
                &credentials,
                &update.active,
                &settings,
                &update.settings_were,
                &update.base_url_were,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(n_updated == 1)
}

/// Pauses or resumes the tenant's processing; false when it does not exist.
/// Resuming leaves its set-aside events to [`crate::parking`].
pub async fn set_paused(
    client: &mut Client,
    tenant_id: &TenantId,
    paused: bool,
) -> Result<bool, StoreError> {
    let tx = tenant_transaction(client, tenant_id).await?;
    let n = tx
        .execute(
            "update tenants set paused_at = case when $2 then coalesce(paused_at, now()) end, updated_at = now()
              where tenant_id = $1 and deleted_at is null",
            &[&tenant_id.as_str(), &paused],
        )
        .await?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Marks the tenant deleted and inactive; its rows stay for the record.
/// False when it does not exist or was already deleted.
pub async fn soft_delete(client: &mut Client, tenant_id: &TenantId) -> Result<bool, StoreError> {
    let tx = tenant_transaction(client, tenant_id).await?;
    let n_updated = tx
        .execute(
            &tx.prepare_cached(
                "update tenants set deleted_at = now(), active = false, updated_at = now()
              where tenant_id = $1 and deleted_at is null",
            )
            .await
            .map_err(StoreError::from)?,
            &[&tenant_id.as_str()],
        )
        .await?;
    tx.commit().await?;
    Ok(n_updated == 1)
}

/// Re-encrypts every secret of the tenant with the keyring's primary key;
/// returns how many values were rewritten.
pub async fn reencrypt(
    client: &mut Client,
    keyring: &Keyring,
    tenant_id: &TenantId,
) -> Result<usize, StoreError> {
    let tx = tenant_transaction(client, tenant_id).await?;
    let Some(row) = tx
        .query_opt(
            &tx.prepare_cached("select itsm_credentials_enc, webhook_secret_enc, webhook_secret_prev_enc, integrations_enc, settings
               from tenants where tenant_id = $1 for update").await.map_err(StoreError::from)?,
            &[&tenant_id.as_str()],
        )
        .await?
    else {
        return Ok(0);
    };
    let mut rewritten = 0;
    let mut fresh =
        |stored: Option<Vec<u8>>, column: &str| -> Result<Option<Vec<u8>>, StoreError> {
            let Some(stored) = stored else {
                return Ok(None);
            };
            let place = context(column, tenant_id);
            if Keyring::key_id_of(&stored) == Some(keyring.primary_key_id()) {
                return Ok(Some(stored));
            }
            rewritten += 1;
            Ok(Some(
                keyring.encrypt(&keyring.decrypt(&stored, &place)?, &place),
            ))
        };
    let credentials = fresh(row.get(0), "itsm_credentials")?;
    let secret = fresh(row.get(1), "webhook_secret")?;
    let previous = fresh(row.get(2), "webhook_secret")?;
    let mut integrations = fresh(row.get(3), "integrations")?;
    // An incident webhook address an older version kept in the settings,
    // in plain text, moves into the integrations, encrypted.
    let mut settings: TenantSettings = serde_json::from_value(row.get(4))
        .map_err(|err| StoreError::Corrupt(format!("tenant settings: {err}")))?;
    if let Some(url) = settings.incidents.webhook_url.take() {
        let place = context("integrations", tenant_id);
        let mut held: Integrations = match &integrations {
            Some(stored) => serde_json::from_str(keyring.decrypt(stored, &place)?.expose())
                .map_err(|err| StoreError::Corrupt(format!("tenant integrations: {err}")))?,
            None => Integrations::default(),
        };
        held.incident_webhook_url.get_or_insert(url);
        let json = Secret::new(serde_json::to_string(&held).expect("integrations serialise"));
        integrations = Some(keyring.encrypt(&json, &place));
        tx.execute(
            &tx.prepare_cached("update tenants set settings = $2 where tenant_id = $1")
                .await
                .map_err(StoreError::from)?,
            &[
                &tenant_id.as_str(),
                &serde_json::to_value(&settings).expect("settings serialise"),
            ],
        )
        .await?;
        rewritten += 1;
    }
    tx.execute(
        &tx.prepare_cached(
            "update tenants set itsm_credentials_enc = $2, webhook_secret_enc = $3,
                webhook_secret_prev_enc = $4, integrations_enc = $5
          where tenant_id = $1",
        )
        .await
        .map_err(StoreError::from)?,
        &[
            &tenant_id.as_str(),
            &credentials,
            &secret,
            &previous,
            &integrations,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(rewritten)
}

/// Makes the model the tenant's corpus was re-embedded with its active
/// one, if it is still the one waiting (`embeddings_next`); returns whether
/// it did. Other settings are left as they are now.
pub async fn promote_embeddings(
    client: &mut Client,
    tenant_id: &TenantId,
    expected_next: &EmbeddingSettings,
) -> Result<bool, StoreError> {
    let tx = tenant_transaction(client, tenant_id).await?;
    let Some(row) = tx
        .query_opt(
            &tx.prepare_cached("select settings from tenants where tenant_id = $1 and deleted_at is null for update").await.map_err(StoreError::from)?,
            &[&tenant_id.as_str()],
        )
        .await?
    else {
        return Ok(false);
    };
    let mut settings: TenantSettings = serde_json::from_value(row.get(0))
        .map_err(|err| StoreError::Corrupt(format!("tenant settings: {err}")))?;
    if settings.embeddings_next.as_ref() != Some(expected_next) {
        return Ok(false);
    }
    settings.embeddings = settings.embeddings_next.take().unwrap_or_default();
    let value = serde_json::to_value(&settings).expect("settings serialise");
    tx.execute(
        &tx.prepare_cached(
            "update tenants set settings = $2, updated_at = now() where tenant_id = $1",
        )
        .await
        .map_err(StoreError::from)?,
        &[&tenant_id.as_str(), &value],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
