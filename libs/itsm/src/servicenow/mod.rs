//! ServiceNow's Table API on `incident`: work notes (a journal field, plain
//! text with its line breaks) added by a PATCH, read back from
//! `sys_journal_field`; Basic auth, or OAuth (the password grant of
//! `/oauth_token.do`, the token cached and fetched again when refused).
//!
//! Tickets are known by their number (`INC0010001`), which technicians see;
//! the API addresses a record by its `sys_id`, looked up by number.

pub mod history;
pub mod webhook;

use aia_events::{Priority, TicketId};
use aia_telemetry::http::TracedSend as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{Api, notes_incomplete, text_of};
use crate::{ConfigError, ItsmError, PostedNote, RenderedNote, Resolution, TicketSummary};

pub(crate) const TOOL: &str = "ServiceNow";

/// The incident fields read.
const FIELDS: &str = "sys_id,number,short_description,description,priority,state,opened_at,sys_created_on,resolved_at,close_notes,close_code,caller_id";

#[derive(Clone, Debug)]
pub struct ServiceNow {
    api: Api,
    auth: Auth,
}

#[derive(Clone)]
enum Auth {
    Basic(String),
    OAuth {
        client_id: String,
        client_secret: String,
        username: String,
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Basic(_) => "Basic",
            Self::OAuth { .. } => "OAuth",
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

impl ServiceNow {
    /// Credentials: `{"username": …, "password": …}` (Basic), with
    /// `"client_id"` and `"client_secret"` for OAuth.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        let credentials: Credentials = serde_json::from_str(credentials_json).map_err(|_| {
            ConfigError(
                r#"ServiceNow credentials must be {"username": "…", "password": "…"}, with "client_id" and "client_secret" for OAuth"#.into(),
            )
        })?;
        let auth = match (credentials.client_id, credentials.client_secret) {
            (Some(client_id), Some(client_secret)) => Auth::OAuth {
                client_id,
                client_secret,
                username: credentials.username,
                password: credentials.password,
            },
            (None, None) => Auth::Basic(format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", credentials.username, credentials.password))
            )),
            _ => {
                return Err(ConfigError(
                    "ServiceNow OAuth needs both client_id and client_secret".into(),
                ));
            }
        };
        Ok(Self {
            api: Api::new(http, base_url, TOOL, "servicenow")?,
            auth,
        })
    }

    /// Every credential that obtains the token: no two sets of credentials
    /// share one, and a changed secret or password fetches a new one.
    fn token_key(&self) -> Option<String> {
        match &self.auth {
            Auth::OAuth {
                client_id,
                client_secret,
                username,
                password,
            } => Some(crate::oauth::key(&[
                self.api.base.as_str(),
                client_id,
                client_secret,
                username,
                password,
            ])),
            Auth::Basic(_) => None,
        }
    }

    async fn authorization(&self) -> Result<String, ItsmError> {
        let (client_id, client_secret, username, password) = match &self.auth {
            Auth::Basic(basic) => return Ok(basic.clone()),
            Auth::OAuth {
                client_id,
                client_secret,
                username,
                password,
            } => (client_id, client_secret, username, password),
        };
        let key = self.token_key().expect("OAuth has a key");
        let token = crate::oauth::token(&key, async {
            let response = self
                .api
                .http
                .post(self.api.url(&["oauth_token.do"]))
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", client_id),
                    ("client_secret", client_secret),
                    ("username", username),
                    ("password", password),
                ])
                .send_traced("servicenow-oauth")
                .await
                .map_err(|err| crate::transport_error(TOOL, &err))?;
            crate::oauth::read_answer(response, TOOL, "credentials").await
        })
        .await?;
        Ok(format!("Bearer {token}"))
    }

    /// Sends `build()`'s request; an OAuth token that is refused is
    /// fetched again, once.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ItsmError> {
        for attempt in 0..2 {
            let authorization = self.authorization().await?;
            let request = build()
                .header("Authorization", &authorization)
                .header("Accept", "application/json");
            match self.api.send(request).await {
                Err(ItsmError::Permanent {
                    http_status: Some(401),
                    ..
                }) if attempt == 0 && self.token_key().is_some() => {
                    let refused = authorization.strip_prefix("Bearer ").unwrap_or_default();
                    crate::oauth::forget(&self.token_key().expect("OAuth"), refused);
                }
                other => return other,
            }
        }
        unreachable!("the second attempt returns")
    }

    async fn json(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<Value, ItsmError> {
        crate::common::read_json(TOOL, self.send(build).await?).await
    }

    /// The incident numbered `ticket` (or with that `sys_id`).
    async fn incident(&self, ticket: &TicketId) -> Result<Value, ItsmError> {
        let number = ticket.as_str();
        let field = if number.len() == 32 && number.bytes().all(|b| b.is_ascii_hexdigit()) {
            "sys_id"
        } else {
            "number"
        };
        let mut url = self.api.url(&["api", "now", "table", "incident"]);
        url.query_pairs_mut()
            .append_pair("sysparm_query", &format!("{field}={number}"))
            .append_pair("sysparm_fields", FIELDS)
            .append_pair("sysparm_exclude_reference_link", "true")
            .append_pair("sysparm_limit", "1");
        let body = self.json(|| self.api.http.get(url.clone())).await?;
        body["result"]
            .as_array()
            .and_then(|records| records.first())
            .cloned()
            .ok_or_else(|| ItsmError::Permanent {
                reason: format!("{TOOL} does not know incident {number}"),
                http_status: Some(404),
            })
    }

    async fn sys_id(&self, ticket: &TicketId) -> Result<String, ItsmError> {
        let incident = self.incident(ticket).await?;
        text_of(&incident["sys_id"])
            .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| ItsmError::unreadable(TOOL))
    }

    pub fn render_note(&self, markdown: &str) -> RenderedNote {
        let mut note = RenderedNote::text(markdown);
        note.body = without_code_tags(&note.body);
        note
    }

    /// A work note (or, when the requester may see it, an additional
    /// comment).
    pub async fn post_note(
        &self,
        ticket: &TicketId,
        markdown: &str,
        visible_to_requester: bool,
    ) -> Result<PostedNote, ItsmError> {
        let sys_id = self.sys_id(ticket).await?;
        let field = if visible_to_requester {
            "comments"
        } else {
            "work_notes"
        };
        let body = json!({ field: self.render_note(markdown).body });
        let url = self.api.url(&["api", "now", "table", "incident", &sys_id]);
        self.send(|| self.api.http.patch(url.clone()).json(&body))
            .await?;
        // Journal fields read back empty from the Table API: no id to keep.
        Ok(PostedNote { note_id: None })
    }

    /// Every journal entry of the record, a page at a time (the Table API
    /// answers at most `sysparm_limit` rows).
    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        const PAGE: usize = 1000;
        const MAX_PAGES: usize = 10;
        let sys_id = self.sys_id(ticket).await?;
        let mut texts = Vec::new();
        for page in 0..MAX_PAGES {
            let mut url = self.api.url(&["api", "now", "table", "sys_journal_field"]);
            url.query_pairs_mut()
                .append_pair(
                    "sysparm_query",
                    &format!(
                        "element_id={sys_id}^elementINwork_notes,comments^ORDERBYsys_created_on^ORDERBYsys_id"
                    ),
                )
                .append_pair("sysparm_fields", "value")
                .append_pair("sysparm_limit", &PAGE.to_string())
                .append_pair("sysparm_offset", &(page * PAGE).to_string());
            let body = self.json(|| self.api.http.get(url.clone())).await?;
            let entries = crate::common::listed(TOOL, &body["result"])?;
            texts.extend(
                entries
                    .iter()
                    .filter_map(|entry| entry["value"].as_str().map(str::to_owned)),
            );
            // Until a page comes back empty: access rules may trim a page
            // below its size with more after it. (Ordered by a unique key
            // too, so entries of one second neither repeat nor drop out
            // at a page's edge.)
            if entries.is_empty() {
                return Ok(texts);
            }
        }
        Err(notes_incomplete(TOOL, texts.len()))
    }

    pub async fn fetch_ticket(&self, ticket: &TicketId) -> Result<TicketSummary, ItsmError> {
        Ok(summary(&self.incident(ticket).await?))
    }

    pub async fn test_connection(&self) -> Result<(), ItsmError> {
        let mut url = self.api.url(&["api", "now", "table", "incident"]);
        url.query_pairs_mut()
            .append_pair("sysparm_limit", "1")
            .append_pair("sysparm_fields", "sys_id");
        self.send(|| self.api.http.get(url.clone()))
            .await
            .map(|_| ())
    }
}

