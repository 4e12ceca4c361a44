//! Zendesk Support API v2: private comments through a ticket update, the
//! ticket and its comments read back; Basic auth with
//! `{email}/token:{api_token}` or an OAuth bearer token.

pub mod history;
pub mod webhook;

use aia_events::{Priority, TicketId};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{Api, notes_incomplete, numeric_id};
use crate::{ConfigError, ItsmError, PostedNote, RenderedNote, Resolution, TicketSummary};

pub(crate) const TOOL: &str = "Zendesk";

#[derive(Clone)]
pub struct Zendesk {
    api: Api,
    authorization: String,
}

/// Without the `Authorization` value: Basic credentials decode at sight.
impl std::fmt::Debug for Zendesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zendesk")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// A tenant's Zendesk credentials. `webhook_signing_secret` is the signing
/// secret Zendesk shows for the webhook (Admin Center → Webhooks → Reveal
/// secret): the ingress verifies `X-Zendesk-Webhook-Signature` with it.
#[derive(Deserialize)]
pub struct Credentials {
    pub email: Option<String>,
    pub api_token: Option<String>,
    pub oauth_token: Option<String>,
    #[serde(default)]
    pub webhook_signing_secret: Option<String>,
}

impl Zendesk {
    /// Credentials: `{"email": …, "api_token": …}` or `{"oauth_token": …}`,
    /// optionally with `"webhook_signing_secret"`.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        let invalid = || {
            ConfigError(r#"Zendesk credentials must be {"email": "…", "api_token": "…"} or {"oauth_token": "…"}, optionally with "webhook_signing_secret""#.into())
        };
        let credentials: Credentials =
            serde_json::from_str(credentials_json).map_err(|_| invalid())?;
        let authorization = match (
            credentials.email,
            credentials.api_token,
            credentials.oauth_token,
        ) {
            (Some(email), Some(token), None) => format!(
                "Basic {}",
                STANDARD.encode(format!("{email}/token:{token}"))
            ),
            (None, None, Some(token)) => format!("Bearer {token}"),
            _ => return Err(invalid()),
        };
        Ok(Self {
            api: Api::new(http, base_url, TOOL, "zendesk")?,
            authorization,
        })
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

    /// The note as HTML, its `{{` broken by a zero-width space: Zendesk
    /// expands `{{placeholders}}` in comments, and Liquid has no escape, so
    /// a note quoting one (a ticket's subject, say) shows it as written
    /// instead of the requester's data.
    pub fn render_note(&self, markdown: &str) -> RenderedNote {
        rendered(markdown)
    }

    /// A private comment (`public: false`, always sent: Zendesk otherwise
    /// keeps whatever the ticket was created with).
    pub async fn post_note(
        &self,
        ticket: &TicketId,
        markdown: &str,
        public: bool,
    ) -> Result<PostedNote, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        let html = self.render_note(markdown).body;
        let body = self
            .json(
                self.api
                    .http
                    .put(self.ticket_url(id, &[]))
                    .json(&json!({"ticket": {"comment": {"html_body": html, "public": public}}})),
            )
            .await?;
        let note_id = body["audit"]["events"]
            .as_array()
            .and_then(|events| events.iter().find(|event| event["type"] == "Comment"))
            .and_then(|event| event["id"].as_u64())
            .map(|id| id.to_string());
        Ok(PostedNote { note_id })
    }

    /// The ticket's comments, oldest first (every page).
    async fn comments(&self, id: u64) -> Result<Vec<Value>, ItsmError> {
        let mut comments = Vec::new();
        let mut url = self.ticket_url(id, &["comments"]);
        url.query_pairs_mut().append_pair("page[size]", "100");
        for _ in 0..50 {
            let body = self.json(self.api.http.get(url.clone())).await?;
            let page = crate::common::listed(TOOL, &body["comments"])?;
            comments.extend(page.iter().cloned());
            let next = body["links"]["next"]
                .as_str()
                .or(body["next_page"].as_str());
            let more = next.is_some() && body["meta"]["has_more"].as_bool().unwrap_or(true);
            if !more {
                return Ok(comments);
            }
            // A next page that is not the tenant's Zendesk is not fetched
            // (its URL came from the answer); the list is then incomplete.
            match next.and_then(|next| self.same_host(next)) {
                Some(next) => url = next,
                None => break,
            }
        }
        Err(notes_incomplete(TOOL, comments.len()))
    }

    /// A next-page URL the API gave, if it points at the tenant's Zendesk.
    fn same_host(&self, url: &str) -> Option<reqwest::Url> {
        let url = reqwest::Url::parse(url).ok()?;
        (url.host_str() == self.api.base.host_str() && url.port() == self.api.base.port())
            .then_some(url)
    }

    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        Ok(self
            .comments(id)
            .await?
            .iter()
            .filter_map(|comment| {
                comment["html_body"]
                    .as_str()
                    .or(comment["body"].as_str())
                    .map(str::to_owned)
            })
            .collect())
    }

    /// The ticket; a solved or closed one with the last comment after the
    /// description as its resolution.
    pub async fn fetch_ticket(&self, ticket: &TicketId) -> Result<TicketSummary, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        let body = self
            .json(self.api.http.get(self.ticket_url(id, &[])))
            .await?;
        let ticket = &body["ticket"];
        let mut summary = summary(ticket);
        if summary.resolution.is_some() {
            let comments = self.comments(id).await?;
            if let Some(resolution) = &mut summary.resolution {
                resolution.text = resolution_text(&comments);
            }
        }
        Ok(summary)
    }

    /// `GET /api/v2/users/me` answers anonymous callers too: only a known
    /// agent or admin proves the credentials.
    pub async fn test_connection(&self) -> Result<(), ItsmError> {
        let body = self
            .json(
                self.api
                    .http
                    .get(self.api.url(&["api", "v2", "users", "me"])),
            )
            .await?;
        let user = &body["user"];
        match (user["id"].as_u64(), user["role"].as_str()) {
            (Some(_), Some("agent" | "admin")) => Ok(()),
            (Some(_), Some(role)) => Err(ItsmError::permanent(format!(
                "{TOOL} accepted the credentials of a {role}; notes need an agent"
            ))),
            _ => Err(ItsmError::Permanent {
                reason: format!("{TOOL} rejected the API key"),
                http_status: Some(401),
            }),
        }
    }
}

