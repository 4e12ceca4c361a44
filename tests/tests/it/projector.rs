//! The history projection applies each event once, never moves a run
//! backwards, keeps per-stage latencies and daily counters exact, and purges
//! past its retention.

use std::time::Duration;

use aia_events::{Event, Payload, examples};
use aia_testkit::TestDatabase;
use chrono::{TimeDelta, Utc};
use history_projector::projection::{Applied, apply};

/// One run's events, in pipeline order, with times a second apart.
fn run_events(ticket: &str) -> Vec<Event> {
    let samples = examples::all();
    let pick = |event_type: &str| {
        samples
            .iter()
            .find(|event| event.event_type() == event_type)
            .unwrap()
            .clone()
    };
    let start = Utc::now() - TimeDelta::seconds(10);
    let correlation = uuid::Uuid::now_v7();
    let mut previous: Option<uuid::Uuid> = None;
    [
        "ticket.received",
        "context.gathered",
        "enhancement.generated",
        "writeback.completed",
    ]
    .iter()
    .enumerate()
    .map(|(idx, event_type)| {
        let mut event = pick(event_type);
        event.event_id = uuid::Uuid::now_v7();
        event.ticket_id = aia_events::TicketId::parse(ticket).unwrap();
        event.correlation_id = correlation;
        event.causation_id = previous;
        event.occurred_at = start + TimeDelta::seconds(idx as i64);
        match &mut event.payload {
            Payload::ContextGathered(p) => p.received_at = start,
            Payload::EnhancementGenerated(p) => p.received_at = start,
            Payload::WritebackCompleted(p) => p.received_at = start,
            _ => {}
        }
        previous = Some(event.event_id);
        event
    })
    .collect()
}

/// The events of these tests come without gaps.
fn no_gaps() -> Vec<(u64, aia_events::Event)> {
    Vec::new()
}

