//! Payloads of each event type, version 1.
//!
//! These structs are the contract between stages; `schemas/` holds the same
//! contract as JSON Schema and a test keeps the two in step. Changing a field
//! here means a new schema version and an upcast in [`crate::envelope`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{Priority, TicketId};

/// Which help-desk tool (or PSA) an event came from or goes to.
///
/// Adding a tool widens this enum in every schema that names it: an
/// additive change, so deploy the stages before the ingress that accepts the
/// new tool (an older stage cannot decode its events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItsmKind {
    ServicedeskPlus,
    Jira,
    Zendesk,
    Freshservice,
    Servicenow,
    Connectwise,
    Autotask,
    Halopsa,
}

impl ItsmKind {
    /// Every tool, in the order operators see them.
    pub const ALL: [ItsmKind; 8] = [
        Self::ServicedeskPlus,
        Self::Jira,
        Self::Zendesk,
        Self::Freshservice,
        Self::Servicenow,
        Self::Connectwise,
        Self::Autotask,
        Self::Halopsa,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServicedeskPlus => "servicedesk_plus",
            Self::Jira => "jira",
            Self::Zendesk => "zendesk",
            Self::Freshservice => "freshservice",
            Self::Servicenow => "servicenow",
            Self::Connectwise => "connectwise",
            Self::Autotask => "autotask",
            Self::Halopsa => "halopsa",
        }
    }

    /// The tool's name as its users write it.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::ServicedeskPlus => "ServiceDesk Plus",
            Self::Jira => "Jira Service Management",
            Self::Zendesk => "Zendesk",
            Self::Freshservice => "Freshservice",
            Self::Servicenow => "ServiceNow",
            Self::Connectwise => "ConnectWise PSA",
            Self::Autotask => "Autotask PSA",
            Self::Halopsa => "HaloPSA",
        }
    }

    /// The kind named `raw` (`as_str`'s form).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }
}

/// Whether the webhook announced a new ticket or a change to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketChange {
    Created,
    Updated,
}

/// The pipeline stage that produced an event or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Ingress,
    ContextGatherer,
    LlmEnhancer,
    Writeback,
    HistoryProjector,
}

impl Stage {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::ContextGatherer => "context-gatherer",
            Self::LlmEnhancer => "llm-enhancer",
            Self::Writeback => "writeback",
            Self::HistoryProjector => "history-projector",
        }
    }
}

/// `ticket.received`: a help-desk tool told us about a new or changed ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketReceived {
    pub source: ItsmKind,
    pub change: TicketChange,
    pub subject: Option<String>,
    pub description: String,
    pub priority: Priority,
    pub requester: Option<String>,
    /// When the ticket was created in the help-desk tool.
    pub created_at: DateTime<Utc>,
    /// The idempotency key the ingress derived from the delivery.
    pub delivery_id: String,
}

/// `ticket.resolved`: a resolved ticket for the tenant's history corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketResolved {
    pub source: ItsmKind,
    pub subject: String,
    pub description: String,
    pub resolution: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub resolved_at: DateTime<Utc>,
    /// The language it is searched in, decided where it entered (the
    /// ingress or an import) with the tenant's language settings, so a
    /// tenant's fixed or default language holds for its history as for its
    /// new tickets (schema v2; v1 events read as `None`, and the projector
    /// detects their language from the words).
    #[serde(default)]
    pub language: Option<crate::language::TicketLanguage>,
}

impl TicketResolved {
    /// The words its language is told from: description, subject
    /// ([`crate::language::ticket_text`]) and resolution.
    pub fn words(&self) -> String {
        format!(
            "{}\n{}",
            crate::language::ticket_text(Some(&self.subject), &self.description),
            self.resolution
        )
    }
}

/// The ticket text a stage works on, carried forward so that every stage
/// can work from its input event alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketText {
    pub source: ItsmKind,
    pub subject: Option<String>,
    pub description: String,
    pub priority: Priority,
}

/// A resolved ticket of the same tenant that looks like this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarTicket {
    pub ticket_id: TicketId,
    pub subject: String,
    pub description: String,
    pub resolution: String,
    pub resolved_at: DateTime<Utc>,
    pub tags: Vec<String>,
    /// The calibrated confidence in [0, 1]; 0.5 and above is a likely match.
    pub score: f64,
    /// Why it was found, so a technician can judge it (v2; `None` in
    /// events written before it was recorded).
    #[serde(default)]
    pub matched_by: Option<MatchedBy>,
}

/// From this calibrated score a similar ticket or article is a likely
/// match; below it may be unrelated.
pub const LIKELY_SCORE: f64 = 0.5;

/// Whether a calibrated score makes a likely match.
pub fn is_likely(score: f64) -> bool {
    score >= LIKELY_SCORE
}

/// What made a similar ticket match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchedBy {
    /// Its meaning is close; it shares no notable words.
    Meaning,
    /// Only its words (the full-text search, when no vectors are available).
    Words,
    /// Close in meaning and sharing words with the ticket.
    Both,
}

impl MatchedBy {
    /// How a note says it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Meaning => "similar meaning",
            Self::Words => "shared words",
            Self::Both => "similar meaning and shared words",
        }
    }
}

/// A knowledge-base article that may apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeArticle {
    pub title: String,
    pub summary: String,
    pub url: Option<String>,
    pub score: f64,
}

/// An inventory entry for a host or address the ticket mentions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemInfo {
    /// The text in the ticket that matched (an address or a host name).
    pub matched: String,
    pub hostname: Option<String>,
    pub address: Option<String>,
    pub role: Option<String>,
    pub client: Option<String>,
    pub location: Option<String>,
}

