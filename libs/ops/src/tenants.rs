//! Tenant administration, shared by the HTTP API and the CLI: create (the
//! webhook secret shown once), list, show, update, soft-delete, rotate the
//! webhook secret, test the help-desk connection. Every answer masks
//! secrets.

mod bound_keys;
pub mod merge;
mod validate;

use std::sync::Arc;

use aia_events::{ItsmKind, TenantId};
use aia_itsm::{Itsm, ItsmError};
use aia_store::tenants::{self, CreateTenantError, TenantSummary, TenantUpdate};
use aia_store::{Keyring, NewTenant, Pool, Secret, StoreError, Tenant, TenantSettings};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use validate::validate_settings;

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("tenant {0} does not exist")]
    NotFound(String),
    #[error("tenant {0} already exists")]
    Duplicate(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} does not exist")]
    Missing(String),
    /// Another change kept landing first (409: try again).
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// JetStream could not be reached or did not answer (503: retry).
    #[error("NATS did not answer while {doing}")]
    Nats {
        doing: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl AdminError {
    /// A NATS failure while `doing` something.
    pub fn nats(
        doing: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Nats {
            doing,
            source: source.into(),
        }
    }
}

/// How long a rotated-out webhook secret stays valid unless said otherwise.
pub const KEEP_PREVIOUS: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The longest a rotated-out secret may stay valid.
pub const MAX_KEEP_PREVIOUS: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

pub struct TenantAdmin {
    pub app: Pool,
    pub admin: Pool,
    /// The admin role's connections for CSV exports, apart from `admin`'s.
    pub exports: Pool,
    pub keyring: Arc<Keyring>,
    pub public_url: String,
    pub http: reqwest::Client,
    /// Settings patches of one tenant take turns in this process.
    pub patches: PatchTurns,
}

/// Turns for settings patches, by tenant (striped: a few locks for any
/// number of tenants). Patches of one tenant sent at once take turns here
/// instead of racing to the conditional write and mostly losing; the
/// conditional write still keeps another process's change.
#[derive(Clone)]
pub struct PatchTurns(Arc<[tokio::sync::Mutex<()>; 64]>);

impl Default for PatchTurns {
    fn default() -> Self {
        Self(Arc::new(std::array::from_fn(|_| {
            tokio::sync::Mutex::new(())
        })))
    }
}

impl PatchTurns {
    fn of(&self, tenant: &TenantId) -> &tokio::sync::Mutex<()> {
        let stripe = tenant.as_str().bytes().fold(0usize, |hash, byte| {
            hash.wrapping_mul(31).wrapping_add(usize::from(byte))
        });
        &self.0[stripe % self.0.len()]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub tenant_id: String,
    pub name: String,
    pub itsm_kind: ItsmKind,
    pub itsm_base_url: String,
    /// Tool-specific, for ServiceDesk Plus `{"authtoken": "…"}`.
    pub itsm_credentials: Value,
    #[serde(default)]
    pub settings: Option<TenantSettings>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub name: Option<String>,
    pub itsm_base_url: Option<String>,
    pub itsm_credentials: Option<Value>,
    pub active: Option<bool>,
    pub settings: Option<TenantSettings>,
}

/// A tenant as operators see it: secrets masked.
#[derive(Debug, Serialize)]
pub struct TenantView {
    pub tenant_id: String,
    pub name: String,
    pub itsm_kind: ItsmKind,
    pub itsm_base_url: String,
    pub itsm_credentials: Value,
    pub webhook_secret: String,
    pub rotation_in_progress: bool,
    pub settings: TenantSettings,
    /// Where incident events are posted, as its origin only (the address,
    /// encrypted with the integrations, may carry a token).
    pub incident_webhook: Option<String>,
    pub active: bool,
    /// Processing paused: the stages set its events aside until resumed.
    pub paused: bool,
    pub webhook_urls: Value,
}

/// Without the credentials.
impl std::fmt::Debug for CreateTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateTenant")
            .field("tenant_id", &self.tenant_id)
            .field("itsm_kind", &self.itsm_kind)
            .field("itsm_base_url", &self.itsm_base_url)
            .finish_non_exhaustive()
    }
}

