//! A running ingress on real NATS and PostgreSQL, with tenants to send as.

use std::sync::Arc;
use std::time::Duration;

use aia_events::ItsmKind;
use aia_store::Keyring;
use aia_testkit::{NatsServer, TestDatabase};
use aiagents::ops;
use tokio::net::TcpListener;

pub struct Ingress {
    pub nats: NatsServer,
    pub db: TestDatabase,
    pub url: String,
    pub http: reqwest::Client,
    pub jetstream: aia_bus::JetStream,
    pub keyring: Arc<Keyring>,
    /// The webhook secret of tenant `acme`.
    pub secret: String,
    /// The ingress's metrics (served apart from the webhook listener).
    pub registry: aia_telemetry::metrics::SharedRegistry,
    _server: tokio::task::JoinHandle<()>,
}

pub struct Options {
    pub tenant_cache_ttl: Duration,
    pub publish_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tenant_cache_ttl: Duration::from_millis(200),
            publish_timeout: Duration::from_millis(1500),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl Ingress {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let nats = NatsServer::start().await;
        let db = TestDatabase::create().await;
        ops::apply_nats(&nats.url()).await.unwrap();
        let spec = Keyring::generate_spec("k1");
        let keyring = Arc::new(Keyring::parse(&spec).unwrap());
        // Every tenant gets the same secret, so tests can sign for any of them.
        let secret = aia_store::Secret::generate(32).expose().to_owned();
        let pool = aia_store::pool(&db.app_url, 1).unwrap();
        let mut client = pool.get().await.unwrap();
        for tenant in ["acme", "dormant", "strict"] {
            aia_store::tenants::create(
                &mut client,
                &keyring,
                &aia_store::NewTenant {
                    tenant_id: aia_events::TenantId::parse(tenant).unwrap(),
                    name: tenant.into(),
                    itsm: ItsmKind::ServicedeskPlus,
                    itsm_base_url: "https://sdp.example.com".into(),
                    itsm_credentials: aia_store::Secret::new(r#"{"authtoken":"t"}"#),
                    webhook_secret: aia_store::Secret::new(secret.clone()),
                    // Tenants made before static secrets were off by
                    // default kept them on; these stand for such tenants.
                    settings: aia_store::TenantSettings {
                        allow_static_secret: true,
                        ..aia_store::TenantSettings::default()
                    },
                    integrations: Default::default(),
                },
            )
            .await
            .unwrap();
        }
        db.admin_client()
            .await
            .batch_execute(
                "update tenants set active = false where tenant_id = 'dormant';
                 update tenants set settings = settings || '{\"allow_static_secret\": false, \"webhook_rate_limit_per_minute\": 3}'
                  where tenant_id = 'strict';",
            )
            .await
            .unwrap();
        let registry = aia_telemetry::metrics::registry();
        let config = ingress::Config {
            registry: registry.clone(),
            tenant_cache_ttl: options.tenant_cache_ttl,
            publish_timeout: options.publish_timeout,
            request_timeout: options.request_timeout,
            ..ingress::Config::new(
                nats.url(),
                db.app_url.clone(),
                Keyring::parse(&spec).unwrap(),
            )
        };
        let state = ingress::state(config).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, ingress::app(state)).await.unwrap();
        });
        let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
        Self {
            nats,
            db,
            url,
            http: reqwest::Client::new(),
            jetstream,
            keyring,
            secret,
            registry,
            _server: server,
        }
    }

    /// Messages in the ticket stream.
    pub async fn stored(&self) -> u64 {
        let mut stream = self.jetstream.get_stream(aia_bus::STREAM).await.unwrap();
        stream.info().await.unwrap().state.messages
    }

    pub fn sign(&self, body: &[u8]) -> String {
        ingress::auth::sign::hex(&self.secret, body)
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
        let mut request = self.http.post(format!("{}{path}", self.url)).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let json = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, json, headers)
    }

    /// Posts JSON signed with `X-ServiceDesk-Signature`.
    pub async fn post_signed(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
        let bytes = serde_json::to_vec(body).unwrap();
        let signature = self.sign(&bytes);
        self.post(
            path,
            &[
                ("content-type", "application/json".into()),
                ("x-servicedesk-signature", signature),
            ],
            bytes,
        )
        .await
    }
}

pub fn ticket(tenant: &str, ticket_id: &str) -> serde_json::Value {
    serde_json::json!({
        "event": "ticket_created", "ticket_id": ticket_id, "tenant_id": tenant,
        "subject": "VPN drops", "description": "The VPN drops every hour.", "priority": "high",
        "created_at": chrono::Utc::now().to_rfc3339(),
    })
}

/// Standard Webhooks' reference Python library (installed by `./dev test`),
/// for tests of what we sign and what we verify.
///
/// Signs `body` (stdin) with the reference Python library: `secret`,
/// `msg_id`, `timestamp` as arguments; prints the `webhook-signature`.
pub const PYTHON_SIGN: &str = "import sys, datetime\n\
from standardwebhooks.webhooks import Webhook\n\
secret, msg_id, ts = sys.argv[1:4]\n\
at = datetime.datetime.fromtimestamp(int(ts), tz=datetime.timezone.utc)\n\
print(Webhook(secret).sign(msg_id, at, sys.stdin.buffer.read()))\n";

/// Verifies `body` (stdin) with the reference Python library against the
/// headers given as arguments; exits 0 when valid.
pub const PYTHON_VERIFY: &str = "import sys\n\
from standardwebhooks.webhooks import Webhook\n\
secret, msg_id, ts, signature = sys.argv[1:5]\n\
Webhook(secret).verify(sys.stdin.buffer.read(), {'webhook-id': msg_id, 'webhook-timestamp': ts, 'webhook-signature': signature})\n";

pub fn python(script: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let python = std::env::var("AI_AGENTS_DEPLOY_PYTHON").expect(
        "AI_AGENTS_DEPLOY_PYTHON is not set: run the tests through `./dev test`, which installs standardwebhooks",
    );
    let mut child = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}
