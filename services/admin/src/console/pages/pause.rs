//! Pausing and resuming processing: a tenant's (its events set aside, then
//! published again) and a stage's (its consumer paused in JetStream).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::tenants::tenant_page;
use super::{CsrfOnly, admin_error, audited, message, refusal};
use crate::console::Operator;
use crate::routes::AppState;
use aia_ops::tenants::AdminError;

/// The last segment of a pause or resume form's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    Pause,
    Resume,
}

/// `/console/tenants/{id}/processing/{pause|resume}`.
pub async fn tenant_processing(
    State(state): State<AppState>,
    operator: Operator,
    Path((id, switch)): Path<(String, Switch)>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let id = id.as_str();
    if let Some(refusal) = refusal(&operator, &form.csrf) {
        return refusal;
    }
    let action = match switch {
        Switch::Pause => "tenant.pause",
        Switch::Resume => "tenant.resume",
    };
    audited(&state, &operator, action, Some(id), json!({})).await;
    let outcome = if switch == Switch::Pause {
        aia_ops::pause::pause_tenant(&state.tenants, id)
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
            async move { aia_ops::pause::resume_tenant(&tenants, &jetstream, &tenant).await },
        )
        .await
        .unwrap_or_else(|err| Err(AdminError::Invalid(format!("the resume stopped: {err}"))))
        .map(|n| format!("Resumed: {n} set-aside events published again."))
    };
    match outcome {
        Ok(text) => tenant_page(&state, operator, id, None, Some(text)).await,
        Err(err) => {
            let failed = format!("{action}_failed");
            audited(
                &state,
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

/// `/console/stages/{stage}/{pause|resume}`.
pub async fn stage_processing(
    State(state): State<AppState>,
    operator: Operator,
    Path((stage, switch)): Path<(String, Switch)>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let stage = stage.as_str();
    if let Some(refusal) = refusal(&operator, &form.csrf) {
        return refusal;
    }
    let Some(jetstream) = &state.jetstream else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(operator),
            "Not done",
            "The event stream is not configured.",
            "/console",
        );
    };
    let outcome = if switch == Switch::Pause {
        aia_ops::pause::pause_stage(jetstream, stage).await
    } else {
        aia_ops::pause::resume_stage(jetstream, stage).await
    };
    match outcome {
        Ok(()) => {
            let action = match switch {
                Switch::Pause => "stage.pause",
                Switch::Resume => "stage.resume",
            };
            audited(&state, &operator, action, None, json!({"stage": stage})).await;
            Redirect::to("/console").into_response()
        }
        Err(err) => admin_error(&operator, err, "/console"),
    }
}
