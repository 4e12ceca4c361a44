//! Search by meaning: embedding throughput of the local model (imports),
//! query embedding latency, similar-ticket search by meaning at 1,000,000
//! tickets across 1,000 tenants with and without the query's embedding, and
//! the resident memory of the embedder service under load.
//!
//! The 1,000,000 stored vectors are synthetic (embedding that many tickets
//! with the real model would take hours on two cores): each ticket's vector
//! is built from fixed random directions of its generated system, symptom,
//! cause and fix plus noise, so tickets that share parts are near each
//! other as real ones are. The search does the same work on them as on real
//! vectors: load the tenant's vectors, score them, fuse, fetch details.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aia_embed::local::MiniLm;
use aia_embed::{Embedder, LOCAL_DIM, LOCAL_MODEL};
use aia_events::TenantId;
use aia_testkit::TestDatabase;
use context_gatherer::sources::fusion;
use context_gatherer::sources::similar::{self, Semantic};
use futures::SinkExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::search_bench::{percentile, resolved_text};

pub(crate) fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{name}: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms ({} samples)",
        percentile(&ms, 0.50),
        percentile(&ms, 0.95),
        percentile(&ms, 0.99),
        ms.len()
    );
}

/// A random unit direction.
fn direction(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..LOCAL_DIM).map(|_| rng.r#gen::<f32>() - 0.5).collect();
    aia_embed::Vector::normalised(v)
        .expect("non-zero")
        .as_slice()
        .to_vec()
}

