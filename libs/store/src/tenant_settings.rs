//! What a tenant is, as the services use it: its settings (switches and
//! limits, every field defaulted so older settings still read), its
//! integrations' tokens, and the tenant with its secrets decrypted. The SQL
//! that stores them is in [`crate::tenants`].

use aia_events::{ItsmKind, TenantId};
use serde::{Deserialize, Serialize};

use crate::secrets::Secret;

/// Per-tenant switches and limits. Every field has a default, so settings
/// written by an older version still read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    /// Upper bound on the note's length in words (100–2000).
    pub max_note_words: u32,
    pub similar_tickets_enabled: bool,
    pub knowledge_base_enabled: bool,
    pub inventory_enabled: bool,
    pub monitoring_enabled: bool,
    /// Accepted webhooks per minute and endpoint; `None` is the deployment's
    /// default.
    pub webhook_rate_limit_per_minute: Option<u32>,
    /// Whether a static shared-secret header authenticates webhooks, for
    /// tools that cannot sign (ServiceDesk Plus's native webhooks). Off for
    /// new tenants: the secret itself travels with every request, so
    /// whoever sees one request can send any. Tenants made before it was
    /// off kept it on (migration 0012); the console warns about it.
    pub allow_static_secret: bool,
    /// Whether an update to a ticket that already has a run starts another
    /// (at most one per [`TenantSettings::reenhance_interval_mins`]); off:
    /// one run per ticket, however often it changes.
    pub reenhance_updates: bool,
    /// Least time between two runs of one ticket when updates re-enhance
    /// (minutes, default 60; 1 to [`MAX_REENHANCE_INTERVAL_MINS`]).
    pub reenhance_interval_mins: u32,
    /// A new ticket's webhook is refused as stale when the ticket was
    /// created longer ago than this (hours, default 24; 1 to
    /// [`MAX_EVENT_AGE_HOURS`]).
    pub max_event_age_hours: u32,
    /// Whether notes end with "was this helpful?" links.
    pub feedback_links: bool,
    /// An external knowledge base answering
    /// `GET {url}/api/search?query=…&limit=3` (Bearer token in the
    /// tenant's integrations).
    pub knowledge_base_url: Option<String>,
    /// Seconds to wait for the external knowledge base (1–60).
    pub knowledge_base_timeout_secs: u32,
    /// A Prometheus-compatible query API (`{url}/api/v1/query`).
    pub monitoring_url: Option<String>,
    /// PromQL per matched host; `{host}` is replaced by the host name.
    pub monitoring_queries: Vec<MonitoringQuery>,
    /// The tenant's LLM providers in fallback order; empty uses the
    /// deployment's provider. Keys are in the tenant's integrations.
    pub llm_providers: Vec<LlmProviderSettings>,
    /// Mask personal data and secrets before text goes to an LLM.
    pub redact_personal_data: bool,
    /// Ask the tenant's LLM for the ticket's technical terms and search
    /// with them beside the ticket (off by default: one more model call per
    /// ticket, counted in the budget, for tickets written in lay words).
    pub query_rewrite: bool,
    /// LLM spend allowed per period, in US dollars; `None` is unlimited.
    pub llm_budget_usd: Option<f64>,
    pub llm_budget_period_days: u32,
    /// Share of the budget at which operators are warned (default 0.8).
    pub llm_budget_alert_ratio: f64,
    /// Share of the budget above which notes use the raw context (default 1.1).
    pub llm_budget_grace_ratio: f64,
    /// Whether the note is visible to the requester (a public comment)
    /// rather than to technicians only (the default).
    pub note_visible_to_requester: bool,
    /// A line put above every note (for example "Suggested by AI Agents").
    pub note_header: Option<String>,
    /// A line put below every note (for example a link to a survey).
    pub note_footer: Option<String>,
    /// How the tenant's tickets and articles are embedded for search by
    /// meaning: the deployment's local model unless an endpoint is named.
    pub embeddings: EmbeddingSettings,
    /// A model the tenant's corpus is being re-embedded with
    /// (`aiagents reembed`); search answers from `embeddings` until every
    /// vector of the new model is in, then the new model takes its place.
    pub embeddings_next: Option<EmbeddingSettings>,
    /// Related open tickets in the context, and incidents made of them.
    pub incidents: IncidentSettings,
    /// Which language tickets are read in and notes are written in.
    pub languages: LanguageSettings,
}

