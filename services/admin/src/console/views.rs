//! The console's pages as typed templates (`services/admin/templates/`),
//! compiled and HTML-escaped by askama.

use askama::Template;

use super::Operator;
use super::audit::Entry;
use super::charts::Chart;
use aia_ops::dead_letters::DeadLetter;
use aia_ops::tenants::{ConnectionTest, TenantView};
use aia_store::tenants::TenantSummary;

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub operator: Option<Operator>,
    pub message: Option<String>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub operator: Option<Operator>,
    pub heading: String,
    pub text: String,
    pub back: String,
}

/// One stage's consumer as JetStream reports it.
#[derive(Debug)]
pub struct StageHealth {
    pub name: String,
    /// Events not yet delivered.
    pub pending: u64,
    /// Delivered, not yet acknowledged: in flight.
    pub in_flight: u64,
    /// Pull requests waiting: about one per idle instance.
    pub waiting_pulls: usize,
    pub redelivered: u64,
    /// Paused by an operator: events wait in the stream.
    pub paused: bool,
    pub error: Option<String>,
}

#[derive(Debug)]
pub struct Failure {
    pub failed_at: String,
    pub tenant_id: String,
    pub ticket_id: String,
    pub stage: String,
    pub reason: String,
}

#[derive(Debug)]
pub struct Spend {
    pub tenant_id: String,
    pub spent_usd: f64,
    pub budget_usd: Option<f64>,
    pub period_days: u32,
}

/// A live incident as the dashboard lists it.
#[derive(Debug)]
pub struct OpenIncident {
    pub tenant_id: String,
    pub incident_id: uuid::Uuid,
    pub status: String,
    pub summary: String,
    pub first_ticket_at: String,
    /// The first tickets, oldest first.
    pub tickets: Vec<String>,
    pub count: i64,
}