/// Something abnormal that monitoring reports for a matched host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringFinding {
    pub host: String,
    pub summary: String,
}

/// The context sources the gatherer consults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextSource {
    SimilarTickets,
    KnowledgeBase,
    Inventory,
    Monitoring,
    /// Other open tickets of the tenant that look like the same problem
    /// (schema v4).
    RelatedTickets,
}

/// How one context source fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    Ok,
    Empty,
    Timeout,
    Error,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceReport {
    pub source: ContextSource,
    pub status: SourceStatus,
    pub latency_ms: u64,
    pub items: u32,
    /// A short, operator-facing explanation when the status is not `ok`.
    pub detail: Option<String>,
}

/// `context.gathered`: everything found about the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextGathered {
    pub ticket: TicketText,
    /// When ingress accepted the webhook; carried for end-to-end latency.
    pub received_at: DateTime<Utc>,
    pub similar_tickets: Vec<SimilarTicket>,
    pub knowledge_articles: Vec<KnowledgeArticle>,
    pub systems: Vec<SystemInfo>,
    pub monitoring: Vec<MonitoringFinding>,
    pub sources: Vec<SourceReport>,
    /// The tenant's LLM's rewrite of the ticket in a technician's terms,
    /// searched beside it; `None` when the tenant has it off (schema v3;
    /// older events read as `None`).
    #[serde(default)]
    pub query_rewrite: Option<QueryRewrite>,
    /// The tenant's other open tickets, received recently, that look like
    /// the same problem, most similar first (schema v4; older events read
    /// as empty).
    #[serde(default)]
    pub related_open: Vec<crate::incident::RelatedTicket>,
    /// The language the ticket was read in (its searches' stemming, the
    /// note's language) and how that was decided (schema v5; older events
    /// read as `None`, and were read in English).
    #[serde(default)]
    pub language: Option<crate::language::TicketLanguage>,
}

/// What the tenant's LLM made of the ticket for the searches: its technical
/// terms, or why the search used the ticket alone, with what the call cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRewrite {
    /// The terms searched beside the ticket; `None` when there are none.
    pub terms: Option<String>,
    /// Why there are no terms (no provider, over budget, the model failed
    /// or took too long).
    pub skipped_because: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub tokens_in: u32,
    pub tokens_out: u32,
    /// Counted in the tenant's LLM spend beside the note's.
    pub cost_usd: f64,
    pub latency_ms: u64,
}

/// `enhancement.generated`: the note to write back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnhancementGenerated {
    pub source: ItsmKind,
    pub received_at: DateTime<Utc>,
    /// The note as Markdown; each ITSM plugin renders it for its tool.
    pub note_markdown: String,
    /// `None` when no provider produced the note (the raw-context fallback).
    pub provider: Option<String>,
    pub model: Option<String>,
    pub prompt_version: String,
    pub tokens_in: u32,
    pub tokens_out: u32,
    pub cost_usd: f64,
    pub latency_ms: u64,
    pub attempts: u32,
    /// True when the note is the labelled raw-context fallback.
    pub degraded: bool,
    /// Why the note is degraded, when it is.
    pub degraded_reason: Option<String>,
    /// A short summary of the context the note was built from.
    pub context_summary: String,
    /// True when the tenant was over its LLM budget, so no model was asked
    /// (schema v2; v1 events read as false).
    #[serde(default)]
    pub budget_exceeded: bool,
    /// The language the note is written in, so what write-back adds (the
    /// feedback question) speaks it too (schema v3; v1 and v2 events read
    /// as `None`, taken for English).
    #[serde(default)]
    pub note_language: Option<crate::Language>,
}

/// `enhancement.failed`: a stage before write-back gave up on the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnhancementFailed {
    pub stage: Stage,
    pub reason: String,
    pub attempts: u32,
}

/// `writeback.completed`: the note is on the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WritebackCompleted {
    pub itsm: ItsmKind,
    /// The note id the tool returned, when it returns one.
    pub note_id: Option<String>,
    pub attempts: u32,
    /// True when the note was found already present (a redelivery after a
    /// crash) and nothing new was posted.
    pub already_present: bool,
    pub received_at: DateTime<Utc>,
    /// The note handed to the tool, before the tool's own rendering: the
    /// tenant's header, the body, footer, feedback links and marker, so the
    /// console shows what the technician got (v2; `None` in v1 events).
    #[serde(default)]
    pub posted_markdown: Option<String>,
}

/// `writeback.failed`: the note could not be written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WritebackFailed {
    pub itsm: ItsmKind,
    pub reason: String,
    pub http_status: Option<u16>,
    pub attempts: u32,
    /// False when the failure may go away by itself (the tool was down).
    pub permanent: bool,
}

/// `enhancement.rated`: a technician's verdict on a note. A later rating of
/// the same run replaces an earlier one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnhancementRated {
    /// 1 to 5, when rated with stars.
    pub stars: Option<u8>,
    /// When rated with a thumb.
    pub thumbs_up: Option<bool>,
    pub comment: Option<String>,
}

/// `budget.threshold_reached`: a tenant's LLM spend reached the alert share
/// of its budget in the current period (published once per period, on the
/// ticket whose run crossed it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetThresholdReached {
    pub spent_usd: f64,
    pub budget_usd: f64,
    /// The share of the budget that triggers the alert (for example 0.8).
    pub alert_ratio: f64,
    pub period_start: chrono::NaiveDate,
    pub period_days: u32,
}
