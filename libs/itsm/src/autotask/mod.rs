//! Autotask PSA REST API (v1.0): internal ticket notes, the ticket and its
//! notes read back; the `ApiIntegrationCode`, `UserName` and `Secret`
//! headers. The configured base URL is where zone information is asked
//! (`https://webservices.autotask.net/ATServicesRest`); every other call
//! goes to the zone it names for the API user, found once per process.

pub mod history;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use aia_events::{Priority, TicketId};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{Api, notes_incomplete, numeric_id, read_json, text_of};
use crate::{ConfigError, ItsmError, PostedNote, RenderedNote, Resolution, TicketSummary};

pub(crate) const TOOL: &str = "Autotask";
/// The longest note description Autotask stores.
const MAX_NOTE_CHARS: usize = 32_000;

/// Zone URLs by (discovery URL, user name).
static ZONES: LazyLock<Mutex<HashMap<String, reqwest::Url>>> = LazyLock::new(Mutex::default);

#[derive(Clone)]
pub struct Autotask {
    api: Api,
    credentials: Arc<Credentials>,
}

impl std::fmt::Debug for Autotask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Autotask")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    secret: String,
    integration_code: String,
    /// The ticket-note `publish` value of internal notes (Autotask's
    /// default picklist: 2, Internal Project Team).
    #[serde(default = "default_internal_publish")]
    internal_publish: u32,
    /// The `noteType` of the notes posted (default 1).
    #[serde(default = "default_note_type")]
    note_type: u32,
}

fn default_internal_publish() -> u32 {
    2
}

fn default_note_type() -> u32 {
    1
}