/// Without the credentials.
impl std::fmt::Debug for UpdateTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateTenant")
            .field("name", &self.name)
            .field("itsm_base_url", &self.itsm_base_url)
            .field(
                "itsm_credentials",
                &self.itsm_credentials.as_ref().map(|_| "…"),
            )
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// Without the new webhook secret.
impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
pub struct Created {
    pub tenant: TenantView,
    /// Shown only in this answer.
    pub webhook_secret: String,
    /// What to set up in the tenant's tool.
    pub setup: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Page {
    pub items: Vec<TenantSummary>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// What technicians think of a tenant's notes.
#[derive(Debug, Serialize, PartialEq)]
pub struct FeedbackStats {
    /// Runs with a rating.
    pub rated: i64,
    pub with_stars: i64,
    pub average_stars: Option<f64>,
    pub with_thumbs: i64,
    /// Share of thumbs that are up, 0 to 1.
    pub thumbs_up_share: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ConnectionTest {
    pub ok: bool,
    pub message: String,
}

fn parse_id(raw: &str) -> Result<TenantId, AdminError> {
    TenantId::parse(raw).map_err(|err| AdminError::Invalid(format!("tenant_id: {err}")))
}

/// A Standard Webhooks secret as receivers read it: `whsec_` and the
/// base64 of at least 16 bytes. Anything else would sign every page with a
/// key the receiver does not have, each refused for good.
fn check_webhook_secret(secret: &str) -> Result<(), AdminError> {
    use base64::Engine as _;
    let decoded = secret.strip_prefix("whsec_").and_then(|encoded| {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
    });
    match decoded {
        Some(key) if key.len() >= 16 => Ok(()),
        _ => Err(AdminError::Invalid(
            "incident_webhook_secret: expected a Standard Webhooks secret, whsec_ and the base64 of at least 16 bytes"
                .into(),
        )),
    }
}

fn mask_credentials(credentials: &Secret) -> Value {
    match serde_json::from_str::<Value>(credentials.expose()) {
        Ok(Value::Object(map)) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let masked = match value {
                        Value::String(text) => Value::String(Secret::new(text).masked()),
                        _ => Value::String("****".into()),
                    };
                    (key, masked)
                })
                .collect(),
        ),
        _ => Value::String("****".into()),
    }
}

impl TenantAdmin {
    /// The tenant's webhook URLs: ServiceDesk Plus's and Jira's (any
    /// tenant may send those), and its own tool's.
    pub fn webhook_urls(&self, tenant_id: &str, kind: ItsmKind) -> Value {
        let base = self.public_url.trim_end_matches('/');
        let mut urls = serde_json::Map::new();
        for kind in [ItsmKind::ServicedeskPlus, ItsmKind::Jira, kind] {
            for (name, url) in crate::onboarding::webhook_urls(base, tenant_id, kind) {
                urls.insert(name.to_owned(), Value::String(url));
            }
        }
        Value::Object(urls)
    }

    /// What to set up in the tenant's tool.
    pub fn setup_steps(&self, tenant_id: &str, kind: ItsmKind) -> Vec<String> {
        crate::onboarding::webhook_urls(&self.public_url, tenant_id, kind)
            .into_iter()
            .map(|(_, url)| crate::onboarding::steps(kind, tenant_id, &url))
            .collect()
    }

    fn view(&self, tenant: &Tenant) -> TenantView {
        TenantView {
            tenant_id: tenant.tenant_id.to_string(),
            name: tenant.name.clone(),
            itsm_kind: tenant.itsm,
            itsm_base_url: tenant.itsm_base_url.clone(),
            itsm_credentials: mask_credentials(&tenant.itsm_credentials),
            webhook_secret: tenant.webhook_secrets[0].masked(),
            rotation_in_progress: tenant.webhook_secrets.len() > 1,
            // An incident webhook an older version left in the settings is
            // shown, as the integrations' is, only as its origin.
            settings: TenantSettings {
                incidents: aia_store::IncidentSettings {
                    webhook_url: None,
                    ..tenant.settings.incidents.clone()
                },
                ..tenant.settings.clone()
            },
            incident_webhook: tenant
                .integrations
                .incident_webhook(&tenant.settings)
                .map(origin_only),
            active: tenant.active,
            paused: tenant.paused,
            webhook_urls: self.webhook_urls(tenant.tenant_id.as_str(), tenant.itsm),
        }
    }

