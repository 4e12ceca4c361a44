//! Similar-ticket search at scale: a generator writes realistic resolved
//! tickets (systems × symptoms × causes × fixes, in users' and technicians'
//! words) for many tenants, then the benchmark times `similar_tickets` for
//! random tenants and new tickets, and the context stage's throughput with
//! every local source on.

use std::time::{Duration, Instant};

use aia_bus::{Delivery, Handled};
use aia_events::{
    Event, ItsmKind, Payload, Priority, TenantId, TicketChange, TicketId, TicketReceived,
};
use aia_store::Keyring;
use aia_testkit::TestDatabase;
use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const SYSTEMS: &[&str] = &[
    "Outlook",
    "Teams",
    "VPN client",
    "printer",
    "file server",
    "laptop",
    "Wi-Fi",
    "SharePoint",
    "OneDrive",
    "ERP client",
    "domain controller",
    "firewall",
    "scanner",
    "phone system",
    "Citrix session",
    "backup job",
];
const SYMPTOMS: &[&str] = &[
    "keeps asking for the password",
    "is very slow since this morning",
    "shows offline",
    "crashes on start",
    "cannot connect",
    "drops every hour",
    "shows a certificate warning",
    "will not sync",
    "freezes when opening attachments",
    "prints blank pages",
    "is out of disk space",
    "times out for remote users",
];
const CAUSES: &[&str] = &[
    "a stale cached credential",
    "an expired certificate",
    "a DHCP lease change",
    "a full volume",
    "a broken add-in",
    "an MTU mismatch on the tunnel",
    "a driver update",
    "a misconfigured proxy",
    "a locked account",
    "an overloaded access point",
    "a failed Windows update",
    "a duplicate IP address",
];
const FIXES: &[&str] = &[
    "cleared the credential manager and signed in again",
    "renewed and rebound the certificate",
    "created a DHCP reservation and updated the port",
    "freed space and set quota alerts",
    "disabled the add-in",
    "lowered the MTU to 1400",
    "rolled back the driver",
    "fixed the proxy exclusion list",
    "unlocked the account and reset the password",
    "moved users to another access point",
    "removed the update and paused it",
    "assigned a new static address",
];

