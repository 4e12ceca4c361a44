//! ConnectWise PSA (Manage) REST API 3.0: internal-analysis notes on a
//! service ticket, the ticket and its notes read back; Basic auth with
//! `{company}+{public key}:{private key}` and the integration's `clientId`
//! header. The base URL is the site, its codebase and `apis/3.0`, for
//! example `https://api-na.myconnectwise.net/v4_6_release/apis/3.0`.

pub mod history;
pub mod webhook;

use aia_events::{Priority, TicketId};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{Api, notes_incomplete, numeric_id, text_of};
use crate::{ConfigError, ItsmError, PostedNote, RenderedNote, Resolution, TicketSummary};

pub(crate) const TOOL: &str = "ConnectWise PSA";

#[derive(Clone)]
pub struct ConnectWise {
    api: Api,
    authorization: String,
    client_id: String,
    company_id: String,
}

impl std::fmt::Debug for ConnectWise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectWise")
            .field("api", &self.api)
            .field("company_id", &self.company_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    company_id: String,
    public_key: String,
    private_key: String,
    client_id: String,
}

impl ConnectWise {
    /// Credentials: `{"company_id", "public_key", "private_key",
    /// "client_id"}` (an API member's keys, the integration's client id).
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        let credentials: Credentials = serde_json::from_str(credentials_json).map_err(|_| {
            ConfigError(
                r#"ConnectWise PSA credentials must be {"company_id", "public_key", "private_key", "client_id"}"#.into(),
            )
        })?;
        Ok(Self {
            api: Api::new(http, base_url, TOOL, "connectwise")?,
            authorization: format!(
                "Basic {}",
                STANDARD.encode(format!(
                    "{}+{}:{}",
                    credentials.company_id, credentials.public_key, credentials.private_key
                ))
            ),
            client_id: credentials.client_id,
            company_id: credentials.company_id,
        })
    }

    fn request(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request
            .header("Authorization", &self.authorization)
            .header("clientId", &self.client_id)
            .header("Accept", "application/json")
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, ItsmError> {
        self.api.json(self.request(request)).await
    }

    fn ticket_url(&self, id: u64, tail: &[&str]) -> reqwest::Url {
        let id = id.to_string();
        let mut segments = vec!["service", "tickets", id.as_str()];
        segments.extend_from_slice(tail);
        self.api.url(&segments)
    }

    pub fn render_note(&self, markdown: &str) -> RenderedNote {
        RenderedNote::text(markdown)
    }

    /// An internal-analysis note (a discussion note when the requester may
    /// see it), sending no e-mail.
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
                        "text": self.render_note(markdown).body,
                        "detailDescriptionFlag": visible_to_requester,
                        "internalAnalysisFlag": !visible_to_requester,
                        "resolutionFlag": false,
                        "processNotifications": false,
                    })),
            )
            .await?;
        Ok(PostedNote {
            note_id: text_of(&body["id"]),
        })
    }

    /// Every note of the ticket, oldest first.
    async fn notes(&self, id: u64) -> Result<Vec<Value>, ItsmError> {
        let mut notes = Vec::new();
        // Pages of 250: notes quoting whole e-mails run to tens of kilobytes,
        // and a page must stay well within what an answer may be.
        const PAGE: usize = 250;
        for page in 1..=80 {
            let mut url = self.ticket_url(id, &["notes"]);
            url.query_pairs_mut()
                .append_pair("orderBy", "id asc")
                .append_pair("pageSize", &PAGE.to_string())
                .append_pair("page", &page.to_string());
            let body = self.json(self.api.http.get(url)).await?;
            let batch = crate::common::listed(TOOL, &body)?.to_vec();
            let full = batch.len() == PAGE;
            notes.extend(batch);
            if !full {
                return Ok(notes);
            }
        }
        // A ticket's notes decide its description and resolution, and
        // whether our note is there: half of them would answer wrongly.
        Err(notes_incomplete(TOOL, notes.len()))
    }

    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        Ok(self
            .notes(id)
            .await?
            .iter()
            .filter_map(|note| note["text"].as_str().map(str::to_owned))
            .collect())
    }

    /// The ticket and, from its notes, its description (the detail
    /// description note) and resolution (the resolution notes).
    pub async fn fetch_ticket(&self, ticket: &TicketId) -> Result<TicketSummary, ItsmError> {
        let id = numeric_id(TOOL, ticket)?;
        let ticket = self
            .json(self.api.http.get(self.ticket_url(id, &[])))
            .await?;
        let notes = self.notes(id).await?;
        Ok(summary(&ticket, &notes))
    }

    pub async fn test_connection(&self) -> Result<(), ItsmError> {
        self.json(self.api.http.get(self.api.url(&["system", "info"])))
            .await
            .map(|_| ())
    }

    /// Hosts a callback's `key_url` may name: the tenant's site (the API
    /// host, and its name without the `api-` prefix cloud hosts carry),
    /// over the same scheme and port.
    pub fn key_url_allowed(&self, key_url: &str) -> bool {
        key_url_allowed(&self.api.base, key_url)
    }

    /// Whether a callback is the tenant's company's own: its `CompanyId`,
    /// and the company its `key_url` names (`companyName=`) where it names
    /// one, are the company of the tenant's credentials. Cloud sites are
    /// shared by every ConnectWise customer of a region, so a key served
    /// by the tenant's site proves only that *some* company on it signed;
    /// another company's callback aimed at this tenant's webhook must not
    /// count as the tenant's.
    pub fn callback_is_for_company(&self, body: &[u8], key_url: &str) -> bool {
        let same = |company: &str| company.trim().eq_ignore_ascii_case(&self.company_id);
        let Ok(hook) = serde_json::from_slice::<Value>(body) else {
            return false;
        };
        let claimed = text_of(&hook["CompanyId"]).or_else(|| text_of(&hook["companyId"]));
        if !claimed.as_deref().is_some_and(same) {
            return false;
        }
        let Ok(url) = reqwest::Url::parse(key_url) else {
            return false;
        };
        url.query_pairs()
            .filter(|(name, _)| name.eq_ignore_ascii_case("companyName"))
            .all(|(_, company)| same(&company))
    }

    /// The request for the signing key a callback's `key_url` serves, made
    /// as the tenant's API member.
    pub fn signing_key_request(&self, key_url: &str) -> reqwest::RequestBuilder {
        self.request(self.api.http.get(key_url))
    }
}