    fn check_itsm(
        &self,
        kind: ItsmKind,
        base_url: &str,
        credentials: &str,
    ) -> Result<(), AdminError> {
        Itsm::for_tenant(self.http.clone(), kind, base_url, credentials)
            .map(|_| ())
            .map_err(|err| AdminError::Invalid(err.0))
    }

    async fn load(&self, tenant_id: &TenantId) -> Result<Tenant, AdminError> {
        let mut client = self.app.get().await.map_err(StoreError::from)?;
        tenants::get(&mut client, &self.keyring, tenant_id)
            .await?
            .ok_or_else(|| AdminError::NotFound(tenant_id.to_string()))
    }

    pub async fn create(&self, request: CreateTenant) -> Result<Created, AdminError> {
        let tenant_id = parse_id(&request.tenant_id)?;
        if request.name.trim().is_empty() {
            return Err(AdminError::Invalid("name: must not be empty".into()));
        }
        if !request.itsm_credentials.is_object() {
            return Err(AdminError::Invalid(
                "itsm_credentials: must be a JSON object".into(),
            ));
        }
        let credentials = request.itsm_credentials.to_string();
        self.check_itsm(request.itsm_kind, &request.itsm_base_url, &credentials)?;
        let mut settings = request.settings.unwrap_or_default();
        validate_settings(&settings)?;
        // Kept with the integrations, encrypted, never in the settings.
        let incident_webhook_url = settings.incidents.webhook_url.take();
        let webhook_secret = Secret::generate_webhook_secret();
        let mut client = self.app.get().await.map_err(StoreError::from)?;
        tenants::create(
            &mut client,
            &self.keyring,
            &NewTenant {
                tenant_id: tenant_id.clone(),
                name: request.name,
                itsm: request.itsm_kind,
                itsm_base_url: request.itsm_base_url,
                itsm_credentials: Secret::new(credentials),
                webhook_secret: webhook_secret.clone(),
                settings,
                integrations: aia_store::Integrations {
                    incident_webhook_url,
                    ..aia_store::Integrations::default()
                },
            },
        )
        .await
        .map_err(|err| match err {
            CreateTenantError::Duplicate(id) => AdminError::Duplicate(id.to_string()),
            CreateTenantError::Store(err) => AdminError::Store(err),
        })?;
        drop(client);
        tracing::info!(tenant_id = %tenant_id, "Tenant created");
        let tenant = self.load(&tenant_id).await?;
        Ok(Created {
            setup: self.setup_steps(tenant.tenant_id.as_str(), tenant.itsm),
            tenant: self.view(&tenant),
            webhook_secret: webhook_secret.expose().to_owned(),
        })
    }

