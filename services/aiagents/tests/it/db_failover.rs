//! The pipeline while its PostgreSQL fails over: a primary with a
//! synchronous standby, every service and the ingress given both servers
//! with `target_session_attrs=read-write`; mid-run the primary is killed
//! and the standby promoted. Stages nak while no server takes writes and
//! carry on on the promoted one; the write-back ledger's and the
//! projector's transactions in flight are retried. It ends as every chaos
//! test ends: every run terminal, exactly one note per ticket, none
//! elsewhere, projections equal to a rebuild from the stream.

use std::time::Duration;

use aia_standins::llm::LlmStandIn;
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use aia_testkit::{NatsServer, PgCluster, pg_failover_url};
use aiagents::dataset::Query;
use aiagents::{ops, webhook};
use support::{Servers, add_tenants, send_until_accepted, spawn, start_ingress};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_failover_mid_run_loses_no_ticket_and_doubles_no_note() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tickets = 90;
    let n_tenants = 3;
    let nats = NatsServer::start().await;
    let primary = PgCluster::start().await;
    let standby = primary.standby().await;
    let app_url = pg_failover_url("aiagents_app", &[&primary, &standby]);
    let owner_url = pg_failover_url("aiagents", &[&primary, &standby]);
    ops::apply_nats(&nats.url()).await.unwrap();
    let sdp = ServiceDeskStandIn::new("sdp-token");
    let sdp_server = aia_standins::serve(sdp.router()).await.unwrap();
    let llm = LlmStandIn::new();
    let llm_server = aia_standins::serve(llm.router()).await.unwrap();
    let keys = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&keys).unwrap();
    let secrets = add_tenants(&app_url, &keyring, n_tenants, &sdp_server.url()).await;
    let servers = Servers {
        nats_url: nats.url(),
        database_url: app_url.clone(),
        keys: keys.clone(),
        llm_url: format!("{}/v1", llm_server.url()),
        extra_env: vec![],
    };
    let ingress = start_ingress(&nats.url(), &app_url, &keys).await;
    let mut instances: Vec<_> = support::STAGES
        .iter()
        .map(|service| spawn(service, &servers))
        .collect();

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut failed_over = false;
    for n in 0..tickets {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if n == tickets / 2 {
            // The primary dies with work in flight; the standby is promoted
            // two seconds later, as an operator or Patroni would.
            primary.kill();
            tokio::time::sleep(Duration::from_secs(2)).await;
            standby.promote();
            failed_over = true;
        }
        let tenant = n % n_tenants;
        let query = Query {
            tenant_id: format!("tenant-{tenant}"),
            ticket_id: format!("D{tenant}-{n}"),
            subject: Some(format!("Failover ticket {n}")),
            description: "Outlook keeps asking for my password.".into(),
            priority: "high".into(),
            relevant: vec![],
            language: None,
        };
        let body = webhook::servicedesk_body(&query);
        send_until_accepted(&http, &ingress.url, secrets[tenant].expose(), body).await;
    }
    assert!(failed_over);

    let owner = support::owner_client(&owner_url).await;
    let (completed, failed, _) =
        support::assert_settled(&owner, tickets, &sdp, &nats.url(), &owner_url).await;
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