/// Whether `key_url` points at the callback keys of the ConnectWise site of
/// `base` (`…/system/callbackkey…`): it is fetched with the tenant's API
/// credentials, so no other path of the site is.
pub fn key_url_allowed(base: &reqwest::Url, key_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(key_url) else {
        return false;
    };
    let (Some(host), Some(site)) = (url.host_str(), base.host_str()) else {
        return false;
    };
    let site = site.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let same_site = host == site || site.strip_prefix("api-") == Some(host.as_str());
    let segments: Vec<String> = url
        .path_segments()
        .into_iter()
        .flatten()
        .filter(|segment| !segment.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let callback_key = segments
        .windows(2)
        .position(|pair| pair[0] == "system" && pair[1] == "callbackkey")
        .is_some_and(|at| segments.len() - at <= 4);
    same_site
        && callback_key
        && url.scheme() == base.scheme()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.username().is_empty()
}

fn priority(raw: &Value) -> Priority {
    let name = raw["name"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if name.contains("critical") || name.contains("emergency") || name.contains("priority 1") {
        Priority::Critical
    } else if name.contains("high") || name.contains("priority 2") {
        Priority::High
    } else if name.contains("low") || name.contains("priority 4") || name.contains("priority 5") {
        Priority::Low
    } else {
        Priority::Medium
    }
}

fn time(raw: &Value) -> Option<DateTime<Utc>> {
    raw.as_str()?.parse().ok()
}

/// Whether the ticket is closed: its flag, or a status named so.
pub(crate) fn is_closed(ticket: &Value) -> bool {
    ticket["closedFlag"].as_bool().unwrap_or(false) || {
        let status = ticket["status"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        status.contains("closed") || status.contains("resolved") || status.contains("completed")
    }
}

/// A ticket with its notes.
pub(crate) fn summary(ticket: &Value, notes: &[Value]) -> TicketSummary {
    let text = |flag: &str| -> Vec<String> {
        notes
            .iter()
            .filter(|note| note[flag].as_bool().unwrap_or(false))
            .filter_map(|note| note["text"].as_str().map(str::to_owned))
            .collect()
    };
    let description = text("detailDescriptionFlag")
        .into_iter()
        .next()
        .unwrap_or_default();
    TicketSummary {
        subject: ticket["summary"].as_str().unwrap_or_default().to_owned(),
        description,
        status: ticket["status"]["name"].as_str().map(str::to_owned),
        priority: priority(&ticket["priority"]),
        created_at: time(&ticket["_info"]["dateEntered"]).or_else(|| time(&ticket["dateEntered"])),
        requester: ticket["contactName"].as_str().map(str::to_owned),
        tags: Vec::new(),
        resolution: is_closed(ticket).then(|| Resolution {
            text: text("resolutionFlag").join("\n\n"),
            resolved_at: time(&ticket["closedDate"])
                .or_else(|| time(&ticket["dateResolved"]))
                .or_else(|| time(&ticket["_info"]["lastUpdated"]))
                .unwrap_or_else(Utc::now),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_url_must_name_the_tenants_own_site() {
        let base =
            reqwest::Url::parse("https://api-na.myconnectwise.net/v4_6_release/apis/3.0").unwrap();
        for allowed in [
            "https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?companyName=acme&id=1",
            "https://api-na.myconnectwise.net/v2025_1/system/callbackkey/index.rails",
            "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/system/callbackkey/1",
        ] {
            assert!(key_url_allowed(&base, allowed), "{allowed}");
        }
        for refused in [
            "https://evil.example/system/callbackkey",
            "https://na.myconnectwise.net.evil.example/x",
            "http://na.myconnectwise.net/x",
            "https://na.myconnectwise.net:8443/x",
            "https://user@na.myconnectwise.net/x",
            "https://eu.myconnectwise.net/x",
            "not a url",
            "https://169.254.169.254/latest/meta-data",
            // The tenant's own site, but not its callback keys: fetched
            // with the tenant's credentials, so refused.
            "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/company/companies",
            "https://na.myconnectwise.net/v2025_1/system/members",
        ] {
            assert!(!key_url_allowed(&base, refused), "{refused}");
        }
    }
}
