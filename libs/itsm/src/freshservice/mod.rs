//! Freshservice API v2: private notes on a ticket, its conversations read
//! back; Basic auth with the API key as user name and `X` as password.

pub mod history;
pub mod webhook;

use aia_events::{Priority, TicketId};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{Api, next_link, notes_incomplete, numeric_id, text_of};
use crate::render::html_to_text;
use crate::{ConfigError, ItsmError, PostedNote, RenderedNote, Resolution, TicketSummary};

pub(crate) const TOOL: &str = "Freshservice";

#[derive(Clone)]
pub struct Freshservice {
    api: Api,
    authorization: String,
}

/// Without the `Authorization` value: Basic credentials decode at sight.
impl std::fmt::Debug for Freshservice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Freshservice")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    api_key: String,
}

impl Freshservice {
    /// Credentials: `{"api_key": "…"}` (an agent's key; Profile settings →
    /// Your API key).
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        let credentials: Credentials = serde_json::from_str(credentials_json).map_err(|_| {
            ConfigError(r#"Freshservice credentials must be {"api_key": "…"}"#.into())
        })?;
        if credentials.api_key.trim().is_empty() {
            return Err(ConfigError("the Freshservice API key is empty".into()));
        }
        Ok(Self {
            api: Api::new(http, base_url, TOOL, "freshservice")?,
            authorization: format!(
                "Basic {}",
                STANDARD.encode(format!("{}:X", credentials.api_key.trim()))
            ),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ItsmError> {
        self.api
            .send(request.header("Authorization", &self.authorization))
            .await
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, ItsmError> {
        self.api
            .json(request.header("Authorization", &self.authorization))
            .await
    }

    fn ticket_url(&self, id: u64, tail: &[&str]) -> reqwest::Url {
        let id = id.to_string();
        let mut segments = vec!["api", "v2", "tickets", id.as_str()];
        segments.extend_from_slice(tail);
        self.api.url(&segments)
    }

    /// A `Link` URL the API gave, if it points at the tenant's Freshservice.
    fn same_host(&self, url: &str) -> Option<reqwest::Url> {
        let url = reqwest::Url::parse(url).ok()?;
        (url.host_str() == self.api.base.host_str() && url.port() == self.api.base.port())
            .then_some(url)
    }

    pub fn render_note(&self, markdown: &str) -> RenderedNote {
        RenderedNote::html(markdown)
    }

    pub async fn post_note(
        &self,
        ticket: &TicketId,
        markdown: &str,
        visible_to_requester: bool,
    ) -> Result<PostedNote, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        let body = self
            .json(
                self.api
                    .http
                    .post(self.ticket_url(id, &["notes"]))
                    .json(&json!({
                        "body": self.render_note(markdown).body,
                        "private": !visible_to_requester,
                    })),
            )
            .await?;
        Ok(PostedNote {
            note_id: text_of(&body["conversation"]["id"]),
        })
    }

    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        let mut url = self.ticket_url(id, &["conversations"]);
        url.query_pairs_mut().append_pair("per_page", "100");
        let mut texts = Vec::new();
        for _ in 0..50 {
            let response = self.send(self.api.http.get(url.clone())).await?;
            let next = next_link(response.headers());
            let body: Value = crate::common::read_json(TOOL, response).await?;
            texts.extend(
                crate::common::listed(TOOL, &body["conversations"])?
                    .iter()
                    .filter_map(|note| note["body"].as_str().or(note["body_text"].as_str()))
                    .map(str::to_owned),
            );
            // A next page that is not the tenant's Freshservice is not
            // fetched (its URL came from the answer); the list is then
            // incomplete.
            match next.map(|next| self.same_host(&next)) {
                None => return Ok(texts),
                Some(Some(next)) => url = next,
                Some(None) => break,
            }
        }
        Err(notes_incomplete(TOOL, texts.len()))
    }

    pub async fn fetch_ticket(&self, ticket: &TicketId) -> Result<TicketSummary, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        let body = self
            .json(self.api.http.get(self.whole_ticket_url(id)))
            .await?;
        Ok(summary(&body["ticket"]))
    }

    /// One ticket with its `stats`: when it was resolved is there only
    /// (`updated_at` moves with every later change).
    pub(crate) fn whole_ticket_url(&self, id: u64) -> reqwest::Url {
        let mut url = self.ticket_url(id, &[]);
        url.query_pairs_mut().append_pair("include", "stats");
        url
    }

    pub async fn test_connection(&self) -> Result<(), ItsmError> {
        let body = self
            .json(
                self.api
                    .http
                    .get(self.api.url(&["api", "v2", "agents", "me"])),
            )
            .await?;
        if body["agent"]["id"].is_null() {
            return Err(ItsmError::permanent(format!(
                "{TOOL} accepted the key, but it is not an agent's"
            )));
        }
        Ok(())
    }
}

/// Freshservice's priorities: 1 Low, 2 Medium, 3 High, 4 Urgent.
pub(crate) fn priority(raw: &Value) -> Priority {
    match raw.as_u64().or_else(|| raw.as_str()?.parse().ok()) {
        Some(1) => Priority::Low,
        Some(3) => Priority::High,
        Some(4) => Priority::Critical,
        _ => raw
            .as_str()
            .and_then(|name| Priority::parse(name).ok())
            .unwrap_or(Priority::Medium),
    }
}

/// Statuses 4 (Resolved) and 5 (Closed).
pub(crate) fn is_resolved(status: &Value) -> bool {
    matches!(
        status.as_u64().or_else(|| status.as_str()?.parse().ok()),
        Some(4 | 5)
    ) || matches!(
        status.as_str().map(str::to_ascii_lowercase).as_deref(),
        Some("resolved" | "closed")
    )
}

fn time(raw: &Value) -> Option<DateTime<Utc>> {
    raw.as_str()?.parse().ok()
}

/// A ticket object of the API.
pub(crate) fn summary(ticket: &Value) -> TicketSummary {
    let description = match ticket["description_text"].as_str() {
        Some(text) if !text.trim().is_empty() => text.to_owned(),
        _ => html_to_text(ticket["description"].as_str().unwrap_or_default()),
    };
    let resolution_text = ticket["resolution_notes"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| ticket["resolution_notes_html"].as_str().map(html_to_text))
        .unwrap_or_default();
    TicketSummary {
        subject: ticket["subject"].as_str().unwrap_or_default().to_owned(),
        description,
        status: text_of(&ticket["status"]),
        priority: priority(&ticket["priority"]),
        created_at: time(&ticket["created_at"]),
        requester: text_of(&ticket["requester_id"]),
        tags: ticket["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        resolution: is_resolved(&ticket["status"]).then(|| Resolution {
            text: resolution_text,
            resolved_at: time(&ticket["stats"]["resolved_at"])
                .or_else(|| time(&ticket["updated_at"]))
                .unwrap_or_else(Utc::now),
        }),
    }
}
