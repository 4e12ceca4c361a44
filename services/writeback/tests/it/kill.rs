//! Kill -9 the writeback process after the help desk stored the note and
//! before the message was acked; a restarted process recognises the note on
//! the ticket and posts no second one.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aia_events::{Event, ItsmKind, Payload, TicketId, examples};
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::{Keyring, NewTenant, Secret, TenantSettings, tenants};
use aia_testkit::{NatsServer, TestDatabase, eventually};

fn start_writeback(nats: &str, db: &str, keys: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_writeback"))
        .env_clear()
        .env("AI_AGENTS_NATS_URL", nats)
        .env("AI_AGENTS_DATABASE_URL", db)
        .env("AI_AGENTS_SECRET_KEYS", keys)
        .env("AI_AGENTS_ITSM_TIMEOUT_SECS", "5")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start writeback")
}

/// A stream, a database with one tenant on a ServiceDesk Plus stand-in, and
/// an `enhancement.generated` for `ticket` (not yet published); the
/// writeback consumer tuned by `tune`.
struct Rig {
    nats: NatsServer,
    db: TestDatabase,
    jetstream: aia_bus::JetStream,
    stream: async_nats::jetstream::stream::Stream,
    sdp: ServiceDeskStandIn,
    _server: aia_standins::Running,
    spec: String,
    event: Event,
}

async fn rig(ticket: &str, tune: impl FnOnce(&mut async_nats::jetstream::consumer::Config)) -> Rig {
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    aia_bus::topology::Topology::builtin()
        .unwrap()
        .apply(&jetstream)
        .await
        .unwrap();
    let stream = jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    let mut consumer = stream
        .consumer_info("writeback")
        .await
        .unwrap()
        .config
        .clone();
    tune(&mut consumer);
    stream.update_consumer(consumer).await.unwrap();

    let sdp = ServiceDeskStandIn::new("sdp-token");
    let server = aia_standins::serve(sdp.router()).await.unwrap();
    let spec = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&spec).unwrap();
    let mut event: Event = examples::all()
        .into_iter()
        .find(|event| matches!(&event.payload, Payload::EnhancementGenerated(g) if !g.degraded))
        .unwrap();
    event.ticket_id = TicketId::parse(ticket).unwrap();
    event.event_id = uuid::Uuid::now_v7();
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    tenants::create(
        &mut pool.get().await.unwrap(),
        &keyring,
        &NewTenant {
            tenant_id: event.tenant_id.clone(),
            name: "Acme".into(),
            itsm: ItsmKind::ServicedeskPlus,
            itsm_base_url: server.url(),
            itsm_credentials: Secret::new(r#"{"authtoken":"sdp-token"}"#),
            webhook_secret: Secret::generate(32),
            settings: TenantSettings::default(),
            integrations: Default::default(),
        },
    )
    .await
    .unwrap();
    Rig {
        nats,
        db,
        jetstream,
        stream,
        sdp,
        _server: server,
        spec,
        event,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writeback_killed_after_posting_and_before_acking_leaves_exactly_one_note() {
    // Redeliver after 2 s instead of 30 s, so the test is quick.
    let Rig {
        nats,
        db,
        jetstream,
        sdp,
        spec,
        event,
        _server,
        ..
    } = rig("SUP-77", |consumer| {
        consumer.ack_wait = Duration::from_secs(2);
        consumer.backoff = vec![Duration::from_secs(2)];
    })
    .await;
    sdp.hang_after_storing(Some(Duration::from_secs(30)));
    aia_bus::publish_event(&jetstream, &event, &event.event_id.to_string())
        .await
        .unwrap();

    let mut first = start_writeback(&nats.url(), &db.app_url, &spec);
    eventually(
        "the help desk to store the note",
        Duration::from_secs(30),
        || async { (sdp.notes("SUP-77").len() == 1).then_some(()) },
    )
    .await;
    // The note is stored; the answer (and so the ack) has not come. Kill -9.
    first.kill().unwrap();
    first.wait().unwrap();
    sdp.hang_after_storing(None);

    // The redelivery waits out the killed holder's lease on the run (its
    // call's timeout and 10 s from its claim: the call may yet land), then
    // finds the note by its marker.
    let mut second = start_writeback(&nats.url(), &db.app_url, &spec);
    let admin = db.admin_client().await;
    eventually(
        "the redelivered run to be recorded as written back",
        Duration::from_secs(60),
        || async {
            let state: String = admin
                .query_one("select state from writeback_ledger", &[])
                .await
                .ok()?
                .get(0);
            (state == "posted").then_some(())
        },
    )
    .await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(
        sdp.notes("SUP-77").len(),
        1,
        "the restarted writeback posted a second note"
    );
}

/// A writeback killed during a message's *last* delivery cannot end the
/// run; the server's max-deliveries advisory reaches the instance started
/// after it, which handles the message once more as its last attempt: the
/// run ends — here written back, with one note, whether or not the help
/// desk stored the dying instance's — instead of staying "enhanced" for
/// ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_last_delivery_died_with_its_process_is_ended_by_another() {
    // One delivery only, its ack awaited 2 s.
    let Rig {
        nats,
        db,
        jetstream,
        stream,
        sdp,
        spec,
        event,
        _server,
        ..
    } = rig("SUP-78", |consumer| {
        consumer.ack_wait = Duration::from_secs(2);
        consumer.backoff = vec![];
        consumer.max_deliver = 1;
    })
    .await;
    // The help desk takes 3 s before storing: the first instance is still
    // waiting when it dies.
    sdp.hang_before_storing(Some(Duration::from_secs(3)));
    let mut first = start_writeback(&nats.url(), &db.app_url, &spec);
    aia_bus::publish_event(&jetstream, &event, &event.event_id.to_string())
        .await
        .unwrap();
    let admin = db.admin_client().await;
    eventually(
        "the first instance's claim",
        Duration::from_secs(30),
        || async {
            let claimed: i64 = admin
                .query_one("select count(*) from writeback_ledger", &[])
                .await
                .ok()?
                .get(0);
            (claimed == 1).then_some(())
        },
    )
    .await;
    let mut second = start_writeback(&nats.url(), &db.app_url, &spec);
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    sdp.hang_before_storing(None);

    // The second waits out the first's lease (its call may yet land),
    // then finds the note by its marker or posts it.
    let subject = format!(
        "tickets.{}.{}.writeback.completed",
        event.tenant_id,
        event.ticket_id.subject_token()
    );
    let done = eventually("the run's end", Duration::from_secs(60), || async {
        let message = stream
            .get_last_raw_message_by_subject(&subject)
            .await
            .ok()?;
        Event::from_json(&message.payload).ok()
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(done.correlation_id, event.correlation_id);
    assert_eq!(sdp.notes("SUP-78").len(), 1, "one note, whoever stored it");
    let failed = format!(
        "tickets.{}.{}.writeback.failed",
        event.tenant_id,
        event.ticket_id.subject_token()
    );
    assert!(
        stream
            .get_last_raw_message_by_subject(&failed)
            .await
            .is_err(),
        "the run ended written back, not failed"
    );
}
