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

/// Refusals of a bulk re-drive named in its outcome; the rest are counted.
const SHOWN_REFUSALS: usize = 3;

/// What a bulk re-drive did, as its page says it. The message travels in
/// the redirect's URL: the first few refusals and a count, not a hundred
/// (a proxy refuses a URL past 8 KB, and the operator would see nothing).
fn redrive_outcome(done: usize, refused: &[String]) -> String {
    let mut text = format!("Re-driven: {done}.");
    if let Some(first) = refused.first() {
        text.push_str(&format!(" Not re-driven: {} — {first}", refused.len()));
        for reason in refused.iter().skip(1).take(SHOWN_REFUSALS - 1) {
            text.push_str(&format!("; {reason}"));
        }
        if refused.len() > SHOWN_REFUSALS {
            text.push_str(&format!("; and {} more", refused.len() - SHOWN_REFUSALS));
        }
        text.push('.');
    }
    text
}

/// Dead letters listed on one page, newest first.
const LISTED: usize = 100;

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
        super::one_more(LISTED),
    )
    .await;
    match items {
        Ok(items) => {
            let (items, more) = super::page_of(items, LISTED);
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
    let text = redrive_outcome(done, &refused);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_redrives_outcome_names_a_few_refusals_and_counts_the_rest() {
        assert_eq!(redrive_outcome(3, &[]), "Re-driven: 3.");
        let one = vec!["acme/1: not a dead letter".to_owned()];
        assert_eq!(
            redrive_outcome(0, &one),
            "Re-driven: 0. Not re-driven: 1 — acme/1: not a dead letter."
        );
        let hundred: Vec<String> = (0..100)
            .map(|n| format!("acme/{n}: its input is no longer in the stream"))
            .collect();
        let text = redrive_outcome(0, &hundred);
        assert!(
            text.starts_with("Re-driven: 0. Not re-driven: 100 — acme/0:"),
            "{text}"
        );
        assert!(
            text.contains("acme/2:") && !text.contains("acme/3:"),
            "{text}"
        );
        assert!(text.ends_with("; and 97 more."), "{text}");
        assert!(text.len() < 400, "{}", text.len());
    }
}
