//! Rebuild throughput: generates a stream of realistic ticket runs (four
//! events each, across 1,000 tenants, with similar tickets in the context
//! and a note of a few hundred words), then times `rebuild_all` while the
//! live projector is not running.

use std::time::{Duration, Instant};

use aia_events::{
    ContextGathered, ContextSource, EnhancementGenerated, Event, ItsmKind, Payload, Priority,
    SimilarTicket, SourceReport, SourceStatus, TenantId, TicketChange, TicketId, TicketReceived,
    TicketText, WritebackCompleted,
};
use aia_testkit::{NatsServer, TestDatabase};
use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

const SUBJECTS: &[&str] = &[
    "VPN drops every hour",
    "Outlook asks for the password",
    "Printer offline",
    "Disk almost full on the file server",
    "Teams calls are choppy",
    "Cannot log in after reimage",
];

fn run_events(tenant: &TenantId, n: u64) -> [Event; 4] {
    let ticket = TicketId::parse(&format!("T-{n}")).expect("ticket");
    let start = Utc::now() - TimeDelta::minutes(30);
    let subject = SUBJECTS[(n % SUBJECTS.len() as u64) as usize];
    let text = TicketText {
        source: ItsmKind::ServicedeskPlus,
        subject: Some(subject.to_owned()),
        description: format!(
            "{subject}. Started this morning for several users in the office; restarting did not help."
        ),
        priority: Priority::High,
    };
    let received = Event::new_run(
        tenant.clone(),
        ticket,
        Payload::TicketReceived(TicketReceived {
            source: ItsmKind::ServicedeskPlus,
            change: TicketChange::Created,
            subject: text.subject.clone(),
            description: text.description.clone(),
            priority: Priority::High,
            requester: Some("user@example.com".into()),
            created_at: start,
            delivery_id: format!("bench-{n}"),
        }),
    );
    let similar = (0..3)
        .map(|k| SimilarTicket {
            ticket_id: TicketId::parse(&format!("R-{}", n % 500 + k)).expect("ticket"),
            subject: SUBJECTS[((n + k) % SUBJECTS.len() as u64) as usize].to_owned(),
            description: "A user reported the same symptom last quarter; it came back after an update.".into(),
            resolution: "Found the cause in the event log, applied the vendor's fix and confirmed with the user.".into(),
            resolved_at: start - TimeDelta::days(30),
            tags: vec!["network".into(), "m365".into()],
            score: 0.8,
            matched_by: Some(aia_events::MatchedBy::Meaning),
        })
        .collect();
    let context = Event::caused_by(
        &received,
        Payload::ContextGathered(ContextGathered {
            ticket: text,
            received_at: received.occurred_at,
            similar_tickets: similar,
            knowledge_articles: vec![],
            systems: vec![],
            monitoring: vec![],
            sources: vec![SourceReport {
                source: ContextSource::SimilarTickets,
                status: SourceStatus::Ok,
                latency_ms: 4,
                items: 3,
                detail: None,
            }],
            query_rewrite: None,
            related_open: vec![],
            language: None,
        }),
    );
    let note = "## Similar Tickets\n- R-1 was resolved by applying the vendor fix.\n\n## Relevant Documentation\nNo information available\n\n\
                ## System Information\nNo information available\n\n## Recommended Next Steps\n1. Check the event log.\n2. Apply the fix.\n"
        .repeat(3);
    let generated = Event::caused_by(
        &context,
        Payload::EnhancementGenerated(EnhancementGenerated {
            source: ItsmKind::ServicedeskPlus,
            received_at: received.occurred_at,
            note_markdown: note,
            provider: Some("litellm".into()),
            model: Some("gpt-4o-mini".into()),
            prompt_version: "2026-11-25.1".into(),
            tokens_in: 900,
            tokens_out: 250,
            cost_usd: 0.0003,
            latency_ms: 1800,
            attempts: 1,
            degraded: false,
            degraded_reason: None,
            context_summary: "3 similar tickets".into(),
            budget_exceeded: false,
            note_language: None,
        }),
    );
    let completed = Event::caused_by(
        &generated,
        Payload::WritebackCompleted(WritebackCompleted {
            itsm: ItsmKind::ServicedeskPlus,
            note_id: Some(n.to_string()),
            attempts: 1,
            already_present: false,
            received_at: received.occurred_at,
            // What write-back posts: the note, a rule and the marker.
            posted_markdown: match &generated.payload {
                Payload::EnhancementGenerated(note) => Some(format!(
                    "{}\n\n---\n\n_ai-agents-ref:{}_\n",
                    note.note_markdown, generated.correlation_id
                )),
                _ => None,
            },
        }),
    );
    [received, context, generated, completed]
}

pub fn run(n_events: u64) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let nats = NatsServer::start().await;
        let db = TestDatabase::create().await;
        aiagents::ops::apply_nats(&nats.url()).await?;
        let (_client, jetstream) = aia_bus::connect(&nats.url(), "bench-rebuild").await?;
        let tenants: Vec<TenantId> = (0..1000).map(|n| TenantId::parse(&format!("tenant-{n:04}")).expect("tenant")).collect();

        let started = Instant::now();
        let mut pending = FuturesUnordered::new();
        let n_runs = n_events / 4;
        for n in 0..n_runs {
            for event in run_events(&tenants[(n % 1000) as usize], n) {
                let subject = aia_events::subject::for_event("tickets", &event);
                pending.push(std::future::IntoFuture::into_future(jetstream.publish(subject, event.to_json().into()).await?));
                if pending.len() >= 4096 {
                    pending.next().await.transpose()?;
                }
            }
        }
        while let Some(ack) = pending.next().await {
            ack?;
        }
        let generated = started.elapsed();
        println!("generated {} events ({n_runs} runs, 1,000 tenants) in {:.1} s", n_runs * 4, generated.as_secs_f64());

        let report = history_projector::rebuild::rebuild_all(&jetstream, &db.admin_url).await?;
        let (owner, connection) = tokio_postgres::connect(&db.admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        println!(
            "rebuild: {} events -> {} runs, {} tenant-days; read+fold {:.2} s, COPY {:.2} s, swap {:.2} s; {:.0} events/s",
            report.events,
            report.runs,
            report.days,
            report.read_and_fold.as_secs_f64(),
            report.write.as_secs_f64(),
            report.swap.as_secs_f64(),
            report.events_per_second()
        );
        let rows: i64 = owner.query_one("select count(*) from enhancement_history", &[]).await?.get(0);
        anyhow::ensure!(rows as u64 == n_runs, "expected {n_runs} runs, found {rows}");
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(())
    })
}
