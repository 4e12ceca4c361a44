//! The history (filtered, keyset-paged, exported as CSV) and a ticket's
//! timeline from the stream, with its traces and a dry-run of one stage.

use aia_events::{TenantId, TicketId};
use axum::Form;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{audited, message, refusal, render};
use crate::console::Operator;
use crate::console::history::{self, Filter};
use crate::console::views::{HistoryPage, TimelineLine, TimelinePage};
use crate::routes::AppState;
use aia_ops::replay;

pub async fn history(
    State(state): State<AppState>,
    operator: Operator,
    Query(filter): Query<Filter>,
) -> Response {
    let page = history::page(&state.tenants.admin, &filter).await;
    let query = filter.query();
    let (runs, next, message, status) = match page {
        Ok(Ok((runs, next))) => (runs, next, None, StatusCode::OK),
        Ok(Err(problem)) => (
            vec![],
            None,
            Some(problem),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(err) => {
            tracing::error!(error = %err, "History unavailable");
            (
                vec![],
                None,
                Some("The database is unavailable; retry in a moment.".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    };
    let page = HistoryPage {
        operator: Some(operator),
        filter,
        statuses: history::STATUSES,
        query,
        runs,
        next,
        message,
    };
    (status, render(&page)).into_response()
}

pub async fn history_csv(
    State(state): State<AppState>,
    operator: Operator,
    Query(filter): Query<Filter>,
) -> Response {
    match history::csv(&state.tenants.admin, &filter).await {
        Ok(Ok(stream)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"enhancement-history.csv\"",
                ),
            ],
            Body::from_stream(stream),
        )
            .into_response(),
        Ok(Err(problem)) => message(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(operator),
            "Not exported",
            &problem,
            "/console/history",
        ),
        Err(err) => {
            tracing::error!(error = %err, "History export unavailable");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(operator),
                "Not exported",
                "The database is unavailable; retry in a moment.",
                "/console/history",
            )
        }
    }
}

/// The ticket's events, or why there are none to show.
async fn lines(
    state: &AppState,
    tenant: &str,
    ticket: &str,
) -> Result<Vec<replay::StoryLine>, String> {
    let tenant = TenantId::parse(tenant).map_err(|err| format!("tenant: {err}"))?;
    let ticket = TicketId::parse(ticket).map_err(|err| format!("ticket: {err}"))?;
    let jetstream = state
        .jetstream
        .as_ref()
        .ok_or("the event stream is not configured")?;
    let mut lines = replay::story(jetstream, &tenant, &ticket)
        .await
        .map_err(|err| err.to_string())?;
    // The page shows the tenant named in its path, and nothing else.
    lines.retain(|line| line.event.tenant_id == tenant && line.event.ticket_id == ticket);
    Ok(lines)
}

fn timeline(state: &AppState, lines: &[replay::StoryLine]) -> Vec<TimelineLine> {
    lines
        .iter()
        .map(|line| TimelineLine {
            sequence: line.stream_sequence,
            at: line.occurred_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            event_type: line.event_type.clone(),
            stage: line.stage,
            attempts: line.attempts,
            run: line.correlation_id.to_string(),
            summary: line.summary.clone(),
            trace_url: match (&state.console.trace_url, &line.trace_id) {
                (Some(template), Some(trace)) => Some(template.replace("{trace_id}", trace)),
                _ => None,
            },
            trace_id: line.trace_id.clone(),
        })
        .collect()
}

pub async fn ticket(
    State(state): State<AppState>,
    operator: Operator,
    Path((tenant, ticket)): Path<(String, String)>,
) -> Response {
    let (lines, message, status) = match lines(&state, &tenant, &ticket).await {
        Ok(lines) => (timeline(&state, &lines), None, StatusCode::OK),
        Err(problem) => (vec![], Some(problem), StatusCode::NOT_FOUND),
    };
    let page = TimelinePage {
        operator: Some(operator),
        tenant,
        ticket,
        lines,
        message,
        dry_run: None,
    };
    (status, render(&page)).into_response()
}

#[derive(Deserialize)]
pub struct DryRunForm {
    #[serde(default)]
    csrf: String,
    stage: String,
}

pub async fn dry_run(
    State(state): State<AppState>,
    operator: Operator,
    Path((tenant, ticket)): Path<(String, String)>,
    Form(form): Form<DryRunForm>,
) -> Response {
    if let Some(refusal) = refusal(&operator, &form.csrf) {
        return refusal;
    }
    let story = match lines(&state, &tenant, &ticket).await {
        Ok(story) => story,
        Err(problem) => {
            return message(
                StatusCode::NOT_FOUND,
                Some(operator),
                "No dry-run",
                &problem,
                "/console/history",
            );
        }
    };
    let outcome = async {
        let stage = replay::parse_stage(&form.stage)?;
        let (input, recorded) = replay::input_and_output(&story, stage, None)?;
        let tenants = std::sync::Arc::new(aia_store::TenantCache::new(
            state.tenants.app.clone(),
            state.tenants.keyring.clone(),
            std::time::Duration::ZERO,
        ));
        replay::dry_run(
            stage,
            &input,
            recorded.as_ref(),
            tenants,
            Some(state.tenants.public_url.as_str()),
        )
        .await
    }
    .await;
    let text = match outcome {
        Ok(text) => {
            audited(
                &state,
                &operator,
                "ticket.dry_run",
                Some(&tenant),
                json!({"ticket": ticket, "stage": form.stage}),
            )
            .await;
            text
        }
        Err(err) => format!("The dry-run failed: {err:#}"),
    };
    let page = TimelinePage {
        lines: timeline(&state, &story),
        operator: Some(operator),
        tenant,
        ticket,
        message: None,
        dry_run: Some(text),
    };
    render(&page)
}
