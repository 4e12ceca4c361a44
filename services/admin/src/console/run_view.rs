//! A run as people judge it: the note as the technician got it (rendered
//! by the tenant's help-desk plugin, the renderer write-back posts with),
//! the context as lists with score bands and why each item matched, and the
//! run's stages as bars to scale.

use std::fmt::Write as _;

use aia_events::{
    ContextGathered, KnowledgeArticle, MonitoringFinding, Payload, RelatedTicket, SimilarTicket,
    SourceReport, SystemInfo, TenantId,
};
use aia_itsm::{Itsm, NoteFormat};
use aia_ops::replay::StoryLine;
use aia_store::TenantCache;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// The note as the tenant's help desk received it.
#[derive(Debug, Clone)]
pub struct AsPosted {
    /// The tool, as its plugin names it.
    pub tool: String,
    pub format: &'static str,
    /// HTML as the tool shows it (safe: raw HTML in the Markdown was
    /// escaped by the renderer, links kept only for http, https, mailto).
    pub html: Option<String>,
    /// Text, or the Atlassian document, as sent.
    pub text: Option<String>,
    /// Why the note cannot be shown as posted.
    pub problem: Option<String>,
}

/// Renders `markdown` (the note as write-back handed it over) for
/// `tenant`'s tool, with the plugin write-back posts with.
pub async fn as_posted(
    cache: &TenantCache,
    http: &reqwest::Client,
    tenant: &str,
    markdown: &str,
) -> AsPosted {
    let unavailable = |problem: String| AsPosted {
        tool: String::new(),
        format: "",
        html: None,
        text: None,
        problem: Some(problem),
    };
    let Ok(tenant_id) = TenantId::parse(tenant) else {
        return unavailable(format!("{tenant:?} is not a tenant id"));
    };
    let tenant = match cache.get(&tenant_id).await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => return unavailable("the tenant no longer exists".into()),
        Err(err) => {
            tracing::error!(error = %err, "Could not read the tenant to render its note");
            return unavailable("the database is unavailable".into());
        }
    };
    let itsm = match Itsm::for_tenant(
        http.clone(),
        tenant.itsm,
        &tenant.itsm_base_url,
        tenant.itsm_credentials.expose(),
    ) {
        Ok(itsm) => itsm,
        Err(err) => return unavailable(format!("the tenant's help desk is misconfigured: {err}")),
    };
    let rendered = itsm.render_note(markdown);
    let (html, text) = match rendered.format {
        NoteFormat::Html => (Some(rendered.body), None),
        // Jira draws the document itself; the same Markdown as HTML is the
        // closest the console can show, beside the document as sent.
        NoteFormat::Adf => (Some(aia_itsm::render::html(markdown)), Some(rendered.body)),
        NoteFormat::Text => (None, Some(rendered.body)),
    };
    AsPosted {
        tool: tenant.itsm.as_str().to_owned(),
        format: rendered.format.as_str(),
        html,
        text,
        problem: None,
    }
}

/// One item of the context, as a technician judges it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub id: String,
    pub title: String,
    /// "likely" or "possible" for scored items.
    pub band: &'static str,
    pub score: String,
    pub why: String,
    pub detail: String,
    pub url: Option<String>,
}

/// The context of a run, listed.
#[derive(Debug, Clone, Default)]
pub struct ContextView {
    /// The language the ticket was read and answered in, and how that was
    /// decided (runs before languages were recorded have none).
    pub language: Option<String>,
    pub similar: Vec<Judged>,
    pub articles: Vec<Judged>,
    pub related: Vec<Judged>,
    pub systems: Vec<String>,
    pub monitoring: Vec<String>,
    pub sources: Vec<String>,
}

impl ContextView {
    pub fn is_empty(&self) -> bool {
        self.similar.is_empty()
            && self.articles.is_empty()
            && self.related.is_empty()
            && self.systems.is_empty()
            && self.monitoring.is_empty()
    }
}