/// Which language a tenant's tickets are read in (their searches' stemming
/// and stop words) and its notes are written in. By default each ticket's
/// language is detected from its words and its note is written in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LanguageSettings {
    /// Every ticket is in this language: detection is off (a German-only
    /// customer whose tickets are full of English error messages).
    pub fixed: Option<aia_events::Language>,
    /// The language of a ticket whose text says too little to tell
    /// (English when unset).
    pub default: Option<aia_events::Language>,
    /// Notes are written in this language whatever the ticket's (a team
    /// of technicians who all read one language).
    pub note: Option<aia_events::Language>,
}

impl LanguageSettings {
    /// The language a ticket with `text` is read in, and how that was
    /// decided.
    pub fn ticket_language(&self, text: &str) -> aia_events::TicketLanguage {
        aia_events::language::decide(text, self.fixed, self.default)
    }

    /// The language a note on a ticket read in `ticket` is written in.
    pub fn note_language(&self, ticket: Option<aia_events::Language>) -> aia_events::Language {
        self.note
            .or(ticket)
            .unwrap_or(aia_events::Language::English)
    }
}

/// How a tenant's open tickets are related and grouped into incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentSettings {
    /// Whether the context lists related open tickets and the correlator
    /// groups them (on by default).
    pub enabled: bool,
    /// How far back related open tickets are looked for (minutes, 10–1440,
    /// default 120).
    pub related_window_minutes: u32,
    /// Related tickets that make an incident (2–50, default 3)…
    pub threshold: u32,
    /// …when received within this many minutes (5–1440, default 30).
    pub threshold_window_minutes: u32,
    /// An incident with no new ticket for this long ends (minutes,
    /// 10–2880, default 120).
    pub quiet_minutes: u32,
    /// Where incident events are posted, as a tenant set up before the
    /// address moved into the integrations (`incident_webhook_url`,
    /// encrypted: a paging service's address carries its token). The
    /// operations move an address given here into the integrations and
    /// store none here; `aiagents secrets reencrypt` moves an old one. Read
    /// only when the integrations hold none.
    pub webhook_url: Option<String>,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            related_window_minutes: 120,
            threshold: 3,
            threshold_window_minutes: 30,
            quiet_minutes: 120,
            webhook_url: None,
        }
    }
}

impl IncidentSettings {
    /// What is wrong with the values, if anything, as `field: rule`.
    pub fn check(&self) -> Result<(), String> {
        let ranges = [
            (
                "related_window_minutes",
                self.related_window_minutes,
                10,
                1440,
            ),
            ("threshold", self.threshold, 2, 50),
            (
                "threshold_window_minutes",
                self.threshold_window_minutes,
                5,
                1440,
            ),
            ("quiet_minutes", self.quiet_minutes, 10, 2880),
        ];
        for (field, value, low, high) in ranges {
            if !(low..=high).contains(&value) {
                return Err(format!("incidents.{field}: must be {low} to {high}"));
            }
        }
        if self.threshold_window_minutes > self.related_window_minutes {
            return Err(
                "incidents.threshold_window_minutes: must not exceed related_window_minutes".into(),
            );
        }
        Ok(())
    }
}

/// The id of the deployment's own model, as its vectors are stored.
pub const LOCAL_EMBEDDING_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Where a tenant's embeddings come from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum EmbeddingSettings {
    /// The deployment's all-MiniLM-L6-v2, served by the embedder service.
    #[default]
    Local,
    /// An OpenAI-compatible `POST {base_url}/embeddings` of the tenant's
    /// own provider; its key is in the integrations' `embedding_keys`
    /// under `name`.
    Endpoint(EmbeddingEndpointSettings),
}

