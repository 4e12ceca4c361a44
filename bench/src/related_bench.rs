//! Related open tickets at their worst: every tenant with `open` open
//! tickets in its window (384-dimension vectors, a few entities each), and
//! the context stage's related-tickets source — read the window, enter the
//! new ticket, compare — timed for random tenants, beside the same source
//! on an empty window (what it costs whatever the window) in the same run.
//! Then the correlator's decision for a ticket of such a tenant, in the
//! midst of an outage (half its window in one live incident): its window,
//! live incidents and the decision itself, in its transaction.

use std::time::Instant;

use aia_events::{TenantId, TicketId};
use aia_store::open_tickets::WindowCache;
use aia_testkit::TestDatabase;
use context_gatherer::sources::related::{self, Related};
use futures::SinkExt as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::search_bench::percentile;

/// The model the window's vectors are of: the local one, whose thresholds
/// the stage and the correlator apply.
const MODEL: &str = aia_store::LOCAL_EMBEDDING_MODEL;

const DIM: usize = 384;

fn unit(rng: &mut StdRng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn bytes_hex(vector: &[f32]) -> String {
    let mut out = String::with_capacity(2 + vector.len() * 2);
    out.push_str("\\\\x");
    for byte in aia_store::open_tickets::quantize(vector) {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn summary(name: &str, latencies: &mut [f64]) {
    latencies.sort_by(f64::total_cmp);
    println!(
        "{name}: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms ({} calls)",
        percentile(latencies, 0.50),
        percentile(latencies, 0.95),
        percentile(latencies, 0.99),
        latencies.len()
    );
}

pub fn run(open: usize, tenants: usize, queries: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = TestDatabase::create().await;
        let mut rng = StdRng::seed_from_u64(24);
        let started = Instant::now();
        let (owner, connection) =
            tokio_postgres::connect(&db.admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let now = chrono::Utc::now();
        let sink = owner
            .copy_in(
                "copy open_tickets (tenant_id, ticket_id, received_at, subject, entities, model, vector) from stdin",
            )
            .await?;
        futures::pin_mut!(sink);
        let mut buffer = String::new();
        for tenant in 0..tenants {
            for n in 0..open {
                let received = now - chrono::Duration::seconds(rng.gen_range(0..7000));
                buffer.push_str(&format!(
                    "tenant-{tenant:04}\tT-{n}\t{}\tticket {n}\t{{10.0.{}.{},host{}}}\t{MODEL}\t{}\n",
                    received.to_rfc3339(),
                    rng.gen_range(0..4),
                    rng.gen_range(1..250),
                    rng.gen_range(0..50),
                    bytes_hex(&unit(&mut rng)),
                ));
                if buffer.len() > 1 << 20 {
                    sink.send(bytes::Bytes::from(std::mem::take(&mut buffer))).await?;
                }
            }
        }
        sink.send(bytes::Bytes::from(buffer)).await?;
        sink.as_mut().finish().await?;
        owner.batch_execute("analyze open_tickets").await?;
        println!(
            "loaded {open} open tickets in the window of each of {tenants} tenants in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let pool = aia_store::pool(&db.app_url, 4)?;
        let entities = vec!["10.0.1.7".to_owned(), "host3".to_owned()];
        // As the stage runs: each process holds its tenants' windows.
        let held = Related::live(tenants * 2);
        // As before the windows were held: every window read in full.
        let unheld = Related {
            windows: std::sync::Arc::new(WindowCache::new(0)),
            ..Related::live(0)
        };
        let time_source = |related: &Related, tenant: String, n: usize, vector: Vec<f32>| {
            let pool = pool.clone();
            let entities = entities.clone();
            let related = related.clone();
            async move {
                let tenant = TenantId::parse(&tenant)?;
                let ticket = TicketId::parse(&format!("NEW-{n}"))?;
                let begun = Instant::now();
                let found = related::related_open(
                    &pool,
                    &tenant,
                    aia_store::open_tickets::NewOpenTicket {
                        ticket_id: &ticket,
                        subject: Some("new"),
                        received_at: chrono::Utc::now(),
                        entities: &entities,
                        vector: Some((MODEL, &vector)),
                    },
                    120,
                    &related,
                    &aia_store::EmbeddingSettings::Local,
                )
                .await
                .map_err(|err| anyhow::anyhow!("{err}"))?;
                anyhow::Ok((begun.elapsed().as_secs_f64() * 1000.0, found.len()))
            }
        };
        // Warm the connections and statements, and read every tenant's
        // window once (a process reads each in full when it first sees the
        // tenant, and every five minutes).
        for n in 0..tenants.max(20) {
            let tenant = format!("tenant-{:04}", n % tenants);
            time_source(&held, tenant.clone(), n, unit(&mut rng)).await?;
            time_source(&unheld, tenant, 100_000 + n, unit(&mut rng)).await?;
        }
        // Held and unheld alternate, so both see the same database.
        let mut full = Vec::with_capacity(queries);
        let mut read_in_full = Vec::with_capacity(queries);
        let mut found = 0;
        for n in 0..queries {
            let tenant = format!("tenant-{:04}", rng.gen_range(0..tenants));
            let (ms, related) = time_source(&held, tenant, 1000 + n, unit(&mut rng)).await?;
            full.push(ms);
            found += related;
            let tenant = format!("tenant-{:04}", rng.gen_range(0..tenants));
            let (ms, _) = time_source(&unheld, tenant, 200_000 + n, unit(&mut rng)).await?;
            read_in_full.push(ms);
        }
        let mut empty = Vec::with_capacity(queries);
        for n in 0..queries {
            let tenant = format!("empty-{:04}", n % tenants);
            empty.push(time_source(&held, tenant, n, unit(&mut rng)).await?.0);
        }
        // A window's full read alone (SQL and decoding), for where the time
        // goes.
        let mut reads = Vec::with_capacity(queries);
        {
            let mut client = pool.get().await?;
            for n in 0..queries {
                let tenant = TenantId::parse(&format!("tenant-{:04}", rng.gen_range(0..tenants)))?;
                let begun = Instant::now();
                let tx = aia_store::tenant_transaction(&mut client, &tenant).await?;
                let window = unheld
                    .windows
                    .window(
                        &tx,
                        &tenant,
                        chrono::Utc::now() - chrono::Duration::hours(2),
                        &TicketId::parse(&format!("R-{n}"))?,
                        Some(MODEL),
                    )
                    .await?;
                tx.commit().await?;
                std::hint::black_box(window);
                reads.push(begun.elapsed().as_secs_f64() * 1000.0);
            }
        }
        summary(
            &format!("related source, {open} open tickets in the window, windows held"),
            &mut full,
        );
        summary(
            "related source, every window read in full (same run)",
            &mut read_in_full,
        );
        summary("of which reading the window (same run)", &mut reads);
        summary("related source, empty window (same run)", &mut empty);
        println!(
            "related tickets found per query (random vectors, shared entities): {:.2}",
            found as f64 / queries as f64
        );

        // A live outage at every tenant, half its window in one incident:
        // a decision compares the new ticket with its centroid, whatever
        // its size. Between two decisions of a tenant another of its
        // window's tickets joins the incident, as in an outage.
        let members = (open / 2).max(1);
        let mut outages: Vec<(uuid::Uuid, u32, usize)> = Vec::with_capacity(tenants);
        for tenant in 0..tenants {
            let tenant = TenantId::parse(&format!("tenant-{tenant:04}"))?;
            let tickets = (0..members)
                .map(|n| {
                    Ok(aia_events::IncidentTicket {
                        ticket_id: TicketId::parse(&format!("T-{n}"))?,
                        subject: None,
                        received_at: now,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let incident = uuid::Uuid::now_v7();
            let detected = incident_correlator::incident_event(
                &tenant,
                incident,
                None,
                aia_events::Payload::IncidentDetected(aia_events::IncidentDetected {
                    incident_id: incident,
                    version: 1,
                    detected_by: tickets[0].ticket_id.clone(),
                    tickets,
                    shared_entities: vec![],
                    summary: "an outage".to_owned(),
                    threshold: 3,
                    window_minutes: 30,
                }),
            );
            let mut client = pool.get().await?;
            let tx = aia_store::tenant_transaction(&mut client, &tenant).await?;
            incident_correlator::store::apply(&tx, &detected).await?;
            tx.commit().await?;
            outages.push((incident, 1, members));
        }
        owner.batch_execute("analyze incidents; analyze incident_tickets").await?;
        println!(
            "a live incident of {members} tickets at each tenant, one more joining before each decision"
        );

        // The correlator's decision over such a window, as the stage makes
        // it: held windows, only the tickets like the new one looked up.
        let closeness = incident_correlator::decide::DEFAULT_CLOSENESS;
        let rules = incident_correlator::decide::Rules::from(&aia_store::IncidentSettings::default());
        for (name, windows) in [
            ("windows held", WindowCache::new(tenants * 2)),
            ("every window read in full", WindowCache::new(0)),
        ] {
            let mut decisions = Vec::with_capacity(queries);
            let centroids = incident_correlator::centroids::Centroids::default();
            let mut client = pool.get().await?;
            for n in 0..queries {
                let index = rng.gen_range(0..tenants);
                let tenant = TenantId::parse(&format!("tenant-{index:04}"))?;
                let (incident, version, next) = &mut outages[index];
                *version += 1;
                let joined = incident_correlator::incident_event(
                    &tenant,
                    *incident,
                    None,
                    aia_events::Payload::IncidentUpdated(aia_events::IncidentUpdated {
                        incident_id: *incident,
                        version: *version,
                        change: aia_events::IncidentChange::TicketAdded,
                        status: aia_events::IncidentStatus::Open,
                        ticket: Some(aia_events::IncidentTicket {
                            ticket_id: TicketId::parse(&format!("T-{next}"))?,
                            subject: None,
                            received_at: now,
                        }),
                        by: None,
                        ticket_count: u32::try_from(*next + 1)?,
                    }),
                );
                *next += 1;
                {
                    let tx = aia_store::tenant_transaction(&mut client, &tenant).await?;
                    incident_correlator::store::apply(&tx, &joined).await?;
                    tx.commit().await?;
                }
                let ticket = aia_events::IncidentTicket {
                    ticket_id: TicketId::parse(&format!("D-{n}"))?,
                    subject: None,
                    received_at: chrono::Utc::now(),
                };
                let vector = unit(&mut rng);
                let begun = Instant::now();
                let tx =
                    incident_correlator::store::locked_tenant_transaction(&mut client, &tenant)
                        .await?;
                let arrival = incident_correlator::decide::Arrival {
                    ticket: &ticket,
                    vector: Some(&vector),
                    entities: &entities,
                };
                let mut window = windows
                    .window(
                        &tx,
                        &tenant,
                        ticket.received_at - rules.window,
                        &ticket.ticket_id,
                        Some(MODEL),
                    )
                    .await?;
                window.retain(|open| arrival.links(open, &closeness).is_some());
                let ids: Vec<&str> = window.iter().map(|o| o.ticket_id.as_str()).collect();
                let assigned = incident_correlator::store::assigned(&tx, &tenant, &ids).await?;
                let mut live = incident_correlator::store::live(&tx, &tenant).await?;
                centroids
                    .fill(&tx, &tenant, MODEL, &mut live)
                    .await?;
                let decision = incident_correlator::decide::decide(
                    arrival, &window, &live, &assigned, &rules, &closeness,
                );
                tx.commit().await?;
                std::hint::black_box(decision);
                decisions.push(begun.elapsed().as_secs_f64() * 1000.0);
            }
            summary(
                &format!(
                    "correlator decision (lock, 30-minute window, live incidents, decide), {name}"
                ),
                &mut decisions,
            );
        }
        anyhow::Ok(())
    })
}
