//! The tenant pages: list, create (secret shown once), show, rotate the
//! secret, test the connection, delete after a typed confirmation.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{CsrfOnly, admin_error, audited, message, refusal, render};
use crate::console::Operator;
use crate::console::views::{NewTenantPage, SecretPage, TenantPage, TenantsPage};
use crate::routes::AppState;
use crate::tenants::{AdminError, CreateTenant};

#[derive(Deserialize)]
pub struct TenantsQuery {
    #[serde(default)]
    search: String,
    cursor: Option<String>,
}

pub async fn tenants(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<TenantsQuery>,
) -> Response {
    let search = query.search.trim().to_owned();
    let page = state
        .tenants
        .list(
            Some(search.as_str()).filter(|s| !s.is_empty()),
            query.cursor.as_deref(),
            50,
        )
        .await;
    match page {
        Ok(page) => render(&TenantsPage {
            operator: Some(operator),
            search,
            items: page.items,
            next_cursor: page.next_cursor,
        }),
        Err(err) => admin_error(&operator, err, "/console"),
    }
}

pub async fn new_tenant(operator: Operator) -> Response {
    render(&NewTenantPage {
        operator: Some(operator),
        message: None,
    })
}

#[derive(Deserialize)]
pub struct NewTenantForm {
    #[serde(default)]
    csrf: String,
    tenant_id: String,
    name: String,
    itsm_kind: String,
    itsm_base_url: String,
    itsm_credentials: String,
}

pub async fn create_tenant(
    State(state): State<AppState>,
    operator: Operator,
    Form(form): Form<NewTenantForm>,
) -> Response {
    if let Some(refusal) = refusal(&operator, &form.csrf) {
        return refusal;
    }
    let again = |text: String| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            render(&NewTenantPage {
                operator: Some(operator.clone()),
                message: Some(text),
            }),
        )
            .into_response()
    };
    let Ok(itsm_kind) = serde_json::from_value(Value::String(form.itsm_kind.clone())) else {
        return again(format!("Unknown help desk {:?}.", form.itsm_kind));
    };
    let Ok(credentials) = serde_json::from_str::<Value>(&form.itsm_credentials) else {
        return again("The credentials are not valid JSON.".into());
    };
    let request = CreateTenant {
        tenant_id: form.tenant_id.trim().to_owned(),
        name: form.name.trim().to_owned(),
        itsm_kind,
        itsm_base_url: form.itsm_base_url.trim().to_owned(),
        itsm_credentials: credentials,
        settings: None,
    };
    match state.tenants.create(request).await {
        Ok(created) => {
            let tenant_id = created.tenant.tenant_id.clone();
            audited(
                &state,
                &operator,
                "tenant.create",
                Some(&tenant_id),
                json!({"name": created.tenant.name}),
            )
            .await;
            let webhook_urls = urls(&created.tenant.webhook_urls);
            render(&SecretPage {
                operator: Some(operator),
                heading: format!("Tenant {tenant_id} created"),
                tenant_id: tenant_id.clone(),
                secret: created.webhook_secret,
                webhook_urls,
            })
        }
        Err(AdminError::Invalid(text) | AdminError::Duplicate(text)) => again(text),
        Err(err) => admin_error(&operator, err, "/console/tenants"),
    }
}

