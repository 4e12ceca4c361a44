//! Operations: dead letters (re-driven one by one, or in bulk after a typed
//! confirmation) and the audit log.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::{admin_error, audited, message, refusal, render};
use crate::console::views::{AuditPage, DeadLettersPage};
use crate::console::{Operator, audit};
use crate::routes::AppState;
use aia_ops::tenants::AdminError;

#[derive(Deserialize)]
pub struct DeadLettersQuery {
    #[serde(default)]
    tenant: String,
    message: Option<String>,
    tag: Option<String>,
}

/// Dead letters listed on one page, newest first.
const LISTED_USIZE: usize = 100;
const LISTED: i64 = LISTED_USIZE as i64;

pub async fn dead_letters(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<DeadLettersQuery>,
) -> Response {
    let tenant = query.tenant.trim().to_owned();
    // One more than is listed, to say when there are more.
    let items = aia_ops::dead_letters::list(
        &state.tenants.admin,
        Some(tenant.as_str()).filter(|t| !t.is_empty()),
        LISTED + 1,
    )
    .await;
    match items {
        Ok(mut items) => {
            let more = items.len() > LISTED_USIZE;
            items.truncate(LISTED_USIZE);
            render(&DeadLettersPage {
                tenant,
                more,
                items,
                message: crate::console::verified_message(
                    query.message,
                    query.tag.as_deref(),
                    &operator.csrf,
                ),
                operator: Some(operator),
            })
        }
        Err(err) => admin_error(&operator, err, "/console"),
    }
}

pub async fn redrive(
    State(state): State<AppState>,
    operator: Operator,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or("")
    };
    if let Some(refusal) = refusal(&operator, field("csrf")) {
        return refusal;
    }
    let runs: Vec<&str> = form
        .iter()
        .filter(|(key, _)| key == "runs")
        .map(|(_, value)| value.as_str())
        .collect();
    if runs.len() > 1 && field("confirm").trim() != format!("redrive {}", runs.len()) {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(operator),
            "Not re-driven",
            &format!(
                "To re-drive {} runs, type “redrive {}”.",
                runs.len(),
                runs.len()
            ),
            "/console/dead-letters",
        );
    }
    let Some(jetstream) = &state.jetstream else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(operator),
            "Not re-driven",
            "The event stream is not configured.",
            "/console/dead-letters",
        );
    };
    let mut done = 0;
    let mut refused = Vec::new();
    for run in &runs {
        let parsed = run
            .split_once('/')
            .and_then(|(tenant, id)| Some((tenant, uuid::Uuid::parse_str(id).ok()?)));
        let Some((tenant, correlation)) = parsed else {
            refused.push(format!("{run}: not a run"));
            continue;
        };
        match aia_ops::dead_letters::redrive(&state.tenants.admin, jetstream, tenant, correlation)
            .await
        {
            Ok(event_id) => {
                done += 1;
                audited(
                    &state,
                    &operator,
                    "dead_letter.redrive",
                    Some(tenant),
                    json!({"run": correlation, "event_id": event_id}),
                )
                .await;
            }
            Err(err) => refused.push(format!("{run}: {err}")),
        }
    }
    let mut text = format!("Re-driven: {done}.");
    if !refused.is_empty() {
        text.push_str(&format!(" Not re-driven: {}.", refused.join("; ")));
    }
    let target = format!(
        "/console/dead-letters?{}",
        crate::console::message_query(&text, &operator.csrf)
    );
    Redirect::to(&target).into_response()
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

pub async fn audit(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<AuditQuery>,
) -> Response {
    match audit::list(&state.tenants.admin, None, query.before, 100).await {
        Ok((entries, next)) => render(&AuditPage {
            operator: Some(operator),
            entries,
            next,
        }),
        Err(err) => admin_error(&operator, AdminError::Store(err), "/console"),
    }
}
