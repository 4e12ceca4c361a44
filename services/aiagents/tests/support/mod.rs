#![allow(dead_code)] // Each test binary uses a different part.
//! Services as processes of their own (`aiagents run <service>`), for the
//! scaling and chaos tests.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Instance {
    pub service: &'static str,
    pub child: Child,
    pub metrics: SocketAddr,
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

/// Messages an instance finished (`stage_messages_total`, outcome done).
pub async fn done(http: &reqwest::Client, addr: SocketAddr) -> Option<u64> {
    let text = http
        .get(format!("http://{addr}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(
        text.lines()
            .filter(|line| {
                line.starts_with("stage_messages_total") && line.contains(r#"outcome="done""#)
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64,
    )
}
