//! ServiceDesk Plus v3, on-prem: `authtoken` header, the v3 `Accept` media
//! type, notes posted as form field `input_data` holding `{"note": {…}}`.

pub mod history;
pub mod webhook;

use aia_events::TicketId;
use serde::Deserialize;
use serde_json::json;

use crate::{ConfigError, ItsmError, PostedNote, classify, retry_after, transport_error};

pub(crate) const TOOL: &str = "ServiceDesk Plus";
pub(crate) const ACCEPT: &str = "application/vnd.manageengine.sdp.v3+json";

#[derive(Clone)]
pub struct ServiceDeskPlus {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: String,
    pub(crate) authtoken: String,
}

impl std::fmt::Debug for ServiceDeskPlus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDeskPlus")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Credentials {
    authtoken: String,
}

impl ServiceDeskPlus {
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        let credentials: Credentials = serde_json::from_str(credentials_json).map_err(|_| {
            ConfigError("ServiceDesk Plus credentials must be {\"authtoken\": \"…\"}".into())
        })?;
        let base_url = base_url.trim_end_matches('/');
        let parsed = reqwest::Url::parse(base_url).map_err(|_| {
            ConfigError(format!(
                "ServiceDesk Plus base URL {base_url:?} is not a URL"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
            return Err(ConfigError(format!(
                "ServiceDesk Plus base URL {base_url:?} must be http or https"
            )));
        }
        Ok(Self {
            http,
            base_url: base_url.to_owned(),
            authtoken: credentials.authtoken,
        })
    }

    fn notes_url(&self, ticket: &TicketId) -> String {
        let mut url = reqwest::Url::parse(&self.base_url).expect("base URL was validated");
        url.path_segments_mut().expect("http URL").extend([
            "api",
            "v3",
            "requests",
            ticket.as_str(),
            "notes",
        ]);
        url.to_string()
    }

    pub async fn post_note(
        &self,
        ticket: &TicketId,
        html: &str,
        show_to_requester: bool,
    ) -> Result<PostedNote, ItsmError> {
        let input_data = json!({"note": {
            "description": html,
            "show_to_requester": show_to_requester,
            "mark_first_response": false,
            "add_to_linked_requests": false,
        }});
        let response = self
            .http
            .post(self.notes_url(ticket))
            .header("authtoken", &self.authtoken)
            .header("Accept", ACCEPT)
            .form(&[("input_data", input_data.to_string())])
            .send()
            .await
            .map_err(|err| transport_error(TOOL, &err))?;
        classify(TOOL, response.status(), retry_after(response.headers()))?;
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let note_id = body["request_note"]["id"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| body["note"]["id"].as_str().map(str::to_owned));
        Ok(PostedNote { note_id })
    }

    /// Lists one request, which needs working credentials and nothing else.
    pub async fn test_connection(&self) -> Result<(), ItsmError> {
        let mut url = reqwest::Url::parse(&self.base_url).expect("base URL was validated");
        url.path_segments_mut()
            .expect("http URL")
            .extend(["api", "v3", "requests"]);
        let response = self
            .http
            .get(url)
            .query(&[("input_data", r#"{"list_info":{"row_count":1}}"#)])
            .header("authtoken", &self.authtoken)
            .header("Accept", ACCEPT)
            .send()
            .await
            .map_err(|err| transport_error(TOOL, &err))?;
        classify(TOOL, response.status(), retry_after(response.headers()))
    }

    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        let response = self
            .http
            .get(self.notes_url(ticket))
            .header("authtoken", &self.authtoken)
            .header("Accept", ACCEPT)
            .send()
            .await
            .map_err(|err| transport_error(TOOL, &err))?;
        classify(TOOL, response.status(), retry_after(response.headers()))?;
        let body: serde_json::Value = response.json().await.map_err(|_| ItsmError::Transient {
            reason: format!("{TOOL} sent an unreadable list of notes"),
            http_status: None,
            retry_after: None,
        })?;
        Ok(body["notes"]
            .as_array()
            .map(|notes| {
                notes
                    .iter()
                    .filter_map(|note| note["description"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }
}