    pub async fn list(
        &self,
        search: Option<&str>,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page, AdminError> {
        let limit = limit.clamp(1, 200);
        let client = self.admin.get().await.map_err(StoreError::from)?;
        let mut items = tenants::list(&client, search, cursor, limit + 1).await?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|tenant| tenant.tenant_id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    pub async fn get(&self, tenant_id: &str) -> Result<TenantView, AdminError> {
        let tenant_id = parse_id(tenant_id)?;
        Ok(self.view(&self.load(&tenant_id).await?))
    }

    pub async fn update(
        &self,
        tenant_id: &str,
        request: UpdateTenant,
    ) -> Result<TenantView, AdminError> {
        let tenant_id = parse_id(tenant_id)?;
        let current = self.load(&tenant_id).await?;
        // Not made from stored settings, so it is never refused for them;
        // it is for a help desk's address that changed meanwhile.
        self.update_from(&tenant_id, current, request, None)
            .await?
            .ok_or_else(|| {
                AdminError::Busy(
                    "the tenant's help-desk address changed while this change was made; \
                     check it and try again"
                        .into(),
                )
            })
    }

    /// Changes some of the tenant's settings (a JSON merge patch, as
    /// `tenant update --settings` takes it) and the other fields of
    /// `request`, from the settings as stored: when another change lands
    /// in between (a console save, a model promoted), the patch is applied
    /// again to what that left, never written over it.
    pub async fn update_patching(
        &self,
        tenant_id: &str,
        request: UpdateTenant,
        patch: &Value,
    ) -> Result<TenantView, AdminError> {
        let tenant_id = parse_id(tenant_id)?;
        let _turn = self.patches.of(&tenant_id).lock().await;
        // The help desk's address the change was made for: an address
        // without credentials, or credentials without an address, are not
        // carried over to another one that landed meanwhile.
        let mut address_made_for: Option<String> = None;
        for _ in 0..5 {
            let mut client = self.app.get().await.map_err(StoreError::from)?;
            let stored = tenants::stored_settings(&mut client, &tenant_id)
                .await?
                .ok_or_else(|| AdminError::NotFound(tenant_id.to_string()))?;
            drop(client);
            let current = self.load(&tenant_id).await?;
            let address = address_made_for.get_or_insert_with(|| current.itsm_base_url.clone());
            let one_of_the_two =
                request.itsm_base_url.is_some() != request.itsm_credentials.is_some();
            if one_of_the_two && *address != current.itsm_base_url {
                return Err(AdminError::Busy(
                    "the tenant's help-desk address changed while this change was made; \
                     check it and try again"
                        .into(),
                ));
            }
            // A value stored before its bounds (read clamped ever since) is
            // saved clamped, not held against a change of something else.
            let settings = merge::patched(
                "settings",
                &current.settings.clone().within_bounds(),
                patch,
                &[],
            )?;
            let request = UpdateTenant {
                settings: Some(settings),
                ..request.clone()
            };
            if let Some(view) = self
                .update_from(&tenant_id, current, request, Some(stored))
                .await?
            {
                return Ok(view);
            }
        }
        Err(AdminError::Busy(
            "the tenant's settings kept changing while this change was made; try again".into(),
        ))
    }

    /// The update of `current` (as loaded) by `request`; `None` when
    /// `settings_were` is given and the stored settings no longer are.
    async fn update_from(
        &self,
        tenant_id: &TenantId,
        current: Tenant,
        request: UpdateTenant,
        settings_were: Option<Value>,
    ) -> Result<Option<TenantView>, AdminError> {
        let tenant_id = tenant_id.clone();
        if let Some(credentials) = &request.itsm_credentials
            && !credentials.is_object()
        {
            return Err(AdminError::Invalid(
                "itsm_credentials: must be a JSON object".into(),
            ));
        }
        let credentials = request.itsm_credentials.as_ref().map(Value::to_string);
        if let Some(url) = &request.itsm_base_url
            && credentials.is_none()
            && !bound_keys::same_origin(url, &current.itsm_base_url)
        {
            return Err(AdminError::Invalid(
                "itsm_credentials: a help desk at another address needs its credentials again \
                 (the stored ones are only ever sent where they were given)"
                    .into(),
            ));
        }
        self.check_itsm(
            current.itsm,
            request
                .itsm_base_url
                .as_deref()
                .unwrap_or(&current.itsm_base_url),
            credentials
                .as_deref()
                .unwrap_or(current.itsm_credentials.expose()),
        )?;
        if let Some(settings) = &request.settings {
            validate_settings(settings)?;
        }
        if request
            .name
            .as_deref()
            .is_some_and(|name| name.trim().is_empty())
        {
            return Err(AdminError::Invalid("name: must not be empty".into()));
        }
        let mut client = self.app.get().await.map_err(StoreError::from)?;
        let mut settings = request.settings;
        let legacy = current.settings.incidents.webhook_url.clone();
        // An incident webhook address given here is kept with the
        // integrations, encrypted, never in the settings. One an older
        // version left in the settings stays where it is (`secrets
        // reencrypt` moves it, once every reader knows the integrations'
        // field): a save that does not name another keeps it.
        let incident_webhook_url = match settings.as_mut() {
            Some(settings) => match settings.incidents.webhook_url.take() {
                Some(url) if Some(&url) == legacy.as_ref() => {
                    settings.incidents.webhook_url = Some(url);
                    None
                }
                Some(url) => Some(url),
                None => {
                    settings.incidents.webhook_url = legacy.clone();
                    None
                }
            },
            None => None,
        };
        // Keys whose address moves to another host are forgotten first: a
        // failure between the two writes leaves them unset, never sent on.
        let moved = settings
            .as_ref()
            .map(|settings| bound_keys::Moved::between(&current.settings, settings))
            .unwrap_or_default();
        // (A new address replaces an old one in the settings: those are
        // written without it.)
        if !moved.is_empty() || incident_webhook_url.is_some() {
            tenants::modify_integrations(&mut client, &self.keyring, &tenant_id, |integrations| {
                moved.forget(integrations);
                if let Some(url) = incident_webhook_url {
                    integrations.incident_webhook_url = Some(url);
                }
            })
            .await?;
            if !moved.is_empty() {
                tracing::info!(tenant_id = %tenant_id, ?moved, "Keys of addresses moved to another host forgotten; set them again");
            }
        }
        // Exactly one of address and credentials: made from the address
        // loaded, and only while it still is.
        let base_url_were = (request.itsm_base_url.is_some() != credentials.is_some())
            .then(|| current.itsm_base_url.clone());
        let conditional = settings_were.is_some() || base_url_were.is_some();
        let update = TenantUpdate {
            settings_were,
            base_url_were,
            name: request.name,
            itsm_base_url: request.itsm_base_url,
            itsm_credentials: credentials.map(Secret::new),
            active: request.active,
            settings,
        };
        if !tenants::update(&mut client, &self.keyring, &tenant_id, &update).await? {
            if conditional {
                return Ok(None);
            }
            return Err(AdminError::NotFound(tenant_id.to_string()));
        }
        // One connection at a time: `load` takes its own.
        drop(client);
        tracing::info!(tenant_id = %tenant_id, "Tenant updated");
        Ok(Some(self.view(&self.load(&tenant_id).await?)))
    }

    /// Stores (encrypted) the key of one of the tenant's LLM providers,
    /// keeping its other integration keys.
    pub async fn set_llm_key(
        &self,
        tenant_id: &str,
        provider: &str,
        key: &str,
    ) -> Result<(), AdminError> {
        let tenant_id = parse_id(tenant_id)?;
        let current = self.load(&tenant_id).await?;
        if !current
            .settings
            .llm_providers
            .iter()
            .any(|p| p.name == provider)
        {
            return Err(AdminError::Invalid(format!(
                "no LLM provider named {provider:?}"
            )));
        }
        let mut client = self.app.get().await.map_err(StoreError::from)?;
        tenants::modify_integrations(&mut client, &self.keyring, &tenant_id, |integrations| {
            integrations
                .llm_keys
                .insert(provider.to_owned(), key.to_owned());
        })
        .await?;
        tracing::info!(tenant_id = %tenant_id, provider, "LLM key replaced");
        Ok(())
    }

    /// Changes some of the tenant's integration tokens and keys, as a JSON
    /// merge patch (`{"llm_keys": {"openai": "sk-…"}}` sets that key and
    /// keeps the others; `null` removes one), under the row's lock, so two
    /// changes at once both land. Answers only which are set.
    pub async fn patch_integrations(
        &self,
        tenant_id: &str,
        patch: &Value,
    ) -> Result<Value, AdminError> {
        // Refused before anything is read: only the shape can be checked
        // without the keys.
        merge::patched(
            "integrations",
            &aia_store::Integrations::default(),
            patch,
            INTEGRATIONS_UNWRITTEN,
        )?;
        let names_webhook = patch.get("incident_webhook_url").is_some();
        self.write_integrations(
            tenant_id,
            |current| merge::patched("integrations", current, patch, INTEGRATIONS_UNWRITTEN),
            names_webhook,
        )
        .await
    }

    /// Replaces the tenant's integration tokens and keys (knowledge base,
    /// monitoring, LLM and embeddings providers, the incident webhook's
    /// secret), encrypted at rest; the incident webhook's address too when
    /// `names_webhook` (the request named it), else it is kept — a client
    /// that predates the address's move into the integrations must not
    /// stop a tenant's paging by saving its keys. Answers only which are
    /// set, never a value.
    pub async fn set_integrations(
        &self,
        tenant_id: &str,
        integrations: aia_store::Integrations,
        names_webhook: bool,
    ) -> Result<Value, AdminError> {
        self.write_integrations(tenant_id, |_| Ok(integrations.clone()), names_webhook)
            .await
    }

    /// The tenant's integrations as `change` makes them, under the row's
    /// lock. The incident webhook address is `change`'s when
    /// `names_webhook` (and one an older version left in the settings is
    /// removed from them), else the one held stays.
    async fn write_integrations(
        &self,
        tenant_id: &str,
        change: impl FnOnce(&aia_store::Integrations) -> Result<aia_store::Integrations, AdminError>,
        names_webhook: bool,
    ) -> Result<Value, AdminError> {
        let tenant_id = parse_id(tenant_id)?;
        let mut client = self.app.get().await.map_err(StoreError::from)?;
        let mut outcome = Ok(aia_store::Integrations::default());
        let found =
            tenants::modify_integrations(&mut client, &self.keyring, &tenant_id, |integrations| {
                outcome = change(integrations).and_then(|mut changed| {
                    if names_webhook {
                        check_webhook_url(changed.incident_webhook_url.as_deref())?;
                    } else {
                        // Not named: kept as it is, and not checked again
                        // (an address saved under older rules must not
                        // block rotating a leaked key).
                        changed.incident_webhook_url = integrations.incident_webhook_url.clone();
                    }
                    if let Some(secret) = &changed.incident_webhook_secret {
                        check_webhook_secret(secret)?;
                    }
                    *integrations = changed.clone();
                    Ok(changed)
                });
            })
            .await?;
        if !found {
            return Err(AdminError::NotFound(tenant_id.to_string()));
        }
        let integrations = outcome?;
        if names_webhook {
            // The address named here is the tenant's: one an older version
            // left in the settings goes (only that key is removed).
            tenants::forget_settings_incident_webhook(&mut client, &tenant_id).await?;
        }
        tracing::info!(tenant_id = %tenant_id, "Tenant integrations changed");
        Ok(integrations_set(&integrations))
    }

    pub async fn delete(&self, tenant_id: &str) -> Result<(), AdminError> {
        let tenant_id = parse_id(tenant_id)?;
        let mut client = self.app.get().await.map_err(StoreError::from)?;
        if !tenants::soft_delete(&mut client, &tenant_id).await? {
            return Err(AdminError::NotFound(tenant_id.to_string()));
        }
        tracing::info!(tenant_id = %tenant_id, "Tenant deleted");
        Ok(())
    }

    /// A new webhook secret, shown once. The old one stays valid for
    /// `keep_previous` so senders can be switched over ([`KEEP_PREVIOUS`]
    /// unless said otherwise); zero revokes it at once (a leaked secret).
    pub async fn rotate_secret(
        &self,
        tenant_id: &str,
        keep_previous: std::time::Duration,
    ) -> Result<String, AdminError> {
        let tenant_id = parse_id(tenant_id)?;
        if keep_previous > MAX_KEEP_PREVIOUS {
            return Err(AdminError::Invalid(format!(
                "the previous secret can stay valid for at most {} hours",
                MAX_KEEP_PREVIOUS.as_secs() / 3600
            )));
        }
        let mut client = self.app.get().await.map_err(StoreError::from)?;
        let rotated =
            tenants::rotate_webhook_secret(&mut client, &self.keyring, &tenant_id, keep_previous)
                .await?;
        drop(client);
        let Some(secret) = rotated else {
            // The tenant exists: an earlier rotation's previous secret is
            // still valid, and a second would cut off whichever secret the
            // help desk still sends.
            self.load(&tenant_id).await?;
            return Err(AdminError::Invalid(
                "a rotation is already under way: its previous secret is still valid. \
                 End the rotation first (end-rotation: the previous secret stops, the \
                 current one stays), or rotate and revoke the old secret now \
                 (revoke_previous: every secret but the new one stops at once)"
                    .into(),
            ));
        };
        tracing::info!(
            tenant_id = %tenant_id,
            keep_previous_secs = keep_previous.as_secs(),
            "Webhook secret rotated"
        );
        Ok(secret.expose().to_owned())
    }

    /// Ends a rotation early: the previous secret stops working (its
    /// senders are switched over, or it leaked), the current one stays.
    pub async fn end_rotation(&self, tenant_id: &str) -> Result<(), AdminError> {
        let tenant_id = parse_id(tenant_id)?;
        let mut client = self.app.get().await.map_err(StoreError::from)?;
        if !tenants::end_rotation(&mut client, &tenant_id).await? {
            return Err(AdminError::NotFound(tenant_id.to_string()));
        }
        tracing::info!(tenant_id = %tenant_id, "Webhook secret rotation ended; the previous secret is revoked");
        Ok(())
    }

    pub async fn feedback_stats(&self, tenant_id: &str) -> Result<FeedbackStats, AdminError> {
        let tenant_id = parse_id(tenant_id)?;
        self.load(&tenant_id).await?;
        let client = self.admin.get().await.map_err(StoreError::from)?;
        let row = client
            .query_one(
                "select count(*) filter (where rated_at is not null),
                        count(rating_stars), avg(rating_stars)::float8,
                        count(rating_thumbs_up),
                        (count(*) filter (where rating_thumbs_up))::float8
                          / nullif(count(rating_thumbs_up), 0)
                   from enhancement_history where tenant_id = $1",
                &[&tenant_id.as_str()],
            )
            .await
            .map_err(StoreError::from)?;
        Ok(FeedbackStats {
            rated: row.get(0),
            with_stars: row.get(1),
            average_stars: row.get(2),
            with_thumbs: row.get(3),
            thumbs_up_share: row.get(4),
        })
    }

    pub async fn test_connection(&self, tenant_id: &str) -> Result<ConnectionTest, AdminError> {
        let tenant_id = parse_id(tenant_id)?;
        let tenant = self.load(&tenant_id).await?;
        let itsm = Itsm::for_tenant(
            self.http.clone(),
            tenant.itsm,
            &tenant.itsm_base_url,
            tenant.itsm_credentials.expose(),
        )
        .map_err(|err| AdminError::Invalid(err.0))?;
        Ok(match itsm.test_connection().await {
            Ok(()) => ConnectionTest {
                ok: true,
                message: format!(
                    "{} answered and accepted the credentials",
                    tenant.itsm.as_str()
                ),
            },
            Err(ItsmError::Permanent { reason, .. } | ItsmError::Transient { reason, .. }) => {
                ConnectionTest {
                    ok: false,
                    message: reason,
                }
            }
        })
    }
}

/// Integrations' fields not written when unset, so not among the names
/// their default shows.
const INTEGRATIONS_UNWRITTEN: &[&str] = &["incident_webhook_url"];

/// An incident webhook address the deployment may call: http or https,
/// to an address outbound calls may reach.
fn check_webhook_url(url: Option<&str>) -> Result<(), AdminError> {
    if let Some(url) = url {
        let invalid = |why: String| AdminError::Invalid(format!("incident_webhook_url: {why}"));
        aia_http::outbound::check_url(url).map_err(|err| invalid(err.to_string()))?;
        if !is_http(url) {
            return Err(invalid("must be an http or https address".into()));
        }
    }
    Ok(())
}

/// Whether `url` is an http or https address (what the notifier posts to).
fn is_http(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|url| matches!(url.scheme(), "http" | "https"))
}

/// An address as its scheme and host (and port), for showing where
/// something goes without what its path or query may carry.
fn origin_only(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => format!("{}/…", url.origin().ascii_serialization()),
        Err(_) => "(not a URL)".into(),
    }
}

/// Which integration tokens and keys are set, never a value.
fn integrations_set(integrations: &aia_store::Integrations) -> Value {
    serde_json::json!({
        "incident_webhook_url": integrations.incident_webhook_url.is_some(),
        "knowledge_base_token": integrations.knowledge_base_token.is_some(),
        "incident_webhook_secret": integrations.incident_webhook_secret.is_some(),
        "monitoring_token": integrations.monitoring_token.is_some(),
        "llm_keys": integrations.llm_keys.keys().collect::<Vec<_>>(),
        "embedding_keys": integrations.embedding_keys.keys().collect::<Vec<_>>(),
    })
}