fn priority(raw: Option<&str>) -> Priority {
    raw.and_then(|raw| Priority::parse(raw).ok())
        .unwrap_or(Priority::Medium)
}

fn time(raw: &Value) -> Option<DateTime<Utc>> {
    raw.as_str()?.parse().ok()
}

/// A ticket object (the API's, or a webhook event's `detail`).
pub(crate) fn summary(ticket: &Value) -> TicketSummary {
    let status = ticket["status"].as_str().map(str::to_owned);
    let solved = matches!(status.as_deref(), Some("solved" | "closed"));
    TicketSummary {
        subject: ticket["subject"].as_str().unwrap_or_default().to_owned(),
        description: ticket["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        priority: priority(ticket["priority"].as_str()),
        created_at: time(&ticket["created_at"]),
        requester: crate::common::text_of(&ticket["requester_id"]),
        tags: ticket["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        resolution: solved.then(|| Resolution {
            text: String::new(),
            resolved_at: time(&ticket["updated_at"]).unwrap_or_else(Utc::now),
        }),
        status,
    }
}

/// The last public comment after the first (the description), as text —
/// not an agent's internal remark, nor the note we posted: a ticket solved
/// without a word after our suggestion must not store the suggestion as
/// its fix.
pub(crate) fn resolution_text(comments: &[Value]) -> String {
    comments
        .iter()
        .skip(1)
        .rev()
        .filter(|comment| comment["public"].as_bool() != Some(false))
        .filter_map(|comment| comment["plain_body"].as_str().or(comment["body"].as_str()))
        .find(|text| !crate::is_our_note(text))
        .unwrap_or_default()
        .to_owned()
}

/// See [`Zendesk::render_note`].
fn rendered(markdown: &str) -> RenderedNote {
    let mut note = RenderedNote::html(markdown);
    let mut body = String::with_capacity(note.body.len());
    let mut previous = None;
    // Zendesk leaves placeholders in code alone, and a command copied from
    // it (`docker inspect -f '{{.State.Status}}'`) must work: no break there.
    let mut in_code = false;
    for (at, c) in note.body.char_indices() {
        if c == '<' {
            let rest = &note.body[at..];
            if rest.starts_with("<code") {
                in_code = true;
            } else if rest.starts_with("</code>") {
                in_code = false;
            }
        }
        // `{{ output }}` and `{% tag %}` are both Liquid's.
        if matches!(c, '{' | '%') && previous == Some('{') && !in_code {
            body.push('\u{200B}');
        }
        body.push(c);
        previous = Some(c);
    }
    note.body = body;
    note
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fix_is_the_last_public_comment_that_is_not_our_note() {
        let comments = [
            json!({"public": true, "plain_body": "Outlook hangs on start"}),
            json!({"public": true, "plain_body": "Disabled the Zoom add-in"}),
            json!({"public": false, "plain_body": "internal: user was rude"}),
            json!({"public": false, "plain_body": "Similar tickets…\n\nai-agents-ref:0190c9a4-0000-7000-8000-000000000001"}),
        ];
        assert_eq!(resolution_text(&comments), "Disabled the Zoom add-in");
        // Only the description and our note: no fix was written.
        assert_eq!(
            resolution_text(&[comments[0].clone(), comments[3].clone()]),
            ""
        );
    }

    #[test]
    fn a_quoted_placeholder_is_shown_not_expanded() {
        let code = rendered("Run `docker inspect -f '{{.State.Status}}' web`:\n\n```\n{{x}}\n```");
        assert!(code.body.contains("{{.State.Status}}"), "{}", code.body);
        assert!(code.body.contains("{{x}}"), "{}", code.body);
        assert!(!code.body.contains('\u{200B}'), "{}", code.body);
        let note = rendered("User wrote: {{ticket.requester.email}} and {{{x}}}");
        assert!(!note.body.contains("{{"), "{}", note.body);
        let tags = rendered("Subject: {% cycle ticket.requester.email %} {%raw%}");
        assert!(!tags.body.contains("{%"), "{}", tags.body);
        assert!(tags.body.contains("{\u{200B}% cycle"), "{}", tags.body);
        assert!(
            !note.body.contains('\\'),
            "no stray backslash: {}",
            note.body
        );
        assert!(
            note.body
                .replace('\u{200B}', "")
                .contains("{{ticket.requester.email}}"),
            "{}",
            note.body
        );
    }
}
