//! The whole pipeline in this process on a nats-server and a database of the
//! test's own, with a ServiceDesk Plus stand-in as every tenant's help desk.

use std::net::SocketAddr;

use aia_events::ItsmKind;
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::{Keyring, Secret};
use aia_testkit::{NatsServer, TestDatabase};
use aiagents::{all_in_one, dataset::Query, ops, webhook};

pub struct Stack {
    pub nats: NatsServer,
    pub db: TestDatabase,
    pub sdp: ServiceDeskStandIn,
    pub sdp_server: aia_standins::Running,
    pub keyring_spec: String,
    pub running: all_in_one::Running,
    pub http: reqwest::Client,
}

impl Stack {
    /// Servers, the stand-in (accepting `sdp_token`) and every service.
    pub async fn start(sdp_token: &str, llm: Option<aia_llm::Provider>) -> Self {
        Self::start_with_model(sdp_token, llm, None).await
    }

    /// The same, with the embedder service on the local model in `model_dir`.
    pub async fn start_with_model(
        sdp_token: &str,
        llm: Option<aia_llm::Provider>,
        model_dir: Option<std::path::PathBuf>,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let nats = NatsServer::start().await;
        let db = TestDatabase::create().await;
        let sdp = ServiceDeskStandIn::new(sdp_token);
        let sdp_server = aia_standins::serve(sdp.router()).await.unwrap();
        ops::apply_nats(&nats.url()).await.unwrap();
        let keyring_spec = Keyring::generate_spec("k1");
        let running = all_in_one::start(all_in_one::Settings {
            nats_url: nats.url(),
            database_url: db.app_url.clone(),
            keyring_spec: keyring_spec.clone(),
            llm,
            ingress_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            model_dir,
            metrics_addr: None,
        })
        .await
        .unwrap();
        Self {
            nats,
            db,
            sdp,
            sdp_server,
            keyring_spec,
            running,
            http: reqwest::Client::new(),
        }
    }

    pub fn keyring(&self) -> Keyring {
        Keyring::parse(&self.keyring_spec).unwrap()
    }

    /// A tenant on the stand-in with this authtoken; returns its webhook secret.
    pub async fn add_tenant(&self, tenant: &str, authtoken: &str) -> Secret {
        let credentials = serde_json::json!({"authtoken": authtoken}).to_string();
        ops::add_tenant(
            &self.db.app_url,
            &self.keyring(),
            tenant,
            tenant,
            ItsmKind::ServicedeskPlus,
            &self.sdp_server.url(),
            &credentials,
        )
        .await
        .unwrap()
        .webhook_secret
    }

    /// Sends a signed ServiceDesk Plus webhook for a new ticket.
    pub async fn send(
        &self,
        secret: &Secret,
        ticket: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let query: Query = serde_json::from_value(ticket).unwrap();
        webhook::send_servicedesk(
            &self.http,
            &self.running.ingress_url,
            secret.expose(),
            webhook::servicedesk_body(&query),
        )
        .await
        .unwrap()
    }

    pub async fn stop(self) {
        self.running.stop().await.unwrap();
    }
}