fn urls(value: &Value) -> Vec<(String, String)> {
    value
        .as_object()
        .map(|urls| {
            urls.iter()
                .filter_map(|(name, url)| Some((name.replace('_', " "), url.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

pub async fn tenant(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Response {
    tenant_page(&state, operator, &id, None, None).await
}

/// The tenant's page, with a connection test's result or a message.
async fn tenant_page(
    state: &AppState,
    operator: Operator,
    id: &str,
    connection: Option<crate::tenants::ConnectionTest>,
    message: Option<String>,
) -> Response {
    let (tenant, parked, feedback) = tokio::join!(
        state.tenants.get(id),
        crate::pause::parked_count(&state.tenants, id),
        state.tenants.feedback_stats(id),
    );
    match (tenant, parked, feedback) {
        (Ok(tenant), Ok(parked), Ok(feedback)) => render(&TenantPage {
            operator: Some(operator),
            providers_json: serde_json::to_string_pretty(&tenant.settings.llm_providers)
                .unwrap_or_default(),
            webhook_urls: urls(&tenant.webhook_urls),
            tenant,
            parked,
            feedback,
            connection,
            message,
        }),
        (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => {
            admin_error(&operator, err, "/console/tenants")
        }
    }
}

/// Pauses (`pause`) or resumes the tenant's processing.
async fn set_paused(
    state: &AppState,
    operator: Operator,
    id: &str,
    csrf: &str,
    pause: bool,
) -> Response {
    if let Some(refusal) = refusal(&operator, csrf) {
        return refusal;
    }
    let action = if pause {
        "tenant.pause"
    } else {
        "tenant.resume"
    };
    audited(state, &operator, action, Some(id), json!({})).await;
    let outcome = if pause {
        crate::pause::pause_tenant(&state.tenants, id)
            .await
            .map(|()| {
                "Paused: from within a few seconds its events are set aside, none is lost."
                    .to_owned()
            })
    } else {
        let Some(jetstream) = state.jetstream.clone() else {
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(operator),
                "Not resumed",
                "The event stream is not configured.",
                &format!("/console/tenants/{id}"),
            );
        };
        // In a task of its own: a browser that gives up waiting does not
        // stop the publishing half-way.
        let tenants = state.tenants.clone();
        let tenant = id.to_owned();
        tokio::spawn(
            async move { crate::pause::resume_tenant(&tenants, &jetstream, &tenant).await },
        )
        .await
        .unwrap_or_else(|err| Err(AdminError::Invalid(format!("the resume stopped: {err}"))))
        .map(|n| format!("Resumed: {n} set-aside events published again."))
    };
    match outcome {
        Ok(text) => tenant_page(state, operator, id, None, Some(text)).await,
        Err(err) => {
            let failed = format!("{action}_failed");
            audited(
                state,
                &operator,
                &failed,
                Some(id),
                json!({"reason": err.to_string()}),
            )
            .await;
            admin_error(&operator, err, &format!("/console/tenants/{id}"))
        }
    }
}

pub async fn pause_tenant(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    set_paused(&state, operator, &id, &form.csrf, true).await
}

pub async fn resume_tenant(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    set_paused(&state, operator, &id, &form.csrf, false).await
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refusal) = refusal(&operator, &form.csrf) {
        return refusal;
    }
    match state.tenants.rotate_secret(&id).await {
        Ok(secret) => {
            audited(
                &state,
                &operator,
                "tenant.rotate_secret",
                Some(&id),
                json!({}),
            )
            .await;
            // Shown whatever else fails: it exists only in this answer.
            render(&SecretPage {
                operator: Some(operator),
                heading: format!("New webhook secret for {id}"),
                webhook_urls: urls(&state.tenants.webhook_urls(&id)),
                tenant_id: id,
                secret,
            })
        }
        Err(err) => admin_error(&operator, err, "/console/tenants"),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

pub async fn delete_tenant(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if let Some(refusal) = refusal(&operator, &form.csrf) {
        return refusal;
    }
    let back = format!("/console/tenants/{id}");
    if form.confirm.trim() != id {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(operator),
            "Not deleted",
            "The confirmation did not match the tenant id.",
            &back,
        );
    }
    match state.tenants.delete(&id).await {
        Ok(()) => {
            audited(&state, &operator, "tenant.delete", Some(&id), json!({})).await;
            Redirect::to("/console/tenants").into_response()
        }
        Err(err) => admin_error(&operator, err, &back),
    }
}

pub async fn test_connection(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refusal) = refusal(&operator, &form.csrf) {
        return refusal;
    }
    match state.tenants.test_connection(&id).await {
        Ok(connection) => {
            audited(
                &state,
                &operator,
                "tenant.test_connection",
                Some(&id),
                json!({"ok": connection.ok}),
            )
            .await;
            tenant_page(&state, operator, &id, Some(connection), None).await
        }
        Err(err) => admin_error(&operator, err, "/console/tenants"),
    }
}

/// The tenant's switches and limits as the settings form sends them
/// (an unticked box is absent).
#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
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
    feedback_links: Option<String>,
    #[serde(default)]
    note_visible_to_requester: Option<String>,
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
    let Ok(max_note_words) = form.max_note_words.trim().parse::<u32>() else {
        return problem("Note length: a whole number of words.".into()).await;
    };
    let Ok(period_days) = form.llm_budget_period_days.trim().parse::<u32>() else {
        return problem("Budget period: a whole number of days.".into()).await;
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
        "" => current.settings.llm_providers.clone(),
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
    let settings = aia_store::TenantSettings {
        llm_providers,
        similar_tickets_enabled: form.similar_tickets_enabled.is_some(),
        knowledge_base_enabled: form.knowledge_base_enabled.is_some(),
        inventory_enabled: form.inventory_enabled.is_some(),
        monitoring_enabled: form.monitoring_enabled.is_some(),
        redact_personal_data: form.redact_personal_data.is_some(),
        feedback_links: form.feedback_links.is_some(),
        note_visible_to_requester: form.note_visible_to_requester.is_some(),
        max_note_words,
        llm_budget_usd: budget,
        llm_budget_period_days: period_days,
        ..current.settings.clone()
    };
    let update = crate::tenants::UpdateTenant {
        name: Some(form.name.trim().to_owned()).filter(|name| *name != current.name),
        itsm_base_url: Some(form.itsm_base_url.trim().to_owned())
            .filter(|url| *url != current.itsm_base_url),
        active: Some(form.active.is_some()).filter(|active| *active != current.active),
        itsm_credentials: credentials.clone(),
        settings: Some(settings),
    };
    match state.tenants.update(&id, update).await {
        Ok(updated) => {
            let mut changed = changes(&current, &updated);
            if credentials.is_some() {
                changed.push("itsm_credentials".to_owned());
            }
            let key = form.llm_key.trim();
            if !key.is_empty() {
                let provider = form.llm_key_provider.trim();
                if let Err(err) = state.tenants.set_llm_key(&id, provider, key).await {
                    audited(
                        &state,
                        &operator,
                        "tenant.update",
                        Some(&id),
                        json!({"changed": changed}),
                    )
                    .await;
                    return match err {
                        AdminError::Invalid(text) => {
                            problem(format!("Settings saved, but the key was not: {text}")).await
                        }
                        err => admin_error(&operator, err, &format!("/console/tenants/{id}")),
                    };
                }
                changed.push(format!("llm_key:{provider}"));
            }
            audited(
                &state,
                &operator,
                "tenant.update",
                Some(&id),
                json!({"changed": changed}),
            )
            .await;
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
fn changes(before: &crate::tenants::TenantView, after: &crate::tenants::TenantView) -> Vec<String> {
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
