//! Chaos: tickets of several tenants go through two instances of every
//! stage (separate processes) while a driver kills random instances with
//! SIGKILL and starts them again, nats-server restarts once and PostgreSQL
//! once, and the LLM and ServiceDesk Plus stand-ins answer 5xx, 429 with
//! `Retry-After`, time out and answer slowly. At the end every run is
//! terminal (written back, or failed with a reason and so a dead letter),
//! every written-back ticket has exactly one note and no other ticket has
//! one, and the projections equal a rebuild from the stream.
//!
//! The suite runs a small version; `just chaos` runs the full one
//! (`AI_AGENTS_CHAOS_TICKETS=10000 AI_AGENTS_CHAOS_TENANTS=20`) and prints
//! its figures.

use std::time::{Duration, Instant};

use aia_standins::llm::{Behaviour, LlmStandIn};
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use aia_testkit::{NatsServer, PgCluster};
use aiagents::ops;
use support::{Instance, Servers, add_tenants, load, spawn, start_ingress};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_restarts_and_failing_saas_lose_no_ticket_and_double_no_note() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tickets = load::setting("AI_AGENTS_CHAOS_TICKETS", 200);
    let n_tenants = load::setting("AI_AGENTS_CHAOS_TENANTS", 4);
    let mut nats = NatsServer::start().await;
    let pg = PgCluster::start().await;
    ops::apply_nats(&nats.url()).await.unwrap();
    let sdp = ServiceDeskStandIn::new("sdp-token");
    let sdp_server = aia_standins::serve(sdp.router()).await.unwrap();
    let llm = LlmStandIn::new();
    let llm_server = aia_standins::serve(llm.router()).await.unwrap();
    let keys = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&keys).unwrap();
    let secrets = add_tenants(&pg.app_url(), &keyring, n_tenants, &sdp_server.url()).await;
    let servers = Servers {
        nats_url: nats.url(),
        database_url: pg.app_url(),
        keys: keys.clone(),
        llm_url: format!("{}/v1", llm_server.url()),
        extra_env: vec![
            ("AI_AGENTS_LLM_TIMEOUT_SECS".into(), "2".into()),
            ("AI_AGENTS_ITSM_TIMEOUT_SECS".into(), "2".into()),
        ],
    };
    let ingress = start_ingress(&nats.url(), &pg.app_url(), &keys).await;
    let ingress_url = ingress.url.clone();
    let mut instances: Vec<Instance> = support::STAGES
        .iter()
        .flat_map(|service| [spawn(service, &servers), spawn(service, &servers)])
        .collect();

    // The far ends misbehave from the start.
    let faults = |round: usize| {
        let mut script = Vec::new();
        for _ in 0..3 {
            script.push(Behaviour::Status {
                code: 500,
                retry_after: None,
            });
            script.push(Behaviour::Status {
                code: 429,
                retry_after: Some(1),
            });
            script.push(Behaviour::Slow(Duration::from_secs(3))); // over the 2 s timeout
            script.push(Behaviour::Slow(Duration::from_millis(
                500 + 100 * round as u64,
            )));
        }
        script
    };
    llm.script(faults(0));
    sdp.unavailable_for_notes(4);
    sdp.throttle_notes(4, 1);

    // The driver, at about 40 tickets/s (503 while NATS restarts; the
    // same body is the same delivery, so a retry is never a second ticket).
    // The second round of LLM faults comes by ticket count and not by the
    // clock, so that half the tickets are still to come to be served them.
    let (driver, sent_at) = {
        let llm = llm.clone();
        let secrets = secrets.iter().map(|s| s.expose().to_owned()).collect();
        load::drive(tickets, 40, "C", secrets, ingress_url, move |n| {
            if n == tickets / 2 {
                llm.script(faults(1));
            }
        })
    };

    // Chaos while the tickets arrive: a random instance killed and started
    // again every second, NATS restarted at a third, PostgreSQL at two thirds.
    let mut kills = 0;
    let mut victims = load::Victims::default();
    let (mut nats_restarted, mut pg_restarted) = (false, false);
    let mut hang_until: Option<Instant> = None;
    while !driver.is_finished() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        victims.kill_one(&mut instances, &servers);
        kills += 1;
        let progress = sent_at.lock().unwrap().len() as f64 / tickets as f64;
        if !nats_restarted && progress > 0.33 {
            nats.restart().await;
            nats_restarted = true;
        }
        if !pg_restarted && progress > 0.66 {
            pg.restart();
            pg_restarted = true;
            // Notes stored while the answer never comes in time: the
            // writeback cannot know whether it posted.
            sdp.hang_after_storing(Some(Duration::from_secs(3)));
            hang_until = Some(Instant::now() + Duration::from_secs(3));
        }
        if hang_until.is_some_and(|until| Instant::now() > until) {
            sdp.hang_after_storing(None);
            hang_until = None;
        }
    }
    driver.await.unwrap();
    sdp.hang_after_storing(None);
    assert!(
        nats_restarted && pg_restarted,
        "the run ended before both restarts"
    );

    // Every run reaches an end.
    let owner = support::owner_client(&pg.owner_url()).await;
    let (completed, failed, finished) =
        support::assert_settled(&owner, tickets, &sdp, &nats.url(), &pg.owner_url()).await;
    // The faults are finite and retried: nearly every run is written back
    // (every recorded run wrote back all of them), not merely ended — a
    // stage ending every run as a dead letter would be "settled" too.
    assert!(
        completed as f64 >= 0.95 * tickets as f64,
        "{completed} of {tickets} written back, {failed} dead letters"
    );

    // Every injected LLM failure was served (and the runs still ended well:
    // retried, or given the raw-context note while the breaker was open).
    assert_eq!(
        llm.script_left(),
        0,
        "injected LLM failures were never requested"
    );

    let redeliveries = load::redeliveries(&instances).await;
    let latencies = load::latencies(&owner).await;
    println!(
        "chaos: {tickets} tickets, {n_tenants} tenants: {completed} written back, {failed} dead letters; \
         {:.1} tickets/s to the last terminal run; webhook → note p50 {:.0} ms, p99 {:.0} ms; \
         {kills} SIGKILLs, 1 nats-server restart, 1 PostgreSQL restart; {redeliveries} redeliveries (surviving instances)",
        load::throughput(&sent_at, finished),
        load::percentile(&latencies, 0.5),
        load::percentile(&latencies, 0.99),
    );
    for mut instance in instances {
        let _ = instance.child.kill();
        let _ = instance.child.wait();
    }
    ingress.stop.cancel();
    let _ = ingress.task.await;
}
