//! Jira Cloud and Jira Service Management.

pub mod adf;
pub mod webhook;

use aia_events::TicketId;
use aia_telemetry::http::TracedSend as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    ConfigError, ItsmError, PostedNote, classify, notes_incomplete, retry_after, transport_error,
};
use aia_events::Priority;
use chrono::{DateTime, Utc};

const TOOL: &str = "Jira";

/// Which API posts the internal comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommentApi {
    /// `POST /rest/api/3/issue/{key}/comment` with an ADF body and the
    /// `sd.public.comment` property set to internal.
    Platform,
    /// `POST /rest/servicedeskapi/request/{key}/comment` with
    /// `"public": false` (Jira Service Management requests only).
    ServiceDesk,
}

/// Jira Cloud or Data Center: Basic (e-mail and API token) or Bearer (PAT).
#[derive(Clone)]
pub struct Jira {
    http: reqwest::Client,
    base_url: String,
    authorization: String,
    api: CommentApi,
    /// Jira Cloud: signed in with an e-mail and API token (as only Cloud
    /// signs in), or a site on `atlassian.net` / the `api.atlassian.com`
    /// gateway (where a Bearer token is an OAuth one); otherwise Data
    /// Center. The two search differently: Cloud removed
    /// `/rest/api/2/search` (CHANGE-2046) for `/rest/api/3/search/jql`,
    /// paged by token.
    cloud: bool,
}

impl std::fmt::Debug for Jira {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jira")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Credentials {
    email: Option<String>,
    api_token: Option<String>,
    bearer: Option<String>,
    /// Data Center's own accounts (Basic with a user name and password),
    /// for instances without personal access tokens.
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    api: Option<String>,
}