/// The context as the history projects it (`enhancement_history.context`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Projected {
    similar_tickets: Vec<SimilarTicket>,
    knowledge_articles: Vec<KnowledgeArticle>,
    systems: Vec<SystemInfo>,
    monitoring: Vec<MonitoringFinding>,
    sources: Vec<SourceReport>,
    related_open: Vec<RelatedTicket>,
    language: Option<aia_events::TicketLanguage>,
}

/// From the history's JSON; `None` when it is not the projected shape.
pub fn context_from_history(json: &serde_json::Value) -> Option<ContextView> {
    let projected = Projected::deserialize(json).ok()?;
    Some(view(
        projected.language.as_ref(),
        &projected.similar_tickets,
        &projected.knowledge_articles,
        &projected.systems,
        &projected.monitoring,
        &projected.sources,
        &projected.related_open,
    ))
}

pub fn context_from_event(context: &ContextGathered) -> ContextView {
    view(
        context.language.as_ref(),
        &context.similar_tickets,
        &context.knowledge_articles,
        &context.systems,
        &context.monitoring,
        &context.sources,
        &context.related_open,
    )
}

fn band(score: f64) -> &'static str {
    if aia_events::is_likely(score) {
        "likely"
    } else {
        "possible"
    }
}

/// "Read in German (detected, confidence 0.93)" and the like.
fn read_in(language: &aia_events::TicketLanguage) -> String {
    let name = language.language.english_name();
    match language.decided_by {
        aia_events::DecidedBy::Detected => format!(
            "Read in {name} (detected from its words, confidence {:.2})",
            language.confidence
        ),
        aia_events::DecidedBy::Tenant => format!("Read in {name} (the tenant's fixed language)"),
        aia_events::DecidedBy::Default => {
            format!("Read in {name} (its words said too little to tell; the default)")
        }
    }
}

