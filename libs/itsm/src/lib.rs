//! The help-desk tools we write notes to, behind one interface.
//!
//! [`Itsm`] is the registry: one variant per tool, chosen by the tenant's
//! [`ItsmKind`]. Adding a tool means adding a module and a variant.

pub mod inbound;
pub mod jira;
pub mod render;
pub mod render_adf;
pub mod servicedesk;
pub mod zendesk;

use std::time::Duration;

use aia_events::{ItsmKind, TicketId};

pub use jira::Jira;
pub use servicedesk::ServiceDeskPlus;
pub use zendesk::Zendesk;

/// Why a call to a help-desk tool failed, sorted by what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ItsmError {
    /// May succeed later: timeouts, connection errors, 429, 5xx.
    #[error("{reason}")]
    Transient {
        reason: String,
        http_status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// Will fail again until someone fixes the cause (credentials, ticket).
    #[error("{reason}")]
    Permanent {
        reason: String,
        http_status: Option<u16>,
    },
}

/// How a tool takes a note's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteFormat {
    Html,
    /// Atlassian Document Format (JSON).
    Adf,
    /// Markdown or plain text, as the tool shows it.
    Text,
}

impl NoteFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Adf => "adf",
            Self::Text => "text",
        }
    }
}

/// A note rendered for a tool: the body exactly as sent (ADF as pretty
/// JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedNote {
    pub format: NoteFormat,
    pub body: String,
}

/// A note as posted, with the id the tool gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedNote {
    pub note_id: Option<String>,
}

/// A tenant's help-desk tool.
#[derive(Debug, Clone)]
pub enum Itsm {
    ServiceDeskPlus(ServiceDeskPlus),
    Jira(Jira),
    Zendesk(Zendesk),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Itsm {
    /// The client for a tenant's tool, from its kind, base URL and
    /// credentials (JSON, tool-specific).
    pub fn for_tenant(
        http: reqwest::Client,
        kind: ItsmKind,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        aia_http::outbound::check_url(base_url).map_err(|err| ConfigError(err.to_string()))?;
        match kind {
            ItsmKind::ServicedeskPlus => Ok(Self::ServiceDeskPlus(ServiceDeskPlus::new(
                http,
                base_url,
                credentials_json,
            )?)),
            ItsmKind::Jira => Ok(Self::Jira(Jira::new(http, base_url, credentials_json)?)),
            ItsmKind::Zendesk => Ok(Self::Zendesk(Zendesk::new(
                http,
                base_url,
                credentials_json,
            )?)),
        }
    }

    pub fn kind(&self) -> ItsmKind {
        match self {
            Self::ServiceDeskPlus(_) => ItsmKind::ServicedeskPlus,
            Self::Jira(_) => ItsmKind::Jira,
            Self::Zendesk(_) => ItsmKind::Zendesk,
        }
    }

    /// A note as this tool receives it: HTML for ServiceDesk Plus and
    /// Zendesk, Atlassian Document Format for Jira's platform API, the
    /// Markdown itself for the Jira Service Management API. What
    /// [`Itsm::post_note`] sends, for a dry-run or the console to show.
    pub fn render_note(&self, markdown: &str) -> RenderedNote {
        match self {
            Self::ServiceDeskPlus(_) | Self::Zendesk(_) => RenderedNote {
                format: NoteFormat::Html,
                body: render::html(markdown),
            },
            Self::Jira(jira) => jira.render_note(markdown),
        }
    }

    /// Posts a note rendered from Markdown for the tool: private to
    /// technicians unless `visible_to_requester`.
    pub async fn post_note(
        &self,
        ticket: &TicketId,
        markdown: &str,
        visible_to_requester: bool,
    ) -> Result<PostedNote, ItsmError> {
        match self {
            Self::ServiceDeskPlus(sdp) => {
                sdp.post_note(ticket, &render::html(markdown), visible_to_requester)
                    .await
            }
            Self::Jira(jira) => jira.post_note(ticket, markdown, visible_to_requester).await,
            Self::Zendesk(zendesk) => {
                zendesk
                    .post_note(ticket, &render::html(markdown), visible_to_requester)
                    .await
            }
        }
    }

    /// Checks that the tool answers and accepts the credentials.
    pub async fn test_connection(&self) -> Result<(), ItsmError> {
        match self {
            Self::ServiceDeskPlus(sdp) => sdp.test_connection().await,
            Self::Jira(jira) => jira.test_connection().await,
            Self::Zendesk(zendesk) => zendesk.test_connection().await,
        }
    }

    /// The text of every note on the ticket, to find one we posted before.
    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        match self {
            Self::ServiceDeskPlus(sdp) => sdp.note_texts(ticket).await,
            Self::Jira(jira) => jira.note_texts(ticket).await,
            Self::Zendesk(zendesk) => zendesk.note_texts(ticket).await,
        }
    }
}