impl Jira {
    /// Credentials: `{"email": …, "api_token": …}` (Cloud), `{"bearer": …}`
    /// (a Data Center personal access token, or a Cloud OAuth token on the
    /// gateway) or `{"username": …, "password": …}` (Data Center Basic),
    /// and optionally `"api": "servicedesk"`.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        let invalid = || {
            ConfigError(
                r#"Jira credentials must be {"email": "…", "api_token": "…"} (Cloud), {"bearer": "…"} (a Data Center personal access token) or {"username": "…", "password": "…"} (Data Center)"#
                    .into(),
            )
        };
        let credentials: Credentials =
            serde_json::from_str(credentials_json).map_err(|_| invalid())?;
        let basic = |user: &str, secret: &str| {
            format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")))
        };
        let (authorization, cloud) = match (
            credentials.email,
            credentials.api_token,
            credentials.bearer,
            credentials.username,
            credentials.password,
        ) {
            (Some(email), Some(token), None, None, None) => (basic(&email, &token), true),
            (None, None, Some(token), None, None) => (format!("Bearer {token}"), false),
            // A user name and password sign in to Data Center only (Cloud
            // takes an API token in the password's place, given as such).
            (None, None, None, Some(user), Some(password)) => (basic(&user, &password), false),
            _ => return Err(invalid()),
        };
        let base_url = base_url.trim_end_matches('/');
        let parsed = reqwest::Url::parse(base_url)
            .map_err(|_| ConfigError(format!("Jira base URL {base_url:?} is not a URL")))?;
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let cloud = cloud
            || host.ends_with(".atlassian.net")
            || host == "api.atlassian.com"
            || host.ends_with(".jira.com");
        Ok(Self {
            http,
            base_url: base_url.to_owned(),
            authorization,
            api: match credentials.api.as_deref() {
                Some("servicedesk") => CommentApi::ServiceDesk,
                _ => CommentApi::Platform,
            },
            cloud,
        })
    }

    /// Whether a comment's body is ADF (Cloud's platform API) or text.
    fn takes_adf(&self) -> bool {
        self.api == CommentApi::Platform && self.cloud
    }

    /// The platform REST API's version: Cloud's 3 (ADF bodies); Data
    /// Center has only 2 (wiki-markup text bodies).
    fn rest(&self) -> &'static str {
        if self.cloud { "3" } else { "2" }
    }

    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = reqwest::Url::parse(&self.base_url).expect("base URL was validated");
        url.path_segments_mut().expect("http URL").extend(segments);
        url
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ItsmError> {
        let response = request
            .header("Authorization", &self.authorization)
            .header("Accept", "application/json")
            .send_traced("jira")
            .await
            .map_err(|err| transport_error(TOOL, &err))?;
        classify(TOOL, response.status(), retry_after(response.headers()))?;
        // An answer that cannot be read is not an empty one: a list of
        // comments read as empty would miss our marker and post twice.
        crate::common::read_json(TOOL, response).await
    }

    /// Posts the note as an internal comment, or a public one when `public`.
    /// The note as [`Jira::post_note`] sends it.
    pub fn render_note(&self, markdown: &str) -> crate::RenderedNote {
        if self.takes_adf() {
            crate::RenderedNote {
                format: crate::NoteFormat::Adf,
                body: serde_json::to_string_pretty(&crate::render_adf::adf(markdown))
                    .unwrap_or_default(),
            }
        } else {
            // Data Center's API v2 and the Service Management request API
            // take text, which Jira renders as wiki markup.
            crate::RenderedNote {
                format: crate::NoteFormat::Text,
                body: crate::render_wiki::wiki(markdown),
            }
        }
    }

    pub async fn post_note(
        &self,
        ticket: &TicketId,
        markdown: &str,
        public: bool,
    ) -> Result<PostedNote, ItsmError> {
        let body = if self.takes_adf() {
            crate::render_adf::adf(markdown)
        } else {
            Value::String(crate::render_wiki::wiki(markdown))
        };
        let request = match self.api {
            CommentApi::Platform => self
                .http
                .post(self.url(&[
                    "rest",
                    "api",
                    self.rest(),
                    "issue",
                    ticket.as_str(),
                    "comment",
                ]))
                .json(&json!({
                    "body": body,
                    "properties": [{"key": "sd.public.comment", "value": {"internal": !public}}],
                })),
            CommentApi::ServiceDesk => self
                .http
                .post(self.url(&[
                    "rest",
                    "servicedeskapi",
                    "request",
                    ticket.as_str(),
                    "comment",
                ]))
                .json(&json!({"body": body, "public": public})),
        };
        let body = self.send(request).await?;
        Ok(PostedNote {
            note_id: body["id"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| body["id"].as_u64().map(|id| id.to_string())),
        })
    }

    /// Every comment's text. Jira lists comments a page at a time, oldest
    /// first and at most 100 to a page however many are asked for, so our
    /// note on a busy issue is past the first page: every page is read.
    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        const PAGE: usize = 100;
        const MAX_COMMENTS: usize = 10_000;
        let mut texts = Vec::new();
        loop {
            let mut url = self.url(&[
                "rest",
                "api",
                self.rest(),
                "issue",
                ticket.as_str(),
                "comment",
            ]);
            url.query_pairs_mut()
                .append_pair("startAt", &texts.len().to_string())
                .append_pair("maxResults", &PAGE.to_string());
            let body = self.send(self.http.get(url)).await?;
            let comments = crate::common::listed(TOOL, &body["comments"])?;
            texts.extend(comments.iter().map(|comment| match &comment["body"] {
                Value::String(text) => text.clone(),
                document => adf::to_text(document),
            }));
            // The page the server chose to give, against what it says it has.
            let done = match body["total"].as_u64() {
                Some(total) => texts.len() as u64 >= total,
                None => comments.is_empty(),
            };
            if done || comments.is_empty() {
                return Ok(texts);
            }
            if texts.len() >= MAX_COMMENTS {
                return Err(notes_incomplete(TOOL, texts.len()));
            }
        }
    }

    /// The issue's summary, description (ADF or wiki markup, as text) and status.
    pub async fn fetch_ticket(&self, ticket: &TicketId) -> Result<crate::TicketSummary, ItsmError> {
        let body = self
            .send(
                self.http
                    .get(self.url(&["rest", "api", self.rest(), "issue", ticket.as_str()])),
            )
            .await?;
        Ok(summary(&body["fields"]))
    }

    pub async fn test_connection(&self) -> Result<(), ItsmError> {
        self.send(
            self.http
                .get(self.url(&["rest", "api", self.rest(), "myself"])),
        )
        .await
        .map(|_| ())
    }
}

/// Text of a description or comment body: wiki markup as it is, ADF as text.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        document => adf::to_text(document),
    }
}

fn time(raw: &Value) -> Option<DateTime<Utc>> {
    let raw = raw.as_str()?;
    DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|at| at.with_timezone(&Utc))
        .or_else(|| raw.parse().ok())
}

/// An issue's fields; a resolved one with its last comment as the
/// resolution.
pub(crate) fn summary(fields: &Value) -> crate::TicketSummary {
    let resolved_at = time(&fields["resolutiondate"]);
    // Our own note is never the fix.
    let last_comment = fields["comment"]["comments"]
        .as_array()
        .and_then(|comments| {
            comments
                .iter()
                .rev()
                .map(|comment| text(&comment["body"]))
                .find(|body| !crate::is_our_note(body))
        })
        .unwrap_or_default();
    crate::TicketSummary {
        subject: fields["summary"].as_str().unwrap_or_default().to_owned(),
        description: text(&fields["description"]),
        status: fields["status"]["name"].as_str().map(str::to_owned),
        priority: fields["priority"]["name"]
            .as_str()
            .and_then(|name| Priority::parse(name).ok())
            .unwrap_or(Priority::Medium),
        created_at: time(&fields["created"]),
        requester: fields["reporter"]["displayName"]
            .as_str()
            .map(str::to_owned),
        tags: fields["labels"]
            .as_array()
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        resolution: resolved_at.map(|resolved_at| crate::Resolution {
            text: last_comment,
            resolved_at,
        }),
    }
}

