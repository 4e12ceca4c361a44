//! A tenant's settings form: name, help-desk address and credentials,
//! context-source switches, note options, the LLM provider chain and a
//! provider's key, the budget.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::tenants::tenant_page;
use super::{admin_error, audited, refusal};
use crate::console::Operator;
use crate::routes::AppState;
use aia_ops::tenants::AdminError;

/// What the settings form showed when it was loaded. The form sends every
/// field whether or not the operator touched it, so a save compares it with
/// this, not with the tenant as stored: a change another operator, the API
/// or the CLI made since the page was loaded (the tenant deactivated, a
/// provider promoted) is kept unless this operator changed the same field.
#[derive(serde::Serialize, Deserialize)]
pub struct Shown {
    name: String,
    itsm_base_url: String,
    active: bool,
    settings: aia_store::TenantSettings,
}

impl Shown {
    pub fn of(tenant: &aia_ops::tenants::TenantView) -> Self {
        Self {
            name: tenant.name.clone(),
            itsm_base_url: tenant.itsm_base_url.clone(),
            active: tenant.active,
            settings: tenant.settings.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings serialise")
    }
}

/// The tenant's switches and limits as the settings form sends them
/// (an unticked box is absent).
#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    /// What the form showed ([`Shown`], JSON); absent from a form posted by
    /// a script, which is then compared with the tenant as stored.
    #[serde(default)]
    shown: String,
    name: String,
    itsm_base_url: String,
    #[serde(default)]
    active: Option<String>,
    #[serde(default)]
    similar_tickets_enabled: Option<String>,
    #[serde(default)]
    knowledge_base_enabled: Option<String>,
    #[serde(default)]
    inventory_enabled: Option<String>,
    #[serde(default)]
    monitoring_enabled: Option<String>,
    #[serde(default)]
    redact_personal_data: Option<String>,
    #[serde(default)]
    query_rewrite: Option<String>,
    #[serde(default)]
    feedback_links: Option<String>,
    #[serde(default)]
    note_visible_to_requester: Option<String>,
    #[serde(default)]
    allow_static_secret: Option<String>,
    #[serde(default)]
    reenhance_updates: Option<String>,
    /// Empty keeps the stored value.
    #[serde(default)]
    reenhance_interval_mins: String,
    #[serde(default)]
    max_event_age_hours: String,
    /// New help-desk credentials (JSON); empty keeps the stored ones.
    #[serde(default)]
    itsm_credentials: String,
    /// The LLM provider chain (JSON array), tried in order; `[]` uses the
    /// deployment's provider.
    #[serde(default)]
    llm_providers: String,
    /// A provider's new API key (write-only), and which provider it is for.
    #[serde(default)]
    llm_key_provider: String,
    #[serde(default)]
    llm_key: String,
    max_note_words: String,
    /// Language codes; empty is unset (see `LanguageSettings`).
    #[serde(default)]
    language_fixed: String,
    #[serde(default)]
    language_default: String,
    #[serde(default)]
    language_note: String,
    #[serde(default)]
    llm_budget_usd: String,
    llm_budget_period_days: String,
}

