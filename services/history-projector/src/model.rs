//! The read models as plain values, and how each event changes them.
//!
//! The live projector and the rebuild both use these functions, so a
//! rebuild from the stream produces exactly what the live projector wrote.
//! No I/O here.

use std::collections::HashMap;

use aia_events::{Event, Payload};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// One row of `enhancement_history`: one ticket run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunRow {
    pub tenant_id: String,
    pub correlation_id: Uuid,
    pub ticket_id: String,
    pub status: String,
    pub source: Option<String>,
    pub subject: Option<String>,
    pub priority: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    pub context_gathered_at: Option<DateTime<Utc>>,
    pub enhanced_at: Option<DateTime<Utc>>,
    pub written_back_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub processing_ms: Option<i64>,
    pub context_summary: Option<String>,
    pub context: Option<serde_json::Value>,
    pub note_markdown: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
    pub tokens_in: Option<i32>,
    pub tokens_out: Option<i32>,
    pub cost_usd: Option<f64>,
    pub degraded: Option<bool>,
    pub failed_stage: Option<String>,
    pub error: Option<String>,
    pub last_event_id: Uuid,
    pub context_ms: Option<i64>,
    pub llm_ms: Option<i64>,
    pub writeback_ms: Option<i64>,
    pub rating_stars: Option<i16>,
    pub rating_thumbs_up: Option<bool>,
    pub rating_comment: Option<String>,
    pub rated_at: Option<DateTime<Utc>>,
    pub failed_attempts: Option<i32>,
    /// The input of the stage that failed, for re-driving it.
    pub failed_input_event_id: Option<Uuid>,
    /// The note as write-back handed it to the tool.
    pub posted_markdown: Option<String>,
    /// The language the ticket was read in (ISO 639-1), from
    /// context.gathered v5.
    pub language: Option<String>,
    /// The query rewrites and the notes whose paid LLM calls `cost_usd`
    /// (and the day's counters) already count, each by its input event and
    /// its own event: each call once, whatever the status.
    pub costed_rewrites: Vec<Uuid>,
    pub costed_notes: Vec<Uuid>,
}

/// One row of `ticket_history`: a resolved ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketRow {
    pub tenant_id: String,
    pub ticket_id: String,
    pub subject: String,
    pub description: String,
    pub resolution: String,
    pub priority: String,
    pub tags: Vec<String>,
    pub resolved_at: DateTime<Utc>,
    pub last_event_id: Uuid,
    /// As decided where the ticket entered, with the tenant's language
    /// settings (its fixed language, else its words, else its default);
    /// for events published before they carried it, detected from the
    /// words, English when they say too little.
    pub language: String,
}

/// Additions to one tenant's counters of one day.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counters {
    pub received: i64,
    pub completed: i64,
    pub failed: i64,
    pub failed_budget: i64,
    pub degraded: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub processing_ms_total: i64,
}

impl Counters {
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    pub fn add(&mut self, other: &Counters) {
        self.received += other.received;
        self.completed += other.completed;
        self.failed += other.failed;
        self.failed_budget += other.failed_budget;
        self.degraded += other.degraded;
        self.tokens_in += other.tokens_in;
        self.tokens_out += other.tokens_out;
        self.cost_usd += other.cost_usd;
        self.processing_ms_total += other.processing_ms_total;
    }
}

/// Whether an event belongs to a ticket run (rather than to the history
/// corpus or to the tenant as a whole).
pub fn concerns_a_run(payload: &Payload) -> bool {
    !matches!(
        payload,
        Payload::TicketResolved(_)
            | Payload::BudgetThresholdReached(_)
            | Payload::IncidentDetected(_)
            | Payload::IncidentUpdated(_)
    )
}