pub fn run(
    model_dir: &std::path::Path,
    n_tickets: u64,
    n_tenants: u64,
    n_queries: usize,
    embedder_bin: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let model = Arc::new(MiniLm::load(model_dir)?);
        let embedder = Embedder::Local(model.clone());
        let mut rng = StdRng::seed_from_u64(11);

        // Imports: tickets/s in batches, as `aiagents reembed` sends them.
        let tickets: Vec<String> = (0..512)
            .map(|_| {
                let (s, d, r) = resolved_text(&mut rng);
                aia_embed::ticket_text(&s, &d, &r)
            })
            .collect();
        embedder.embed(&tickets[..16]).await?; // warm-up
        for batch in [16, 32] {
            let started = Instant::now();
            for chunk in tickets.chunks(batch) {
                embedder.embed(chunk).await?;
            }
            println!(
                "embedding for imports, batches of {batch}: {:.0} tickets/s",
                tickets.len() as f64 / started.elapsed().as_secs_f64()
            );
        }

        // One query at a time, as the context stage asks.
        let mut embed_ms = Vec::new();
        for _ in 0..n_queries.min(500) {
            let (s, d, _) = resolved_text(&mut rng);
            let started = Instant::now();
            embedder.embed_one(&format!("{s}\n{d}")).await?;
            embed_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        summary("query embedding (one ticket, in-process)", embed_ms);

        // 1,000,000 tickets and vectors across 1,000 tenants.
        let db = TestDatabase::create().await;
        let (owner, connection) = tokio_postgres::connect(&db.admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let started = Instant::now();
        let parts: Vec<Vec<f32>> = (0..64).map(|_| direction(&mut rng)).collect();
        let sink = owner
            .copy_in("copy ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, tags, resolved_at, last_event_id) from stdin with (format csv)")
            .await?;
        futures::pin_mut!(sink);
        // A second connection: one connection runs one COPY at a time.
        let (vectors_owner, connection) =
            tokio_postgres::connect(&db.admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let vectors = vectors_owner
            .copy_in("copy ticket_embeddings (tenant_id, ticket_id, model, dim, content_sha256, vector) from stdin")
            .await?;
        futures::pin_mut!(vectors);
        let mut rows = String::new();
        let mut vector_rows = String::new();
        for n in 0..n_tickets {
            let (subject, description, resolution) = resolved_text(&mut rng);
            let tenant = format!("tenant-{:04}", n % n_tenants);
            rows.push_str(&format!(
                "{tenant},T-{n},\"{subject}\",\"{description}\",\"{resolution}\",medium,{{}},2026-01-01T00:00:00Z,{}\n",
                uuid::Uuid::now_v7()
            ));
            // Near tickets share parts: four of 64 directions plus noise.
            let mut v = vec![0.0f32; LOCAL_DIM];
            for _ in 0..4 {
                let part = &parts[rng.gen_range(0..parts.len())];
                v.iter_mut().zip(part).for_each(|(a, b)| *a += b);
            }
            v.iter_mut().for_each(|a| *a += (rng.r#gen::<f32>() - 0.5) * 0.2);
            let v = aia_embed::Vector::normalised(v).expect("non-zero");
            vector_rows.push_str(&format!(
                "{tenant}\tT-{n}\t{LOCAL_MODEL}\t{LOCAL_DIM}\t\\\\x{}\t\\\\x{}\n",
                "00".repeat(32),
                hex::encode(v.to_bytes())
            ));
            if vector_rows.len() > 4 << 20 {
                sink.send(bytes::Bytes::from(std::mem::take(&mut rows))).await?;
                vectors.send(bytes::Bytes::from(std::mem::take(&mut vector_rows))).await?;
            }
        }
        sink.send(bytes::Bytes::from(rows)).await?;
        sink.as_mut().finish().await?;
        vectors.send(bytes::Bytes::from(vector_rows)).await?;
        vectors.as_mut().finish().await?;
        // What autovacuum does to an insert-only table soon after: statistics
        // and the visibility map (which index-only scans need).
        for table in ["ticket_history", "ticket_embeddings"] {
            owner.batch_execute(&format!("vacuum analyze {table}")).await?;
        }
        println!(
            "loaded {n_tickets} tickets with vectors for {n_tenants} tenants in {:.0} s",
            started.elapsed().as_secs_f64()
        );

        let pool = aia_store::pool(&db.app_url, 4)?;
        let mut search_ms = Vec::new();
        let mut both_ms = Vec::new();
        let mut unrated_ms = Vec::new();
        for i in 0..n_queries {
            let tenant = TenantId::parse(&format!("tenant-{:04}", rng.gen_range(0..n_tenants)))?;
            let (s, d, _) = resolved_text(&mut rng);
            let text = format!("{s}\n{d}");
            let started = Instant::now();
            let query = embedder.embed_one(&text).await?;
            let embedded = Instant::now();
            let search = |fusion| {
                let semantic = Semantic { model: LOCAL_MODEL, vector: query.as_slice(), rewrite: None, fusion };
                similar::similar_tickets_by_meaning(
                    &pool,
                    &tenant,
                    &text,
                    aia_events::Language::English,
                    semantic,
                    5,
                )
            };
            // Every search is also made without reading technicians'
            // ratings, the two in turns first (the second finds the
            // tenant's pages warm): what the ratings' read adds.
            let unrated_fusion = fusion::Fusion { feedback_weight: 0.0, ..fusion::DEFAULT };
            let order = if i % 2 == 0 { [fusion::DEFAULT, unrated_fusion] } else { [unrated_fusion, fusion::DEFAULT] };
            let mut searched = std::time::Duration::ZERO;
            let mut unrated = std::time::Duration::ZERO;
            for fusion in order {
                let begun = Instant::now();
                let hits = search(fusion).await.map_err(|err| anyhow::anyhow!("{err}"))?;
                anyhow::ensure!(hits.iter().all(|h| h.ticket_id.as_str().starts_with("T-")));
                if fusion.feedback_weight > 0.0 {
                    searched = begun.elapsed();
                } else {
                    unrated = begun.elapsed();
                }
            }
            if i >= 20 {
                // The first queries warm Postgres's cache.
                search_ms.push(searched.as_secs_f64() * 1000.0);
                both_ms.push((embedded - started + searched).as_secs_f64() * 1000.0);
                unrated_ms.push(unrated.as_secs_f64() * 1000.0);
            }
        }
        summary("similar-ticket search by meaning (fused), search alone", search_ms);
        summary("similar-ticket search by meaning (fused), with the query's embedding", both_ms);
        summary(
            "the same searches without reading ratings (in turns, first and second)",
            unrated_ms,
        );

        if let Some(bin) = embedder_bin {
            embedder_memory(bin, model_dir).await?;
        }
        Ok(())
    })
}

/// A port free on this machine now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The embedder service on `port`, its API only (no indexer).
pub(crate) fn embedder_command(
    bin: &std::path::Path,
    model_dir: &std::path::Path,
    port: u16,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(bin);
    command
        .env("AI_AGENTS_MODEL_DIR", model_dir)
        .env("AI_AGENTS_EMBEDDER_ADDR", format!("127.0.0.1:{port}"))
        .env("AI_AGENTS_EMBEDDER_INDEXER", "false")
        .env(
            "AI_AGENTS_SECRET_KEYS",
            aia_store::Keyring::generate_spec("bench"),
        )
        .env("RUST_LOG", "error");
    command
}

/// Starts the embedder service, loads it with concurrent batches for 20 s
/// and reads its peak resident memory.
async fn embedder_memory(bin: &std::path::Path, model_dir: &std::path::Path) -> anyhow::Result<()> {
    let port = free_port()?;
    let mut child = embedder_command(bin, model_dir, port)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    let base = format!("http://127.0.0.1:{port}/v1");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/models")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let idle = rss_kb(pid, "VmRSS")?;
    let endpoint = Embedder::Endpoint(aia_embed::Endpoint::new(
        http.clone(),
        aia_embed::EndpointConfig::new(&base, LOCAL_MODEL),
    ));
    let mut rng = StdRng::seed_from_u64(5);
    let batch: Vec<String> = (0..16)
        .map(|_| {
            let (s, d, r) = resolved_text(&mut rng);
            aia_embed::ticket_text(&s, &d, &r)
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(20);
    let mut workers = Vec::new();
    for _ in 0..4 {
        let endpoint = endpoint.clone();
        let batch = batch.clone();
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                endpoint.embed(&batch).await?;
                n += batch.len() as u64;
            }
            anyhow::Ok(n)
        }));
    }
    let mut embedded = 0;
    for worker in workers {
        embedded += worker.await??;
    }
    let peak = rss_kb(pid, "VmHWM")?;
    println!(
        "embedder service: {:.0} MB resident idle, {:.0} MB peak under 4 concurrent batches of 16 ({:.0} tickets/s over HTTP)",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        embedded as f64 / 20.0
    );
    child.kill().await?;
    Ok(())
}

pub(crate) fn rss_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {field} for process {pid}"))
}
