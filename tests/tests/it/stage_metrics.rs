//! Every stage counts its messages by outcome, their processing time,
//! what is in flight, redeliveries, worker slots and consumer lag, and
//! serves them on /metrics.

use std::sync::Arc;
use std::time::Duration;

use aia_bus::StageConfig;
use aia_events::{Event, ItsmKind, Payload, Stage, TicketId, examples};
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use aia_testkit::{NatsServer, TestDatabase, eventually};

/// NATS with the topology, a database with tenant `acme-msp` on `sdp`,
/// and a JetStream client: what each write-back stage below runs on.
struct Rig {
    _nats: NatsServer,
    db: TestDatabase,
    jetstream: aia_bus::JetStream,
    keys: String,
    _client: async_nats::Client,
    _server: aia_standins::Running,
}

async fn rig(sdp: &ServiceDeskStandIn) -> Rig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let server = aia_standins::serve(sdp.router()).await.unwrap();
    let keys = Keyring::generate_spec("k1");
    aiagents::ops::add_tenant(
        &db.app_url,
        &Keyring::parse(&keys).unwrap(),
        "acme-msp",
        "Acme",
        ItsmKind::ServicedeskPlus,
        &server.url(),
        r#"{"authtoken":"t"}"#,
    )
    .await
    .unwrap();
    let (client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    Rig {
        _nats: nats,
        db,
        jetstream,
        keys,
        _client: client,
        _server: server,
    }
}

/// A running write-back stage and how to stop it.
struct Running {
    shutdown: tokio_util::sync::CancellationToken,
    stage: tokio::task::JoinHandle<Result<(), aia_bus::stage::StageError>>,
}

impl Rig {
    fn writeback(&self, config: StageConfig) -> Running {
        self.writeback_leasing(config, Duration::from_secs(30))
    }

    /// … whose deliveries hold a run's write-back for `lease`.
    fn writeback_leasing(&self, config: StageConfig, lease: Duration) -> Running {
        let pool = aia_store::pool(&self.db.app_url, 2).unwrap();
        let handler = Arc::new(writeback::Writeback {
            tenants: Arc::new(aia_store::TenantCache::new(
                pool.clone(),
                Arc::new(Keyring::parse(&self.keys).unwrap()),
                Duration::ZERO,
            )),
            db: pool,
            http: reqwest::Client::new(),
            public_url: None,
            lease,
        });
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stage = tokio::spawn(aia_bus::run_stage(
            self.jetstream.clone(),
            handler,
            config,
            shutdown.clone().cancelled_owned(),
        ));
        Running { shutdown, stage }
    }
}