/// One OpenAI-compatible embeddings endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingEndpointSettings {
    pub name: String,
    /// `openai` (also LiteLLM, vLLM, Ollama) or `azure`.
    #[serde(default = "default_llm_kind")]
    pub kind: String,
    pub base_url: String,
    pub model: String,
    /// Azure OpenAI's `api-version`.
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default = "default_embedding_timeout")]
    pub timeout_secs: u32,
    /// Least cosine similarity of a search hit with this model; the local
    /// model's default when absent. Calibrate with `aiagents eval-retrieval`.
    #[serde(default)]
    pub min_similarity: Option<f32>,
    /// Cosine similarity from which a hit is a likely match; absent, no
    /// hit on this model is called likely (until calibrated).
    #[serde(default)]
    pub likely_similarity: Option<f32>,
    /// Most the full-text rank may add to a cosine; the local model's
    /// default when absent. Words reorder only hits of the query's own
    /// language, so a tenant whose history mixes languages loses nothing
    /// by them; on the multilingual e5 they lift the English sets and
    /// change nothing elsewhere (measured in docs/benchmarks.md).
    #[serde(default)]
    pub lexical_weight: Option<f32>,
    /// How alike two tickets' vectors of this model must be to be related
    /// open tickets and to group into an incident. The defaults are
    /// calibrated for the local model only (another model's cosines lie
    /// elsewhere: the multilingual e5 puts everyday pairs at 0.8), so
    /// without this a tenant on an endpoint relates open tickets by the
    /// hosts, addresses and sites they name alone and makes no incident by
    /// meaning. Calibrate with `aiagents eval-incidents --embeddings-url`.
    #[serde(default)]
    pub incidents: Option<IncidentCalibration>,
}

impl EmbeddingEndpointSettings {
    /// An OpenAI-compatible endpoint with every threshold left to the
    /// defaults, as a tenant's settings read when they name only these.
    pub fn openai(name: &str, base_url: &str, model: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind: default_llm_kind(),
            base_url: base_url.to_owned(),
            model: model.to_owned(),
            api_version: None,
            timeout_secs: default_embedding_timeout(),
            min_similarity: None,
            likely_similarity: None,
            lexical_weight: None,
            incidents: None,
        }
    }
}

/// Cosines of an endpoint model's vectors for related open tickets and
/// incidents (see `context_gatherer::sources::related::Relatedness` and
/// `incident_correlator::decide::Closeness`, which hold the local model's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IncidentCalibration {
    /// Least cosine of two open tickets related by meaning alone…
    pub related: f32,
    /// …and of two that also name a host, address or site in common.
    pub related_with_entity: f32,
    /// Least cosine of a window's ticket to a new one for a burst.
    pub link: f32,
    /// Least cosine of each member of a burst to the centroid of the rest.
    pub centroid: f32,
    /// Least cosine to a settled incident's centroid to join it…
    pub join: f32,
    /// …and how much less per member a young incident has fewer than five.
    pub join_step: f32,
    /// What naming a host, address or site in common adds to a cosine.
    pub entity_bonus: f32,
    /// How much closer a ticket must be, per minute an incident has gone
    /// without a ticket past ten, to join it; 0 (the default) never.
    #[serde(default)]
    pub join_decay: f32,
}

fn default_embedding_timeout() -> u32 {
    10
}

/// One LLM provider of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmProviderSettings {
    /// Names the key in the tenant's integrations (`llm_keys`).
    pub name: String,
    /// `openai` (also LiteLLM, vLLM, Ollama) or `azure`.
    #[serde(default = "default_llm_kind")]
    pub kind: String,
    pub base_url: String,
    pub model: String,
    /// Azure OpenAI's `api-version`.
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default = "default_llm_timeout")]
    pub timeout_secs: u32,
}

fn default_llm_kind() -> String {
    "openai".into()
}

fn default_llm_timeout() -> u32 {
    30
}

/// One monitoring check: a PromQL expression and when its value is abnormal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitoringQuery {
    pub name: String,
    /// With `{host}` where the host name goes.
    pub promql: String,
    /// Values above this are reported as abnormal.
    pub above: Option<f64>,
    /// Values below this are reported as abnormal.
    pub below: Option<f64>,
}