impl Autotask {
    /// Credentials: `{"username", "secret", "integration_code"}` (an API
    /// user's, and the integration's tracking identifier), optionally
    /// `"internal_publish"` and `"note_type"` for instances whose picklists
    /// differ.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        let credentials: Credentials = serde_json::from_str(credentials_json).map_err(|_| {
            ConfigError(
                r#"Autotask credentials must be {"username", "secret", "integration_code"}, optionally "internal_publish" and "note_type""#.into(),
            )
        })?;
        Ok(Self {
            api: Api::new(http, base_url, TOOL, "autotask")?,
            credentials: Arc::new(credentials),
        })
    }

    fn request(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request
            .header("ApiIntegrationCode", &self.credentials.integration_code)
            .header("UserName", &self.credentials.username)
            .header("Secret", &self.credentials.secret)
            .header("Accept", "application/json")
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, ItsmError> {
        let response = self.api.answer(self.request(request)).await?;
        let status = response.status();
        if status == reqwest::StatusCode::INTERNAL_SERVER_ERROR {
            // Autotask answers a request it refuses for good (a ticket that
            // does not exist, a field a business rule rejects) with a 500
            // and `{"errors": [...]}`: asking again brings the same.
            let body = read_json(TOOL, response).await.unwrap_or(Value::Null);
            return Err(refusal(&body));
        }
        crate::common::classify(TOOL, status, crate::common::retry_after(response.headers()))?;
        read_json(TOOL, response).await
    }

    /// The zone's REST root for this API user, e.g.
    /// `https://webservices5.autotask.net/ATServicesRest/`.
    async fn zone(&self) -> Result<reqwest::Url, ItsmError> {
        let key = format!("{}\n{}", self.api.base, self.credentials.username);
        if let Some(zone) = ZONES.lock().expect("zones").get(&key) {
            return Ok(zone.clone());
        }
        let mut url = self.api.url(&["v1.0", "zoneInformation"]);
        url.query_pairs_mut()
            .append_pair("user", &self.credentials.username);
        let answer = self.api.json(self.api.http.get(url)).await?;
        let zone = answer["url"]
            .as_str()
            .and_then(|url| reqwest::Url::parse(url).ok())
            .filter(|zone| self.trusted_zone(zone))
            .ok_or_else(|| {
                ItsmError::permanent(format!(
                    "{TOOL} named no zone for API user {} (or one outside autotask.net)",
                    self.credentials.username
                ))
            })?;
        ZONES.lock().expect("zones").insert(key, zone.clone());
        Ok(zone)
    }

    /// A zone (or a next-page URL) Autotask names must be Autotask's own,
    /// or the configured host itself.
    fn trusted_zone(&self, url: &reqwest::Url) -> bool {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let autotask =
            url.scheme() == "https" && (host == "autotask.net" || host.ends_with(".autotask.net"));
        let configured = url.host_str() == self.api.base.host_str()
            && url.port_or_known_default() == self.api.base.port_or_known_default()
            && url.scheme() == self.api.base.scheme();
        (autotask || configured) && url.username().is_empty()
    }

    /// A URL in the zone: `V1.0/` and `segments`.
    async fn url(&self, segments: &[&str]) -> Result<reqwest::Url, ItsmError> {
        let mut url = self.zone().await?;
        url.path_segments_mut()
            .map_err(|_| {
                ItsmError::permanent(format!("{TOOL} named a zone that is not a URL base"))
            })?
            .pop_if_empty()
            .push("V1.0")
            .extend(segments);
        Ok(url)
    }

    pub fn render_note(&self, markdown: &str) -> RenderedNote {
        let mut rendered = RenderedNote::text(markdown);
        if rendered.body.chars().count() > MAX_NOTE_CHARS {
            // Keep the end: it carries the run's marker.
            let tail: String = rendered
                .body
                .chars()
                .rev()
                .take(2000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let head: String = rendered.body.chars().take(MAX_NOTE_CHARS - 2100).collect();
            rendered.body = format!("{head}\n…\n{tail}");
        }
        rendered
    }

    /// A ticket note published to the internal team (or, when the
    /// requester may see it, to all Autotask users).
    pub async fn post_note(
        &self,
        ticket: &TicketId,
        markdown: &str,
        visible_to_requester: bool,
    ) -> Result<PostedNote, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        let url = self.url(&["Tickets", &id.to_string(), "Notes"]).await?;
        let body = self
            .json(self.api.http.post(url).json(&json!({
                "ticketID": id,
                "title": "AI Agents note",
                "description": self.render_note(markdown).body,
                "noteType": self.credentials.note_type,
                "publish": if visible_to_requester { 1 } else { self.credentials.internal_publish },
            })))
            .await?;
        Ok(PostedNote {
            note_id: text_of(&body["itemId"]),
        })
    }

    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        let mut url = self.url(&["Tickets", &id.to_string(), "Notes"]).await?;
        let mut texts = Vec::new();
        for _ in 0..50 {
            let body = self.json(self.api.http.get(url.clone())).await?;
            texts.extend(
                crate::common::listed(TOOL, &body["items"])?
                    .iter()
                    .filter_map(|note| note["description"].as_str().map(str::to_owned)),
            );
            if body["pageDetails"]["nextPageUrl"].as_str().is_none() {
                return Ok(texts);
            }
            // A next page outside Autotask's zones is not fetched (its URL
            // came from the answer); the list is then incomplete.
            match self.next_page(&body) {
                Some(next) => url = next,
                None => break,
            }
        }
        Err(notes_incomplete(TOOL, texts.len()))
    }

    /// The `pageDetails.nextPageUrl` of an answer, if it is Autotask's.
    fn next_page(&self, body: &Value) -> Option<reqwest::Url> {
        body["pageDetails"]["nextPageUrl"]
            .as_str()
            .and_then(|url| reqwest::Url::parse(url).ok())
            .filter(|url| self.trusted_zone(url))
    }

    pub async fn fetch_ticket(&self, ticket: &TicketId) -> Result<TicketSummary, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        let url = self.url(&["Tickets", &id.to_string()]).await?;
        let body = self.json(self.api.http.get(url)).await?;
        // Autotask answers an unknown (or hidden) ticket with a null item.
        if !body["item"].is_object() {
            return Err(ItsmError::Permanent {
                reason: format!("{TOOL} does not know ticket {id}"),
                http_status: Some(404),
            });
        }
        Ok(summary(&body["item"]))
    }

    pub async fn test_connection(&self) -> Result<(), ItsmError> {
        let url = self.url(&["Companies", "entityInformation"]).await?;
        self.json(self.api.http.get(url)).await.map(|_| ())
    }
}

