//! HaloPSA's API: private actions (notes hidden from the end user) on a
//! ticket, the ticket and its actions read back; OAuth client credentials
//! (`{base}/auth/token`, scope `all`), the token cached until it expires and
//! fetched again, once, when refused.

pub mod history;
pub mod webhook;

use aia_telemetry::http::TracedSend as _;
use std::sync::Arc;

use aia_events::{Priority, TicketId};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{Api, notes_incomplete, numeric_id, text_of};
use crate::render::html_to_text;
use crate::{ConfigError, ItsmError, PostedNote, RenderedNote, Resolution, TicketSummary};

pub(crate) const TOOL: &str = "HaloPSA";

#[derive(Clone)]
pub struct HaloPsa {
    api: Api,
    credentials: Arc<Credentials>,
}

impl std::fmt::Debug for HaloPsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaloPsa")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    client_id: String,
    client_secret: String,
    /// The Halo tenant, for hosted instances (`?tenant=` on the token URL).
    #[serde(default)]
    tenant: Option<String>,
    /// The outcome a private note is logged with (default "Private Note";
    /// outcomes are per instance).
    #[serde(default = "default_outcome")]
    private_outcome: String,
}

fn default_outcome() -> String {
    "Private Note".into()
}

impl HaloPsa {
    /// Credentials: `{"client_id", "client_secret"}` of an API application
    /// (Configuration → Integrations → HaloPSA API), optionally `"tenant"`
    /// and `"private_outcome"`.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        let credentials: Credentials = serde_json::from_str(credentials_json).map_err(|_| {
            ConfigError(
                r#"HaloPSA credentials must be {"client_id", "client_secret"}, optionally "tenant" and "private_outcome""#.into(),
            )
        })?;
        Ok(Self {
            api: Api::new(http, base_url, TOOL, "halopsa")?,
            credentials: Arc::new(credentials),
        })
    }

    /// Every credential that obtains the token: two tenants sharing a
    /// client id but not its secret or Halo tenant never share a token, and
    /// a changed secret fetches a new one.
    fn token_key(&self) -> String {
        crate::oauth::key(&[
            self.api.base.as_str(),
            &self.credentials.client_id,
            &self.credentials.client_secret,
            self.credentials.tenant.as_deref().unwrap_or_default(),
        ])
    }

    async fn token(&self) -> Result<String, ItsmError> {
        crate::oauth::token(&self.token_key(), async {
            let mut url = self.api.url(&["auth", "token"]);
            if let Some(tenant) = &self.credentials.tenant {
                url.query_pairs_mut().append_pair("tenant", tenant);
            }
            let response = self
                .api
                .http
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", self.credentials.client_id.as_str()),
                    ("client_secret", self.credentials.client_secret.as_str()),
                    ("scope", "all"),
                ])
                .send_traced("halopsa-oauth")
                .await
                .map_err(|err| crate::transport_error(TOOL, &err))?;
            crate::oauth::read_answer(response, TOOL, "client credentials").await
        })
        .await
    }

    /// Sends `build()`'s request with a token; one the API refuses is
    /// fetched again, once.
    async fn json(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<Value, ItsmError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let request = build().bearer_auth(&token);
            match self.api.json(request).await {
                Err(ItsmError::Permanent {
                    http_status: Some(401),
                    ..
                }) if attempt == 0 => crate::oauth::forget(&self.token_key(), &token),
                other => return other,
            }
        }
        unreachable!("the second attempt returns")
    }

    pub fn render_note(&self, markdown: &str) -> RenderedNote {
        RenderedNote::html(markdown)
    }

    /// An action with the private outcome, hidden from the end user (shown
    /// when the requester may see it), sending no e-mail.
    pub async fn post_note(
        &self,
        ticket: &TicketId,
        markdown: &str,
        visible_to_requester: bool,
    ) -> Result<PostedNote, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        let body = json!([{
            "ticket_id": id,
            "outcome": self.credentials.private_outcome,
            "note_html": self.render_note(markdown).body,
            "hiddenfromuser": !visible_to_requester,
            "sendemail": false,
        }]);
        let url = self.api.url(&["api", "Actions"]);
        let answer = self
            .json(|| self.api.http.post(url.clone()).json(&body))
            .await?;
        let created = if answer.is_array() {
            &answer[0]
        } else {
            &answer
        };
        Ok(PostedNote {
            note_id: text_of(&created["id"]),
        })
    }

    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        // Read a page at a time, and on until the count Halo reports: an
        // instance that caps an unpaged list would otherwise hide our note
        // on a busy ticket, and a second one would be posted.
        const PAGE: usize = 100;
        let id = numeric_id(TOOL, ticket)?;
        let mut texts = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for page in 1..=50 {
            let mut url = self.api.url(&["api", "Actions"]);
            url.query_pairs_mut()
                .append_pair("ticket_id", &id.to_string())
                .append_pair("excludesys", "true")
                .append_pair("includehtmlnote", "true")
                .append_pair("pageinate", "true")
                .append_pair("page_size", &PAGE.to_string())
                .append_pair("page_no", &page.to_string());
            let body = self.json(|| self.api.http.get(url.clone())).await?;
            let actions = crate::common::listed(TOOL, &body["actions"])?;
            // Each action once, by its id: an instance that ignores the
            // page asked for answers the same actions again.
            let mut new = 0;
            for action in actions {
                if action["id"].as_u64().is_none_or(|id| seen.insert(id)) {
                    new += 1;
                    let note = action["note_html"].as_str().or(action["note"].as_str());
                    texts.push(note.unwrap_or_default().to_owned());
                }
            }
            let total = body["record_count"].as_u64().map(|n| n as usize);
            // The end: the count Halo gave is read, the page is short, or
            // it brought nothing new (an empty page past a count that
            // included what `excludesys` leaves out; paging ignored).
            let last = new == 0
                || match total {
                    Some(total) => texts.len() >= total,
                    None => actions.len() < PAGE,
                };
            if last {
                return Ok(texts);
            }
        }
        Err(notes_incomplete(TOOL, texts.len()))
    }

    pub async fn fetch_ticket(&self, ticket: &TicketId) -> Result<TicketSummary, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        Ok(summary(&self.ticket(id).await?))
    }

    pub(crate) async fn ticket(&self, id: u64) -> Result<Value, ItsmError> {
        let mut url = self.api.url(&["api", "Tickets", &id.to_string()]);
        url.query_pairs_mut().append_pair("includedetails", "true");
        self.json(|| self.api.http.get(url.clone())).await
    }

    pub async fn test_connection(&self) -> Result<(), ItsmError> {
        let mut url = self.api.url(&["api", "Tickets"]);
        url.query_pairs_mut()
            .append_pair("pageinate", "true")
            .append_pair("page_size", "1")
            .append_pair("page_no", "1");
        self.json(|| self.api.http.get(url.clone()))
            .await
            .map(|_| ())
    }
}

