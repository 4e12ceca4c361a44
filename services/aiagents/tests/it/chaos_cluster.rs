//! Chaos on the production shape: a three-node JetStream cluster (R3 stream
//! and consumers) and a PostgreSQL primary with a synchronous standby, two
//! processes of every stage given every node and both database servers.
//! While tickets of several tenants arrive, a random stage process is
//! SIGKILLed and started again every second; every `LEADER_EVERY` seconds
//! the node leading the stream or one stage's consumer is SIGKILLed and
//! started again half an interval later; halfway through, the database
//! primary is SIGKILLed and the standby promoted. The end is every chaos
//! test's end: every run terminal, exactly one note per ticket, none
//! elsewhere, projections equal to a rebuild from the stream.
//!
//! The suite runs a small version; `just chaos-cluster` runs the full one
//! (10,000 tickets, 20 tenants, a leader killed every minute) and prints its
//! figures.

use std::time::{Duration, Instant};

use aia_standins::llm::LlmStandIn;
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use aia_testkit::{NatsCluster, PgCluster, pg_failover_url};
use aiagents::ops;
use support::{Instance, Servers, add_tenants, leader, load, spawn, start_ingress};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_and_a_database_failing_over_under_kills_lose_no_ticket_and_double_no_note() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tickets = load::setting("AI_AGENTS_CHAOS_TICKETS", 240);
    let n_tenants = load::setting("AI_AGENTS_CHAOS_TENANTS", 4);
    let leader_every =
        Duration::from_secs(load::setting("AI_AGENTS_CHAOS_LEADER_EVERY_SECS", 3).max(2) as u64);
    let mut cluster = NatsCluster::start().await;
    let primary = PgCluster::start().await;
    let standby = primary.standby().await;
    let app_url = pg_failover_url("aiagents_app", &[&primary, &standby]);
    let owner_url = pg_failover_url("aiagents", &[&primary, &standby]);
    ops::apply_nats_replicated(&cluster.urls(), Some(3))
        .await
        .unwrap();
    let sdp = ServiceDeskStandIn::new("sdp-token");
    let sdp_server = aia_standins::serve(sdp.router()).await.unwrap();
    let llm = LlmStandIn::new();
    let llm_server = aia_standins::serve(llm.router()).await.unwrap();
    let keys = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&keys).unwrap();
    let secrets = add_tenants(&app_url, &keyring, n_tenants, &sdp_server.url()).await;
    let servers = Servers {
        nats_url: cluster.urls(),
        database_url: app_url.clone(),
        keys: keys.clone(),
        llm_url: format!("{}/v1", llm_server.url()),
        extra_env: vec![],
    };
    let ingress = start_ingress(&cluster.urls(), &app_url, &keys).await;
    let mut instances: Vec<Instance> = support::STAGES
        .iter()
        .flat_map(|service| [spawn(service, &servers), spawn(service, &servers)])
        .collect();

    let secrets = secrets.iter().map(|s| s.expose().to_owned()).collect();
    let (driver, sent_at) = load::drive(tickets, 40, "X", secrets, ingress.url.clone(), |_| {});

    let mut victims = load::Victims::default();
    let (mut kills, mut leader_kills) = (0, 0);
    let mut next_leader_kill = Instant::now() + leader_every;
    let mut down: Option<(usize, Instant)> = None;
    let mut failed_over = false;
    while !driver.is_finished() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        victims.kill_one(&mut instances, &servers);
        kills += 1;
        if let Some((node, until)) = down
            && Instant::now() >= until
        {
            cluster.restart(node).await;
            cluster.wait_for_jetstream(Duration::from_secs(30)).await;
            down = None;
        }
        if down.is_none() && Instant::now() >= next_leader_kill {
            // The stream's leader, then each stage's consumer's in turn.
            let durable = match leader_kills % (support::STAGES.len() + 1) {
                0 => None,
                k => Some(support::STAGES[k - 1]),
            };
            let node = leader(&cluster, durable).await;
            cluster.kill(node);
            leader_kills += 1;
            down = Some((node, Instant::now() + leader_every / 2));
            next_leader_kill = Instant::now() + leader_every;
        }
        let progress = sent_at.lock().unwrap().len() as f64 / tickets as f64;
        if !failed_over && progress > 0.5 {
            primary.kill();
            tokio::time::sleep(Duration::from_secs(2)).await;
            standby.promote();
            failed_over = true;
        }
    }
    driver.await.unwrap();
    if let Some((node, _)) = down {
        cluster.restart(node).await;
    }
    assert!(
        failed_over && leader_kills >= 1,
        "the run ended before a leader kill and the failover"
    );

    let owner = support::owner_client(&owner_url).await;
    let (completed, failed, finished) =
        support::assert_settled(&owner, tickets, &sdp, &cluster.urls(), &owner_url).await;
    assert_eq!(
        (completed, failed),
        (tickets as i64, 0),
        "no far end failed, so every ticket is written back"
    );

    // A stage started while a leader was being elected waited for it
    // rather than exiting.
    for instance in &mut instances {
        assert!(
            instance.child.try_wait().unwrap().is_none(),
            "a {} instance exited",
            instance.service
        );
    }
    let redeliveries = load::redeliveries(&instances).await;
    let latencies = load::latencies(&owner).await;
    println!(
        "chaos-cluster: {tickets} tickets, {n_tenants} tenants: {completed} written back, {failed} dead letters; \
         {:.1} tickets/s to the last terminal run; webhook → note p50 {:.0} ms, p99 {:.0} ms; \
         {kills} SIGKILLs of stages, {leader_kills} leader nodes SIGKILLed, 1 PostgreSQL failover; \
         {redeliveries} redeliveries (surviving instances)",
        load::throughput(&sent_at, finished),
        load::percentile(&latencies, 0.5),
        load::percentile(&latencies, 0.99),
    );
    drop(instances);
    ingress.stop.cancel();
    let _ = ingress.task.await;
}
