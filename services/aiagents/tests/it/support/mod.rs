//! Services as processes of their own (`aiagents run <service>`), for the
//! scaling and chaos tests.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod load;
mod settled;
pub use settled::assert_settled;

pub struct Instance {
    pub service: &'static str,
    pub child: Child,
    pub metrics: SocketAddr,
}

/// A test that fails must not leave its services running against servers
/// that are gone.
impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub struct Servers {
    pub nats_url: String,
    pub database_url: String,
    pub keys: String,
    pub llm_url: String,
    /// Extra variables, for example shorter timeouts.
    pub extra_env: Vec<(String, String)>,
}

pub fn spawn(service: &'static str, servers: &Servers) -> Instance {
    let metrics = free_addr();
    let child = Command::new(env!("CARGO_BIN_EXE_aiagents"))
        .args(["run", service])
        .env("AI_AGENTS_NATS_URL", &servers.nats_url)
        .env("AI_AGENTS_DATABASE_URL", &servers.database_url)
        .env("AI_AGENTS_SECRET_KEYS", &servers.keys)
        .env("AI_AGENTS_METRICS_ADDR", metrics.to_string())
        .env("AI_AGENTS_LLM_BASE_URL", &servers.llm_url)
        .env("AI_AGENTS_LLM_API_KEY", "sk-test")
        .env("AI_AGENTS_CONCURRENCY", "8")
        .env_remove("AI_AGENTS_EMBEDDINGS_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs(servers.extra_env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiagents run");
    Instance {
        service,
        child,
        metrics,
    }
}

pub fn signal(instance: &Instance, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &instance.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Every stage a pipeline test runs, one process (or more) each.
pub const STAGES: [&str; 4] = [
    "context-gatherer",
    "llm-enhancer",
    "writeback",
    "history-projector",
];

/// A connection as the database owner, which sees every tenant.
pub async fn owner_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// An instance's Prometheus metrics, as text.
pub async fn metrics(http: &reqwest::Client, addr: SocketAddr) -> Option<String> {
    http.get(format!("http://{addr}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// Messages an instance finished (`stage_messages_total`, outcome done).
pub async fn done(http: &reqwest::Client, addr: SocketAddr) -> Option<u64> {
    let text = metrics(http, addr).await?;
    Some(
        text.lines()
            .filter(|line| {
                line.starts_with("stage_messages_total") && line.contains(r#"outcome="done""#)
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64,
    )
}

/// `n` tenants `tenant-0` … on the ServiceDesk Plus stand-in at `sdp_url`
/// (authtoken `sdp-token`); their webhook secrets, in order.
pub async fn add_tenants(
    app_url: &str,
    keyring: &aia_store::Keyring,
    n: usize,
    sdp_url: &str,
) -> Vec<aia_store::Secret> {
    let mut secrets = Vec::new();
    for tenant in 0..n {
        secrets.push(
            aiagents::ops::add_tenant(
                app_url,
                keyring,
                &format!("tenant-{tenant}"),
                "Tenant",
                aia_events::ItsmKind::ServicedeskPlus,
                sdp_url,
                r#"{"authtoken":"sdp-token"}"#,
            )
            .await
            .unwrap()
            .webhook_secret,
        );
    }
    secrets
}

/// The ingress, in this process, without a rate limit that would get in the
/// way of a load test: its URL, its stop and its task.
pub struct Ingress {
    pub url: String,
    pub stop: tokio_util::sync::CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn start_ingress(nats_url: &str, database_url: &str, keys: &str) -> Ingress {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let config = ingress::Config {
        rate_limit_per_minute: 1_000_000,
        ..ingress::Config::new(
            nats_url.to_owned(),
            database_url.to_owned(),
            aia_store::Keyring::parse(keys).unwrap(),
        )
    };
    let task = tokio::spawn(ingress::serve(
        config,
        listener,
        stop.clone().cancelled_owned(),
    ));
    Ingress { url, stop, task }
}

/// Sends one ServiceDesk Plus webhook until the ingress takes it (a 503
/// while NATS or PostgreSQL is away; the same body is the same delivery,
/// so a retry is never a second ticket).
pub async fn send_until_accepted(
    http: &reqwest::Client,
    ingress_url: &str,
    secret: &str,
    body: Vec<u8>,
) {
    loop {
        match aiagents::webhook::send_servicedesk(http, ingress_url, secret, body.clone()).await {
            Ok((202, _)) => return,
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// The node that leads the stream now, or the consumer `durable`.
pub async fn leader(cluster: &aia_testkit::NatsCluster, durable: Option<&str>) -> usize {
    let (_client, js) = aia_bus::connect(&cluster.urls(), "test").await.unwrap();
    let leader = aia_testkit::eventually("a leader", Duration::from_secs(30), || {
        let js = js.clone();
        async move {
            let mut stream = js.get_stream("TICKETS").await.ok()?;
            let placement = match durable {
                Some(durable) => stream.consumer_info(durable).await.ok()?.cluster.clone(),
                None => stream.info().await.ok()?.cluster.clone(),
            };
            placement?.leader
        }
    })
    .await;
    cluster.index_of(&leader).expect("a node of this cluster")
}
