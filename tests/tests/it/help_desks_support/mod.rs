//! One help desk or PSA as the end-to-end tests drive it: its stand-in, the
//! tenant's credentials for it (and the rotated ones), and the webhooks it
//! sends, each in that tool's own shape and authentication.

use aia_events::ItsmKind;
use aia_standins::autotask::AutotaskStandIn;
use aia_standins::connectwise::{self, ConnectWiseStandIn};
use aia_standins::desk::{Desk, Ticket};
use aia_standins::freshservice::{self, FreshserviceStandIn};
use aia_standins::halopsa::{self, HaloStandIn};
use aia_standins::servicenow::{self, ServiceNowStandIn};
use aia_standins::zendesk::{self, ZendeskStandIn};
use aia_store::Secret;
use serde_json::{Value, json};

/// What the webhook tells.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Happened {
    Created,
    Resolved,
}

enum Tool {
    Zendesk(ZendeskStandIn),
    Freshservice(FreshserviceStandIn),
    ServiceNow(ServiceNowStandIn),
    ConnectWise(ConnectWiseStandIn),
    Autotask(AutotaskStandIn),
    Halo(HaloStandIn),
}

pub struct Case {
    pub kind: ItsmKind,
    tool: Tool,
    pub server: aia_standins::Running,
    /// The tenant's `itsm_base_url`.
    pub base_url: String,
    pub credentials: Value,
    /// The credentials after [`Case::rotate_credentials`].
    pub rotated_credentials: Value,
}

const ZENDESK_SIGNING_SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";

impl Case {
    pub async fn start(kind: ItsmKind) -> Self {
        let (tool, router) = match kind {
            ItsmKind::Zendesk => {
                let standin = ZendeskStandIn::new(aia_standins::desk::basic(
                    "bot@acme.example/token",
                    "zd-1",
                ));
                let router = standin.router();
                (Tool::Zendesk(standin), router)
            }
            ItsmKind::Freshservice => {
                let standin = FreshserviceStandIn::new("fs-key-1");
                let router = standin.router();
                (Tool::Freshservice(standin), router)
            }
            ItsmKind::Servicenow => {
                let standin = ServiceNowStandIn::new("ai.agents", "sn-pass-1");
                let router = standin.router();
                (Tool::ServiceNow(standin), router)
            }
            ItsmKind::Connectwise => {
                let standin = ConnectWiseStandIn::new("acme", "pub-1", "priv-1");
                let router = standin.router();
                (Tool::ConnectWise(standin), router)
            }
            ItsmKind::Autotask => {
                let standin =
                    AutotaskStandIn::new("api@acme.example", "at-secret-1", "INTEGRATION-1");
                let router = standin.router();
                (Tool::Autotask(standin), router)
            }
            ItsmKind::Halopsa => {
                let standin = HaloStandIn::new("halo-client", "halo-secret-1");
                let router = standin.router();
                (Tool::Halo(standin), router)
            }
            other => panic!("{other:?} has tests of its own"),
        };
        let server = aia_standins::serve(router).await.unwrap();
        let url = server.url();
        let (base_url, credentials, rotated_credentials) = match kind {
            ItsmKind::Zendesk => (
                url.clone(),
                json!({"email": "bot@acme.example", "api_token": "zd-1", "webhook_signing_secret": ZENDESK_SIGNING_SECRET}),
                json!({"email": "bot@acme.example", "api_token": "zd-2", "webhook_signing_secret": ZENDESK_SIGNING_SECRET}),
            ),
            ItsmKind::Freshservice => (
                url.clone(),
                json!({"api_key": "fs-key-1"}),
                json!({"api_key": "fs-key-2"}),
            ),
            ItsmKind::Servicenow => (
                url.clone(),
                json!({"username": "ai.agents", "password": "sn-pass-1"}),
                json!({"username": "ai.agents", "password": "sn-pass-2"}),
            ),
            ItsmKind::Connectwise => (
                format!("{url}{}", connectwise::API_PATH),
                json!({"company_id": "acme", "public_key": "pub-1", "private_key": "priv-1", "client_id": "client-guid"}),
                json!({"company_id": "acme", "public_key": "pub-2", "private_key": "priv-2", "client_id": "client-guid"}),
            ),
            ItsmKind::Autotask => (
                format!("{url}/atservicesrest"),
                json!({"username": "api@acme.example", "secret": "at-secret-1", "integration_code": "INTEGRATION-1"}),
                json!({"username": "api@acme.example", "secret": "at-secret-2", "integration_code": "INTEGRATION-1"}),
            ),
            _ => (
                url.clone(),
                json!({"client_id": "halo-client", "client_secret": "halo-secret-1"}),
                json!({"client_id": "halo-client", "client_secret": "halo-secret-2"}),
            ),
        };
        Self {
            kind,
            tool,
            server,
            base_url,
            credentials,
            rotated_credentials,
        }
    }