/// Halo's default priorities: 1 Critical, 2 High, 3 Medium, 4 Low.
fn priority(raw: &Value) -> Priority {
    match text_of(raw).as_deref() {
        Some("1") => Priority::Critical,
        Some("2") => Priority::High,
        Some("4") => Priority::Low,
        _ => Priority::Medium,
    }
}

/// Halo writes times with or without a zone (then UTC).
pub(crate) fn time(raw: &Value) -> Option<DateTime<Utc>> {
    let raw = raw.as_str()?.trim();
    raw.parse().ok().or_else(|| {
        NaiveDateTime::parse_from_str(raw.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|naive| naive.and_utc())
    })
}

/// A ticket object.
pub(crate) fn summary(ticket: &Value) -> TicketSummary {
    let description = match ticket["details"].as_str() {
        Some(text) if !text.trim().is_empty() => html_to_text(text),
        _ => html_to_text(ticket["details_html"].as_str().unwrap_or_default()),
    };
    let closed = ticket["hasbeenclosed"].as_bool().unwrap_or(false)
        || ticket["dateclosed"]
            .as_str()
            .is_some_and(|date| !date.starts_with("1900"));
    TicketSummary {
        subject: ticket["summary"].as_str().unwrap_or_default().to_owned(),
        description,
        status: text_of(&ticket["status_id"]),
        priority: priority(&ticket["priority_id"]),
        created_at: time(&ticket["dateoccurred"]),
        requester: ticket["user_name"].as_str().map(str::to_owned),
        tags: Vec::new(),
        resolution: closed.then(|| Resolution {
            text: html_to_text(ticket["closure_note"].as_str().unwrap_or_default()),
            resolved_at: time(&ticket["dateclosed"]).unwrap_or_else(Utc::now),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_held_per_set_of_credentials_not_per_client_id() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let halo = |credentials: &str| {
            HaloPsa::new(
                reqwest::Client::new(),
                "https://acme.halopsa.com",
                credentials,
            )
            .unwrap()
            .token_key()
        };
        let ours = halo(r#"{"client_id": "c", "client_secret": "s1"}"#);
        assert_eq!(ours, halo(r#"{"client_id": "c", "client_secret": "s1"}"#));
        for other in [
            r#"{"client_id": "c", "client_secret": "s2"}"#,
            r#"{"client_id": "c", "client_secret": "s1", "tenant": "other"}"#,
        ] {
            assert_ne!(ours, halo(other), "{other}");
        }
    }
}
