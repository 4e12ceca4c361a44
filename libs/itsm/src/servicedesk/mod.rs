//! ServiceDesk Plus v3, on-prem (`authtoken` header, notes as form field
//! `input_data` holding `{"note": {…}}`) and Cloud (Zoho OAuth, base URL
//! `https://sdpondemand.manageengine.com/app/{portal}`, the `request_note`
//! wrapper), both with the v3 `Accept` media type.

mod auth;
pub mod history;
pub mod webhook;

use aia_events::TicketId;
use aia_telemetry::http::TracedSend as _;
use serde::Deserialize;
use serde_json::json;

use crate::{
    ConfigError, ItsmError, PostedNote, classify, notes_incomplete, retry_after, transport_error,
};

pub(crate) const TOOL: &str = "ServiceDesk Plus";
pub(crate) const ACCEPT: &str = "application/vnd.manageengine.sdp.v3+json";

#[derive(Clone)]
pub struct ServiceDeskPlus {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: String,
    pub(crate) auth: auth::Auth,
}

impl std::fmt::Debug for ServiceDeskPlus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDeskPlus")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Credentials {
    OnPrem { authtoken: String },
    Cloud(auth::ZohoCredentials),
}

impl ServiceDeskPlus {
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        let credentials: Credentials = serde_json::from_str(credentials_json).map_err(|_| {
            ConfigError(
                "ServiceDesk Plus credentials must be {\"authtoken\": \"…\"} (on-prem) or \
                 {\"client_id\", \"client_secret\", \"refresh_token\", \"accounts_url\"} (Cloud)"
                    .into(),
            )
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
            auth: match credentials {
                Credentials::OnPrem { authtoken } => auth::Auth::AuthToken(authtoken),
                Credentials::Cloud(zoho) => {
                    // It receives the client secret and refresh token: held
                    // to the same bounds as the base URL.
                    aia_http::outbound::check_url(&zoho.accounts_url)
                        .map_err(|err| ConfigError(format!("Zoho accounts_url: {err}")))?;
                    auth::Auth::Zoho(zoho)
                }
            },
        })
    }

    /// The JSON key notes are wrapped in: `note` on-prem, `request_note`
    /// on Cloud.
    fn note_wrapper(&self) -> &'static str {
        match self.auth {
            auth::Auth::AuthToken(_) => "note",
            auth::Auth::Zoho(_) => "request_note",
        }
    }

    /// Sends `build()`'s request with the v3 media type and credentials; a
    /// Cloud access token that is refused is refreshed once.
    pub(crate) async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ItsmError> {
        for attempt in 0..2 {
            let request = build().header("Accept", ACCEPT);
            let mut sent_token = None;
            let request = match &self.auth {
                auth::Auth::AuthToken(token) => request.header("authtoken", token),
                auth::Auth::Zoho(zoho) => {
                    let token = zoho.access_token(&self.http).await?;
                    let request =
                        request.header("Authorization", format!("Zoho-oauthtoken {token}"));
                    sent_token = Some(token);
                    request
                }
            };
            let response = request
                .send_traced("servicedesk-plus")
                .await
                .map_err(|err| transport_error(TOOL, &err))?;
            if let auth::Auth::Zoho(zoho) = &self.auth
                && response.status() == reqwest::StatusCode::UNAUTHORIZED
                && attempt == 0
            {
                zoho.forget(sent_token.as_deref().unwrap_or_default());
                continue;
            }
            classify(TOOL, response.status(), retry_after(response.headers()))?;
            return Ok(response);
        }
        unreachable!("the loop returns on its second pass")
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

    pub fn render_note(&self, markdown: &str) -> crate::RenderedNote {
        crate::RenderedNote::html(markdown)
    }

    pub async fn post_note(
        &self,
        ticket: &TicketId,
        markdown: &str,
        show_to_requester: bool,
    ) -> Result<PostedNote, ItsmError> {
        let html = self.render_note(markdown).body;
        let mut input_data = serde_json::Map::new();
        input_data.insert(
            self.note_wrapper().to_owned(),
            json!({
                "description": html,
                "show_to_requester": show_to_requester,
                "mark_first_response": false,
                "add_to_linked_requests": false,
            }),
        );
        let form = [(
            "input_data",
            serde_json::Value::Object(input_data).to_string(),
        )];
        let response = self
            .send(|| self.http.post(self.notes_url(ticket)).form(&form))
            .await?;
        let body: serde_json::Value = aia_http::answer::json(response).await.unwrap_or_default();
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
        self.send(|| {
            self.http
                .get(url.clone())
                .query(&[("input_data", r#"{"list_info":{"row_count":1}}"#)])
        })
        .await
        .map(|_| ())
    }

    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        // Lists come a page at a time (ten notes unless asked for more): a
        // busy ticket's note of ours may be on a later page, and a marker
        // search that missed it would post a second note.
        const PAGE: u64 = 100;
        const MAX_PAGES: u64 = 50;
        let wrapper = format!("{}s", self.note_wrapper());
        let mut texts = Vec::new();
        for page in 0..MAX_PAGES {
            let input_data = serde_json::json!({"list_info": {
                "row_count": PAGE, "start_index": page * PAGE + 1,
            }})
            .to_string();
            let response = self
                .send(|| {
                    self.http
                        .get(self.notes_url(ticket))
                        .query(&[("input_data", input_data.as_str())])
                })
                .await?;
            let body = crate::common::read_json(TOOL, response).await?;
            // A ticket without notes may come back with its `list_info`
            // and no list at all; an answer with neither is no answer.
            let notes = body["notes"]
                .as_array()
                .or_else(|| body[&wrapper].as_array())
                .cloned()
                .or_else(|| body["list_info"].is_object().then(Vec::new))
                .ok_or_else(|| ItsmError::unreadable(TOOL))?;
            texts.extend(
                notes
                    .iter()
                    .filter_map(|note| note["description"].as_str().map(str::to_owned)),
            );
            if body["list_info"]["has_more_rows"] != true || notes.is_empty() {
                return Ok(texts);
            }
        }
        Err(notes_incomplete(TOOL, texts.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zoho_accounts_url_the_services_may_not_call_is_refused() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let credentials = |accounts_url: &str| {
            serde_json::json!({"client_id": "c", "client_secret": "s",
                "refresh_token": "r", "accounts_url": accounts_url})
            .to_string()
        };
        let client = |accounts_url: &str| {
            ServiceDeskPlus::new(
                reqwest::Client::new(),
                "https://sdpondemand.manageengine.com",
                &credentials(accounts_url),
            )
        };
        let Err(refused) = client("http://169.254.169.254/latest") else {
            panic!("a metadata address must be refused");
        };
        assert!(refused.0.contains("accounts_url"), "{}", refused.0);
        assert!(client("https://accounts.zoho.eu").is_ok());
    }
}
