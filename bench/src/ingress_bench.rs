//! The ingress benchmark. The ingress runs on a runtime of its own (two
//! worker threads) so that the load generator's tasks do not share its
//! scheduler; nats-server and PostgreSQL are real processes on this machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aia_events::{ItsmKind, Payload, TenantId, TicketChange, TicketId, TicketReceived};
use aia_store::Keyring;
use aia_testkit::{NatsServer, TestDatabase};
use tokio::net::TcpListener;

pub fn run(seconds: u64, concurrency: &[usize]) -> anyhow::Result<()> {
    let duration = Duration::from_secs(seconds);
    println!("| sync_interval | connections | path | requests/s | p50 ms | p99 ms | ingress/raw |");
    println!("|---|---|---|---|---|---|---|");
    for (label, options) in [("default (2 min)", ""), ("always", "sync_interval: always")] {
        let load = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let server_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let setup = load.block_on(setup(options))?;
        let listener = load.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let listener = listener.into_std()?;
        let config = ingress::Config::new(
            setup.nats.url(),
            setup.db.app_url.clone(),
            Keyring::parse(&setup.keyring_spec)?,
        );
        server_runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            let _ = ingress::serve(config, listener, std::future::pending()).await;
        });
        for &connections in concurrency {
            let raw = load.block_on(raw_publish(&setup, connections, duration))?;
            let hooks = load.block_on(webhooks(&setup, &url, connections, duration))?;
            println!(
                "| {label} | {connections} | raw publish+ack | {:.0} | {:.2} | {:.2} | |",
                raw.rate, raw.p50, raw.p99
            );
            println!(
                "| {label} | {connections} | ingress webhook | {:.0} | {:.2} | {:.2} | {:.0} % |",
                hooks.rate,
                hooks.p50,
                hooks.p99,
                100.0 * hooks.rate / raw.rate
            );
        }
        server_runtime.shutdown_timeout(Duration::from_secs(1));
        load.block_on(async move { drop(setup) });
    }
    Ok(())
}

struct Setup {
    nats: NatsServer,
    db: TestDatabase,
    keyring_spec: String,
    secret: String,
    run_id: String,
}

async fn setup(jetstream_options: &str) -> anyhow::Result<Setup> {
    let nats = NatsServer::start_with_jetstream_options(jetstream_options).await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await?;
    let keyring_spec = Keyring::generate_spec("bench");
    let keyring = Keyring::parse(&keyring_spec)?;
    let created = aiagents::ops::add_tenant(
        &db.app_url,
        &keyring,
        "bench",
        "Bench",
        ItsmKind::ServicedeskPlus,
        "https://sdp.example.com",
        r#"{"authtoken":"t"}"#,
    )
    .await?;
    // The benchmark measures throughput, not the rate limit.
    db.admin_client()
        .await
        .batch_execute("update tenants set settings = settings || '{\"webhook_rate_limit_per_minute\": 4000000000}'")
        .await?;
    Ok(Setup {
        nats,
        db,
        keyring_spec,
        secret: created.webhook_secret.expose().to_owned(),
        run_id: format!("{}", chrono::Utc::now().timestamp_micros()),
    })
}

struct Measured {
    rate: f64,
    p50: f64,
    p99: f64,
}

fn summarise(mut latencies: Vec<f64>, elapsed: Duration) -> Measured {
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Measured {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
    }
}

fn webhook_body(run_id: &str, n: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event": "ticket_created", "ticket_id": format!("B{run_id}-{n}"), "tenant_id": "bench",
        "subject": "VPN drops", "priority": "high", "created_at": chrono::Utc::now().to_rfc3339(),
        "description": "The VPN tunnel drops every hour for remote staff; reconnecting works until the next drop.",
    }))
    .expect("JSON")
}

async fn webhooks(
    setup: &Setup,
    url: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, counter, secret, run_id) = (
            http.clone(),
            counter.clone(),
            setup.secret.clone(),
            setup.run_id.clone(),
        );
        let url = format!("{url}/webhook/servicedesk");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < duration {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let body = webhook_body(&run_id, n);
                let signature = ingress::auth::sign::hex(&secret, &body);
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-servicedesk-signature", signature)
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status() == 202 => {
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0)
                    }
                    Ok(response) => eprintln!("unexpected answer {}", response.status()),
                    Err(err) => eprintln!("request failed: {err}"),
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    Ok(summarise(latencies, started.elapsed()))
}

async fn raw_publish(
    setup: &Setup,
    publishers: usize,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let (_client, jetstream) = aia_bus::connect(&setup.nats.url(), "bench-raw").await?;
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let (jetstream, counter, run_id) =
            (jetstream.clone(), counter.clone(), setup.run_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < duration {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                // The same event the ingress would publish for the same body.
                let event = aia_events::Event::new_run(
                    TenantId::parse("bench").expect("tenant"),
                    TicketId::parse(&format!("R{run_id}-{n}")).expect("ticket"),
                    Payload::TicketReceived(TicketReceived {
                        source: ItsmKind::ServicedeskPlus,
                        change: TicketChange::Created,
                        subject: Some("VPN drops".into()),
                        description: "The VPN tunnel drops every hour for remote staff; reconnecting works until the next drop.".into(),
                        priority: aia_events::Priority::High,
                        requester: None,
                        created_at: chrono::Utc::now(),
                        delivery_id: format!("raw-{run_id}-{n}"),
                    }),
                );
                let subject = aia_events::subject::for_event("tickets", &event);
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("raw-{run_id}-{n}").as_str());
                let sent = Instant::now();
                let acked = async {
                    jetstream.publish_with_headers(subject, headers, event.to_json().into()).await?.await
                }
                .await;
                match acked {
                    Ok(_) => latencies.push(sent.elapsed().as_secs_f64() * 1000.0),
                    Err(err) => eprintln!("publish failed: {err}"),
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    Ok(summarise(latencies, started.elapsed()))
}