/// How far a status is along a run; a run never moves to a lower rank. A
/// failed run can still complete (an operator re-drove it); a completed or
/// over-budget run never turns failed.
pub fn status_rank(status: &str) -> u8 {
    match status {
        "received" => 1,
        "context_gathered" => 2,
        "enhanced" => 3,
        "failed" => 4,
        "completed" | "failed_budget" => 5,
        _ => 0,
    }
}

fn millis_between(from: Option<DateTime<Utc>>, to: DateTime<Utc>) -> Option<i64> {
    from.map(|from| (to - from).num_milliseconds())
}

/// Whether `event`'s paid call is yet to be counted among `costed` (the
/// counted calls of its kind). Each counted call is remembered by its
/// input (its event's cause) and by its own event: a redelivered output
/// (the same input) adds nothing, nor does an operator's copy of a counted
/// event (a re-drive or a resume publishes the event again, caused by the
/// original); a call made from a new input (a re-driven earlier stage)
/// adds its own.
fn first_paid(costed: &mut Vec<Uuid>, event: &Event) -> bool {
    let input = event.causation_id.unwrap_or(event.event_id);
    if costed.contains(&input) || costed.contains(&event.event_id) {
        false
    } else {
        costed.extend([input, event.event_id]);
        true
    }
}

impl RunRow {
    pub fn new(event: &Event) -> Self {
        Self {
            tenant_id: event.tenant_id.to_string(),
            correlation_id: event.correlation_id,
            ticket_id: event.ticket_id.to_string(),
            last_event_id: event.event_id,
            ..Self::default()
        }
    }

    /// The day whose counters this run's numbers go to.
    pub fn day(&self, event: &Event) -> NaiveDate {
        self.received_at.unwrap_or(event.occurred_at).date_naive()
    }

    /// Moves the status forward only; true when `status` is where this
    /// event moved the run (so counters count each run once).
    fn advance(&mut self, status: &str, event: &Event) -> bool {
        self.last_event_id = event.event_id;
        if status_rank(status) > status_rank(&self.status) {
            self.status = status.to_owned();
            true
        } else {
            false
        }
    }