/// Sorts an HTTP answer into success, transient or permanent failure.
pub(crate) fn classify(
    tool: &str,
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
) -> Result<(), ItsmError> {
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    let reason = match code {
        401 => format!("{tool} rejected the API key"),
        403 => format!("{tool} refused access to the ticket"),
        404 => format!("{tool} does not know the ticket"),
        429 => format!("{tool} is rate-limiting us"),
        _ => format!("{tool} answered HTTP {code}"),
    };
    if code == 429 || status.is_server_error() || code == 408 {
        Err(ItsmError::Transient {
            reason,
            http_status: Some(code),
            retry_after,
        })
    } else {
        Err(ItsmError::Permanent {
            reason,
            http_status: Some(code),
        })
    }
}

pub(crate) fn transport_error(tool: &str, err: &reqwest::Error) -> ItsmError {
    ItsmError::Transient {
        reason: if err.is_timeout() {
            format!("{tool} did not answer in time")
        } else {
            format!("{tool} could not be reached")
        },
        http_status: None,
        retry_after: None,
    }
}

pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A ticket as the tool has it now.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketSummary {
    pub subject: String,
    pub description: String,
    pub status: Option<String>,
}

impl Itsm {
    /// Reads a ticket from the tool (its subject, description as text, and
    /// status), for example to check a ticket an operator asks about.
    pub async fn fetch_ticket(&self, ticket: &TicketId) -> Result<TicketSummary, ItsmError> {
        match self {
            Self::ServiceDeskPlus(sdp) => sdp.fetch_ticket(ticket).await,
            Self::Jira(jira) => jira.fetch_ticket(ticket).await,
            Self::Zendesk(zendesk) => zendesk.fetch_ticket(ticket).await,
        }
    }

    /// Authenticates and normalises a webhook body of `kind`'s native shape
    /// into what the pipeline records. The ingress routes each tool's
    /// endpoint here; the signature schemes are common to every tool and
    /// checked by the ingress before this is called.
    pub fn parse_webhook(
        kind: ItsmKind,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<inbound::Inbound, inbound::InboundError> {
        match kind {
            ItsmKind::ServicedeskPlus => servicedesk::webhook::parse_ticket(body, now),
            ItsmKind::Jira => jira::webhook::parse(body),
            ItsmKind::Zendesk => Err(inbound::InboundError::Invalid(
                "Zendesk webhooks are not accepted yet; Zendesk is supported for write-back".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_are_sorted_into_retry_and_give_up() {
        let classify = |code: u16| {
            classify(
                "ServiceDesk Plus",
                reqwest::StatusCode::from_u16(code).unwrap(),
                Some(Duration::from_secs(7)),
            )
        };
        assert!(classify(201).is_ok());
        for code in [429, 500, 502, 503, 504, 408] {
            assert!(
                matches!(classify(code), Err(ItsmError::Transient { .. })),
                "{code}"
            );
        }
        assert!(
            matches!(classify(429), Err(ItsmError::Transient { retry_after: Some(wait), .. }) if wait == Duration::from_secs(7))
        );
        for (code, reason) in [
            (400, "ServiceDesk Plus answered HTTP 400"),
            (401, "ServiceDesk Plus rejected the API key"),
            (403, "ServiceDesk Plus refused access to the ticket"),
            (404, "ServiceDesk Plus does not know the ticket"),
        ] {
            match classify(code) {
                Err(ItsmError::Permanent {
                    reason: given,
                    http_status,
                }) => {
                    assert_eq!((given.as_str(), http_status), (reason, Some(code)));
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }
}