pub(crate) fn resolved_text(rng: &mut StdRng) -> (String, String, String) {
    let system = SYSTEMS.choose(rng).expect("non-empty");
    let symptom = SYMPTOMS.choose(rng).expect("non-empty");
    let cause = CAUSES.choose(rng).expect("non-empty");
    let fix = FIXES.choose(rng).expect("non-empty");
    (
        format!("{system} {symptom}"),
        format!(
            "User reports the {system} {symptom}. Affects {} people on floor {}.",
            rng.gen_range(1..20),
            rng.gen_range(1..6)
        ),
        format!("Cause was {cause}; {fix}. Confirmed with the user."),
    )
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

pub fn run(n_tickets: u64, n_tenants: u64, n_queries: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = TestDatabase::create().await;
        let mut rng = StdRng::seed_from_u64(7);
        let started = Instant::now();
        let (owner, connection) = tokio_postgres::connect(&db.admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let sink = owner
            .copy_in("copy ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, tags, resolved_at, last_event_id) from stdin with (format csv)")
            .await?;
        futures::pin_mut!(sink);
        let mut buffer = String::new();
        for n in 0..n_tickets {
            let (subject, description, resolution) = resolved_text(&mut rng);
            buffer.push_str(&format!(
                "tenant-{:04},T-{n},\"{subject}\",\"{description}\",\"{resolution}\",medium,{{}},2026-01-01T00:00:00Z,{}\n",
                n % n_tenants,
                uuid::Uuid::now_v7()
            ));
            if buffer.len() > 1 << 20 {
                sink.send(bytes::Bytes::from(std::mem::take(&mut buffer))).await?;
            }
        }
        sink.send(bytes::Bytes::from(buffer)).await?;
        sink.as_mut().finish().await?;
        owner.batch_execute("analyze ticket_history").await?;
        println!("loaded {n_tickets} resolved tickets for {n_tenants} tenants in {:.1} s", started.elapsed().as_secs_f64());

        let pool = aia_store::pool(&db.app_url, 4)?;
        let mut client = pool.get().await?;
        let mut latencies = Vec::with_capacity(n_queries);
        for _ in 0..n_queries {
            let tenant = TenantId::parse(&format!("tenant-{:04}", rng.gen_range(0..n_tenants)))?;
            let (subject, description, _) = resolved_text(&mut rng);
            let text = format!("{subject}\n{description}");
            let started = Instant::now();
            let hits = context_gatherer::sources::similar::similar_tickets(
                &mut client,
                &tenant,
                &text,
                aia_events::Language::English,
                5,
            )
            .await?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(hits.iter().all(|hit| hit.ticket_id.as_str().starts_with("T-")));
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "similar-ticket search, {n_queries} queries: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.95),
            percentile(&latencies, 0.99)
        );

        // The whole stage with every local source on (similar tickets,
        // knowledge articles, inventory), 16 tickets at a time.
        let keyring_spec = Keyring::generate_spec("bench");
        for n in 0..16u64 {
            aiagents::ops::add_tenant(&db.app_url, &Keyring::parse(&keyring_spec)?, &format!("tenant-{n:04}"), "Bench",
                ItsmKind::ServicedeskPlus, "https://sdp.example.com", r#"{"authtoken":"t"}"#).await?;
        }
        owner.batch_execute(
            "insert into system_inventory (tenant_id, address, hostname, role)
             select 'tenant-' || lpad((n % 16)::text, 4, '0'), ('10.0.' || (n / 250) || '.' || (n % 250 + 1))::inet, 'host-' || n, 'server'
               from generate_series(0, 3999) n;
             insert into knowledge_articles (tenant_id, article_id, title, body)
             select 'tenant-' || lpad((n % 16)::text, 4, '0'), 'kb-' || n, 'How to fix ' || n, 'Restart the service and check the logs.'
               from generate_series(0, 1599) n;",
        ).await?;
        let pool = aia_store::pool(&db.app_url, 16)?;
        let gatherer = std::sync::Arc::new(context_gatherer::ContextGatherer {
            tenants: std::sync::Arc::new(aia_store::TenantCache::new(
                pool.clone(),
                std::sync::Arc::new(Keyring::parse(&keyring_spec)?),
                std::time::Duration::ZERO,
            )),
            db: pool,
            http: reqwest::Client::new(),
            local_embedder: None,
            knowledge_cache: Default::default(),
            source_timeout: Duration::from_secs(10),
            budget: Duration::from_secs(30),
            monitoring_timeout: Duration::from_secs(15),
            max_similar_tickets: 5,
            related: context_gatherer::sources::related::Related::live(aia_store::open_tickets::DEFAULT_TENANTS),
            metrics: Default::default(),
            rewriter: Some(Default::default()),
        });
        let n_runs = 2000u64;
        let started = Instant::now();
        let stream = futures::stream::iter(0..n_runs).map(|n| {
            let gatherer = gatherer.clone();
            let (subject, description, _) = resolved_text(&mut StdRng::seed_from_u64(n));
            async move {
                let event = Event::new_run(
                    TenantId::parse(&format!("tenant-{:04}", n % 16)).expect("tenant"),
                    TicketId::parse(&format!("N-{n}")).expect("ticket"),
                    Payload::TicketReceived(TicketReceived {
                        source: ItsmKind::ServicedeskPlus,
                        change: TicketChange::Created,
                        subject: Some(subject),
                        description: format!("{description} Host host-{} (10.0.{}.{}) affected.", n % 4000, (n % 4000) / 250, n % 250 + 1),
                        priority: Priority::High,
                        requester: None,
                        created_at: chrono::Utc::now(),
                        delivery_id: n.to_string(),
                    }),
                );
                let delivery = Delivery { attempt: 1, max_deliver: Some(6), stream_sequence: n };
                matches!(aia_bus::dispatch(&*gatherer, &event, delivery).await, Ok(Handled::Publish(_)))
            }
        });
        let ok = stream.buffer_unordered(16).filter(|ok| futures::future::ready(*ok)).count().await;
        anyhow::ensure!(ok as u64 == n_runs, "only {ok} of {n_runs} runs produced context");
        println!(
            "context stage (similar tickets + knowledge base + inventory, 16 concurrent): {:.0} tickets/s",
            n_runs as f64 / started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}
