//! The pipeline on a three-node JetStream cluster (R3 stream and
//! consumers), one process per stage given every node's URL, while the
//! cluster loses nodes under load: the stream leader SIGKILLed mid-run and
//! started again; every node restarted in turn (so every stage loses the
//! node it is connected to); the write-back consumer's leader gone for
//! longer than the consumers' ack wait and back. It ends as every chaos
//! test ends: every run terminal, exactly one note per ticket, none
//! elsewhere, projections equal to a rebuild from the stream.

use std::time::Duration;

use aia_standins::llm::LlmStandIn;
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use aia_testkit::{NatsCluster, PgCluster};
use aiagents::dataset::Query;
use aiagents::{ops, webhook};
use support::{Servers, add_tenants, leader, send_until_accepted, spawn, start_ingress};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_losing_leaders_and_nodes_under_load_loses_no_ticket_and_doubles_no_note() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tickets = 90;
    let n_tenants = 3;
    let mut cluster = NatsCluster::start().await;
    let pg = PgCluster::start().await;
    ops::apply_nats_replicated(&cluster.urls(), Some(3))
        .await
        .unwrap();
    let sdp = ServiceDeskStandIn::new("sdp-token");
    let sdp_server = aia_standins::serve(sdp.router()).await.unwrap();
    let llm = LlmStandIn::new();
    let llm_server = aia_standins::serve(llm.router()).await.unwrap();
    let keys = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&keys).unwrap();
    let secrets = add_tenants(&pg.app_url(), &keyring, n_tenants, &sdp_server.url()).await;
    let servers = Servers {
        nats_url: cluster.urls(),
        database_url: pg.app_url(),
        keys: keys.clone(),
        llm_url: format!("{}/v1", llm_server.url()),
        extra_env: vec![],
    };
    let ingress = start_ingress(&cluster.urls(), &pg.app_url(), &keys).await;
    let mut instances: Vec<_> = support::STAGES
        .iter()
        .map(|service| spawn(service, &servers))
        .collect();

    // The driver: every ticket sent until the ingress takes it (503 while
    // the stream elects a leader; the same body is the same delivery).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut leader_killed = None;
    let mut rolled = false;
    let mut away: Option<(usize, std::time::Instant)> = None;
    for n in 0..tickets {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if n == tickets / 3 {
            let leader = leader(&cluster, None).await;
            cluster.kill(leader);
            leader_killed = Some(leader);
        }
        if n == tickets / 3 + 10 {
            let leader = leader_killed.expect("killed first");
            cluster.restart(leader).await;
        }
        if n == 2 * tickets / 3 {
            // A rolling restart: one node at a time, each back before the
            // next goes, as an upgrade does it.
            for node in 0..NatsCluster::NODES {
                cluster.kill(node);
                tokio::time::sleep(Duration::from_secs(1)).await;
                cluster.restart(node).await;
                cluster.wait_for_jetstream(Duration::from_secs(30)).await;
            }
            rolled = true;
        }
        if n == 5 * tickets / 6 {
            let node = leader(&cluster, Some("writeback")).await;
            cluster.kill(node);
            away = Some((node, std::time::Instant::now()));
        }
        let tenant = n % n_tenants;
        let query = Query {
            tenant_id: format!("tenant-{tenant}"),
            ticket_id: format!("K{tenant}-{n}"),
            subject: Some(format!("Cluster ticket {n}")),
            description: "The VPN drops every few minutes.".into(),
            priority: "high".into(),
            relevant: vec![],
            language: None,
        };
        let body = webhook::servicedesk_body(&query);
        send_until_accepted(&http, &ingress.url, secrets[tenant].expose(), body).await;
    }
    assert!(leader_killed.is_some() && rolled);
    // Away longer than any consumer's ack wait (15 s at most), then back.
    let (node, since) = away.expect("a node was taken away");
    tokio::time::sleep_until((since + Duration::from_secs(20)).into()).await;
    cluster.restart(node).await;

    let owner = support::owner_client(&pg.owner_url()).await;
    let (completed, failed, _) =
        support::assert_settled(&owner, tickets, &sdp, &cluster.urls(), &pg.owner_url()).await;
    assert_eq!(
        (completed, failed),
        (tickets as i64, 0),
        "no far end failed, so every ticket is written back"
    );

    for instance in &mut instances {
        let _ = instance.child.kill();
        let _ = instance.child.wait();
    }
    ingress.stop.cancel();
    let _ = ingress.task.await;
}