impl Jira {
    /// A page of resolved issues for an import: JQL `resolution is not
    /// EMPTY` ordered by resolution date, 100 a page from `startAt` (the
    /// cursor).
    pub async fn resolved_page(
        &self,
        cursor: Option<&str>,
        window: &crate::ImportWindow,
        pace: &crate::Pace,
    ) -> Result<crate::ResolvedPage, ItsmError> {
        const PAGE: u64 = 100;
        const FIELDS: &str =
            "summary,description,priority,labels,created,resolutiondate,comment,status,reporter";
        let mut jql = String::from("resolution is not EMPTY");
        let (since, until) = window.in_any_zone();
        if let Some(since) = since {
            jql.push_str(&format!(
                " AND resolutiondate >= \"{}\"",
                since.format("%Y-%m-%d %H:%M")
            ));
        }
        if let Some(until) = until {
            jql.push_str(&format!(
                " AND resolutiondate < \"{}\"",
                until.format("%Y-%m-%d %H:%M")
            ));
        }
        jql.push_str(" ORDER BY resolutiondate ASC, key ASC");
        // Cloud pages by an opaque token; Data Center by offset.
        let start: u64 = match cursor {
            Some(cursor) if !self.cloud => cursor.parse().map_err(|_| {
                ItsmError::permanent(format!("{TOOL} import cursor {cursor:?} is not an offset"))
            })?,
            _ => 0,
        };
        let url = if self.cloud {
            let mut url = self.url(&["rest", "api", "3", "search", "jql"]);
            url.query_pairs_mut()
                .append_pair("jql", &jql)
                .append_pair("maxResults", &PAGE.to_string())
                .append_pair("fields", FIELDS);
            if let Some(token) = cursor {
                url.query_pairs_mut().append_pair("nextPageToken", token);
            }
            url
        } else {
            let mut url = self.url(&["rest", "api", "2", "search"]);
            url.query_pairs_mut()
                .append_pair("jql", &jql)
                .append_pair("startAt", &start.to_string())
                .append_pair("maxResults", &PAGE.to_string())
                .append_pair("fields", FIELDS);
            url
        };
        pace.wait().await;
        let body = self.send(self.http.get(url)).await?;
        let issues = body["issues"].as_array().cloned().unwrap_or_default();
        let tickets = issues
            .iter()
            .filter_map(|issue| {
                let summary = summary(&issue["fields"]);
                let resolution = summary.resolution?;
                Some(crate::ResolvedTicket {
                    id: issue["key"].as_str()?.to_owned(),
                    subject: summary.subject,
                    description: summary.description,
                    resolution: resolution.text,
                    priority: summary.priority,
                    resolved_at: resolution.resolved_at,
                    tags: summary.tags,
                })
            })
            .filter(|ticket| window.contains(ticket.resolved_at))
            .collect();
        if self.cloud {
            let next = body["nextPageToken"]
                .as_str()
                .filter(|token| !token.is_empty() && body["isLast"] != true)
                .map(str::to_owned);
            return Ok(crate::ResolvedPage {
                tickets,
                next,
                total: None,
            });
        }
        let total = body["total"].as_u64();
        let next = start + issues.len() as u64;
        let more = !issues.is_empty() && total.is_none_or(|total| next < total);
        Ok(crate::ResolvedPage {
            tickets,
            next: more.then(|| next.to_string()),
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_is_told_by_its_sign_in_or_its_host() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let jira = |base: &str, credentials: &str| {
            Jira::new(reqwest::Client::new(), base, credentials)
                .unwrap()
                .cloud
        };
        let basic = r#"{"email": "a@b.example", "api_token": "t"}"#;
        let bearer = r#"{"bearer": "t"}"#;
        assert!(jira("https://jira.acme.example", basic));
        assert!(jira("https://acme.atlassian.net", bearer));
        assert!(jira("https://api.atlassian.com/ex/jira/1234", bearer));
        assert!(!jira("https://jira.acme.example", bearer));
        let password = r#"{"username": "svc-ai", "password": "p"}"#;
        assert!(!jira("https://jira.acme.example", password));
        let with_it = Jira::new(
            reqwest::Client::new(),
            "https://jira.acme.example",
            password,
        )
        .unwrap();
        assert_eq!(
            with_it.authorization,
            format!("Basic {}", STANDARD.encode("svc-ai:p"))
        );
        // Half of a sign-in, or two at once, is refused.
        for credentials in [
            r#"{"username": "svc-ai"}"#,
            r#"{"username": "svc-ai", "password": "p", "bearer": "t"}"#,
        ] {
            assert!(
                Jira::new(
                    reqwest::Client::new(),
                    "https://jira.acme.example",
                    credentials
                )
                .is_err()
            );
        }
    }
}
