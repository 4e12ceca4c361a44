//! The help-desk tools and PSAs we read tickets from and write notes to,
//! behind one interface.
//!
//! [`Itsm`] is the registry: one variant per tool, chosen by the tenant's
//! [`ItsmKind`]. Each tool is a module with its client (`mod.rs`: fetch a
//! ticket, render and post a note, list notes, test the connection), its
//! webhook parser (`webhook.rs`) and its history reader (`history.rs`).
//! Adding a tool is a module and a variant.

mod common;
pub mod connectwise;
pub mod inbound;
pub mod jira;
mod oauth;
pub mod render;
pub mod render_adf;
pub mod render_wiki;
pub mod servicedesk;
pub mod zendesk;

pub mod autotask;
pub mod freshservice;
pub mod halopsa;
pub mod servicenow;

use aia_events::{ItsmKind, TicketId};

pub use autotask::Autotask;
pub use common::{
    ConfigError, ImportWindow, ItsmError, NoteFormat, Pace, PostedNote, RenderedNote, Resolution,
    ResolvedPage, ResolvedTicket, TicketSummary,
};
pub(crate) use common::{classify, notes_incomplete, retry_after, transport_error};
pub use connectwise::ConnectWise;
pub use freshservice::Freshservice;
pub use halopsa::HaloPsa;
pub use jira::Jira;
pub use servicedesk::ServiceDeskPlus;
pub use servicenow::ServiceNow;
pub use zendesk::Zendesk;

/// What begins the last line of every note we post (`ai-agents-ref:<run>`):
/// how a note is recognised on a ticket — the one a crash left posted, and
/// ours among a ticket's comments, which are never its resolution.
pub const NOTE_MARKER: &str = "ai-agents-ref:";

/// Whether a comment is a note we posted.
pub fn is_our_note(text: &str) -> bool {
    text.contains(NOTE_MARKER)
}

/// A tenant's help-desk tool.
#[derive(Debug, Clone)]
pub enum Itsm {
    ServiceDeskPlus(ServiceDeskPlus),
    Jira(Jira),
    Zendesk(Zendesk),
    Freshservice(Freshservice),
    ServiceNow(ServiceNow),
    ConnectWise(ConnectWise),
    Autotask(Autotask),
    HaloPsa(HaloPsa),
}

/// Runs `$body` with `$tool` bound to whichever client `$itsm` holds.
macro_rules! each_tool {
    ($itsm:expr, $tool:ident => $body:expr) => {
        match $itsm {
            Itsm::ServiceDeskPlus($tool) => $body,
            Itsm::Jira($tool) => $body,
            Itsm::Zendesk($tool) => $body,
            Itsm::Freshservice($tool) => $body,
            Itsm::ServiceNow($tool) => $body,
            Itsm::ConnectWise($tool) => $body,
            Itsm::Autotask($tool) => $body,
            Itsm::HaloPsa($tool) => $body,
        }
    };
}

impl Itsm {
    /// The client for a tenant's tool, from its kind, base URL and
    /// credentials (JSON, tool-specific). A base URL the services may not
    /// call (link-local, cloud metadata) is refused.
    pub fn for_tenant(
        http: reqwest::Client,
        kind: ItsmKind,
        base_url: &str,
        credentials_json: &str,
    ) -> Result<Self, ConfigError> {
        aia_http::outbound::check_url(base_url).map_err(|err| ConfigError(err.to_string()))?;
        let (http, url, credentials) = (http, base_url, credentials_json);
        Ok(match kind {
            ItsmKind::ServicedeskPlus => {
                Self::ServiceDeskPlus(ServiceDeskPlus::new(http, url, credentials)?)
            }
            ItsmKind::Jira => Self::Jira(Jira::new(http, url, credentials)?),
            ItsmKind::Zendesk => Self::Zendesk(Zendesk::new(http, url, credentials)?),
            ItsmKind::Freshservice => {
                Self::Freshservice(Freshservice::new(http, url, credentials)?)
            }
            ItsmKind::Servicenow => Self::ServiceNow(ServiceNow::new(http, url, credentials)?),
            ItsmKind::Connectwise => Self::ConnectWise(ConnectWise::new(http, url, credentials)?),
            ItsmKind::Autotask => Self::Autotask(Autotask::new(http, url, credentials)?),
            ItsmKind::Halopsa => Self::HaloPsa(HaloPsa::new(http, url, credentials)?),
        })
    }

    pub fn kind(&self) -> ItsmKind {
        match self {
            Self::ServiceDeskPlus(_) => ItsmKind::ServicedeskPlus,
            Self::Jira(_) => ItsmKind::Jira,
            Self::Zendesk(_) => ItsmKind::Zendesk,
            Self::Freshservice(_) => ItsmKind::Freshservice,
            Self::ServiceNow(_) => ItsmKind::Servicenow,
            Self::ConnectWise(_) => ItsmKind::Connectwise,
            Self::Autotask(_) => ItsmKind::Autotask,
            Self::HaloPsa(_) => ItsmKind::Halopsa,
        }
    }

