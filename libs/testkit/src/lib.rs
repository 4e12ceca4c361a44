//! Real servers for tests, isolated per test.
//!
//! Every test gets its own nats-server (JetStream on a temporary file store,
//! a port chosen by the server) and its own freshly migrated database in the
//! PostgreSQL cluster the test stack started (`scripts/stack.sh up test`,
//! which `just test` runs). Nothing binds a fixed port, so tests run in
//! parallel under `cargo nextest`.

mod nats_cluster;
mod otlp;
mod pg;
pub use nats_cluster::NatsCluster;
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use pg::{PgCluster, failover_url as pg_failover_url};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aia_store::Keyring;

/// A nats-server of this test's own; killed when dropped.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
}

impl NatsServer {
    pub async fn start() -> Self {
        Self::start_with_jetstream_options("").await
    }

    /// A server whose `jetstream {}` block also holds `options`, for example
    /// `sync_interval: always`.
    pub async fn start_with_jetstream_options(options: &str) -> Self {
        Self::start_configured("", options).await
    }

    /// A server that admits only `user` with `password` (its URL, from
    /// [`NatsServer::url`], carries none).
    pub async fn start_with_password(user: &str, password: &str) -> Self {
        let authorization =
            format!("authorization {{\n  user: {user:?}\n  password: {password:?}\n}}\n");
        Self::start_configured(&authorization, "").await
    }

    async fn start_configured(top_level: &str, jetstream_options: &str) -> Self {
        let store = tempfile::tempdir().expect("temporary directory");
        let config = format!(
            "{top_level}jetstream {{\n  store_dir: {:?}\n  {jetstream_options}\n}}\n",
            store.path().join("js").display().to_string()
        );
        std::fs::write(store.path().join("nats.conf"), config).expect("write nats.conf");
        let (child, port) = spawn_nats(store.path(), None).await;
        Self {
            child: Some(child),
            port,
            store,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would) and starts it again on the same
    /// port and store.
    pub async fn restart(&mut self) {
        self.kill();
        let (child, _) = spawn_nats(self.store.path(), Some(self.port)).await;
        self.child = Some(child);
    }

    /// Kills the server; [`NatsServer::restart`] brings it back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn nats_server_bin() -> PathBuf {
    if let Some(path) = aia_config::optional("NATS_SERVER_BIN") {
        return path.into();
    }
    let local = workspace_root().join(".dev/venv/bin/nats-server");
    if local.exists() {
        return local;
    }
    PathBuf::from("nats-server")
}

async fn spawn_nats(store: &Path, port: Option<u16>) -> (Child, u16) {
    let ports_dir = store.join("ports");
    let _ = std::fs::remove_dir_all(&ports_dir);
    std::fs::create_dir_all(&ports_dir).expect("ports directory");
    let port_arg = port.map_or_else(|| "-1".to_owned(), |port| port.to_string());
    let bin = nats_server_bin();
    let child = Command::new(&bin)
        .arg("-c")
        .arg(store.join("nats.conf"))
        .args(["-a", "127.0.0.1", "-p", &port_arg])
        .arg("--ports_file_dir")
        .arg(&ports_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot start {} ({err}); run the tests with `just test`, which installs it",
                bin.display()
            )
        });
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ports_file = std::fs::read_dir(&ports_dir)
            .ok()
            .and_then(|mut entries| entries.next())
            .and_then(Result::ok)
            .and_then(|entry| std::fs::read_to_string(entry.path()).ok());
        if let Some(port) = ports_file.as_deref().and_then(parse_client_port)
            && tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        {
            return (child, port);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nats-server did not start within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn parse_client_port(ports_json: &str) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_str(ports_json).ok()?;
    let url = value["nats"].as_array()?.first()?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

/// A database of this test's own, migrated, in the test stack's cluster.
pub struct TestDatabase {
    pub name: String,
    /// Connects as the application role (row-level security applies).
    pub app_url: String,
    /// Connects as the cluster's superuser (migrations, checks).
    pub admin_url: String,
    /// Connects as the admin role, which reads every tenant and writes none.
    pub admin_read_url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let cluster = aia_config::optional("TEST_ADMIN_URL").expect(
            "AI_AGENTS_TEST_ADMIN_URL is not set: run the tests with `just test`, which starts PostgreSQL",
        );
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        let (client, connection) = tokio_postgres::connect(&cluster, tokio_postgres::NoTls)
            .await
            .expect("connect to the test cluster");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("create database {name}"))
            .await
            .expect("create the test database");
        let base = cluster
            .rsplit_once('/')
            .map(|(base, _)| base.to_owned())
            .expect("cluster URL ends with a database name");
        let admin_url = format!("{base}/{name}");
        let app_url = admin_url.replacen("://aiagents@", "://aiagents_app@", 1);
        let admin_read_url = admin_url.replacen("://aiagents@", "://aiagents_admin@", 1);
        let (mut admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(connection);
        aia_store::migrate::run(&mut admin)
            .await
            .expect("migrations apply to a fresh database");
        Self {
            name,
            app_url,
            admin_url,
            admin_read_url,
        }
    }

    /// A superuser connection, for assertions that must see every tenant.
    pub async fn admin_client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls)
            .await
            .expect("connect as admin");
        tokio::spawn(connection);
        client
    }

    /// Merges `settings` into the top level of `tenant`'s settings, as an
    /// operator's `tenant update --settings` would (a key given replaces
    /// that key's whole value).
    pub async fn merge_tenant_settings(&self, tenant: &str, settings: serde_json::Value) {
        let changed = self
            .admin_client()
            .await
            .execute(
                "update tenants set settings = settings || $2::text::jsonb where tenant_id = $1",
                &[&tenant, &settings.to_string()],
            )
            .await
            .expect("update the tenant's settings");
        assert_eq!(changed, 1, "tenant {tenant} does not exist");
    }
}