pub async fn save_settings(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<SettingsForm>,
) -> Response {
    if let Some(refusal) = refusal(&operator, &form.csrf) {
        return refusal;
    }
    let current = match state.tenants.get(&id).await {
        Ok(tenant) => tenant,
        Err(err) => return admin_error(&operator, err, "/console/tenants"),
    };
    let problem = |text: String| async {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            tenant_page(&state, operator.clone(), &id, None, Some(text)).await,
        )
            .into_response()
    };
    let shown = match form.shown.trim() {
        "" => Shown::of(&current),
        json => match serde_json::from_str::<Shown>(json) {
            Ok(shown) => shown,
            Err(_) => {
                return problem(
                    "The page was out of date: it is shown again as stored; make the change again."
                        .into(),
                )
                .await;
            }
        },
    };
    let Ok(max_note_words) = form.max_note_words.trim().parse::<u32>() else {
        return problem("Note length: a whole number of words.".into()).await;
    };
    let Ok(period_days) = form.llm_budget_period_days.trim().parse::<u32>() else {
        return problem("Budget period: a whole number of days.".into()).await;
    };
    let whole = |text: &str, current: u32| match text.trim() {
        "" => Some(current),
        text => text.parse::<u32>().ok().filter(|n| *n > 0),
    };
    let Some(reenhance_interval_mins) = whole(
        &form.reenhance_interval_mins,
        shown.settings.reenhance_interval_mins,
    ) else {
        return problem("Time between notes: a whole number of minutes above 0.".into()).await;
    };
    let Some(max_event_age_hours) = whole(
        &form.max_event_age_hours,
        shown.settings.max_event_age_hours,
    ) else {
        return problem("Oldest new ticket: a whole number of hours above 0.".into()).await;
    };
    let budget = match form.llm_budget_usd.trim() {
        "" => None,
        text => match text.parse::<f64>() {
            Ok(budget) if budget.is_finite() && budget >= 0.0 => Some(budget),
            _ => {
                return problem("Budget: an amount in US dollars, or empty for none.".into()).await;
            }
        },
    };
    let credentials = match form.itsm_credentials.trim() {
        "" => None,
        text => match serde_json::from_str::<Value>(text) {
            Ok(value) if value.is_object() => Some(value),
            _ => {
                return problem(
                    "Credentials: a JSON object, or empty to keep the stored ones.".into(),
                )
                .await;
            }
        },
    };
    let llm_providers = match form.llm_providers.trim() {
        "" => shown.settings.llm_providers.clone(),
        text => match serde_json::from_str::<Vec<aia_store::LlmProviderSettings>>(text) {
            Ok(providers) => providers,
            Err(err) => {
                return problem(format!(
                    "LLM providers: a JSON array of {{\"name\", \"kind\", \"base_url\", \"model\"}} objects ({err})."
                ))
                .await;
            }
        },
    };
    let language = |code: &str| match code.trim() {
        "" => Ok(None),
        code => aia_events::Language::parse(code)
            .map(Some)
            .ok_or(code.to_owned()),
    };
    let languages = match (
        language(&form.language_fixed),
        language(&form.language_default),
        language(&form.language_note),
    ) {
        (Ok(fixed), Ok(default), Ok(note)) => aia_store::LanguageSettings {
            fixed,
            default,
            note,
        },
        (Err(code), _, _) | (_, Err(code), _) | (_, _, Err(code)) => {
            return problem(format!(
                "Languages: \"{code}\" is not one of en, de, fr, es, nl."
            ))
            .await;
        }
    };
    let settings = aia_store::TenantSettings {
        llm_providers,
        similar_tickets_enabled: form.similar_tickets_enabled.is_some(),
        knowledge_base_enabled: form.knowledge_base_enabled.is_some(),
        inventory_enabled: form.inventory_enabled.is_some(),
        monitoring_enabled: form.monitoring_enabled.is_some(),
        redact_personal_data: form.redact_personal_data.is_some(),
        query_rewrite: form.query_rewrite.is_some(),
        feedback_links: form.feedback_links.is_some(),
        note_visible_to_requester: form.note_visible_to_requester.is_some(),
        allow_static_secret: form.allow_static_secret.is_some(),
        reenhance_updates: form.reenhance_updates.is_some(),
        reenhance_interval_mins,
        max_event_age_hours,
        max_note_words,
        llm_budget_usd: budget,
        llm_budget_period_days: period_days,
        languages,
        ..shown.settings.clone()
    };
    let update = aia_ops::tenants::UpdateTenant {
        name: Some(form.name.trim().to_owned()).filter(|name| *name != shown.name),
        itsm_base_url: Some(form.itsm_base_url.trim().to_owned())
            .filter(|url| *url != shown.itsm_base_url),
        active: Some(form.active.is_some()).filter(|active| *active != shown.active),
        itsm_credentials: credentials.clone(),
        settings: None,
    };
    // What the operator changed from what the page showed, applied to the
    // settings as stored when it lands: a change made since the page was
    // loaded (a model promoted, a switch another operator turned) is kept.
    let patch = aia_ops::tenants::merge::diff(
        &serde_json::to_value(&shown.settings).expect("settings serialise"),
        &serde_json::to_value(&settings).expect("settings serialise"),
    );
    match state.tenants.update_patching(&id, update, &patch).await {
        Ok(updated) => {
            let mut changed = changes(&current, &updated);
            if credentials.is_some() {
                changed.push("itsm_credentials".to_owned());
            }
            let key = form.llm_key.trim();
            let provider = form.llm_key_provider.trim();
            let key_stored = if key.is_empty() {
                Ok(())
            } else {
                let stored = state.tenants.set_llm_key(&id, provider, key).await;
                if stored.is_ok() {
                    changed.push(format!("llm_key:{provider}"));
                }
                stored
            };
            audited(
                &state,
                &operator,
                "tenant.update",
                Some(&id),
                json!({"changed": changed}),
            )
            .await;
            match key_stored {
                Ok(()) => {}
                Err(AdminError::Invalid(text)) => {
                    return problem(format!("Settings saved, but the key was not: {text}")).await;
                }
                Err(err) => return admin_error(&operator, err, &format!("/console/tenants/{id}")),
            }
            tenant_page(
                &state,
                operator,
                &id,
                None,
                Some("Saved. The stages use the new settings within seconds.".into()),
            )
            .await
        }
        Err(AdminError::Invalid(text)) => problem(text).await,
        Err(err) => admin_error(&operator, err, &format!("/console/tenants/{id}")),
    }
}

/// The names of what an update changed, for the audit log (never values:
/// some may be sensitive).
fn changes(
    before: &aia_ops::tenants::TenantView,
    after: &aia_ops::tenants::TenantView,
) -> Vec<String> {
    let mut changed = Vec::new();
    if before.name != after.name {
        changed.push("name".to_owned());
    }
    if before.itsm_base_url != after.itsm_base_url {
        changed.push("itsm_base_url".to_owned());
    }
    if before.active != after.active {
        changed.push("active".to_owned());
    }
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) = (
        serde_json::to_value(&before.settings),
        serde_json::to_value(&after.settings),
    ) else {
        return changed;
    };
    changed.extend(
        new.iter()
            .filter(|(key, value)| old.get(*key) != Some(*value))
            .map(|(key, _)| key.clone()),
    );
    changed
}
