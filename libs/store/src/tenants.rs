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
    /// Whether notes end with "was this helpful?" links.
    pub feedback_links: bool,
    /// An external knowledge base answering
    /// `GET {url}/api/search?query=…&limit=3` (Bearer token in the
    /// tenant's integrations).
    pub knowledge_base_url: Option<String>,
    /// Seconds to wait for the external knowledge base (1–60).
    pub knowledge_base_timeout_secs: u32,
    /// A Prometheus-compatible query API (`{url}/api/v1/query`).
    pub monitoring_url: Option<String>,
    /// PromQL per matched host; `{host}` is replaced by the host name.
    pub monitoring_queries: Vec<MonitoringQuery>,
    /// The tenant's LLM providers in fallback order; empty uses the
    /// deployment's provider. Keys are in the tenant's integrations.
    pub llm_providers: Vec<LlmProviderSettings>,
    /// Mask personal data and secrets before text goes to an LLM.
    pub redact_personal_data: bool,
    /// LLM spend allowed per period, in US dollars; `None` is unlimited.
    pub llm_budget_usd: Option<f64>,
    pub llm_budget_period_days: u32,
    /// Share of the budget at which operators are warned (default 0.8).
    pub llm_budget_alert_ratio: f64,
    /// Share of the budget above which notes use the raw context (default 1.1).
    pub llm_budget_grace_ratio: f64,
    /// Whether the note is visible to the requester (a public comment)
    /// rather than to technicians only (the default).
    pub note_visible_to_requester: bool,
    /// A line put above every note (for example "Suggested by AI Agents").
    pub note_header: Option<String>,
    /// A line put below every note (for example a link to a survey).
    pub note_footer: Option<String>,
    /// How the tenant's tickets and articles are embedded for search by
    /// meaning: the deployment's local model unless an endpoint is named.
    pub embeddings: EmbeddingSettings,
    /// A model the tenant's corpus is being re-embedded with
    /// (`aiagents reembed`); search answers from `embeddings` until every
    /// vector of the new model is in, then the new model takes its place.
    pub embeddings_next: Option<EmbeddingSettings>,
}

/// Where a tenant's embeddings come from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum EmbeddingSettings {
    /// The deployment's all-MiniLM-L6-v2, served by the embedder service.
    #[default]
    Local,
    /// An OpenAI-compatible `POST {base_url}/embeddings` of the tenant's
    /// own provider; its key is in the integrations' `embedding_keys`
    /// under `name`.
    Endpoint(EmbeddingEndpointSettings),
}

/// One OpenAI-compatible embeddings endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingEndpointSettings {
    pub name: String,
    /// `openai` (also LiteLLM, vLLM, Ollama) or `azure`.
    #[serde(default = "default_llm_kind")]
    pub kind: String,
    pub base_url: String,
    pub model: String,
    /// Azure OpenAI's `api-version`.
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default = "default_embedding_timeout")]
    pub timeout_secs: u32,
    /// Least cosine similarity of a search hit with this model; the local
    /// model's default when absent. Calibrate with `aiagents eval-retrieval`.
    #[serde(default)]
    pub min_similarity: Option<f32>,
    /// Cosine similarity from which a hit is a likely match.
    #[serde(default)]
    pub likely_similarity: Option<f32>,
}

fn default_embedding_timeout() -> u32 {
    10
}

/// One LLM provider of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmProviderSettings {
    /// Names the key in the tenant's integrations (`llm_keys`).
    pub name: String,
    /// `openai` (also LiteLLM, vLLM, Ollama) or `azure`.
    #[serde(default = "default_llm_kind")]
    pub kind: String,
    pub base_url: String,
    pub model: String,
    /// Azure OpenAI's `api-version`.
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default = "default_llm_timeout")]
    pub timeout_secs: u32,
}

fn default_llm_kind() -> String {
    "openai".into()
}

fn default_llm_timeout() -> u32 {
    30
}