fn view(
    language: Option<&aia_events::TicketLanguage>,
    similar: &[SimilarTicket],
    articles: &[KnowledgeArticle],
    systems: &[SystemInfo],
    monitoring: &[MonitoringFinding],
    sources: &[SourceReport],
    related: &[RelatedTicket],
) -> ContextView {
    ContextView {
        language: language.map(read_in),
        similar: similar
            .iter()
            .map(|ticket| Judged {
                id: ticket.ticket_id.to_string(),
                title: ticket.subject.clone(),
                band: band(ticket.score),
                score: format!("{:.2}", ticket.score),
                why: ticket
                    .matched_by
                    .map(|by| by.describe().to_owned())
                    .unwrap_or_else(|| "not recorded (an older run)".into()),
                detail: format!(
                    "Resolved {}: {}",
                    ticket.resolved_at.format("%Y-%m-%d"),
                    ticket.resolution
                ),
                url: None,
            })
            .collect(),
        articles: articles
            .iter()
            .map(|article| Judged {
                id: String::new(),
                title: article.title.clone(),
                band: band(article.score),
                score: format!("{:.2}", article.score),
                why: "the knowledge base's own search".into(),
                detail: article.summary.clone(),
                url: article
                    .url
                    .clone()
                    .filter(|url| aia_itsm::render::safe_url(url)),
            })
            .collect(),
        related: related
            .iter()
            .map(|ticket| Judged {
                id: ticket.ticket_id.to_string(),
                title: ticket.subject.clone().unwrap_or_default(),
                band: "",
                score: ticket
                    .similarity
                    .map(|cosine| format!("{cosine:.2}"))
                    .unwrap_or_else(|| "—".into()),
                why: ticket.why(),
                detail: format!(
                    "received {}",
                    ticket.received_at.format("%Y-%m-%d %H:%M UTC")
                ),
                url: None,
            })
            .collect(),
        systems: systems
            .iter()
            .map(|system| {
                let facts: Vec<&str> = [
                    &system.hostname,
                    &system.address,
                    &system.role,
                    &system.client,
                    &system.location,
                ]
                .into_iter()
                .filter_map(|fact| fact.as_deref())
                .collect();
                format!("{} — {}", system.matched, facts.join(", "))
            })
            .collect(),
        monitoring: monitoring
            .iter()
            .map(|finding| format!("{}: {}", finding.host, finding.summary))
            .collect(),
        sources: sources
            .iter()
            .map(|report| {
                let mut line = format!(
                    "{}: {} ({} items, {} ms)",
                    serde_json::to_value(report.source)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                        .replace('_', " "),
                    serde_json::to_value(report.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    report.items,
                    report.latency_ms
                );
                if let Some(detail) = &report.detail {
                    let _ = write!(line, " — {detail}");
                }
                line
            })
            .collect(),
    }
}

/// One stage's part of a run, to scale.
#[derive(Debug, Clone, PartialEq)]
pub struct StageBar {
    pub stage: &'static str,
    pub event_type: String,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    /// The part the stage reports as its own work (the slowest context
    /// source, the model's answer); the rest waited in the stream or on a
    /// retry. `None` where the stage does not report it.
    pub working_ms: Option<u64>,
    pub attempts: Option<u32>,
    pub failed: bool,
}

impl StageBar {
    pub fn total_ms(&self) -> i64 {
        (self.ended - self.started).num_milliseconds().max(0)
    }

    pub fn waited_ms(&self) -> Option<i64> {
        self.working_ms
            .map(|work| (self.total_ms() - i64::try_from(work).unwrap_or(i64::MAX)).max(0))
    }
}

/// A run's bars: from `ticket.received`, each stage from the event before
/// it to its own.
#[derive(Debug, Clone)]
pub struct RunBars {
    pub correlation_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub bars: Vec<StageBar>,
}

/// The runs of a ticket's story, as bars.
pub fn runs(lines: &[StoryLine]) -> Vec<RunBars> {
    let mut runs: Vec<RunBars> = Vec::new();
    for line in lines {
        let (stage, working_ms, failed) = match &line.event.payload {
            Payload::TicketReceived(_) => {
                runs.push(RunBars {
                    correlation_id: line.correlation_id,
                    received_at: line.occurred_at,
                    bars: Vec::new(),
                });
                continue;
            }
            Payload::ContextGathered(context) => {
                let slowest = context
                    .sources
                    .iter()
                    .map(|s| s.latency_ms)
                    .max()
                    .unwrap_or(0);
                let rewrite = context.query_rewrite.as_ref().map_or(0, |r| r.latency_ms);
                ("context", Some(slowest + rewrite), false)
            }
            Payload::EnhancementGenerated(generated) => ("LLM", Some(generated.latency_ms), false),
            Payload::EnhancementFailed(failed) => (
                match failed.stage {
                    aia_events::Stage::ContextGatherer => "context",
                    _ => "LLM",
                },
                None,
                true,
            ),
            Payload::WritebackCompleted(_) => ("write-back", None, false),
            Payload::WritebackFailed(_) => ("write-back", None, true),
            _ => continue,
        };
        let Some(run) = runs
            .iter_mut()
            .rev()
            .find(|run| run.correlation_id == line.correlation_id)
        else {
            continue;
        };
        let started = run.bars.last().map_or(run.received_at, |bar| bar.ended);
        run.bars.push(StageBar {
            stage,
            event_type: line.event_type.clone(),
            started,
            ended: line.occurred_at.max(started),
            working_ms,
            attempts: line.attempts,
            failed,
        });
    }
    runs
}

const WIDTH: f64 = 480.0;
const LABEL: f64 = 84.0;
const ROW: f64 = 26.0;

/// The run as an SVG: a row per stage, the waited part light, the working
/// part solid, a failed part in the failure colour.
pub fn svg(run: &RunBars) -> String {
    let end = run.bars.last().map_or(run.received_at, |bar| bar.ended);
    let total = (end - run.received_at).num_milliseconds().max(1) as f64;
    let scale = |at: DateTime<Utc>| {
        LABEL + (WIDTH - LABEL - 8.0) * (at - run.received_at).num_milliseconds() as f64 / total
    };
    let height = ROW * run.bars.len() as f64 + 24.0;
    let id = run.correlation_id;
    let mut out = format!(
        r#"<svg class="chart bars" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="run-{id}-title run-{id}-desc"><title id="run-{id}-title">Stages of run {id}, to scale</title><desc id="run-{id}-desc">{}</desc>"#,
        describe(run)
    );
    for (row, bar) in run.bars.iter().enumerate() {
        let y = ROW * row as f64 + 4.0;
        let (from, to) = (
            scale(bar.started),
            scale(bar.ended).max(scale(bar.started) + 2.0),
        );
        let work_from = bar
            .working_ms
            .map(|work| {
                (to - (to - from) * (work as f64 / bar.total_ms().max(1) as f64).min(1.0)).max(from)
            })
            .unwrap_or(from);
        let _ = write!(
            out,
            r#"<text class="axis" x="0" y="{:.1}">{}</text>"#,
            y + 15.0,
            bar.stage
        );
        if work_from > from {
            let _ = write!(
                out,
                r#"<rect class="bar-wait" x="{from:.1}" y="{y:.1}" width="{:.1}" height="18"/>"#,
                work_from - from
            );
        }
        let class = if bar.failed { "bar-failed" } else { "bar-work" };
        let _ = write!(
            out,
            r#"<rect class="{class}" x="{work_from:.1}" y="{y:.1}" width="{:.1}" height="18"/>"#,
            (to - work_from).max(1.0)
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis" x="{LABEL}" y="{:.1}">0</text><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text></svg>"#,
        height - 4.0,
        WIDTH - 8.0,
        height - 4.0,
        duration(total as i64)
    );
    out
}

/// The bars in words.
pub fn describe(run: &RunBars) -> String {
    let parts: Vec<String> = run
        .bars
        .iter()
        .map(|bar| {
            let mut part = format!("{} {}", bar.stage, duration(bar.total_ms()));
            if let Some(waited) = bar.waited_ms() {
                let _ = write!(part, " (waited {})", duration(waited));
            }
            if let Some(attempts) = bar.attempts.filter(|a| *a > 1) {
                let _ = write!(part, ", {attempts} attempts");
            }
            if bar.failed {
                part.push_str(", failed");
            }
            part
        })
        .collect();
    if parts.is_empty() {
        "Received; no stage has finished yet.".into()
    } else {
        format!("{}.", parts.join("; "))
    }
}

/// Milliseconds as people read them.
pub fn duration(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aia_events::{Event, examples};
    use chrono::Duration;

    /// The example event of `event_type` (the first, or the one `pick`
    /// accepts), moved into run `run` at `ms` after `start`.
    fn line(event_type: &str, run: Uuid, start: DateTime<Utc>, ms: i64) -> StoryLine {
        let mut event: Event = examples::all()
            .into_iter()
            .find(|event| event.event_type() == event_type)
            .unwrap();
        event.correlation_id = run;
        event.occurred_at = start + Duration::milliseconds(ms);
        StoryLine {
            stream_sequence: 0,
            occurred_at: event.occurred_at,
            event_type: event_type.into(),
            stage: aia_ops::replay::producer(event_type),
            event_id: event.event_id,
            causation_id: event.causation_id,
            correlation_id: run,
            attempts: None,
            trace_id: None,
            summary: String::new(),
            event,
        }
    }

    #[test]
    fn each_stage_runs_from_the_event_before_it_and_a_redrive_adds_a_bar() {
        let start = Utc::now();
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let mut generated = line("enhancement.generated", first, start, 4_000);
        let Payload::EnhancementGenerated(note) = &mut generated.event.payload else {
            panic!()
        };
        note.latency_ms = 1_500;
        generated.attempts = Some(2);
        let lines = vec![
            line("ticket.received", first, start, 0),
            line("context.gathered", first, start, 1_000),
            generated,
            line("writeback.failed", first, start, 5_000),
            line("writeback.completed", first, start, 65_000),
            line("ticket.received", second, start, 70_000),
        ];
        let runs = runs(&lines);
        assert_eq!(runs.len(), 2);
        let bars = &runs[0].bars;
        let stages: Vec<_> = bars.iter().map(|bar| (bar.stage, bar.failed)).collect();
        assert_eq!(
            stages,
            [
                ("context", false),
                ("LLM", false),
                ("write-back", true),
                ("write-back", false)
            ]
        );
        assert_eq!(bars[1].total_ms(), 3_000);
        assert_eq!(
            bars[1].waited_ms(),
            Some(1_500),
            "the model took 1.5 s of 3"
        );
        assert_eq!(bars[3].total_ms(), 60_000, "the re-driven write-back");
        assert_eq!(
            bars[3].waited_ms(),
            None,
            "write-back does not report its work"
        );
        assert!(runs[1].bars.is_empty());
        let words = describe(&runs[0]);
        assert!(
            words.contains("LLM 3.0 s (waited 1.5 s), 2 attempts"),
            "{words}"
        );
        assert!(words.contains("write-back 1.0 s, failed"), "{words}");
        let svg = svg(&runs[0]);
        assert_eq!(svg.matches("bar-failed").count(), 1);
        assert!(
            svg.contains("1 min 5 s"),
            "the axis ends at the run's length: {svg}"
        );
    }

    #[test]
    fn similar_tickets_carry_their_band_and_why_they_matched() {
        let context = examples::all()
            .into_iter()
            .find_map(|event| match event.payload {
                Payload::ContextGathered(context) if !context.similar_tickets.is_empty() => {
                    Some(context)
                }
                _ => None,
            })
            .unwrap();
        let projected = serde_json::json!({
            "similar_tickets": context.similar_tickets,
            "knowledge_articles": context.knowledge_articles,
            "sources": context.sources,
        });
        let view = context_from_history(&projected).unwrap();
        assert_eq!(view.similar.len(), context.similar_tickets.len());
        for (judged, ticket) in view.similar.iter().zip(&context.similar_tickets) {
            let expected = if ticket.score >= 0.5 {
                "likely"
            } else {
                "possible"
            };
            assert_eq!(judged.band, expected);
            assert_eq!(judged.id, ticket.ticket_id.as_str());
            if let Some(by) = ticket.matched_by {
                assert_eq!(judged.why, by.describe());
            }
        }
        assert_eq!(view.sources.len(), context.sources.len());
        assert!(context_from_history(&serde_json::json!({"similar_tickets": 3})).is_none());
    }

    #[test]
    fn the_context_says_which_language_the_ticket_was_read_in_and_why() {
        let german = examples::all()
            .into_iter()
            .find_map(|event| match event.payload {
                Payload::ContextGathered(context)
                    if context
                        .language
                        .is_some_and(|l| l.language == aia_events::Language::German) =>
                {
                    Some(context)
                }
                _ => None,
            })
            .expect("an example read in German");
        assert_eq!(
            context_from_event(&german).language.as_deref(),
            Some("Read in German (the tenant's fixed language)")
        );
        let detected = serde_json::json!({"language": {
            "language": "fr", "decided_by": "detected", "confidence": 0.93}});
        assert_eq!(
            context_from_history(&detected).unwrap().language.as_deref(),
            Some("Read in French (detected from its words, confidence 0.93)")
        );
        let default = serde_json::json!({"language": {
            "language": "en", "decided_by": "default", "confidence": 0.0}});
        assert_eq!(
            context_from_history(&default).unwrap().language.as_deref(),
            Some("Read in English (its words said too little to tell; the default)")
        );
        let older = serde_json::json!({"similar_tickets": []});
        assert_eq!(context_from_history(&older).unwrap().language, None);
    }
}
