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
use aia_ops::tenants::{AdminError, CreateTenant};

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
                setup: created.setup,
            })
        }
        Err(AdminError::Invalid(text) | AdminError::Duplicate(text)) => again(text),
        Err(err) => admin_error(&operator, err, "/console/tenants"),
    }
}

pub(super) fn urls(value: &Value) -> Vec<(String, String)> {
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
    Query(query): Query<super::PeriodQuery>,
) -> Response {
    let period = crate::console::trends::Period::parse(query.period.as_deref());
    tenant_page_for(&state, operator, &id, None, None, period).await
}

/// The tenant's page, with a connection test's result or a message.
pub(super) async fn tenant_page(
    state: &AppState,
    operator: Operator,
    id: &str,
    connection: Option<aia_ops::tenants::ConnectionTest>,
    message: Option<String>,
) -> Response {
    let period = crate::console::trends::Period::Day;
    tenant_page_for(state, operator, id, connection, message, period).await
}

async fn tenant_page_for(
    state: &AppState,
    operator: Operator,
    id: &str,
    connection: Option<aia_ops::tenants::ConnectionTest>,
    message: Option<String>,
    period: crate::console::trends::Period,
) -> Response {
    use crate::console::trends;
    let window = trends::Window::ending(period, chrono::Utc::now());
    let (tenant, parked, feedback, runs) = tokio::join!(
        state.tenants.get(id),
        aia_ops::pause::parked_count(&state.tenants, id),
        state.tenants.feedback_stats(id),
        trends::runs(&state.tenants.admin, &window, Some(id)),
    );
    let mut charts = runs.unwrap_or_else(|err| {
        tracing::error!(error = %err, "Tenant charts unavailable");
        Vec::new()
    });
    if let Ok(tenant) = &tenant {
        let budget = trends::BudgetLine {
            tenant_id: tenant.tenant_id.clone(),
            budget_usd: tenant.settings.llm_budget_usd,
            period_days: tenant.settings.llm_budget_period_days,
        };
        match trends::spend(
            &state.tenants.admin,
            chrono::Utc::now().date_naive(),
            &[budget],
        )
        .await
        {
            Ok(spend) => charts.extend(spend),
            Err(err) => tracing::error!(error = %err, "Tenant spend chart unavailable"),
        }
    }
    // The ratings' figures read a tenant's whole history: slow or failing,
    // they must not take the settings and the pause controls with them.
    let feedback = feedback
        .inspect_err(|err| tracing::error!(error = %err, "Tenant feedback figures unavailable"))
        .ok();
    match (tenant, parked) {
        (Ok(tenant), Ok(parked)) => render(&TenantPage {
            period,
            charts,
            operator: Some(operator),
            providers_json: serde_json::to_string_pretty(&tenant.settings.llm_providers)
                .unwrap_or_default(),
            shown: super::settings::Shown::of(&tenant).to_json(),
            webhook_urls: urls(&tenant.webhook_urls),
            tenant,
            parked,
            feedback,
            connection,
            message,
        }),
        (Err(err), _) | (_, Err(err)) => admin_error(&operator, err, "/console/tenants"),
    }
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    csrf: String,
    /// Revoke the old secret now rather than in 24 hours.
    #[serde(default)]
    revoke_previous: bool,
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<RotateForm>,
) -> Response {
    if let Some(refusal) = refusal(&operator, &form.csrf) {
        return refusal;
    }
    let keep = if form.revoke_previous {
        std::time::Duration::ZERO
    } else {
        aia_ops::tenants::KEEP_PREVIOUS
    };
    match state.tenants.rotate_secret(&id, keep).await {
        Ok(secret) => {
            audited(
                &state,
                &operator,
                "tenant.rotate_secret",
                Some(&id),
                json!({"previous_revoked": form.revoke_previous}),
            )
            .await;
            // Shown whatever else fails: it exists only in this answer.
            let kind = state
                .tenants
                .get(&id)
                .await
                .map(|tenant| tenant.itsm_kind)
                .unwrap_or(aia_events::ItsmKind::ServicedeskPlus);
            render(&SecretPage {
                operator: Some(operator),
                heading: format!("New webhook secret for {id}"),
                webhook_urls: urls(&state.tenants.webhook_urls(&id, kind)),
                setup: Vec::new(),
                tenant_id: id,
                secret,
            })
        }
        Err(err) => admin_error(&operator, err, "/console/tenants"),
    }
}

/// Ends a rotation early: the previous webhook secret stops (the help desk
/// was switched over, or it leaked), the current one stays.
pub async fn end_rotation(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refusal) = refusal(&operator, &form.csrf) {
        return refusal;
    }
    match state.tenants.end_rotation(&id).await {
        Ok(()) => {
            audited(
                &state,
                &operator,
                "tenant.end_rotation",
                Some(&id),
                json!({}),
            )
            .await;
            let text = "Rotation ended: the previous webhook secret no longer works (within \
                        the ingress's 30 s cache); the current one does."
                .to_owned();
            tenant_page(&state, operator, &id, None, Some(text)).await
        }
        Err(err) => admin_error(&operator, err, &format!("/console/tenants/{id}")),
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