/// One monitoring check: a PromQL expression and when its value is abnormal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitoringQuery {
    pub name: String,
    /// With `{host}` where the host name goes.
    pub promql: String,
    /// Values above this are reported as abnormal.
    pub above: Option<f64>,
    /// Values below this are reported as abnormal.
    pub below: Option<f64>,
}

impl MonitoringQuery {
    /// The checks used when a tenant names a monitoring URL and no queries.
    pub fn defaults() -> Vec<Self> {
        let query = |name: &str, promql: &str, above: Option<f64>, below: Option<f64>| Self {
            name: name.to_owned(),
            promql: promql.to_owned(),
            above,
            below,
        };
        vec![
            query("up", r#"up{instance=~"{host}(:.*)?"}"#, None, Some(1.0)),
            query(
                "cpu %",
                r#"100 - avg(rate(node_cpu_seconds_total{mode="idle",instance=~"{host}(:.*)?"}[5m])) * 100"#,
                Some(90.0),
                None,
            ),
            query(
                "memory %",
                r#"100 * (1 - node_memory_MemAvailable_bytes{instance=~"{host}(:.*)?"} / node_memory_MemTotal_bytes{instance=~"{host}(:.*)?"})"#,
                Some(90.0),
                None,
            ),
            query(
                "disk %",
                r#"max(100 * (1 - node_filesystem_avail_bytes{instance=~"{host}(:.*)?",fstype!~"tmpfs|overlay"} / node_filesystem_size_bytes{instance=~"{host}(:.*)?",fstype!~"tmpfs|overlay"}))"#,
                Some(90.0),
                None,
            ),
        ]
    }
}

/// Tokens of a tenant's integrations, stored encrypted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct Integrations {
    pub knowledge_base_token: Option<String>,
    pub monitoring_token: Option<String>,
    /// LLM keys by provider name.
    pub llm_keys: std::collections::BTreeMap<String, String>,
    /// Embeddings endpoint keys by name.
    pub embedding_keys: std::collections::BTreeMap<String, String>,
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
            feedback_links: true,
            knowledge_base_url: None,
            knowledge_base_timeout_secs: 10,
            monitoring_url: None,
            monitoring_queries: Vec::new(),
            llm_providers: Vec::new(),
            redact_personal_data: true,
            llm_budget_usd: None,
            llm_budget_period_days: 30,
            llm_budget_alert_ratio: 0.8,
            llm_budget_grace_ratio: 1.1,
            note_visible_to_requester: false,
            note_header: None,
            note_footer: None,
            embeddings: EmbeddingSettings::Local,
            embeddings_next: None,
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
    pub integrations: Integrations,
    /// When any of the above last changed: a cached copy older than the
    /// stored one is stale.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Whether processing is paused (the stages set its events aside).
    pub paused: bool,
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
            &tx.prepare_cached(
                "insert into tenants (tenant_id, name, itsm_kind, itsm_base_url,
                 itsm_credentials_enc, webhook_secret_enc, settings)
             values ($1, $2, $3, $4, $5, $6, $7)",
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
                    webhook_secret_prev_enc, settings, active, integrations_enc, updated_at,
                    paused_at is not null
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
            &tx.prepare_cached(
                "update tenants
                set webhook_secret_prev_enc = webhook_secret_enc,
                    webhook_secret_enc = $2,
                    updated_at = now()
              where tenant_id = $1 and deleted_at is null",
            )
            .await
            .map_err(StoreError::from)?,
            &[
                &tenant_id.as_str(),
                &keyring.encrypt(&secret, &context("webhook_secret", tenant_id)),
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
              where tenant_id = $1 and deleted_at is null",
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
            &tx.prepare_cached("select itsm_credentials_enc, webhook_secret_enc, webhook_secret_prev_enc, integrations_enc
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
    let integrations = fresh(row.get(3), "integrations")?;
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
