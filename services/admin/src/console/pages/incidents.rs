//! Incidents: a tenant's open tickets grouped as one outage by the
//! incident correlator. The list (live ones, or every one), an incident
//! with its tickets and its events' timeline, and acknowledge / close,
//! which publish `incident.updated` through the correlator's own fold.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::{CsrfOnly, audited, message, refusal, render};
use crate::console::Operator;
use crate::console::views::{IncidentPage, IncidentsPage};
use crate::routes::AppState;
use incident_correlator::operator::{self, Action, OperatorError};

#[derive(Deserialize)]
pub struct IncidentsQuery {
    #[serde(default)]
    tenant: String,
    /// Show ended incidents too.
    #[serde(default)]
    ended: Option<String>,
    message: Option<String>,
    tag: Option<String>,
}

fn unavailable(operator: Operator, err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "Reading incidents failed");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        Some(operator),
        "Not available",
        "The database is unavailable; retry in a moment.",
        "/console",
    )
}

pub async fn incidents(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<IncidentsQuery>,
) -> Response {
    let tenant = query.tenant.trim().to_owned();
    let ended = query.ended.is_some();
    let client = match state.tenants.admin.get().await {
        Ok(client) => client,
        Err(err) => return unavailable(operator, err),
    };
    let scope = Some(tenant.as_str()).filter(|t| !t.is_empty());
    let read = async {
        // One more than is listed, to say when there are more.
        let items = operator::list(&client, scope, ended, super::one_more(LISTED)).await?;
        let failed = incident_notifier::ledger::failed(&client, scope, 50).await?;
        Ok::<_, aia_store::StoreError>((items, failed))
    };
    match read.await {
        Ok((items, failed_notifications)) => {
            let (items, more) = super::page_of(items, LISTED);
            render(&IncidentsPage {
                more,
                message: crate::console::verified_message(
                    query.message,
                    query.tag.as_deref(),
                    &operator.csrf,
                ),
                operator: Some(operator),
                tenant,
                ended,
                items,
                failed_notifications,
            })
        }
        Err(err) => unavailable(operator, err),
    }
}

/// Incidents listed on one page, newest first.
const LISTED: usize = 200;

pub async fn incident(
    State(state): State<AppState>,
    operator: Operator,
    Path((tenant, incident)): Path<(String, uuid::Uuid)>,
) -> Response {
    let client = match state.tenants.admin.get().await {
        Ok(client) => client,
        Err(err) => return unavailable(operator, err),
    };
    match operator::one(&client, &tenant, incident).await {
        Ok(Some((incident, tickets))) => render(&IncidentPage {
            operator: Some(operator),
            incident,
            tickets,
        }),
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            Some(operator),
            "No such incident",
            "It does not exist for this tenant.",
            "/console/incidents",
        ),
        Err(err) => unavailable(operator, err),
    }
}

async fn act(
    state: AppState,
    operator: Operator,
    tenant: String,
    incident: uuid::Uuid,
    action: Action,
    csrf: &str,
) -> Response {
    if let Some(refusal) = refusal(&operator, csrf) {
        return refusal;
    }
    let back = format!("/console/incidents/{tenant}/{incident}");
    let Ok(tenant_id) = aia_events::TenantId::parse(&tenant) else {
        return message(
            StatusCode::NOT_FOUND,
            Some(operator),
            "No such incident",
            "Not a tenant id.",
            "/console/incidents",
        );
    };
    let Some(jetstream) = &state.jetstream else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(operator),
            "Not done",
            "The event stream is not configured.",
            &back,
        );
    };
    let done = operator::act(
        &state.tenants.app,
        jetstream,
        &tenant_id,
        incident,
        action,
        &operator.username,
    )
    .await;
    let (verb, action_name) = match action {
        Action::Acknowledge => ("Acknowledged", "incident.acknowledge"),
        Action::Close => ("Closed", "incident.close"),
    };
    let text = match done {
        Ok(Some(event)) => {
            audited(
                &state,
                &operator,
                action_name,
                Some(&tenant),
                json!({"incident": incident, "event_id": event.event_id}),
            )
            .await;
            format!("{verb}.")
        }
        Ok(None) => "Already acknowledged.".to_owned(),
        Err(OperatorError::NotFound) => {
            return message(
                StatusCode::NOT_FOUND,
                Some(operator),
                "No such incident",
                "It does not exist for this tenant.",
                "/console/incidents",
            );
        }
        Err(OperatorError::Ended) => {
            return message(
                StatusCode::CONFLICT,
                Some(operator),
                "Not done",
                "The incident has already ended.",
                &back,
            );
        }
        Err(err @ OperatorError::Publish(_)) => {
            audited(
                &state,
                &operator,
                action_name,
                Some(&tenant),
                json!({"incident": incident}),
            )
            .await;
            format!("{verb}; {err}")
        }
        Err(OperatorError::Store(err)) => {
            tracing::error!(error = %err, "Changing an incident failed");
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(operator),
                "Not done",
                "The database is unavailable; retry in a moment.",
                &back,
            );
        }
    };
    Redirect::to(&format!(
        "/console/incidents?{}",
        crate::console::message_query(&text, &operator.csrf)
    ))
    .into_response()
}

pub async fn acknowledge(
    State(state): State<AppState>,
    operator: Operator,
    Path((tenant, incident)): Path<(String, uuid::Uuid)>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    act(
        state,
        operator,
        tenant,
        incident,
        Action::Acknowledge,
        &form.csrf,
    )
    .await
}

pub async fn close(
    State(state): State<AppState>,
    operator: Operator,
    Path((tenant, incident)): Path<(String, uuid::Uuid)>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    act(state, operator, tenant, incident, Action::Close, &form.csrf).await
}