impl MonitoringQuery {
    /// The checks used when a tenant names a monitoring URL and no queries.
    ///
    /// Each finds the host by its `instance` label as exporters write it:
    /// in any case (an inventory's `WEB01` is Prometheus's `web01`), by its
    /// short name or any domain after it (`web01.corp.local`), with or
    /// without a port — and never another host whose name begins the same
    /// (`web010`). Prometheus anchors the regex at both ends.
    pub fn defaults() -> Vec<Self> {
        let query = |name: &str, promql: &str, above: Option<f64>, below: Option<f64>| Self {
            name: name.to_owned(),
            promql: promql.to_owned(),
            above,
            below,
        };
        vec![
            query(
                "up",
                r#"up{instance=~"(?i){host}(\\.[^:]+)?(:[0-9]+)?"}"#,
                None,
                Some(1.0),
            ),
            query(
                "cpu %",
                r#"100 - avg(rate(node_cpu_seconds_total{mode="idle",instance=~"(?i){host}(\\.[^:]+)?(:[0-9]+)?"}[5m])) * 100"#,
                Some(90.0),
                None,
            ),
            query(
                "memory %",
                r#"100 * (1 - node_memory_MemAvailable_bytes{instance=~"(?i){host}(\\.[^:]+)?(:[0-9]+)?"} / node_memory_MemTotal_bytes{instance=~"(?i){host}(\\.[^:]+)?(:[0-9]+)?"})"#,
                Some(90.0),
                None,
            ),
            query(
                "disk %",
                r#"max(100 * (1 - node_filesystem_avail_bytes{instance=~"(?i){host}(\\.[^:]+)?(:[0-9]+)?",fstype!~"tmpfs|overlay"} / node_filesystem_size_bytes{instance=~"(?i){host}(\\.[^:]+)?(:[0-9]+)?",fstype!~"tmpfs|overlay"}))"#,
                Some(90.0),
                None,
            ),
        ]
    }
}

/// Tokens of a tenant's integrations, stored encrypted. `Debug` names
/// which are set, never their values (a tenant logged with `{:?}` must not
/// carry its keys into the logs).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct Integrations {
    pub knowledge_base_token: Option<String>,
    pub monitoring_token: Option<String>,
    /// LLM keys by provider name.
    pub llm_keys: std::collections::BTreeMap<String, String>,
    /// Embeddings endpoint keys by name.
    pub embedding_keys: std::collections::BTreeMap<String, String>,
    /// The Standard Webhooks secret (`whsec_<base64>`) incident
    /// notifications are signed with.
    pub incident_webhook_secret: Option<String>,
    /// Where incident events are posted (Standard Webhooks), so the MSP
    /// can page someone; none by default. Kept here, encrypted, because a
    /// paging service's address (Slack, Teams, PagerDuty) is its token.
    /// Not written when unset, so a reader from before the field (these
    /// integrations deny unknown fields) reads every tenant without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_webhook_url: Option<String>,
}

impl Integrations {
    /// Where the tenant's incident events go: its encrypted address, or
    /// one an older version left in its settings.
    pub fn incident_webhook<'a>(&'a self, settings: &'a TenantSettings) -> Option<&'a str> {
        self.incident_webhook_url
            .as_deref()
            .or(settings.incidents.webhook_url.as_deref())
    }
}

impl std::fmt::Debug for Integrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |token: &Option<String>| if token.is_some() { "****" } else { "none" };
        f.debug_struct("Integrations")
            .field("knowledge_base_token", &set(&self.knowledge_base_token))
            .field("monitoring_token", &set(&self.monitoring_token))
            .field("llm_keys", &self.llm_keys.keys().collect::<Vec<_>>())
            .field(
                "embedding_keys",
                &self.embedding_keys.keys().collect::<Vec<_>>(),
            )
            .field(
                "incident_webhook_secret",
                &set(&self.incident_webhook_secret),
            )
            .field("incident_webhook_url", &set(&self.incident_webhook_url))
            .finish()
    }
}

/// The most [`TenantSettings::max_event_age_hours`] may be: a year. Past
/// about 2.3 billion hours "now less the age" is before any date there is.
pub const MAX_EVENT_AGE_HOURS: u32 = 24 * 366;

/// The most [`TenantSettings::reenhance_interval_mins`] may be: 30 days.
pub const MAX_REENHANCE_INTERVAL_MINS: u32 = 30 * 24 * 60;