/// Autotask's default priorities: 4 Critical, 1 High, 2 Medium, 3 Low.
fn priority(raw: &Value) -> Priority {
    match text_of(raw).as_deref() {
        Some("4") => Priority::Critical,
        Some("1") => Priority::High,
        Some("3") => Priority::Low,
        _ => Priority::Medium,
    }
}

fn time(raw: &Value) -> Option<DateTime<Utc>> {
    raw.as_str()?.parse().ok()
}

/// Status 5: Complete.
/// What an HTTP 500 from Autotask means: its `errors` name a refusal (a
/// ticket that does not exist, a field a rule rejects), which is
/// permanent; any other message, or none, is a server error like any
/// other, tried again — a note is not given up on a message not known to
/// be a refusal.
fn refusal(body: &Value) -> ItsmError {
    const REFUSALS: [&str; 12] = [
        "does not exist",
        "not found",
        "invalid",
        "is required",
        "are required",
        "not allowed",
        "permission",
        "not authorized",
        "unauthorized",
        "cannot be",
        "exceeds",
        "too long",
    ];
    let messages: Vec<&str> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|message| !message.is_empty())
        .collect();
    let refused = messages.iter().any(|message| {
        let message = message.to_lowercase();
        REFUSALS.iter().any(|sign| message.contains(sign))
    });
    if !refused {
        return ItsmError::Transient {
            reason: format!("{TOOL} answered HTTP 500"),
            http_status: Some(500),
            retry_after: None,
        };
    }
    let mut reason = format!("{TOOL} refused the request: {}", messages.join("; "));
    if reason.chars().count() > 300 {
        reason = reason.chars().take(299).chain(['…']).collect();
    }
    ItsmError::Permanent {
        reason,
        http_status: Some(500),
    }
}

pub(crate) fn is_complete(status: &Value) -> bool {
    text_of(status).as_deref() == Some("5")
}

/// A ticket `item`.
pub(crate) fn summary(ticket: &Value) -> TicketSummary {
    TicketSummary {
        subject: ticket["title"].as_str().unwrap_or_default().to_owned(),
        description: ticket["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        status: text_of(&ticket["status"]),
        priority: priority(&ticket["priority"]),
        created_at: time(&ticket["createDate"]),
        requester: text_of(&ticket["contactID"]),
        tags: Vec::new(),
        resolution: is_complete(&ticket["status"]).then(|| Resolution {
            text: ticket["resolution"].as_str().unwrap_or_default().to_owned(),
            resolved_at: time(&ticket["completedDate"])
                .or_else(|| time(&ticket["resolvedDateTime"]))
                .or_else(|| time(&ticket["lastActivityDate"]))
                .unwrap_or_else(Utc::now),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_500_naming_a_refusal_is_permanent_and_says_what_autotask_said() {
        let refused = refusal(&json!({"errors": ["Ticket 123 does not exist."]}));
        assert!(
            matches!(&refused, ItsmError::Permanent { reason, http_status: Some(500) }
                if reason.contains("Ticket 123 does not exist.")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_500_without_errors_or_naming_autotasks_own_fault_is_tried_again() {
        for body in [
            Value::Null,
            json!({"errors": []}),
            json!({"message": "Internal Server Error"}),
            json!({"errors": ["An unexpected error has occurred."]}),
            json!({"errors": ["The operation has timed out."]}),
            json!({"errors": ["Object reference not set to an instance of an object."]}),
        ] {
            assert!(
                matches!(
                    refusal(&body),
                    ItsmError::Transient {
                        http_status: Some(500),
                        ..
                    }
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn a_long_refusal_is_cut() {
        let refused = refusal(&json!({"errors": [format!("Invalid {}", "x".repeat(5_000))]}));
        let ItsmError::Permanent { reason, .. } = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(reason.chars().count(), 300);
    }
}
