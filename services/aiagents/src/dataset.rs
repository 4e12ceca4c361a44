//! Data sets of the shape of `demo/tickets.json` and the evaluation sets:
//! `resolved[]` tickets for the history corpus and `queries[]` (new tickets
//! with the ids of the resolved tickets that should help).

use std::path::Path;

use aia_events::{Event, ItsmKind, Payload, Priority, TenantId, TicketId, TicketResolved};
use aia_store::tenant_settings::LanguageSettings;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Deserialize)]
pub struct DataSet {
    pub resolved: Vec<Resolved>,
    pub queries: Vec<Query>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Resolved {
    pub tenant_id: String,
    pub ticket_id: String,
    pub subject: String,
    pub description: String,
    pub resolution: String,
    pub resolved_at: DateTime<Utc>,
    pub priority: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The language it is written in, where the set says (for reporting
    /// per language only; the event carries the language the tenant's
    /// settings give its words).
    #[serde(default)]
    pub language: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Query {
    pub tenant_id: String,
    pub ticket_id: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub description: String,
    pub priority: String,
    #[serde(default)]
    pub relevant: Vec<String>,
    /// The language it is written in, where the set says.
    #[serde(default)]
    pub language: Option<String>,
}

pub fn load(path: &Path) -> anyhow::Result<DataSet> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a data set", path.display()))
}

impl Query {
    /// What the context stage embeds for it (`aia_embed::query_text`).
    pub fn text(&self) -> String {
        aia_embed::query_text(self.subject.as_deref(), &self.description)
    }
}

impl Resolved {
    /// The `ticket.resolved` event this record stands for, in the
    /// language the tenant's settings give its words.
    pub fn to_event(&self, languages: &LanguageSettings) -> anyhow::Result<Event> {
        let tenant = TenantId::parse(&self.tenant_id)
            .with_context(|| format!("tenant {:?}", self.tenant_id))?;
        let ticket = TicketId::parse(&self.ticket_id)
            .with_context(|| format!("ticket {:?}", self.ticket_id))?;
        let priority = Priority::parse(&self.priority)
            .with_context(|| format!("priority of {}", self.ticket_id))?;
        // Held to what a webhook's ticket may carry: no NUL (PostgreSQL
        // cannot store one, and the event is kept for good, so every
        // rebuild would fail on it) and no text past the webhooks' limits
        // (a huge one would not fit in the stream, and the page's import
        // would stop on it every time it is resumed).
        use aia_itsm::inbound::{MAX_DESCRIPTION_CHARS, MAX_TEXT_CHARS};
        let fit = |text: &str, max: usize| -> String {
            text.chars().filter(|c| *c != '\0').take(max).collect()
        };
        let mut resolved = TicketResolved {
            source: ItsmKind::ServicedeskPlus,
            subject: fit(&self.subject, MAX_TEXT_CHARS),
            description: fit(&self.description, MAX_DESCRIPTION_CHARS),
            resolution: fit(&self.resolution, MAX_TEXT_CHARS),
            priority,
            tags: self.tags.clone(),
            resolved_at: self.resolved_at,
            language: None,
        };
        resolved.language = Some(languages.ticket_language(&resolved.words()));
        Ok(Event::new_run(
            tenant,
            ticket,
            Payload::TicketResolved(resolved),
        ))
    }
}

/// The records of `tenant` that its history already holds exactly as
/// written (the same subject, description, resolution, priority, tags and
/// resolution time, in the language the tenant's settings give it now): importing them again would publish events the stream
/// keeps for good (its duplicate window is minutes) and every consumer
/// reads again, for nothing. A record that differs, or that the history
/// does not hold yet, is not among them.
pub async fn already_stored(
    client: &mut aia_store::Client,
    tenant: &TenantId,
    records: &[Resolved],
    languages: &LanguageSettings,
) -> anyhow::Result<std::collections::HashSet<String>> {
    let ids: Vec<&str> = records.iter().map(|r| r.ticket_id.as_str()).collect();
    let tx = aia_store::tenant_transaction(client, tenant).await?;
    let rows = tx
        .query(
            "select ticket_id, subject, description, resolution, priority, tags, resolved_at, language
               from ticket_history where tenant_id = $1 and ticket_id = any($2)",
            &[&tenant.as_str(), &ids],
        )
        .await?;
    tx.commit().await?;
    let stored: std::collections::HashMap<String, tokio_postgres::Row> = rows
        .into_iter()
        .map(|row| (row.get::<_, String>(0), row))
        .collect();
    let micros = |at: DateTime<Utc>| at.timestamp_micros();
    Ok(records
        .iter()
        .filter(|record| {
            let Some(row) = stored.get(&record.ticket_id) else {
                return false;
            };
            // As it would be published: its text held to the webhooks'
            // limits, in the language the tenant's settings give it now (a
            // changed setting is a reason to import it again).
            let Some(Payload::TicketResolved(resolved)) =
                record.to_event(languages).ok().map(|event| event.payload)
            else {
                return false;
            };
            row.get::<_, String>(1) == resolved.subject
                && row.get::<_, String>(2) == resolved.description
                && row.get::<_, String>(3) == resolved.resolution
                && row.get::<_, String>(4) == resolved.priority.as_str()
                && row.get::<_, Vec<String>>(5) == resolved.tags
                && micros(row.get(6)) == micros(resolved.resolved_at)
                && resolved
                    .language
                    .is_some_and(|l| row.get::<_, String>(7) == l.language.code())
        })
        .map(|record| record.ticket_id.clone())
        .collect())
}

/// Publishes every resolved ticket as a `ticket.resolved` event, so the
/// history projection stays rebuildable from the stream. The message id is
/// derived from the content: importing the same record twice stores it once.
/// Each is read in the language `languages` (the tenant's settings) gives it.
pub async fn publish_resolved(
    jetstream: &aia_bus::JetStream,
    records: &[Resolved],
    languages: &LanguageSettings,
) -> anyhow::Result<usize> {
    for record in records {
        let event = record.to_event(languages)?;
        let Payload::TicketResolved(payload) = &event.payload else {
            unreachable!("to_event builds ticket.resolved");
        };
        let digest = Sha256::digest(serde_json::to_vec(payload)?);
        let msg_id = format!(
            "resolved:{}:{}:{}",
            event.tenant_id,
            event.ticket_id.subject_token(),
            hex::encode(&digest[..12])
        );
        aia_bus::publish_event(jetstream, &event, &msg_id).await?;
    }
    Ok(records.len())
}
