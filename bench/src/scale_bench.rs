//! Scale-out on the production shape: tickets per second through the whole
//! pipeline on a three-node JetStream cluster (R3 stream and consumers)
//! with 1, 2 and 3 processes of every stage, the same driver each time,
//! and how busy the machine was meanwhile — so that a reader sees where
//! the CPU, not the design, stops the curve.
//!
//! The ingress, the driver and the LLM and ServiceDesk Plus stand-ins run
//! in this process; every stage is `aiagents run <stage>` (the release
//! binary given), PostgreSQL is the bench stack's.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aia_standins::llm::LlmStandIn;
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use aia_testkit::{NatsCluster, TestDatabase};
use aiagents::dataset::Query;
use anyhow::Context;

const STAGES: [&str; 4] = [
    "context-gatherer",
    "llm-enhancer",
    "writeback",
    "history-projector",
];
const TENANTS: usize = 20;
const CONNECTIONS: usize = 32;

pub fn run(
    tickets: usize,
    instances: &[usize],
    aiagents_bin: &std::path::Path,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let cluster = NatsCluster::start().await;
        aiagents::ops::apply_nats_replicated(&cluster.urls(), Some(3)).await?;
        let db = TestDatabase::create().await;
        let sdp = ServiceDeskStandIn::new("sdp-token");
        let sdp_server = aia_standins::serve(sdp.router()).await?;
        let llm = LlmStandIn::new();
        let llm_server = aia_standins::serve(llm.router()).await?;
        let keys = Keyring::generate_spec("k1");
        let keyring = Keyring::parse(&keys)?;
        let mut secrets = Vec::new();
        for tenant in 0..TENANTS {
            let created = aiagents::ops::add_tenant(
                &db.app_url,
                &keyring,
                &format!("tenant-{tenant}"),
                "Tenant",
                aia_events::ItsmKind::ServicedeskPlus,
                &sdp_server.url(),
                r#"{"authtoken":"sdp-token"}"#,
            )
            .await?;
            secrets.push(created.webhook_secret.expose().to_owned());
        }
        let ingress_url = start_ingress(&cluster.urls(), &db.app_url, &keys).await?;
        let owner = db.admin_client().await;

        println!(
            "scale-out: {tickets} tickets per run, {TENANTS} tenants, {CONNECTIONS} connections, \
             three-node JetStream cluster (R3), {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!("| instances per stage | tickets/s | machine busy | stages' own CPU s per 1,000 tickets |");
        println!("|---|---|---|---|");
        for (round, &k) in instances.iter().enumerate() {
            let mut children = Vec::new();
            for stage in STAGES {
                for _ in 0..k {
                    children.push(spawn(aiagents_bin, stage, &cluster.urls(), &db.app_url, &keys, &llm_server.url())?);
                }
            }
            // Let every process connect and settle before the clock starts.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let prefix = format!("S{round}-");
            let cpu_before = machine_cpu()?;
            let own_before: f64 = children.iter().map(|c| process_cpu(c.id())).sum();
            let started = Instant::now();
            drive(tickets, &prefix, &secrets, &ingress_url).await;
            wait_completed(&owner, &prefix, tickets).await?;
            let elapsed = started.elapsed();
            let own_after: f64 = children.iter().map(|c| process_cpu(c.id())).sum();
            let busy = machine_cpu()?.busy_since(&cpu_before);
            println!(
                "| {k} | {:.0} | {:.0} % | {:.2} |",
                tickets as f64 / elapsed.as_secs_f64(),
                busy * 100.0,
                (own_after - own_before) / tickets as f64 * 1000.0,
            );
            // Stopped as a deployment stops them (SIGTERM: finish, flush the
            // last acks), so nothing of this round is redelivered in the next.
            for child in &children {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
            for mut child in children {
                let _ = child.wait();
            }
        }
        drop(cluster);
        anyhow::Ok(())
    })
}

fn spawn(
    bin: &std::path::Path,
    stage: &str,
    nats_url: &str,
    database_url: &str,
    keys: &str,
    llm_url: &str,
) -> anyhow::Result<Child> {
    Command::new(bin)
        .args(["run", stage])
        .env("AI_AGENTS_NATS_URL", nats_url)
        .env("AI_AGENTS_DATABASE_URL", database_url)
        .env("AI_AGENTS_SECRET_KEYS", keys)
        .env("AI_AGENTS_LLM_BASE_URL", format!("{llm_url}/v1"))
        .env("AI_AGENTS_LLM_API_KEY", "sk-bench")
        .env_remove("AI_AGENTS_METRICS_ADDR")
        .env_remove("AI_AGENTS_EMBEDDINGS_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} run {stage}", bin.display()))
}

async fn start_ingress(nats_url: &str, database_url: &str, keys: &str) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let config = ingress::Config {
        rate_limit_per_minute: 10_000_000,
        ..ingress::Config::new(
            nats_url.to_owned(),
            database_url.to_owned(),
            Keyring::parse(keys)?,
        )
    };
    tokio::spawn(ingress::serve(config, listener, std::future::pending()));
    Ok(url)
}

/// `tickets` webhooks over [`CONNECTIONS`] concurrent senders, round-robin
/// over the tenants, each sent until the ingress takes it.
async fn drive(tickets: usize, prefix: &str, secrets: &[String], ingress_url: &str) {
    let next = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .expect("an HTTP client");
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let (next, http) = (next.clone(), http.clone());
        let (prefix, secrets, url) = (prefix.to_owned(), secrets.to_vec(), ingress_url.to_owned());
        senders.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= tickets {
                    break;
                }
                let tenant = n % secrets.len();
                let query = Query {
                    tenant_id: format!("tenant-{tenant}"),
                    ticket_id: format!("{prefix}{n}"),
                    subject: Some(format!("Scale ticket {n}")),
                    description: "The VPN drops every few minutes.".into(),
                    priority: "high".into(),
                    relevant: vec![],
                    language: None,
                };
                let body = aiagents::webhook::servicedesk_body(&query);
                while !matches!(
                    aiagents::webhook::send_servicedesk(
                        &http,
                        &url,
                        &secrets[tenant],
                        body.clone()
                    )
                    .await,
                    Ok((202, _))
                ) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }
    while senders.join_next().await.is_some() {}
}

async fn wait_completed(
    owner: &tokio_postgres::Client,
    prefix: &str,
    tickets: usize,
) -> anyhow::Result<()> {
    let pattern = format!("{prefix}%");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done: i64 = owner
            .query_one(
                "select count(*) from enhancement_history where status = 'completed' and ticket_id like $1",
                &[&pattern],
            )
            .await?
            .get(0);
        if done >= tickets as i64 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {done} of {tickets} written back after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The machine's CPU counters (`/proc/stat`, all cores, in ticks).
struct MachineCpu {
    idle: u64,
    total: u64,
}

impl MachineCpu {
    fn busy_since(&self, before: &MachineCpu) -> f64 {
        let total = self.total.saturating_sub(before.total).max(1);
        let idle = self.idle.saturating_sub(before.idle);
        1.0 - idle as f64 / total as f64
    }
}

fn machine_cpu() -> anyhow::Result<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .context("an empty /proc/stat")?
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    anyhow::ensure!(fields.len() >= 5, "an unexpected /proc/stat");
    Ok(MachineCpu {
        idle: fields[3] + fields[4],
        total: fields.iter().take(8).sum(),
    })
}

/// A process's user + system CPU seconds so far (`/proc/PID/stat`).
fn process_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the whole line.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // USER_HZ: 100 ticks a second on Linux, whatever the kernel's HZ.
    (ticks(11) + ticks(12)) as f64 / 100.0
}