    /// A note as this tool receives it: HTML, Atlassian Document Format,
    /// or text with its line breaks. What [`Itsm::post_note`] sends, for a
    /// dry-run or the console to show.
    pub fn render_note(&self, markdown: &str) -> RenderedNote {
        let markdown = render::without_direction_overrides(markdown);
        each_tool!(self, tool => tool.render_note(&markdown))
    }

    /// Posts a note rendered from Markdown for the tool: private to
    /// technicians unless `visible_to_requester`, without direction
    /// overrides.
    pub async fn post_note(
        &self,
        ticket: &TicketId,
        markdown: &str,
        visible_to_requester: bool,
    ) -> Result<PostedNote, ItsmError> {
        // Never displayed reordered, whatever was copied into it.
        let markdown = render::without_direction_overrides(markdown);
        each_tool!(self, tool => tool.post_note(ticket, &markdown, visible_to_requester).await)
    }

    /// Checks that the tool answers and accepts the credentials.
    pub async fn test_connection(&self) -> Result<(), ItsmError> {
        each_tool!(self, tool => tool.test_connection().await)
    }

    /// The text of every note on the ticket, to find one we posted before.
    pub async fn note_texts(&self, ticket: &TicketId) -> Result<Vec<String>, ItsmError> {
        each_tool!(self, tool => tool.note_texts(ticket).await)
    }

    /// Reads a ticket from the tool: what a webhook that only names a
    /// ticket is completed with, and what an operator asks about.
    pub async fn fetch_ticket(&self, ticket: &TicketId) -> Result<TicketSummary, ItsmError> {
        each_tool!(self, tool => tool.fetch_ticket(ticket).await)
    }

    /// A page of the tool's resolved tickets within `window`, from
    /// `cursor` (`None`: the first page), each request waiting its turn on
    /// `pace`. The page says where the next begins.
    pub async fn resolved_page(
        &self,
        cursor: Option<&str>,
        window: &ImportWindow,
        pace: &Pace,
    ) -> Result<ResolvedPage, ItsmError> {
        each_tool!(self, tool => tool.resolved_page(cursor, window, pace).await)
    }

    /// Normalises a webhook body of `kind`'s native shape into what the
    /// pipeline records (or a mention of a ticket to read from the tool).
    /// The ingress routes each tool's endpoint here, after it has
    /// authenticated the request.
    pub fn parse_webhook(
        kind: ItsmKind,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<inbound::Inbound, inbound::InboundError> {
        match kind {
            ItsmKind::ServicedeskPlus => servicedesk::webhook::parse_ticket(body, now),
            ItsmKind::Jira => jira::webhook::parse(body),
            ItsmKind::Zendesk => zendesk::webhook::parse(body),
            ItsmKind::Freshservice => freshservice::webhook::parse(body),
            ItsmKind::Servicenow => servicenow::webhook::parse(body),
            ItsmKind::Connectwise => connectwise::webhook::parse(body),
            ItsmKind::Autotask => autotask::webhook::parse(body),
            ItsmKind::Halopsa => halopsa::webhook::parse(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// A client is printed in logs and errors by `Debug`; no tool's may
    /// carry a credential there, as given or as its Basic encoding.
    #[test]
    fn no_tools_client_prints_its_credentials() {
        const SECRET: &str = "s3cr3t-Value-9";
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tools = [
            (
                ItsmKind::ServicedeskPlus,
                format!(r#"{{"authtoken": "{SECRET}"}}"#),
            ),
            (
                ItsmKind::Jira,
                format!(r#"{{"email": "a@b.example", "api_token": "{SECRET}"}}"#),
            ),
            (
                ItsmKind::Zendesk,
                format!(r#"{{"email": "a@b.example", "api_token": "{SECRET}"}}"#),
            ),
            (
                ItsmKind::Freshservice,
                format!(r#"{{"api_key": "{SECRET}"}}"#),
            ),
            (
                ItsmKind::Servicenow,
                format!(r#"{{"username": "u", "password": "{SECRET}"}}"#),
            ),
            (
                ItsmKind::Connectwise,
                format!(
                    r#"{{"company_id": "acme", "public_key": "p", "private_key": "{SECRET}", "client_id": "c"}}"#
                ),
            ),
            (
                ItsmKind::Autotask,
                format!(r#"{{"username": "u", "secret": "{SECRET}", "integration_code": "i"}}"#),
            ),
            (
                ItsmKind::Halopsa,
                format!(r#"{{"client_id": "c", "client_secret": "{SECRET}"}}"#),
            ),
        ];
        for (kind, credentials) in tools {
            let itsm = Itsm::for_tenant(
                reqwest::Client::new(),
                kind,
                "https://desk.example.com",
                &credentials,
            )
            .unwrap_or_else(|err| panic!("{kind:?}: {}", err.0));
            let printed = format!("{itsm:?}");
            let encoded = base64::engine::general_purpose::STANDARD;
            for user in ["a@b.example", "a@b.example/token", "u", "acme+p"] {
                let basic = encoded.encode(format!("{user}:{SECRET}"));
                assert!(!printed.contains(&basic), "{kind:?}: {printed}");
            }
            assert!(!printed.contains(SECRET), "{kind:?}: {printed}");
        }
    }
}