    pub fn desk(&self) -> &Desk {
        match &self.tool {
            Tool::Zendesk(standin) => &standin.desk,
            Tool::Freshservice(standin) => &standin.desk,
            Tool::ServiceNow(standin) => &standin.desk,
            Tool::ConnectWise(standin) => &standin.desk,
            Tool::Autotask(standin) => &standin.desk,
            Tool::Halo(standin) => &standin.desk,
        }
    }

    /// The ticket id the pipeline knows the desk's ticket `id` by.
    pub fn ticket_id(&self, id: u64) -> String {
        match self.kind {
            ItsmKind::Servicenow => servicenow::number(id),
            _ => id.to_string(),
        }
    }

    /// The tool's admin replaces the credentials: the old ones stop working.
    pub fn rotate_credentials(&self) {
        match &self.tool {
            Tool::Zendesk(standin) => standin
                .desk
                .accept_only(aia_standins::desk::basic("bot@acme.example/token", "zd-2")),
            Tool::Freshservice(standin) => standin.rotate_key("fs-key-2"),
            Tool::ServiceNow(standin) => standin.change_password("ai.agents", "sn-pass-2"),
            Tool::ConnectWise(standin) => standin.replace_keys("acme", "pub-2", "priv-2"),
            Tool::Autotask(standin) => {
                standin.change_secret("api@acme.example", "at-secret-2", "INTEGRATION-1")
            }
            Tool::Halo(standin) => standin.rotate_secret("halo-client", "halo-secret-2"),
        }
    }

    /// The path, headers and body of the webhook the tool sends when
    /// `ticket` was created or resolved, authenticated as the tool can.
    pub fn webhook(
        &self,
        tenant: &str,
        secret: &Secret,
        happened: Happened,
        ticket: &Ticket,
    ) -> (String, Vec<(String, String)>, String) {
        let path = format!("/webhook/{}/{tenant}", self.kind.as_str());
        let created = happened == Happened::Created;
        let shared = vec![("x-webhook-secret".to_owned(), secret.expose().to_owned())];
        let (headers, body) = match &self.tool {
            Tool::Zendesk(_) => {
                let event = if created {
                    "ticket.created"
                } else {
                    "ticket.solved"
                };
                let body = json!({"event": event, "ticket_id": ticket.id.to_string()}).to_string();
                let timestamp =
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let signature =
                    zendesk::webhook_signature(ZENDESK_SIGNING_SECRET, &timestamp, body.as_bytes());
                (
                    vec![
                        ("x-zendesk-webhook-signature".to_owned(), signature),
                        (
                            "x-zendesk-webhook-signature-timestamp".to_owned(),
                            timestamp,
                        ),
                        (
                            "x-zendesk-webhook-invocation-id".to_owned(),
                            format!("{}-{}", ticket.id, created),
                        ),
                    ],
                    body,
                )
            }
            Tool::Freshservice(_) => {
                let event = if created { "created" } else { "resolved" };
                let basic = aia_standins::desk::basic("freshservice", secret.expose());
                (
                    vec![("authorization".to_owned(), basic)],
                    freshservice::webhook_body(event, ticket.id),
                )
            }
            Tool::ServiceNow(_) => {
                let event = if created { "created" } else { "resolved" };
                (shared, servicenow::webhook_body(event, ticket))
            }
            Tool::ConnectWise(standin) => {
                let action = if created { "added" } else { "updated" };
                let (body, signature) = standin.callback(&self.server.url(), action, ticket);
                (vec![("x-content-signature".to_owned(), signature)], body)
            }
            Tool::Autotask(standin) => {
                let action = if created { "Create" } else { "Update" };
                let (body, signature) = standin.callout(secret.expose(), action, ticket);
                (vec![("x-hook-signature".to_owned(), signature)], body)
            }
            Tool::Halo(_) => (shared, halopsa::webhook_body(ticket)),
        };
        (path, headers, body)
    }
}