fn writeback_config(concurrency: usize, metrics_addr: Option<std::net::SocketAddr>) -> StageConfig {
    StageConfig {
        stage: Stage::Writeback.as_str(),
        durable: Stage::Writeback.as_str().to_owned(),
        concurrency,
        registry: aia_telemetry::metrics::registry(),
        metrics_addr,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_serves_its_counts_on_metrics() {
    let sdp = ServiceDeskStandIn::new("t");
    let rig = rig(&sdp).await;
    let jetstream = &rig.jetstream;
    let mut event = examples::all()
        .into_iter()
        .find(|event| matches!(&event.payload, Payload::EnhancementGenerated(g) if !g.degraded))
        .unwrap();
    event.ticket_id = TicketId::parse("SUP-3").unwrap();
    aia_bus::publish_event(jetstream, &event, "m1")
        .await
        .unwrap();

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let config = writeback_config(32, Some(addr));
    let registry = config.registry.clone();
    let running = rig.writeback(config);
    eventually("the note", Duration::from_secs(20), || async {
        (!sdp.notes("SUP-3").is_empty()).then_some(())
    })
    .await;
    let text = eventually("the counts", Duration::from_secs(10), || async {
        let text = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains(r#"stage_messages_total{stage="writeback",outcome="done"} 1"#)
            .then_some(text)
    })
    .await;
    assert!(
        text.contains(r#"stage_in_flight{stage="writeback"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"stage_processing_seconds_count{stage="writeback"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"stage_workers{stage="writeback"} "#),
        "{text}"
    );
    assert!(
        text.contains(r#"stage_consumer_pending{stage="writeback"}"#),
        "{text}"
    );
    // Series exist before their first event.
    let encoded = aia_telemetry::metrics::encode(&registry);
    assert!(
        encoded.contains(r#"stage_redeliveries_total{stage="writeback"} 0"#),
        "{encoded}"
    );
    assert!(
        encoded.contains(r#"stage_messages_total{stage="writeback",outcome="gave_up"} 0"#),
        "{encoded}"
    );

    // Mid-upgrade, a newer build writes a version this one does not read:
    // it is offered back for an upgraded instance, not terminated (which
    // would end its run without a note or a failure).
    let mut newer = event.clone();
    newer.event_id = uuid::Uuid::now_v7();
    newer.ticket_id = TicketId::parse("SUP-4").unwrap();
    let mut wire: serde_json::Value = serde_json::from_slice(&newer.to_json()).unwrap();
    wire["schema_version"] = 99.into();
    jetstream
        .publish(
            aia_events::subject::for_event(aia_events::subject::DEFAULT_PREFIX, &newer),
            serde_json::to_vec(&wire).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    eventually(
        "the newer event offered back",
        Duration::from_secs(20),
        || async {
            let encoded = aia_telemetry::metrics::encode(&registry);
            encoded
                .contains(r#"stage_messages_total{stage="writeback",outcome="newer"} 1"#)
                .then_some(())
        },
    )
    .await;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = jetstream
        .get_stream(aia_bus::STREAM)
        .await
        .unwrap()
        .get_consumer(Stage::Writeback.as_str())
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 1, "kept, waiting to be offered again");
    assert!(sdp.notes("SUP-4").is_empty());
    running.shutdown.cancel();
    running.stage.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stages_consumer_lag_is_read_from_jetstream() {
    let nats = NatsServer::start().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let template = examples::all()
        .into_iter()
        .find(|event| matches!(&event.payload, Payload::EnhancementGenerated(_)))
        .unwrap();
    for n in 0..3 {
        let mut event = template.clone();
        event.event_id = uuid::Uuid::now_v7();
        event.ticket_id = TicketId::parse(&format!("SUP-{n}")).unwrap();
        aia_bus::publish_event(&jetstream, &event, &event.event_id.to_string())
            .await
            .unwrap();
    }
    // Nothing consumes: the writeback consumer is three behind, the
    // context-gatherer's (which does not take enhancements) none.
    let registry = aia_telemetry::metrics::registry();
    let stream = jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    let mut watchers = Vec::new();
    for stage in ["writeback", "context-gatherer"] {
        let consumer = stream.get_consumer(stage).await.unwrap();
        watchers.push(
            aia_bus::metrics::ConsumerLag::register(&registry, stage)
                .watch(consumer, Duration::from_millis(100)),
        );
    }
    let text = eventually("the lag", Duration::from_secs(10), || async {
        let text = aia_telemetry::metrics::encode(&registry);
        text.contains(r#"stage_consumer_pending{stage="writeback"} 3"#)
            .then_some(text)
    })
    .await;
    assert!(
        text.contains(r#"stage_consumer_pending{stage="context-gatherer"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"stage_consumer_ack_pending{stage="writeback"} 0"#),
        "{text}"
    );
    for watcher in watchers {
        watcher.abort();
    }
}

/// A stage takes from JetStream only what its free workers can start: with
/// its four workers busy, the other tickets stay in the stream, undelivered,
/// instead of waiting in a buffer while their ack wait runs out (then to
/// be redelivered elsewhere, and their deliveries used up, untried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_stage_takes_no_message_it_cannot_start() {
    let sdp = ServiceDeskStandIn::new("t");
    sdp.hang_before_storing(Some(Duration::from_secs(3)));
    let rig = rig(&sdp).await;
    let jetstream = &rig.jetstream;
    let template = examples::all()
        .into_iter()
        .find(|event| matches!(&event.payload, Payload::EnhancementGenerated(g) if !g.degraded))
        .unwrap();
    for n in 0..12 {
        let mut event = template.clone();
        event.event_id = uuid::Uuid::now_v7();
        event.correlation_id = uuid::Uuid::now_v7();
        event.ticket_id = TicketId::parse(&format!("SUP-{n}")).unwrap();
        aia_bus::publish_event(jetstream, &event, &event.event_id.to_string())
            .await
            .unwrap();
    }
    let running = rig.writeback(writeback_config(4, None));
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = jetstream
        .get_stream(aia_bus::STREAM)
        .await
        .unwrap()
        .get_consumer(Stage::Writeback.as_str())
        .await
        .unwrap();
    eventually("four tickets in work", Duration::from_secs(10), || {
        let mut consumer = consumer.clone();
        async move {
            let info = consumer.info().await.ok()?.clone();
            (info.num_ack_pending >= 4).then_some(())
        }
    })
    .await;
    // Their help desk takes three seconds; meanwhile nothing else is taken.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let info = consumer.info().await.unwrap();
    assert_eq!(
        info.num_ack_pending, 4,
        "only the tickets in work are delivered"
    );
    assert_eq!(info.num_pending, 8, "the others wait in the stream");
    running.shutdown.cancel();
    running.stage.await.unwrap().unwrap();
}

/// A stage whose consumer is deleted under it stops with an error (for its
/// orchestrator to restart it once `nats apply` has run), rather than
/// pulling from nothing for ever or stopping as if asked to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_whose_consumer_is_deleted_stops_with_an_error() {
    let rig = rig(&ServiceDeskStandIn::new("t")).await;
    let jetstream = &rig.jetstream;
    let running = rig.writeback(writeback_config(2, None));
    tokio::time::sleep(Duration::from_secs(1)).await;
    jetstream
        .get_stream(aia_bus::STREAM)
        .await
        .unwrap()
        .delete_consumer(Stage::Writeback.as_str())
        .await
        .unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(40), running.stage)
        .await
        .expect("the stage stops")
        .unwrap();
    let err = stopped.expect_err("an error, not a clean stop");
    assert!(err.to_string().contains("nats apply"), "{err}");
}

/// A write-back stage holding `lease`, on a run whose help desk cannot be
/// reached: its first delivery failed, and the server has just said (as
/// it does when a message's last delivery went unanswered) that its
/// deliveries ran out. The run's event, and the stage's registry.
async fn exhausted_run(
    rig: &Rig,
    ticket: &str,
    lease: Duration,
) -> (Event, Running, aia_telemetry::metrics::SharedRegistry) {
    rig.db
        .admin_client()
        .await
        .execute(
            "update tenants set itsm_base_url = 'http://127.0.0.1:9' where tenant_id = 'acme-msp'",
            &[],
        )
        .await
        .unwrap();
    let mut event = examples::all()
        .into_iter()
        .find(|event| matches!(&event.payload, Payload::EnhancementGenerated(g) if !g.degraded))
        .unwrap();
    event.ticket_id = TicketId::parse(ticket).unwrap();
    let sequence = rig
        .jetstream
        .publish(
            aia_events::subject::for_event(aia_events::subject::DEFAULT_PREFIX, &event),
            event.to_json().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    let config = writeback_config(4, None);
    let registry = config.registry.clone();
    let running = rig.writeback_leasing(config, lease);
    // Its first delivery fails (the stage listens for advisories before it
    // pulls).
    eventually("a failed delivery", Duration::from_secs(20), || async {
        aia_telemetry::metrics::encode(&registry)
            .contains(r#"stage_messages_total{stage="writeback",outcome="retry"} 1"#)
            .then_some(())
    })
    .await;
    let advisory = serde_json::json!({"stream_seq": sequence, "deliveries": 8});
    rig.jetstream
        .client()
        .publish(
            aia_bus::advisory::subject(Stage::Writeback.as_str()),
            serde_json::to_vec(&advisory).unwrap().into(),
        )
        .await
        .unwrap();
    rig.jetstream.client().flush().await.unwrap();
    (event, running, registry)
}

/// A run the max-deliveries advisory ends as failed (its last delivery's
/// process died) is counted as given up like one the stage ended itself:
/// the `DeadLetters` alert and the dashboard read that count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_the_advisory_ends_as_failed_counts_as_given_up() {
    let sdp = ServiceDeskStandIn::new("t");
    let rig = rig(&sdp).await;
    // A short lease: the last attempt waits out the one its first
    // delivery left (a refused connection may have posted the note).
    let (_, running, registry) = exhausted_run(&rig, "SUP-9", Duration::from_secs(1)).await;
    eventually(
        "the run counted as given up",
        Duration::from_secs(60),
        || async {
            aia_telemetry::metrics::encode(&registry)
                .contains(r#"stage_messages_total{stage="writeback",outcome="gave_up"} 1"#)
                .then_some(())
        },
    )
    .await;
    running.shutdown.cancel();
    running.stage.await.unwrap().unwrap();
}

/// A stage told to stop while it ends a run for the advisory finishes that
/// run first: the advisory comes once, and a run cut off there would stay
/// unended for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_stage_finishes_the_run_it_is_ending_for_the_advisory() {
    let sdp = ServiceDeskStandIn::new("t");
    let rig = rig(&sdp).await;
    // The last attempt waits out the 2 s lease its first delivery left.
    let (event, running, _) = exhausted_run(&rig, "SUP-10", Duration::from_secs(2)).await;
    // Taken, and still waiting on the lease: then the stage is stopped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.shutdown.cancel();
    running.stage.await.unwrap().unwrap();
    let failed = format!(
        "tickets.{}.{}.writeback.failed",
        event.tenant_id,
        event.ticket_id.subject_token()
    );
    let ended = rig
        .jetstream
        .get_stream(aia_bus::STREAM)
        .await
        .unwrap()
        .get_last_raw_message_by_subject(&failed)
        .await;
    assert!(
        ended.is_ok(),
        "the run was left unended by the stopping stage"
    );
}
