//! Zendesk: private comments through a ticket update; Basic auth with
//! `{email}/token:{api_token}` or an OAuth bearer token.

use aia_events::TicketId;
use aia_telemetry::http::TracedSend as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ConfigError, ItsmError, PostedNote, classify, retry_after, transport_error};

const TOOL: &str = "Zendesk";

#[derive(Clone)]
pub struct Zendesk {
    http: reqwest::Client,
    base_url: String,
    authorization: String,
}

impl std::fmt::Debug for Zendesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zendesk")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Credentials {
    email: Option<String>,
    api_token: Option<String>,
    oauth_token: Option<String>,
}

impl Zendesk {
    /// Credentials: `{"email": …, "api_token": …}` or `{"oauth_token": …}`.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        let invalid = || {
            ConfigError(r#"Zendesk credentials must be {"email": "…", "api_token": "…"} or {"oauth_token": "…"}"#.into())
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
        let base_url = base_url.trim_end_matches('/');
        reqwest::Url::parse(base_url)
            .map_err(|_| ConfigError(format!("Zendesk base URL {base_url:?} is not a URL")))?;
        Ok(Self {
            http,
            base_url: base_url.to_owned(),
            authorization,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ItsmError> {
        let response = request
            .header("Authorization", &self.authorization)
            .send_traced("zendesk")
            .await
            .map_err(|err| transport_error(TOOL, &err))?;
        classify(TOOL, response.status(), retry_after(response.headers()))?;
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    fn ticket_number(ticket: &TicketId) -> Result<u64, ItsmError> {
        ticket.as_str().parse().map_err(|_| ItsmError::Permanent {
            reason: format!("Zendesk ticket ids are numbers, not {:?}", ticket.as_str()),
            http_status: None,
        })
    }

    pub async fn post_note(
        &self,
        ticket: &TicketId,
        html: &str,
        public: bool,
    ) -> Result<PostedNote, ItsmError> {
        let id = Self::ticket_number(ticket)?;
        let body = self
            .send(
                self.http
                    .put(self.url(&format!("/api/v2/tickets/{id}.json")))
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

    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        let id = Self::ticket_number(ticket)?;
        let body = self
            .send(
                self.http
                    .get(self.url(&format!("/api/v2/tickets/{id}/comments.json"))),
            )
            .await?;
        Ok(body["comments"]
            .as_array()
            .map(|comments| {
                comments
                    .iter()
                    .filter_map(|comment| {
                        comment["html_body"]
                            .as_str()
                            .or(comment["body"].as_str())
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The ticket's subject, description and status.
    pub async fn fetch_ticket(&self, ticket: &TicketId) -> Result<crate::TicketSummary, ItsmError> {
        let id = Self::ticket_number(ticket)?;
        let body = self
            .send(
                self.http
                    .get(self.url(&format!("/api/v2/tickets/{id}.json"))),
            )
            .await?;
        let ticket = &body["ticket"];
        Ok(crate::TicketSummary {
            subject: ticket["subject"].as_str().unwrap_or_default().to_owned(),
            description: ticket["description"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            status: ticket["status"].as_str().map(str::to_owned),
        })
    }

    pub async fn test_connection(&self) -> Result<(), ItsmError> {
        self.send(self.http.get(self.url("/api/v2/users/me.json")))
            .await
            .map(|_| ())
    }
}