impl Spend {
    pub fn share(&self) -> String {
        match self.budget_usd {
            Some(budget) if budget > 0.0 => format!("{:.0} %", 100.0 * self.spent_usd / budget),
            _ => "no budget".into(),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct Dashboard {
    pub operator: Option<Operator>,
    pub nats_ok: bool,
    pub database_ok: bool,
    pub stages: Vec<StageHealth>,
    pub received: i64,
    pub completed: i64,
    pub failed: i64,
    pub success_rate: String,
    pub p95_ms: String,
    pub per_minute: String,
    pub failures: Vec<Failure>,
    pub spend: Vec<Spend>,
    pub period: super::trends::Period,
    pub charts: Vec<Chart>,
    pub lag: Vec<Chart>,
    pub spend_charts: Vec<Chart>,
    pub incidents: Vec<OpenIncident>,
}

#[derive(Template)]
#[template(path = "tenants.html")]
pub struct TenantsPage {
    pub operator: Option<Operator>,
    pub search: String,
    pub items: Vec<TenantSummary>,
    pub next_cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "tenant_new.html")]
pub struct NewTenantPage {
    pub operator: Option<Operator>,
    pub message: Option<String>,
}

/// After creating a tenant or rotating its secret: the secret, once.
#[derive(Template)]
#[template(path = "tenant_secret.html")]
pub struct SecretPage {
    pub operator: Option<Operator>,
    pub heading: String,
    pub tenant_id: String,
    pub secret: String,
    pub webhook_urls: Vec<(String, String)>,
    /// What to set up in the tenant's tool.
    pub setup: Vec<String>,
}

#[derive(Template)]
#[template(path = "tenant.html")]
pub struct TenantPage {
    pub operator: Option<Operator>,
    pub tenant: TenantView,
    /// Events set aside while paused.
    pub parked: i64,
    /// The LLM provider chain as editable JSON.
    pub providers_json: String,
    /// What the settings form shows, as it shows it (JSON): a save changes
    /// only what the operator changed from this, not what another changed
    /// since the page was loaded.
    pub shown: String,
    /// The ratings' figures; `None` when they could not be read (the page
    /// and its settings still show).
    pub feedback: Option<aia_ops::tenants::FeedbackStats>,
    pub webhook_urls: Vec<(String, String)>,
    pub connection: Option<ConnectionTest>,
    pub message: Option<String>,
    pub period: super::trends::Period,
    /// The tenant's runs, time in each stage and spend.
    pub charts: Vec<Chart>,
}

/// One of the tenant's language settings as the settings form shows it.
pub struct LanguageChoice {
    /// The form field.
    pub field: &'static str,
    pub label: &'static str,
    /// What leaving it unset means.
    pub unset: &'static str,
    /// The chosen language's code, or empty.
    pub chosen: &'static str,
}

/// A language the form offers: its code and its own name.
pub struct LanguageOption {
    pub code: &'static str,
    pub name: &'static str,
}

impl TenantPage {
    pub fn language_choices(&self) -> [LanguageChoice; 3] {
        let languages = &self.tenant.settings.languages;
        let code = |language: Option<aia_events::Language>| language.map_or("", |l| l.code());
        [
            LanguageChoice {
                field: "language_fixed",
                label: "Tickets are written in",
                unset: "Detected per ticket",
                chosen: code(languages.fixed),
            },
            LanguageChoice {
                field: "language_default",
                label: "When a ticket says too little to tell its language",
                unset: "English",
                chosen: code(languages.default),
            },
            LanguageChoice {
                field: "language_note",
                label: "Notes are written in",
                unset: "The ticket's language",
                chosen: code(languages.note),
            },
        ]
    }

    pub fn languages(&self) -> Vec<LanguageOption> {
        aia_events::Language::ALL
            .iter()
            .map(|language| LanguageOption {
                code: language.code(),
                name: language.native_name(),
            })
            .collect()
    }
}

#[derive(Template)]
#[template(path = "dead_letters.html")]
pub struct DeadLettersPage {
    pub operator: Option<Operator>,
    pub tenant: String,
    pub items: Vec<DeadLetter>,
    /// More dead letters wait than are listed.
    pub more: bool,
    pub message: Option<String>,
}

#[derive(Template)]
#[template(path = "history.html")]
pub struct HistoryPage {
    pub operator: Option<Operator>,
    pub filter: super::history::Filter,
    pub statuses: &'static [&'static str],
    /// The filter as a query string (for the CSV link and the next page).
    pub query: String,
    pub runs: Vec<super::history::Run>,
    pub next: Option<String>,
    pub message: Option<String>,
}

/// One event of a ticket's timeline.
#[derive(Debug)]
pub struct TimelineLine {
    pub sequence: u64,
    pub at: String,
    pub event_type: String,
    pub stage: &'static str,
    pub attempts: Option<u32>,
    pub run: String,
    pub summary: String,
    pub trace_id: Option<String>,
    pub trace_url: Option<String>,
}

#[derive(Template)]
#[template(path = "incidents.html")]
pub struct IncidentsPage {
    pub operator: Option<Operator>,
    pub tenant: String,
    /// Ended incidents listed too.
    pub ended: bool,
    pub items: Vec<incident_correlator::operator::IncidentRow>,
    /// More incidents match than are listed.
    pub more: bool,
    /// Notifications to tenants' webhooks given up on.
    pub failed_notifications: Vec<incident_notifier::ledger::Failed>,
    pub message: Option<String>,
}

#[derive(Template)]
#[template(path = "incident.html")]
pub struct IncidentPage {
    pub operator: Option<Operator>,
    pub incident: incident_correlator::operator::IncidentRow,
    pub tickets: Vec<incident_correlator::operator::TicketRow>,
}

/// One stage of a run, as the table under its bars lists it.
#[derive(Debug)]
pub struct BarRow {
    pub stage: &'static str,
    pub event_type: String,
    pub took: String,
    pub waited: String,
    pub attempts: String,
    pub failed: bool,
}

/// A run of the ticket as a picture: its stages to scale, the context it
/// found and the note it posted.
#[derive(Debug)]
pub struct RunPicture {
    pub correlation_id: String,
    pub received_at: String,
    pub svg: String,
    pub bars: Vec<BarRow>,
    pub trace_id: Option<String>,
    pub trace_url: Option<String>,
    pub context: Option<super::run_view::ContextView>,
    pub posted: Option<super::run_view::AsPosted>,
    pub posted_markdown: Option<String>,
}

#[derive(Template)]
#[template(path = "timeline.html")]
pub struct TimelinePage {
    pub operator: Option<Operator>,
    pub tenant: String,
    pub ticket: String,
    pub runs: Vec<RunPicture>,
    pub lines: Vec<TimelineLine>,
    pub message: Option<String>,
    pub dry_run: Option<String>,
    /// A write-back dry-run's note, rendered as the help desk would show it.
    pub dry_run_note: Option<(super::run_view::AsPosted, String)>,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub operator: Option<Operator>,
    pub entries: Vec<Entry>,
    pub next: Option<i64>,
}