/// ServiceNow's priorities: 1 Critical, 2 High, 3 Moderate, 4 Low, 5 Planning.
pub(crate) fn priority(raw: &Value) -> Priority {
    match text_of(raw).and_then(|text| text.chars().next()?.to_digit(10)) {
        Some(1) => Priority::Critical,
        Some(2) => Priority::High,
        Some(4 | 5) => Priority::Low,
        _ => Priority::Medium,
    }
}

/// States 6 (Resolved) and 7 (Closed).
pub(crate) fn is_resolved(state: &Value) -> bool {
    matches!(text_of(state).as_deref(), Some("6" | "7"))
}

/// A date-time as the Table API writes it (`YYYY-MM-DD HH:MM:SS`, UTC), or
/// in RFC 3339.
pub(crate) fn time(raw: &Value) -> Option<DateTime<Utc>> {
    let raw = raw.as_str()?.trim();
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S")
        .map(|naive| naive.and_utc())
        .ok()
        .or_else(|| raw.parse().ok())
}

/// An incident record.
pub(crate) fn summary(incident: &Value) -> TicketSummary {
    let close = [&incident["close_code"], &incident["close_notes"]]
        .iter()
        .filter_map(|value| value.as_str().filter(|text| !text.trim().is_empty()))
        .collect::<Vec<_>>()
        .join(": ");
    TicketSummary {
        subject: incident["short_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        description: incident["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        status: text_of(&incident["state"]),
        priority: priority(&incident["priority"]),
        created_at: time(&incident["opened_at"]).or_else(|| time(&incident["sys_created_on"])),
        requester: text_of(&incident["caller_id"]).or_else(|| text_of(&incident["caller"])),
        tags: Vec::new(),
        resolution: is_resolved(&incident["state"]).then(|| Resolution {
            text: close,
            resolved_at: time(&incident["resolved_at"]).unwrap_or_else(Utc::now),
        }),
    }
}

/// ServiceNow shows a journal entry as text, except what stands between
/// `[code]` and `[/code]`, which it renders as HTML (the
/// `glide.ui.security.allow_codetag` property, on by default). A note
/// quotes ticket subjects anyone can write, so the tags are broken with a
/// zero-width space after the bracket: shown as written, never rendered.
fn without_code_tags(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = lower[at..].find('[').map(|i| at + i) {
        let rest = &lower[found..];
        if rest.starts_with("[code]") || rest.starts_with("[/code]") {
            out.push_str(&text[copied..=found]);
            out.push('\u{200B}');
            copied = found + 1;
        }
        at = found + 1;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::without_code_tags;

    #[test]
    fn code_tags_in_any_case_are_shown_not_rendered() {
        let note =
            "Also: [code]<a href=\"https://evil.example\">Reset</a>[/code] and [CODE]x[/Code].";
        let shown = without_code_tags(note);
        assert!(!shown.to_ascii_lowercase().contains("[code]"), "{shown}");
        assert!(!shown.to_ascii_lowercase().contains("[/code]"), "{shown}");
        assert_eq!(shown.replace('\u{200B}', ""), note);
        assert_eq!(without_code_tags("[ipconfig] [c"), "[ipconfig] [c");
    }
}