/// A keyring with one random key, as services get from `AI_AGENTS_SECRET_KEYS`.
/// Every projection table as JSON (in key order, without bookkeeping
/// columns), for comparing the live projection with a rebuild.
pub async fn projection_snapshot(client: &tokio_postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for (table, order) in [
        ("enhancement_history", "tenant_id, correlation_id"),
        ("ticket_history", "tenant_id, ticket_id"),
        ("tenant_daily_stats", "tenant_id, day"),
    ] {
        let json: Option<serde_json::Value> = client
            .query_one(
                &format!(
                    "select jsonb_agg(to_jsonb(t) - 'updated_at' - 'search' order by {order}) from {table} t"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        out.push(json.map(|json| json.to_string()).unwrap_or_default());
    }
    out
}

pub fn keyring_spec() -> String {
    Keyring::generate_spec("test")
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
/// Every event in the `TICKETS` stream matching `filter`, in stream order
/// (an ephemeral consumer, read until it has nothing more).
pub async fn stream_events(
    jetstream: &async_nats::jetstream::Context,
    filter: &str,
) -> Vec<aia_events::Event> {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    use futures::StreamExt as _;
    let stream = jetstream.get_stream("TICKETS").await.expect("the stream");
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: filter.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("an ephemeral consumer");
    let mut events = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(500)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .expect("a fetch");
        let before = events.len();
        while let Some(message) = batch.next().await {
            let message = message.expect("a message");
            events.push(aia_events::Event::from_json(&message.payload).expect("an event"));
        }
        if events.len() == before {
            return events;
        }
    }
}

pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a service binary with servers that cannot be reached and the given
/// `AI_AGENTS_SECRET_KEYS` (or none), and returns its stderr; the service
/// must exit with an error before it reaches any server.
pub fn start_without_servers(binary: &str, secret_keys: Option<&str>) -> String {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("AI_AGENTS_NATS_URL", "nats://127.0.0.1:1")
        .env(
            "AI_AGENTS_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .env(
            "AI_AGENTS_ADMIN_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .env("AI_AGENTS_ADMIN_TOKEN", "a-token-long-enough-for-the-check");
    if let Some(keys) = secret_keys {
        command.env("AI_AGENTS_SECRET_KEYS", keys);
    }
    let output = command.output().expect("run the service");
    assert!(
        !output.status.success(),
        "{binary} started without a usable key"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}