    /// Applies one event of this run; returns what to add to the counters of
    /// the run's day. `None` for events that do not concern runs.
    pub fn apply(&mut self, event: &Event) -> Option<Counters> {
        let at = event.occurred_at;
        let mut counters = Counters::default();
        match &event.payload {
            Payload::TicketReceived(received) => {
                if self.advance("received", event) {
                    counters.received = 1;
                }
                self.source = Some(received.source.as_str().to_owned());
                self.subject.clone_from(&received.subject);
                self.priority = Some(received.priority.as_str().to_owned());
                self.received_at = self.received_at.or(Some(at));
            }
            Payload::ContextGathered(context) => {
                self.advance("context_gathered", event);
                self.context_gathered_at = Some(at);
                self.context = Some(serde_json::json!({
                    "similar_tickets": context.similar_tickets,
                    "knowledge_articles": context.knowledge_articles,
                    "systems": context.systems,
                    "monitoring": context.monitoring,
                    "sources": context.sources,
                    "query_rewrite": context.query_rewrite,
                    "related_open": context.related_open,
                    "language": context.language,
                }));
                self.language = context.language.map(|l| l.language.code().to_owned());
                // The rewrite is LLM spend like the note: in the run's cost
                // and in the day's, once per call.
                if let Some(rewrite) = &context.query_rewrite
                    && first_paid(&mut self.costed_rewrites, event)
                {
                    counters.tokens_in = i64::from(rewrite.tokens_in);
                    counters.tokens_out = i64::from(rewrite.tokens_out);
                    counters.cost_usd = rewrite.cost_usd;
                    self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + rewrite.cost_usd);
                }
                self.received_at = self.received_at.or(Some(context.received_at));
                self.context_ms = millis_between(self.received_at, at);
            }
            Payload::EnhancementGenerated(generated) => {
                // Over budget, the run ends as failed_budget (its raw-context
                // note is still written back).
                let status = if generated.budget_exceeded {
                    "failed_budget"
                } else {
                    "enhanced"
                };
                let moved = self.advance(status, event);
                if moved && generated.budget_exceeded {
                    counters.failed_budget = 1;
                }
                self.enhanced_at = Some(at);
                self.note_markdown = Some(generated.note_markdown.clone());
                self.provider.clone_from(&generated.provider);
                self.model.clone_from(&generated.model);
                self.prompt_version = Some(generated.prompt_version.clone());
                self.tokens_in = Some(i32::try_from(generated.tokens_in).unwrap_or(i32::MAX));
                self.tokens_out = Some(i32::try_from(generated.tokens_out).unwrap_or(i32::MAX));
                let paid = first_paid(&mut self.costed_notes, event);
                if paid {
                    self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + generated.cost_usd);
                }
                self.degraded = Some(generated.degraded);
                self.context_summary = Some(generated.context_summary.clone());
                self.received_at = self.received_at.or(Some(generated.received_at));
                self.llm_ms = millis_between(self.context_gathered_at, at);
                if paid {
                    counters.tokens_in = i64::from(generated.tokens_in);
                    counters.tokens_out = i64::from(generated.tokens_out);
                    counters.cost_usd = generated.cost_usd;
                }
                if moved {
                    counters.degraded = i64::from(generated.degraded);
                }
            }
            Payload::EnhancementFailed(failed) => {
                if self.advance("failed", event) {
                    counters.failed = 1;
                }
                self.failed_at = Some(at);
                self.failed_stage = Some(failed.stage.as_str().to_owned());
                self.error = Some(failed.reason.clone());
                self.failed_attempts = Some(i32::try_from(failed.attempts).unwrap_or(i32::MAX));
                self.failed_input_event_id = event.causation_id;
            }
            Payload::WritebackCompleted(completed) => {
                let moved = self.advance("completed", event);
                self.written_back_at = Some(at);
                self.received_at = self.received_at.or(Some(completed.received_at));
                self.writeback_ms = millis_between(self.enhanced_at, at);
                self.processing_ms = millis_between(self.received_at, at);
                // The first note recorded stands: a redelivery that found the
                // note already on the ticket composes it again, perhaps with
                // settings changed since.
                if self.posted_markdown.is_none() {
                    self.posted_markdown.clone_from(&completed.posted_markdown);
                }
                if moved {
                    counters.completed = 1;
                    counters.processing_ms_total = self.processing_ms.unwrap_or(0);
                }
            }
            Payload::WritebackFailed(failed) => {
                // An over-budget run keeps its status (already counted), and
                // is a dead letter by its failure below all the same.
                if self.advance("failed", event) {
                    counters.failed = 1;
                }
                self.failed_at = Some(at);
                self.failed_stage = Some("writeback".to_owned());
                self.error = Some(failed.reason.clone());
                self.failed_attempts = Some(i32::try_from(failed.attempts).unwrap_or(i32::MAX));
                self.failed_input_event_id = event.causation_id;
            }
            Payload::EnhancementRated(rated) => {
                // A rating does not move the run; the latest one stands.
                if self.rated_at.is_none_or(|previous| previous <= at) {
                    self.rating_stars = rated.stars.map(i16::from);
                    self.rating_thumbs_up = rated.thumbs_up;
                    self.rating_comment.clone_from(&rated.comment);
                    self.rated_at = Some(at);
                }
            }
            Payload::TicketResolved(_)
            | Payload::BudgetThresholdReached(_)
            | Payload::IncidentDetected(_)
            | Payload::IncidentUpdated(_) => return None,
        }
        Some(counters)
    }
}

