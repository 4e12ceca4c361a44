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
use crate::console::run_view;
use crate::console::views::{BarRow, HistoryPage, RunPicture, TimelineLine, TimelinePage};
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
        Ok(Ok((mut runs, next))) => {
            with_notes_as_posted(&state, &mut runs).await;
            (runs, next, None, StatusCode::OK)
        }
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

/// Renders each run's posted note for its tenant's help desk (one tenant
/// read per tenant on the page).
async fn with_notes_as_posted(state: &AppState, runs: &mut [history::Run]) {
    let tenants = aia_store::TenantCache::new(
        state.tenants.app.clone(),
        state.tenants.keyring.clone(),
        std::time::Duration::from_secs(60),
    );
    // Each tenant on the page read once, all at once; the renders below
    // find them in the cache.
    let mut ids: Vec<aia_events::TenantId> = runs
        .iter()
        .filter(|run| run.posted_markdown.is_some())
        .filter_map(|run| aia_events::TenantId::parse(&run.tenant_id).ok())
        .collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids.dedup();
    futures::future::join_all(ids.iter().map(|id| tenants.get(id))).await;
    for run in runs {
        if let Some(markdown) = &run.posted_markdown {
            run.as_posted = Some(
                run_view::as_posted(&tenants, &state.tenants.http, &run.tenant_id, markdown).await,
            );
        }
    }
}

pub async fn history_csv(
    State(state): State<AppState>,
    operator: Operator,
    Query(filter): Query<Filter>,
) -> Response {
    match history::csv(
        &state.tenants.exports,
        &filter,
        state.console.export_stalled_after,
    )
    .await
    {
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
            trace_url: trace_url(state, line.trace_id.as_ref()),
            trace_id: line.trace_id.clone(),
        })
        .collect()
}

fn trace_url(state: &AppState, trace: Option<&String>) -> Option<String> {
    match (&state.console.trace_url, trace) {
        (Some(template), Some(trace)) => Some(template.replace("{trace_id}", trace)),
        _ => None,
    }
}

/// Each run of the story as a picture, newest first.
async fn pictures(state: &AppState, tenant: &str, lines: &[replay::StoryLine]) -> Vec<RunPicture> {
    use aia_events::Payload;
    let tenants = aia_store::TenantCache::new(
        state.tenants.app.clone(),
        state.tenants.keyring.clone(),
        std::time::Duration::from_secs(60),
    );
    let mut out = Vec::new();
    for run in run_view::runs(lines).into_iter().rev() {
        let of_run = || {
            lines
                .iter()
                .filter(|line| line.correlation_id == run.correlation_id)
        };
        let trace_id = of_run().find_map(|line| line.trace_id.clone());
        let context = of_run().find_map(|line| match &line.event.payload {
            Payload::ContextGathered(context) => Some(run_view::context_from_event(context)),
            _ => None,
        });
        let posted_markdown = of_run().find_map(|line| match &line.event.payload {
            Payload::WritebackCompleted(completed) => completed.posted_markdown.clone(),
            _ => None,
        });
        let posted = match &posted_markdown {
            Some(markdown) => {
                Some(run_view::as_posted(&tenants, &state.tenants.http, tenant, markdown).await)
            }
            None => None,
        };
        out.push(RunPicture {
            correlation_id: run.correlation_id.to_string(),
            received_at: run.received_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            svg: run_view::svg(&run),
            bars: run
                .bars
                .iter()
                .map(|bar| BarRow {
                    stage: bar.stage,
                    event_type: bar.event_type.clone(),
                    took: run_view::duration(bar.total_ms()),
                    waited: bar
                        .waited_ms()
                        .map(run_view::duration)
                        .unwrap_or_else(|| "not reported".into()),
                    attempts: bar
                        .attempts
                        .filter(|a| *a > 0)
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "—".into()),
                    failed: bar.failed,
                })
                .collect(),
            trace_url: trace_url(state, trace_id.as_ref()),
            trace_id,
            context,
            posted,
            posted_markdown,
        });
    }
    out
}

pub async fn ticket(
    State(state): State<AppState>,
    operator: Operator,
    Path((tenant, ticket)): Path<(String, String)>,
) -> Response {
    let (runs, lines, message, status) = match lines(&state, &tenant, &ticket).await {
        Ok(lines) => (
            pictures(&state, &tenant, &lines).await,
            timeline(&state, &lines),
            None,
            StatusCode::OK,
        ),
        Err(problem) => (vec![], vec![], Some(problem), StatusCode::NOT_FOUND),
    };
    let page = TimelinePage {
        operator: Some(operator),
        tenant,
        ticket,
        runs,
        lines,
        message,
        dry_run: None,
        dry_run_note: None,
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
        // Write-back's note is also shown as the help desk would show it.
        let note = if stage == aia_events::Stage::Writeback {
            let public_url = Some(state.tenants.public_url.as_str());
            let (_, note) = replay::writeback_note(&input, &tenants, public_url).await?;
            let posted = run_view::as_posted(&tenants, &state.tenants.http, &tenant, &note).await;
            Some((posted, note))
        } else {
            None
        };
        let text = replay::dry_run(
            stage,
            &input,
            recorded.as_ref(),
            tenants,
            Some(state.tenants.public_url.as_str()),
        )
        .await?;
        Ok::<_, anyhow::Error>((text, note))
    }
    .await;
    let (text, dry_run_note) = match outcome {
        Ok((text, note)) => {
            audited(
                &state,
                &operator,
                "ticket.dry_run",
                Some(&tenant),
                json!({"ticket": ticket, "stage": form.stage}),
            )
            .await;
            (text, note)
        }
        Err(err) => (format!("The dry-run failed: {err:#}"), None),
    };
    let page = TimelinePage {
        runs: pictures(&state, &tenant, &story).await,
        lines: timeline(&state, &story),
        operator: Some(operator),
        tenant,
        ticket,
        message: None,
        dry_run: Some(text),
        dry_run_note,
    };
    render(&page)
}
