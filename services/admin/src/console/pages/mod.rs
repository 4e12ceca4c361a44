//! The console's page and form handlers. Every state-changing handler
//! starts with [`refusal`]: an admin's session with the session's CSRF
//! token, or a 403 — whatever the request looks like.

mod history;
mod incidents;
mod operations;
mod pause;
mod settings;
mod sign_in;
mod tenants;

pub use history::{dry_run, history, history_csv, ticket};
pub use incidents::{
    acknowledge as acknowledge_incident, close as close_incident, incident, incidents,
};
pub use operations::{audit, dead_letters, redrive};
pub use pause::{stage_processing, tenant_processing};
pub use settings::save_settings;
pub use sign_in::{sign_in, sign_in_form, sign_out};
pub use tenants::{
    create_tenant, delete_tenant, end_rotation, new_tenant, rotate_secret, tenant, tenants,
    test_connection,
};

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::views::MessagePage;
use super::{Operator, audit, auth};
use crate::routes::AppState;
use aia_ops::tenants::AdminError;

/// A list read with one row more than a page shows (`shown + 1`, newest
/// first), cut to the page: the rows shown, and whether more wait.
pub(super) fn page_of<T>(mut rows: Vec<T>, shown: usize) -> (Vec<T>, bool) {
    let more = rows.len() > shown;
    rows.truncate(shown);
    (rows, more)
}

/// [`page_of`]'s read limit for `shown` rows.
pub(super) fn one_more(shown: usize) -> i64 {
    i64::try_from(shown).unwrap_or(i64::MAX).saturating_add(1)
}

pub(super) fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "A console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page failed to render.",
            )
                .into_response()
        }
    }
}

pub(super) fn message(
    status: StatusCode,
    operator: Option<Operator>,
    heading: &str,
    text: &str,
    back: &str,
) -> Response {
    let page = MessagePage {
        operator,
        heading: heading.into(),
        text: text.into(),
        back: back.into(),
    };
    (status, render(&page)).into_response()
}

/// Refuses what a viewer, or a form without this session's CSRF token,
/// may not do.
pub(super) fn refusal(operator: &Operator, csrf: &str) -> Option<Response> {
    if !auth::csrf_matches(operator, csrf) {
        return Some(message(
            StatusCode::FORBIDDEN,
            Some(operator.clone()),
            "Refused",
            "The form was not sent from this session (its CSRF token is missing or wrong). Reload the page and try again.",
            "/console",
        ));
    }
    if !operator.is_admin() {
        return Some(message(
            StatusCode::FORBIDDEN,
            Some(operator.clone()),
            "Refused",
            "Your role is viewer: it may look, not change.",
            "/console",
        ));
    }
    None
}

pub(super) fn admin_error(operator: &Operator, err: AdminError, back: &str) -> Response {
    let (status, text) = match &err {
        AdminError::NotFound(_) | AdminError::Missing(_) => {
            (StatusCode::NOT_FOUND, err.to_string())
        }
        AdminError::Duplicate(_) | AdminError::Busy(_) => (StatusCode::CONFLICT, err.to_string()),
        AdminError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, err.to_string()),
        AdminError::Store(store) => {
            tracing::error!(error = %store, "Console operation failed in the store");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unavailable; retry in a moment.".to_owned(),
            )
        }
        AdminError::Nats { source, .. } => {
            tracing::error!(error = %err, cause = %source, "Console operation failed in NATS");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{err}; retry in a moment."),
            )
        }
    };
    message(status, Some(operator.clone()), "Not done", &text, back)
}

pub(super) async fn audited(
    state: &AppState,
    operator: &Operator,
    action: &str,
    tenant: Option<&str>,
    detail: Value,
) {
    if let Err(err) = audit::record(
        &state.tenants.admin,
        &operator.username,
        action,
        tenant,
        detail,
    )
    .await
    {
        // The action happened; losing its record must be loud.
        tracing::error!(error = %err, action, "Could not write the audit log");
    }
}

/// A form with nothing but the session's CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub(super) csrf: String,
}

/// `?period=24h` (the default) or `?period=7d`: what the charts span.
#[derive(Deserialize, Default)]
pub struct PeriodQuery {
    #[serde(default)]
    pub(super) period: Option<String>,
}

pub async fn dashboard(
    State(state): State<AppState>,
    operator: Operator,
    axum::extract::Query(query): axum::extract::Query<PeriodQuery>,
) -> Response {
    let period = super::trends::Period::parse(query.period.as_deref());
    let page = super::dashboard::gather(&state, operator, period).await;
    render(&page)
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/console.css"),
    )
        .into_response()
}

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/console.js"),
    )
        .into_response()
}