async fn client(db: &TestDatabase) -> aia_store::Client {
    aia_store::pool(&db.app_url, 1)
        .unwrap()
        .get()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_run_is_projected_once_with_per_stage_latencies_and_daily_counters() {
    let db = TestDatabase::create().await;
    let mut client = client(&db).await;
    let events = run_events("SUP-1");
    let mut effects = Vec::new();
    for (idx, event) in events.iter().enumerate() {
        match apply(&mut client, event, idx as u64 + 1, &no_gaps())
            .await
            .unwrap()
        {
            Applied::Applied(effect) => effects.push(effect),
            other => panic!("event {idx} was not applied: {other:?}"),
        }
    }
    // What the metrics count: one received run, then one completed run whose
    // webhook-to-note time is the 3 s between ticket.received and the note.
    assert_eq!(effects[0].counters.received, 1);
    let last = effects.last().unwrap();
    assert_eq!(
        (last.counters.completed, last.counters.processing_ms_total),
        (1, 3000)
    );
    assert!(effects.iter().all(|effect| !effect.ticket_stored));
    // Redelivery of anything at or below the checkpoint changes nothing.
    for (idx, event) in events.iter().enumerate() {
        assert_eq!(
            apply(&mut client, event, idx as u64 + 1, &no_gaps())
                .await
                .unwrap(),
            Applied::AlreadyApplied
        );
    }
    let admin = db.admin_client().await;
    let row = admin
        .query_one(
            "select status, context_ms, llm_ms, writeback_ms, processing_ms, model, tokens_in
               from enhancement_history where ticket_id = 'SUP-1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "completed");
    assert_eq!(
        (
            row.get::<_, i64>(1),
            row.get::<_, i64>(2),
            row.get::<_, i64>(3),
            row.get::<_, i64>(4)
        ),
        (1000, 1000, 1000, 3000)
    );
    let stats = admin
        .query_one("select received, completed, failed, tokens_in, processing_ms_total from tenant_daily_stats", &[])
        .await
        .unwrap();
    assert_eq!(
        (
            stats.get::<_, i32>(0),
            stats.get::<_, i32>(1),
            stats.get::<_, i32>(2),
            stats.get::<_, i64>(3),
            stats.get::<_, i64>(4)
        ),
        (1, 1, 0, 812, 3000)
    );
}

#[tokio::test]
async fn duplicates_and_late_events_never_move_a_run_back_or_count_twice() {
    let db = TestDatabase::create().await;
    let mut client = client(&db).await;
    let events = run_events("SUP-2");
    // Written back before the context event arrives (a republished duplicate
    // beyond the stream's dedupe window has a new sequence).
    let order = [0usize, 3, 1, 2, 3, 0];
    for (seq, idx) in order.iter().enumerate() {
        let mut event = events[*idx].clone();
        if seq >= 4 {
            event.event_id = uuid::Uuid::now_v7(); // a true duplicate: new id, same facts
        }
        apply(&mut client, &event, seq as u64 + 1, &no_gaps())
            .await
            .unwrap();
    }
    let admin = db.admin_client().await;
    let status: String = admin
        .query_one("select status from enhancement_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "completed");
    let stats = admin
        .query_one("select received, completed from tenant_daily_stats", &[])
        .await
        .unwrap();
    assert_eq!((stats.get::<_, i32>(0), stats.get::<_, i32>(1)), (1, 1));
}

#[tokio::test]
async fn events_an_instance_was_not_handed_are_read_from_the_stream_and_applied_in_order() {
    let db = TestDatabase::create().await;
    let mut client = client(&db).await;
    // Another tenant's run interleaved: the missing events are applied under
    // their own tenant's row-level security.
    let acme = run_events("SUP-7");
    let mut globex = run_events("SUP-8");
    for event in &mut globex {
        event.tenant_id = aia_events::TenantId::parse("globex").unwrap();
    }
    let stream: Vec<(u64, Event)> = vec![
        (1, acme[0].clone()),
        (2, globex[0].clone()),
        (3, acme[1].clone()),
        // 4 expired: no longer in the stream.
        (5, acme[2].clone()),
        (6, acme[3].clone()),
    ];
    // After a crash the first event this instance gets is the sixth.
    let Applied::Applied(effect) = apply(&mut client, &acme[3], 6, &stream).await.unwrap() else {
        panic!("the sixth event was taken for a redelivery")
    };
    assert_eq!(
        effect
            .filled
            .iter()
            .map(|(tenant, _)| tenant.as_str())
            .collect::<Vec<_>>(),
        ["acme-msp", "globex", "acme-msp", "acme-msp"]
    );
    assert_eq!(effect.filled[0].1.counters.received, 1);
    assert_eq!(effect.counters.completed, 1);
    // The redeliveries that follow change nothing.
    for (sequence, event) in &stream {
        assert_eq!(
            apply(&mut client, event, *sequence, &stream).await.unwrap(),
            Applied::AlreadyApplied
        );
    }
    let admin = db.admin_client().await;
    let rows = admin
        .query(
            "select tenant_id, status from enhancement_history order by tenant_id",
            &[],
        )
        .await
        .unwrap();
    let rows: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        rows,
        [
            ("acme-msp".to_owned(), "completed".to_owned()),
            ("globex".to_owned(), "received".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_long_gap_is_filled_in_steps_of_bounded_transactions() {
    let db = TestDatabase::create().await;
    let mut client = client(&db).await;
    let fill = history_projector::projection::FILL_BATCH;
    let stream: Vec<(u64, Event)> = (0..fill + 10)
        .flat_map(|n| run_events(&format!("SUP-{n}")).into_iter().take(1))
        .enumerate()
        .map(|(idx, event)| (idx as u64 + 1, event))
        .collect();
    let (last_sequence, last) = stream.last().cloned().unwrap();
    let mut steps = 0;
    loop {
        steps += 1;
        match apply(&mut client, &last, last_sequence, &stream)
            .await
            .unwrap()
        {
            Applied::FilledGap(effect) => assert_eq!(effect.filled.len(), fill),
            Applied::Applied(effect) => {
                assert_eq!(effect.filled.len(), 9);
                break;
            }
            Applied::AlreadyApplied => panic!("the last event was taken as applied"),
        }
    }
    assert_eq!(steps, 2);
    let received: i64 = db
        .admin_client()
        .await
        .query_one("select count(*) from enhancement_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(received, (fill + 10) as i64, "every run projected once");
}

#[tokio::test]
async fn the_latest_rating_stands_and_old_runs_are_purged() {
    let db = TestDatabase::create().await;
    let mut client = client(&db).await;
    let events = run_events("SUP-3");
    let mut seq = 0;
    for event in &events {
        seq += 1;
        apply(&mut client, event, seq, &no_gaps()).await.unwrap();
    }
    for (stars, thumbs) in [(Some(2), None), (None, Some(true))] {
        seq += 1;
        let rated = Event::caused_by(
            &events[3],
            Payload::EnhancementRated(aia_events::EnhancementRated {
                stars,
                thumbs_up: thumbs,
                comment: None,
            }),
        );
        apply(&mut client, &rated, seq, &no_gaps()).await.unwrap();
    }
    let admin = db.admin_client().await;
    let row = admin
        .query_one(
            "select rating_stars, rating_thumbs_up from enhancement_history",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, Option<i16>>(0), row.get::<_, Option<bool>>(1)),
        (None, Some(true))
    );

    // An old run next to the fresh one: only the old one goes.
    let mut old = run_events("SUP-OLD");
    old[0].occurred_at = Utc::now() - TimeDelta::days(120);
    seq += 1;
    apply(&mut client, &old[0], seq, &no_gaps()).await.unwrap();
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    let purged = history_projector::retention::purge(&pool, Duration::from_secs(86_400 * 90))
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let left: Vec<String> = admin
        .query("select ticket_id from enhancement_history", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, ["SUP-3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_projector_serves_each_run_once_on_metrics_even_when_redelivered() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = aia_testkit::NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let events = run_events("SUP-9");
    let tenant = events[0].tenant_id.to_string();
    for event in &events {
        aia_bus::publish_event(&jetstream, event, &event.event_id.to_string())
            .await
            .unwrap();
    }
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let scrape = || async move {
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    let completed =
        format!(r#"enhancement_requests_total{{tenant_id="{tenant}",status="completed"}} 1"#);

    // First life: the run is counted once, with its webhook-to-note time.
    let mut config = history_projector::Config::new(nats.url(), db.app_url.clone());
    config.metrics_addr = Some(addr);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let projector = tokio::spawn(history_projector::run(
        config.clone(),
        shutdown.clone().cancelled_owned(),
    ));
    let text = aia_testkit::eventually("the counted run", Duration::from_secs(20), || async {
        scrape().await.filter(|text| text.contains(&completed))
    })
    .await;
    assert!(
        text.contains("enhancement_duration_seconds_count 1"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"enhancement_success_rate{{tenant_id="{tenant}"}} 1.0"#
        )),
        "{text}"
    );
    assert!(
        text.contains(r#"stage_consumer_pending{stage="history-projector"}"#),
        "{text}"
    );
    shutdown.cancel();
    projector.await.unwrap().unwrap();

    // Second life: the consumer is reset, so every event is delivered again;
    // the checkpoint skips them and nothing is counted.
    let stream = jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    stream.delete_consumer("history-projector").await.unwrap();
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    // A new process: metrics start from nothing.
    let config = history_projector::Config {
        registry: aia_telemetry::metrics::registry(),
        ..config
    };
    let projector = tokio::spawn(history_projector::run(
        config,
        shutdown.clone().cancelled_owned(),
    ));
    let total = events.len() as u64;
    aia_testkit::eventually("the replayed events acked", Duration::from_secs(20), || {
        let stream = stream.clone();
        async move {
            let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                stream.get_consumer("history-projector").await.ok()?;
            let info = consumer.info().await.ok()?;
            (info.ack_floor.stream_sequence >= total).then_some(())
        }
    })
    .await;
    let text = aia_testkit::eventually("the metrics", Duration::from_secs(10), || async {
        scrape().await
    })
    .await;
    assert!(
        !text.contains("enhancement_requests_total{"),
        "a replayed run was counted again:\n{text}"
    );
    shutdown.cancel();
    projector.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projector_instances_share_the_stream_and_one_crashing_loses_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = aia_testkit::NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let config = history_projector::Config::new(nats.url(), db.app_url.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let first = tokio::spawn(history_projector::run(
        config.clone(),
        stop.clone().cancelled_owned(),
    ));
    let second = tokio::spawn(history_projector::run(
        config,
        stop.clone().cancelled_owned(),
    ));
    let publish_runs = |from: usize, to: usize| {
        let jetstream = jetstream.clone();
        async move {
            for n in from..to {
                for event in run_events(&format!("SUP-{n}")) {
                    aia_bus::publish_event(&jetstream, &event, &event.event_id.to_string())
                        .await
                        .unwrap();
                }
            }
        }
    };
    let admin = db.admin_client().await;
    let completed = || async {
        admin
            .query_one("select coalesce(sum(completed), 0)::bigint, coalesce(sum(received), 0)::bigint from tenant_daily_stats", &[])
            .await
            .ok()
            .map(|row| (row.get::<_, i64>(0), row.get::<_, i64>(1)))
    };
    publish_runs(0, 150).await;
    aia_testkit::eventually("some runs projected", Duration::from_secs(30), || async {
        completed().await.filter(|(done, _)| *done >= 50)
    })
    .await;
    // One instance dies mid-stream, holding events it never acknowledged.
    first.abort();
    publish_runs(150, 300).await;
    let totals =
        aia_testkit::eventually("every run projected", Duration::from_secs(60), || async {
            completed().await.filter(|(done, _)| *done >= 300)
        })
        .await;
    assert_eq!(totals, (300, 300), "every run counted exactly once");
    let rows: i64 = admin
        .query_one(
            "select count(*) from enhancement_history where status = 'completed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 300);
    stop.cancel();
    second.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_event_that_fails_on_its_data_is_skipped_and_the_projection_goes_on() {
    use history_projector::projection::{Advanced, advance_one, apply_batch};
    let db = TestDatabase::create().await;
    let mut client = client(&db).await;
    let good = run_events("GOOD-1");
    let mut poison = run_events("BAD-1").remove(0);
    // PostgreSQL text cannot hold a NUL: this event fails on its data every time.
    if let Payload::TicketReceived(ticket) = &mut poison.payload {
        ticket.subject = Some("broken\u{0}subject".into());
    }
    let stream: Vec<(u64, Event)> = vec![
        (1, good[0].clone()),
        (2, poison.clone()),
        (3, good[1].clone()),
    ];

    // The batch holding event 3 fails while filling in event 2 before it.
    let later = [(3, &good[1])];
    assert!(apply_batch(&mut client, &later, &stream).await.is_err());

    // One at a time from the checkpoint: 1 applied, 2 skipped, 3 applied.
    let mut outcomes = Vec::new();
    loop {
        match advance_one(&mut client, &stream).await.unwrap() {
            Advanced::UpToDate => break,
            Advanced::Applied(sequence, _, _) => outcomes.push(format!("applied {sequence}")),
            Advanced::Skipped(sequence, _) => outcomes.push(format!("skipped {sequence}")),
        }
    }
    assert_eq!(outcomes, ["applied 1", "skipped 2", "applied 3"]);
    // Later events apply normally again.
    let next = [(4, &good[2])];
    let applied = apply_batch(&mut client, &next, &stream).await.unwrap();
    assert!(matches!(applied[0], Applied::Applied(_)));
    let admin = db.admin_client().await;
    let status: String = admin
        .query_one(
            "select status from enhancement_history where ticket_id = 'GOOD-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "enhanced");
    let bad: i64 = admin
        .query_one(
            "select count(*) from enhancement_history where ticket_id = 'BAD-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(bad, 0);
}

#[tokio::test]
async fn a_batch_of_interleaved_runs_writes_what_one_event_at_a_time_writes() {
    use history_projector::projection::apply_batch;
    // Three runs for each of two tenants, their events interleaved as the
    // stages publish them, with costs whose floating-point sum depends on
    // the order it is added in: (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3).
    let mut runs = Vec::new();
    for (idx, (tenant, ticket)) in ["acme", "globex"]
        .iter()
        .flat_map(|tenant| ["T-1", "T-2", "T-3"].map(|ticket| (*tenant, ticket)))
        .enumerate()
    {
        let mut events = run_events(ticket);
        for event in &mut events {
            event.tenant_id = aia_events::TenantId::parse(tenant).unwrap();
            if let Payload::EnhancementGenerated(generated) = &mut event.payload {
                generated.cost_usd = [0.1, 0.2, 0.3][idx % 3];
            }
        }
        runs.push(events);
    }
    let stream: Vec<(u64, Event)> = (0..4)
        .flat_map(|stage| runs.iter().map(move |run| run[stage].clone()))
        .enumerate()
        .map(|(idx, event)| (idx as u64 + 1, event))
        .collect();

    // Two batches, the first ending after acme's first cost: the second
    // adds two costs to a day that already has one.
    let batched = TestDatabase::create().await;
    let mut batched_client = client(&batched).await;
    let events: Vec<(u64, &Event)> = stream.iter().map(|(seq, event)| (*seq, event)).collect();
    let mut outcomes = Vec::new();
    for batch in [&events[..13], &events[13..]] {
        outcomes.extend(
            apply_batch(&mut batched_client, batch, &no_gaps())
                .await
                .unwrap(),
        );
    }
    let single = TestDatabase::create().await;
    let mut one_by_one = Vec::new();
    let mut single_client = client(&single).await;
    for (sequence, event) in &stream {
        one_by_one.push(
            apply(&mut single_client, event, *sequence, &no_gaps())
                .await
                .unwrap(),
        );
    }

    // Each event's own effect is reported as if it had been applied alone...
    assert_eq!(outcomes, one_by_one);
    let completed = outcomes
        .iter()
        .filter(
            |outcome| matches!(outcome, Applied::Applied(effect) if effect.counters.completed == 1),
        )
        .count();
    assert_eq!(completed, 6);
    // ...and the tables hold exactly the same rows, sums included.
    let snapshot = aia_testkit::projection_snapshot(&batched.admin_client().await).await;
    assert_eq!(
        snapshot,
        aia_testkit::projection_snapshot(&single.admin_client().await).await
    );
    assert!(snapshot[0].matches("\"completed\"").count() == 6);
    assert!(snapshot[2].contains("globex") && snapshot[2].contains("acme"));
}

/// Mid-upgrade, an event of a newer build than this projector's: it is
/// neither applied nor skipped, and the checkpoint stays before it — the
/// runs after it wait for an upgraded projector rather than have it
/// missing for good (a later event's gap-filling used to skip it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_from_a_newer_build_holds_the_checkpoint_before_it() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = aia_testkit::NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let before = run_events("SUP-1");
    let after = run_events("SUP-3");
    let mut newer = run_events("SUP-2").remove(0);
    newer.event_id = uuid::Uuid::now_v7();
    for event in &before {
        aia_bus::publish_event(&jetstream, event, &event.event_id.to_string())
            .await
            .unwrap();
    }
    let mut wire: serde_json::Value = serde_json::from_slice(&newer.to_json()).unwrap();
    wire["schema_version"] = 99.into();
    let newer_sequence = jetstream
        .publish(
            aia_events::subject::for_event(aia_events::subject::DEFAULT_PREFIX, &newer),
            serde_json::to_vec(&wire).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    for event in &after {
        aia_bus::publish_event(&jetstream, event, &event.event_id.to_string())
            .await
            .unwrap();
    }
    let config = history_projector::Config::new(nats.url(), db.app_url.clone());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let projector = tokio::spawn(history_projector::run(
        config,
        shutdown.clone().cancelled_owned(),
    ));
    let admin = db.admin_client().await;
    let projected = |ticket: &'static str| {
        let admin = &admin;
        async move {
            admin
                .query_opt(
                    "select 1 from enhancement_history where ticket_id = $1",
                    &[&ticket],
                )
                .await
                .unwrap()
                .is_some()
        }
    };
    aia_testkit::eventually("the run before it", Duration::from_secs(20), || async {
        projected("SUP-1").await.then_some(())
    })
    .await;
    // Time for the runs after it to be delivered and tried.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let checkpoint: i64 = admin
        .query_one(
            "select stream_sequence from projection_checkpoints where projection = 'history'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        u64::try_from(checkpoint).unwrap() < newer_sequence,
        "checkpoint {checkpoint} moved past the newer event at {newer_sequence}"
    );
    assert!(!projected("SUP-3").await, "applied past the newer event");
    shutdown.cancel();
    projector.await.unwrap().unwrap();
}