impl TicketRow {
    pub fn from_event(event: &Event) -> Option<Self> {
        let Payload::TicketResolved(resolved) = &event.payload else {
            return None;
        };
        Some(Self {
            tenant_id: event.tenant_id.to_string(),
            ticket_id: event.ticket_id.to_string(),
            subject: resolved.subject.clone(),
            description: resolved.description.clone(),
            resolution: resolved.resolution.clone(),
            priority: resolved.priority.as_str().to_owned(),
            tags: resolved.tags.clone(),
            resolved_at: resolved.resolved_at,
            last_event_id: event.event_id,
            language: resolved
                .language
                .unwrap_or_else(|| aia_events::language::decide(&resolved.words(), None, None))
                .language
                .code()
                .to_owned(),
        })
    }
}

/// Every read model, folded in memory from events in stream order: what a
/// rebuild writes.
#[derive(Debug, Default)]
pub struct Projection {
    pub runs: HashMap<(String, Uuid), RunRow>,
    pub tickets: HashMap<(String, String), TicketRow>,
    pub daily: HashMap<(String, NaiveDate), Counters>,
}

impl Projection {
    pub fn apply(&mut self, event: &Event) {
        if let Some(ticket) = TicketRow::from_event(event) {
            // A ticket resolved again (reopened) keeps its latest
            // resolution: an older one imported later does not replace it.
            let key = (ticket.tenant_id.clone(), ticket.ticket_id.clone());
            if self
                .tickets
                .get(&key)
                .is_none_or(|held| ticket.resolved_at >= held.resolved_at)
            {
                self.tickets.insert(key, ticket);
            }
            return;
        }
        if !concerns_a_run(&event.payload) {
            return;
        }
        let key = (event.tenant_id.to_string(), event.correlation_id);
        let is_rating = matches!(event.payload, Payload::EnhancementRated(_));
        if is_rating && !self.runs.contains_key(&key) {
            return; // a rating for a run we do not have (purged, or never run)
        }
        let row = self.runs.entry(key).or_insert_with(|| RunRow::new(event));
        if let Some(counters) = row.apply(event)
            && !counters.is_zero()
        {
            let day = row.day(event);
            self.daily
                .entry((row.tenant_id.clone(), day))
                .or_default()
                .add(&counters);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aia_events::examples;

    fn run(types: &[&str]) -> Vec<Event> {
        let samples = examples::all();
        chain(
            types
                .iter()
                .map(|event_type| {
                    samples
                        .iter()
                        .find(|event| event.event_type() == *event_type)
                        .unwrap()
                        .clone()
                })
                .collect(),
        )
    }

    /// The events as one run's chain: ids of their own, each caused by the
    /// one before (the samples all share one id and one cause).
    fn chain(mut events: Vec<Event>) -> Vec<Event> {
        let mut previous = None;
        for (n, event) in events.iter_mut().enumerate() {
            event.event_id = Uuid::from_u128(0x019a_bcde_0000_7000_8000_0000_0000_1000 + n as u128);
            event.causation_id = previous;
            previous = Some(event.event_id);
        }
        events
    }

    #[test]
    fn a_run_counts_once_however_often_its_events_repeat() {
        let events = run(&[
            "ticket.received",
            "context.gathered",
            "enhancement.generated",
            "writeback.completed",
        ]);
        let mut projection = Projection::default();
        for event in events.iter().chain(events.iter()) {
            projection.apply(event);
        }
        assert_eq!(projection.runs.len(), 1);
        let row = projection.runs.values().next().unwrap();
        assert_eq!(row.status, "completed");
        let counters = projection.daily.values().next().unwrap();
        assert_eq!(
            (counters.received, counters.completed, counters.tokens_in),
            (1, 1, 812)
        );
    }

    /// A ticket resolved again keeps its latest resolution: an older one
    /// imported after it does not replace it.
    #[test]
    fn an_older_resolution_does_not_replace_a_newer_one() {
        let mut events = run(&["ticket.resolved", "ticket.resolved"]);
        let Payload::TicketResolved(newer) = &mut events[0].payload else {
            unreachable!()
        };
        newer.resolution = "the fix that holds".into();
        let newer_at = newer.resolved_at;
        let Payload::TicketResolved(older) = &mut events[1].payload else {
            unreachable!()
        };
        older.resolution = "a fix that did not hold".into();
        older.resolved_at = newer_at - chrono::Duration::days(30);
        let mut projection = Projection::default();
        for event in &events {
            projection.apply(event);
        }
        let ticket = projection.tickets.values().next().unwrap();
        assert_eq!(ticket.resolution, "the fix that holds");
    }

    /// An over-budget run whose raw-context note could not be posted keeps
    /// its status, counted once, and says where it failed (which makes it a
    /// dead letter, `aia_ops::dead_letters`).
    #[test]
    fn an_over_budget_run_whose_note_fails_to_post_is_failed() {
        let mut events = run(&[
            "ticket.received",
            "context.gathered",
            "enhancement.generated",
            "writeback.failed",
        ]);
        if let Payload::EnhancementGenerated(generated) = &mut events[2].payload {
            generated.budget_exceeded = true;
            generated.degraded = true;
        }
        let mut projection = Projection::default();
        for event in events.iter().chain(events.iter()) {
            projection.apply(event);
        }
        let row = projection.runs.values().next().unwrap();
        assert_eq!(row.status, "failed_budget");
        assert_eq!(row.failed_stage.as_deref(), Some("writeback"));
        assert!(row.failed_at.is_some() && row.written_back_at.is_none());
        let counters = projection.daily.values().next().unwrap();
        assert_eq!((counters.failed_budget, counters.failed), (1, 0));
    }

    #[test]
    fn a_query_rewrite_is_spend_in_the_run_and_the_day_counted_once() {
        let samples = examples::all();
        let mut events = run(&["ticket.received"]);
        let rewritten = samples
            .iter()
            .find(|event| match &event.payload {
                Payload::ContextGathered(context) => context
                    .query_rewrite
                    .as_ref()
                    .is_some_and(|rewrite| rewrite.cost_usd > 0.0),
                _ => false,
            })
            .expect("a sample context with a paid rewrite")
            .clone();
        let Payload::ContextGathered(context) = &rewritten.payload else {
            unreachable!()
        };
        let rewrite = context.query_rewrite.clone().unwrap();
        events.push(rewritten);
        events.extend(run(&["enhancement.generated", "writeback.completed"]));
        let events = chain(events);
        let Payload::EnhancementGenerated(generated) = &events[2].payload else {
            unreachable!()
        };
        let note_cost = generated.cost_usd;
        let mut projection = Projection::default();
        for event in events.iter().chain(events.iter()) {
            projection.apply(event);
        }
        let row = projection.runs.values().next().unwrap();
        let total = note_cost + rewrite.cost_usd;
        assert!((row.cost_usd.unwrap() - total).abs() < 1e-12, "{row:?}");
        let counters = projection.daily.values().next().unwrap();
        assert!((counters.cost_usd - total).abs() < 1e-12, "{counters:?}");
        assert_eq!(counters.tokens_in, 812 + i64::from(rewrite.tokens_in));
        assert_eq!(
            row.context.as_ref().unwrap()["query_rewrite"]["terms"],
            rewrite.terms.unwrap()
        );
    }

    #[test]
    fn late_events_fill_in_fields_but_never_move_the_status_back() {
        let events = run(&["writeback.completed", "context.gathered"]);
        let mut projection = Projection::default();
        for event in &events {
            projection.apply(event);
        }
        let row = projection.runs.values().next().unwrap();
        assert_eq!(row.status, "completed");
        assert!(row.context.is_some());
    }

    #[test]
    fn the_first_posted_note_stands_when_a_redelivery_reports_it_again() {
        let mut events = run(&["writeback.completed", "writeback.completed"]);
        let note = |text: &str, event: &mut Event| {
            if let Payload::WritebackCompleted(done) = &mut event.payload {
                done.posted_markdown = Some(text.into());
            }
        };
        note("as posted", &mut events[0]);
        note("composed again later", &mut events[1]);
        let mut projection = Projection::default();
        for event in &events {
            projection.apply(event);
        }
        let row = projection.runs.values().next().unwrap();
        assert_eq!(row.posted_markdown.as_deref(), Some("as posted"));
    }

    #[test]
    fn ratings_for_unknown_runs_are_ignored() {
        let mut projection = Projection::default();
        projection.apply(&run(&["enhancement.rated"])[0]);
        assert!(projection.runs.is_empty());
    }

    /// The language the example resolved ticket is stored in once
    /// `change` is made to it.
    fn stored_language(change: impl FnOnce(&mut aia_events::TicketResolved)) -> String {
        let mut event = examples::all()
            .into_iter()
            .find(|event| matches!(event.payload, Payload::TicketResolved(_)))
            .unwrap();
        let Payload::TicketResolved(resolved) = &mut event.payload else {
            unreachable!()
        };
        change(resolved);
        TicketRow::from_event(&event).unwrap().language
    }

    #[test]
    fn a_resolved_ticket_is_stored_in_the_language_decided_where_it_entered() {
        // A German-only tenant's ticket full of English words: the edge
        // decided German with the tenant's settings, and German it stays.
        let language = stored_language(|resolved| {
            resolved.language = Some(aia_events::language::decide(
                &resolved.words(),
                Some(aia_events::Language::German),
                None,
            ));
        });
        assert_eq!(language, "de");
    }

    #[test]
    fn a_resolved_ticket_published_without_a_language_is_read_in_its_words_language() {
        assert_eq!(stored_language(|resolved| resolved.language = None), "en");
        let french = stored_language(|resolved| {
            resolved.language = None;
            resolved.subject = "Le VPN se coupe toutes les heures".into();
            resolved.description = "Les utilisateurs perdent le tunnel VPN chaque heure.".into();
            resolved.resolution = "Durée de vie de la SA IKE portée à 8 h sur le pare-feu.".into();
        });
        assert_eq!(french, "fr");
        let codes = stored_language(|resolved| {
            resolved.language = None;
            resolved.subject = "VPN".into();
            resolved.description = "0x80070005".into();
            resolved.resolution = "KB5034441".into();
        });
        assert_eq!(codes, "en", "too little to tell: English, as before");
    }

    /// A run re-driven after it failed (or replayed for a new note) made
    /// a second paid call: its cost reaches the run and the day, once; the
    /// first call's event redelivered adds nothing.
    #[test]
    fn a_re_driven_call_is_spend_too_and_a_redelivered_one_is_not() {
        let events = run(&[
            "ticket.received",
            "context.gathered",
            "enhancement.generated",
            "writeback.completed",
        ]);
        let Payload::EnhancementGenerated(generated) = &events[2].payload else {
            unreachable!()
        };
        let call = generated.cost_usd;
        assert!(call > 0.0);
        // The re-drive: the context published again (a new input), and the
        // note made from it.
        let mut again = events[2].clone();
        again.event_id = Uuid::now_v7();
        again.causation_id = Some(Uuid::now_v7());
        // An operator's copy of the first note's event (a dead letter of
        // write-back re-driven): no new call.
        let copy = Event::republished(&events[2]);
        let mut projection = Projection::default();
        for event in events.iter().chain([&again, &again, &events[2], &copy]) {
            projection.apply(event);
        }
        let row = projection.runs.values().next().unwrap();
        assert!(
            (row.cost_usd.unwrap() - 2.0 * call).abs() < 1e-12,
            "{row:?}"
        );
        let counters = projection.daily.values().next().unwrap();
        assert!(
            (counters.cost_usd - 2.0 * call).abs() < 1e-12,
            "{counters:?}"
        );
        assert_eq!(counters.completed, 1, "one run, completed once");
    }
}
