//! How a stage process starts when its consumer cannot answer: it waits
//! while the cluster has no quorum (a leader election, two nodes
//! restarting) and starts consuming when it has one again; it fails at
//! once, saying what to run, when the consumer was never created.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aia_store::Keyring;
use aia_testkit::{NatsCluster, NatsServer, PgCluster};
use aiagents::ops;
use support::{Servers, spawn};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_started_while_the_cluster_has_no_quorum_waits_and_then_consumes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cluster = NatsCluster::start().await;
    let pg = PgCluster::start().await;
    ops::apply_nats_replicated(&cluster.urls(), Some(3))
        .await
        .unwrap();
    // Two of three nodes gone: no stream or consumer leader can answer.
    cluster.kill(1);
    cluster.kill(2);
    let servers = Servers {
        nats_url: cluster.url(0),
        database_url: pg.app_url(),
        keys: Keyring::generate_spec("k1"),
        llm_url: "http://127.0.0.1:9/v1".into(),
        extra_env: vec![],
    };
    let mut instance = spawn("writeback", &servers);
    // Longer than two JetStream request timeouts (5 s each): a stage that
    // gave up on the first unanswered request would have exited by now.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        instance.child.try_wait().unwrap().is_none(),
        "the stage exited while the cluster had no quorum"
    );

    cluster.restart(1).await;
    cluster.restart(2).await;
    cluster.wait_for_jetstream(Duration::from_secs(30)).await;
    // Its metrics appear once it has found its consumer and consumes.
    let http = reqwest::Client::new();
    aia_testkit::eventually("the stage consuming", Duration::from_secs(60), || async {
        let text = support::metrics(&http, instance.metrics).await?;
        text.contains(r#"stage_workers{stage="writeback"}"#)
            .then_some(())
    })
    .await;
    assert!(instance.child.try_wait().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_whose_consumer_was_never_created_fails_at_once_and_says_what_to_run() {
    let nats = NatsServer::start().await;
    let pg = PgCluster::start().await;
    // No `nats apply`: neither the stream nor the consumer exists.
    assert_fails_at_once(&nats, &pg).await;
    // The stream without the stage's consumer.
    ops::apply_nats(&nats.url()).await.unwrap();
    let (_client, js) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    js.get_stream("TICKETS")
        .await
        .unwrap()
        .delete_consumer("writeback")
        .await
        .unwrap();
    assert_fails_at_once(&nats, &pg).await;
}

async fn assert_fails_at_once(nats: &NatsServer, pg: &PgCluster) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_aiagents"))
        .args(["run", "writeback"])
        .env("AI_AGENTS_NATS_URL", nats.url())
        .env("AI_AGENTS_DATABASE_URL", pg.app_url())
        .env("AI_AGENTS_SECRET_KEYS", Keyring::generate_spec("k1"))
        .env("AI_AGENTS_LLM_BASE_URL", "http://127.0.0.1:9/v1")
        .env_remove("AI_AGENTS_METRICS_ADDR")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a missing consumer is not waited for (took {:?})",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("aiagents nats apply"), "{stderr}");
}

/// The pool's size is the operator's to set (the sum over replicas must
/// fit PostgreSQL's `max_connections`); a size of none is refused at
/// start, by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_no_connections_is_refused_at_start_by_name() {
    let nats = NatsServer::start().await;
    let pg = PgCluster::start().await;
    ops::apply_nats(&nats.url()).await.unwrap();
    for service in ["writeback", "ingress"] {
        let output = Command::new(env!("CARGO_BIN_EXE_aiagents"))
            .args(["run", service])
            .env("AI_AGENTS_NATS_URL", nats.url())
            .env("AI_AGENTS_DATABASE_URL", pg.app_url())
            .env("AI_AGENTS_SECRET_KEYS", Keyring::generate_spec("k1"))
            .env("AI_AGENTS_LLM_BASE_URL", "http://127.0.0.1:9/v1")
            .env("AI_AGENTS_DB_POOL_SIZE", "0")
            .env_remove("AI_AGENTS_METRICS_ADDR")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{service} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("AI_AGENTS_DB_POOL_SIZE"),
            "{service}: {stderr}"
        );
    }
}