impl TenantSettings {
    /// How old a new ticket may be when its webhook comes, within the
    /// bounds however the settings were stored.
    pub fn max_event_age(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(
            self.max_event_age_hours.clamp(1, MAX_EVENT_AGE_HOURS),
        ))
    }

    /// The settings with the values that have bounds brought within them:
    /// what they are read as, however they were stored.
    pub fn within_bounds(mut self) -> Self {
        self.max_event_age_hours = self.max_event_age_hours.clamp(1, MAX_EVENT_AGE_HOURS);
        self.reenhance_interval_mins = self
            .reenhance_interval_mins
            .clamp(1, MAX_REENHANCE_INTERVAL_MINS);
        self
    }

    /// The least time between two runs of one updated ticket, within the
    /// bounds however the settings were stored.
    pub fn reenhance_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            60 * u64::from(
                self.reenhance_interval_mins
                    .clamp(1, MAX_REENHANCE_INTERVAL_MINS),
            ),
        )
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            max_note_words: 500,
            similar_tickets_enabled: true,
            knowledge_base_enabled: true,
            inventory_enabled: true,
            monitoring_enabled: false,
            webhook_rate_limit_per_minute: None,
            allow_static_secret: false,
            reenhance_updates: false,
            reenhance_interval_mins: 60,
            max_event_age_hours: 24,
            feedback_links: true,
            knowledge_base_url: None,
            knowledge_base_timeout_secs: 10,
            monitoring_url: None,
            monitoring_queries: Vec::new(),
            llm_providers: Vec::new(),
            redact_personal_data: true,
            query_rewrite: false,
            llm_budget_usd: None,
            llm_budget_period_days: 30,
            llm_budget_alert_ratio: 0.8,
            llm_budget_grace_ratio: 1.1,
            note_visible_to_requester: false,
            note_header: None,
            note_footer: None,
            embeddings: EmbeddingSettings::Local,
            embeddings_next: None,
            incidents: IncidentSettings::default(),
            languages: LanguageSettings::default(),
        }
    }
}

/// A tenant as the services use it, with its secrets decrypted.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub tenant_id: TenantId,
    pub name: String,
    pub itsm: ItsmKind,
    pub itsm_base_url: String,
    /// Tool-specific credentials as JSON (for ServiceDesk Plus on-prem:
    /// `{"authtoken": "…"}`).
    pub itsm_credentials: Secret,
    /// The current webhook secret first, then the previous one while a
    /// rotation is under way.
    pub webhook_secrets: Vec<Secret>,
    pub settings: TenantSettings,
    pub active: bool,
    pub integrations: Integrations,
    /// When any of the above last changed: a cached copy older than the
    /// stored one is stale.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Whether processing is paused (the stages set its events aside).
    pub paused: bool,
}

/// What it takes to create a tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub tenant_id: TenantId,
    pub name: String,
    pub itsm: ItsmKind,
    pub itsm_base_url: String,
    pub itsm_credentials: Secret,
    pub webhook_secret: Secret,
    pub settings: TenantSettings,
    /// Stored encrypted with the tenant, in the same transaction (none
    /// when empty).
    pub integrations: Integrations,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_built_in_code_is_the_endpoint_settings_naming_only_it_read() {
        let read: EmbeddingEndpointSettings = serde_json::from_value(serde_json::json!({
            "name": "e5", "base_url": "http://e5:8090/v1", "model": "e5-small"
        }))
        .unwrap();
        assert_eq!(
            read,
            EmbeddingEndpointSettings::openai("e5", "http://e5:8090/v1", "e5-small")
        );
    }

    #[test]
    fn integrations_debug_names_what_is_set_and_shows_no_token() {
        let integrations = Integrations {
            knowledge_base_token: Some("kb-token-value".into()),
            monitoring_token: None,
            llm_keys: [("litellm".to_owned(), "sk-llm-value".to_owned())].into(),
            embedding_keys: Default::default(),
            incident_webhook_secret: Some("whsec_c2VjcmV0".into()),
            incident_webhook_url: Some("https://hooks.slack.com/services/T0/B0/xoxb-secret".into()),
        };
        let shown = format!("{integrations:?}");
        for secret in [
            "kb-token-value",
            "sk-llm-value",
            "whsec_c2VjcmV0",
            "xoxb-secret",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("litellm") && shown.contains("****"),
            "{shown}"
        );
    }
}
