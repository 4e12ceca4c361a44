//! Per-stage horizontal scaling with real processes: three instances each of
//! context-gatherer, llm-enhancer and writeback and two of history-projector
//! (each `aiagents run <service>`, a separate OS process) share their
//! stages' durable consumers while 1,000 tickets of four tenants go
//! through. Mid-run one instance of every stage is stopped gracefully
//! (SIGTERM) and one is killed (SIGKILL), and one projector is killed. At
//! the end every ticket has exactly one note, every instance did part of
//! the work, and the projection counts every run once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aia_standins::llm::LlmStandIn;
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use aia_testkit::{NatsServer, TestDatabase, eventually};
use aiagents::dataset::Query;
use aiagents::{ops, webhook};
use futures::StreamExt;
use support::{Instance, Servers, add_tenants, done, signal, spawn, start_ingress};

use crate::support;

const TICKETS: usize = 1000;
const TENANTS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_per_stage_share_the_work_and_stopping_or_killing_them_loses_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    ops::apply_nats(&nats.url()).await.unwrap();
    let sdp = ServiceDeskStandIn::new("sdp-token");
    let sdp_server = aia_standins::serve(sdp.router()).await.unwrap();
    let llm = LlmStandIn::new();
    let llm_server = aia_standins::serve(llm.router()).await.unwrap();
    let keys = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&keys).unwrap();
    let secrets = add_tenants(&db.app_url, &keyring, TENANTS, &sdp_server.url()).await;
    let servers = Servers {
        nats_url: nats.url(),
        database_url: db.app_url.clone(),
        keys: keys.clone(),
        llm_url: format!("{}/v1", llm_server.url()),
        extra_env: vec![],
    };

    // The ingress in this process; the stages as processes of their own.
    let ingress = start_ingress(&nats.url(), &db.app_url, &keys).await;
    let ingress_url = ingress.url.clone();
    let mut instances: Vec<Instance> = Vec::new();
    for service in ["context-gatherer", "llm-enhancer", "writeback"] {
        for _ in 0..3 {
            instances.push(spawn(service, &servers));
        }
    }
    for _ in 0..2 {
        instances.push(spawn("history-projector", &servers));
    }

    // What each instance has done, read until it stops.
    let http = reqwest::Client::new();
    let last_done: Arc<Mutex<HashMap<SocketAddr, u64>>> = Arc::default();
    let watched: Vec<SocketAddr> = instances.iter().map(|i| i.metrics).collect();
    let watcher = {
        let last_done = last_done.clone();
        let http = http.clone();
        tokio::spawn(async move {
            loop {
                for addr in &watched {
                    if let Some(n) = done(&http, *addr).await {
                        last_done.lock().unwrap().insert(*addr, n);
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };

    let ticket = |n: usize| format!("T{}-{n}", n % TENANTS);
    let send = |n: usize| {
        let http = http.clone();
        let ingress_url = ingress_url.clone();
        let secret = secrets[n % TENANTS].expose().to_owned();
        async move {
            let query = Query {
                tenant_id: format!("tenant-{}", n % TENANTS),
                ticket_id: ticket(n),
                subject: Some(format!("Printer {n} offline")),
                description: "The printer on the second floor shows offline.".into(),
                priority: "medium".into(),
                relevant: vec![],
                language: None,
            };
            let (status, answer) = webhook::send_servicedesk(
                &http,
                &ingress_url,
                &secret,
                webhook::servicedesk_body(&query),
            )
            .await
            .unwrap();
            assert_eq!(status, 202, "{answer}");
        }
    };
    let first_half = futures::stream::iter(0..TICKETS / 2)
        .map(send)
        .buffer_unordered(16)
        .collect::<Vec<()>>();
    first_half.await;
    eventually("a third of the notes", Duration::from_secs(120), || async {
        (sdp.all_notes().len() >= TICKETS / 3).then_some(())
    })
    .await;
    // Mid-run: one instance of each stage stopped, one killed, and a
    // projector killed.
    for service in ["context-gatherer", "llm-enhancer", "writeback"] {
        let of_stage: Vec<&Instance> = instances.iter().filter(|i| i.service == service).collect();
        signal(of_stage[0], "-TERM");
        signal(of_stage[1], "-KILL");
    }
    signal(
        instances
            .iter()
            .find(|i| i.service == "history-projector")
            .unwrap(),
        "-KILL",
    );
    futures::stream::iter(TICKETS / 2..TICKETS)
        .map(send)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;

    // Every ticket gets its note; killed instances' messages come back after
    // their ack wait.
    eventually(
        "a note on every ticket",
        Duration::from_secs(240),
        || async { (sdp.all_notes().len() >= TICKETS).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let notes = sdp.all_notes();
    let mut per_ticket: HashMap<String, usize> = HashMap::new();
    for note in &notes {
        *per_ticket.entry(note.request_id.clone()).or_default() += 1;
    }
    let doubled: Vec<_> = per_ticket.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "tickets with more than one note: {doubled:?}"
    );
    assert_eq!(per_ticket.len(), TICKETS, "every ticket has its note");
    for n in 0..TICKETS {
        assert!(
            per_ticket.contains_key(&ticket(n)),
            "no note on {}",
            ticket(n)
        );
    }

    let admin = db.admin_client().await;
    let (completed, received) = eventually("every run projected", Duration::from_secs(60), || async {
        let row = admin
            .query_one(
                "select coalesce(sum(completed), 0)::bigint, coalesce(sum(received), 0)::bigint from tenant_daily_stats",
                &[],
            )
            .await
            .ok()?;
        let totals: (i64, i64) = (row.get(0), row.get(1));
        (totals.0 >= TICKETS as i64).then_some(totals)
    })
    .await;
    assert_eq!((completed, received), (TICKETS as i64, TICKETS as i64));

    watcher.abort();
    let last_done = last_done.lock().unwrap().clone();
    for instance in &instances {
        let n = last_done.get(&instance.metrics).copied().unwrap_or(0);
        if instance.service != "history-projector" {
            assert!(
                n > 0,
                "a {} instance did none of the work",
                instance.service
            );
        }
    }
    for mut instance in instances {
        let _ = instance.child.kill();
        let _ = instance.child.wait();
    }
    ingress.stop.cancel();
    ingress.task.await.unwrap().unwrap();
}
