//! The incident correlator on real NATS and PostgreSQL: each ticket enters
//! the tenant's window as the context stage enters it
//! (`open_tickets::window_and_record`) and its `context.gathered` event is
//! published; the stage, scaled to two instances, groups them.
//!
//! Vectors are made by hand so that what is alike is known exactly: the
//! tickets of one outage share one axis (cosine 0.36 between any two, as
//! users' words for one outage are only loosely alike) and everyday tickets
//! share none.

use std::collections::BTreeSet;
use std::time::Duration;

use aia_bus::JetStream;
use aia_events::{
    Event, IncidentChange, IncidentStatus, ItsmKind, Payload, Priority, TenantId, TicketId,
    TicketResolved, examples,
};
use aia_store::open_tickets::{self, NewOpenTicket};
use aia_store::{Keyring, TenantSettings, tenants};
use aia_testkit::{NatsServer, TestDatabase, eventually};
use async_nats::jetstream::consumer::pull;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

const DIM: usize = 64;

/// A unit vector 0.6 along the outage's `axis` and the rest along the
/// ticket's own axis (`own`, distinct per ticket); `axis: None` for an
/// everyday ticket, entirely its own.
fn vector(axis: Option<usize>, own: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    match axis {
        Some(axis) => {
            v[axis] = 0.6;
            v[own] = 0.8;
        }
        None => v[own] = 1.0,
    }
    v
}

struct Setup {
    db: TestDatabase,
    nats: NatsServer,
    spec: String,
    jetstream: JetStream,
    pool: aia_store::Pool,
    stop: CancellationToken,
    instances: Vec<tokio::task::JoinHandle<Result<(), String>>>,
    registries: Vec<aia_telemetry::metrics::SharedRegistry>,
    published: usize,
    /// The model the tickets' vectors are recorded as.
    model: &'static str,
}

async fn setup(instances: usize, settings: impl Fn(&mut TenantSettings)) -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let spec = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&spec).unwrap();
    let pool = aia_store::pool(&db.app_url, 4).unwrap();
    for tenant in ["acme", "globex"] {
        aiagents::ops::add_tenant(
            &db.app_url,
            &keyring,
            tenant,
            tenant,
            ItsmKind::ServicedeskPlus,
            "https://sdp.example.com",
            r#"{"authtoken":"t"}"#,
        )
        .await
        .unwrap();
        let mut tenant_settings = TenantSettings::default();
        settings(&mut tenant_settings);
        tenants::update(
            &mut pool.get().await.unwrap(),
            &keyring,
            &TenantId::parse(tenant).unwrap(),
            &tenants::TenantUpdate {
                settings: Some(tenant_settings),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let stop = CancellationToken::new();
    let mut handles = Vec::new();
    let mut registries = Vec::new();
    for _ in 0..instances {
        let mut config = incident_correlator::Config::new(
            nats.url(),
            db.app_url.clone(),
            Keyring::parse(&spec).unwrap(),
        );
        config.sweep_every = Duration::from_millis(500);
        config.stage.tenant_cache_ttl = Duration::ZERO;
        registries.push(config.stage.registry.clone());
        let stopped = stop.clone().cancelled_owned();
        handles.push(tokio::spawn(async move {
            incident_correlator::run(config, stopped)
                .await
                .map_err(|err| format!("{err:#}"))
        }));
    }
    Setup {
        db,
        nats,
        spec,
        jetstream,
        pool,
        stop,
        instances: handles,
        registries,
        published: 0,
        model: aia_store::LOCAL_EMBEDDING_MODEL,
    }
}

impl Setup {
    /// What the context stage does for a ticket: enter it into the window,
    /// then publish its `context.gathered`.
    async fn gathered(
        &mut self,
        tenant: &str,
        ticket: &str,
        received_at: DateTime<Utc>,
        vector: &[f32],
        entities: &[&str],
    ) -> Event {
        let event = self
            .recorded(tenant, ticket, received_at, vector, entities)
            .await;
        self.publish(&event).await;
        event
    }

    /// … entered into the window, its `context.gathered` not published yet.
    async fn recorded(
        &self,
        tenant: &str,
        ticket: &str,
        received_at: DateTime<Utc>,
        vector: &[f32],
        entities: &[&str],
    ) -> Event {
        let tenant_id = TenantId::parse(tenant).unwrap();
        let ticket_id = TicketId::parse(ticket).unwrap();
        let entities: Vec<String> = entities.iter().map(|e| (*e).to_owned()).collect();
        open_tickets::window_and_record(
            &mut self.pool.get().await.unwrap(),
            &open_tickets::WindowCache::new(0),
            &tenant_id,
            received_at - chrono::Duration::hours(2),
            NewOpenTicket {
                ticket_id: &ticket_id,
                subject: Some(&format!("problem {ticket}")),
                received_at,
                entities: &entities,
                vector: Some((self.model, vector)),
            },
            true,
        )
        .await
        .unwrap();
        let mut event = examples::all()
            .into_iter()
            .find(|event| matches!(event.payload, Payload::ContextGathered(_)))
            .unwrap();
        event.event_id = uuid::Uuid::now_v7();
        event.tenant_id = tenant_id;
        event.ticket_id = ticket_id;
        if let Payload::ContextGathered(context) = &mut event.payload {
            context.received_at = received_at;
            context.ticket.subject = Some(format!("problem {ticket}"));
        }
        event
    }

    async fn publish(&mut self, event: &Event) {
        self.published += 1;
        aia_bus::publish_event(&self.jetstream, event, &format!("test:{}", event.event_id))
            .await
            .unwrap();
    }

    async fn resolved(&mut self, tenant: &str, ticket: &str) {
        let event = Event::new_run(
            TenantId::parse(tenant).unwrap(),
            TicketId::parse(ticket).unwrap(),
            Payload::TicketResolved(TicketResolved {
                source: ItsmKind::ServicedeskPlus,
                subject: format!("problem {ticket}"),
                description: "fixed".into(),
                resolution: "restarted the service".into(),
                priority: Priority::High,
                tags: vec![],
                resolved_at: Utc::now(),
                language: None,
            }),
        );
        self.publish(&event).await;
    }

    /// Each incident of the tenant: its status and its tickets.
    async fn incidents(&self, tenant: &str) -> Vec<(String, BTreeSet<String>)> {
        let admin = self.db.admin_client().await;
        admin
            .query(
                "select i.status, array_agg(t.ticket_id order by t.ticket_id)
                   from incidents i join incident_tickets t using (tenant_id, incident_id)
                  where i.tenant_id = $1
                  group by i.incident_id, i.status, i.detected_at
                  order by i.detected_at",
                &[&tenant],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| {
                let tickets: Vec<String> = row.get(1);
                (row.get(0), tickets.into_iter().collect())
            })
            .collect()
    }

    /// Every incident row and incident ticket row, as text, in a stable
    /// order: what a rebuild must reproduce.
    async fn snapshot(&self) -> Vec<String> {
        let admin = self.db.admin_client().await;
        let incidents = admin
            .query(
                "select format('%s %s v%s %s %s %s %s %s %s %s', tenant_id, incident_id, version,
                               status, summary, shared_entities, first_ticket_at,
                               last_ticket_at, detected_by, end_change)
                   from incidents order by tenant_id, incident_id",
                &[],
            )
            .await
            .unwrap();
        let tickets = admin
            .query(
                "select format('%s %s %s %s %s', tenant_id, ticket_id, incident_id,
                               joined_version, resolved_at is not null)
                   from incident_tickets order by tenant_id, ticket_id",
                &[],
            )
            .await
            .unwrap();
        incidents
            .iter()
            .chain(&tickets)
            .map(|row| row.get(0))
            .collect()
    }

    /// Rebuilds the incident tables from the stream and checks they come
    /// out as the stage left them.
    async fn rebuild_reproduces_the_tables(&self) {
        let before = self.snapshot().await;
        assert!(!before.is_empty());
        let rebuilt =
            incident_correlator::rebuild::rebuild(&self.jetstream, &self.db.admin_url, None)
                .await
                .unwrap();
        assert!(rebuilt.events > 0);
        assert_eq!(self.snapshot().await, before);
    }

    /// The incident events in the stream, in order.
    async fn incident_events(&self, tenant: &str) -> Vec<Event> {
        aia_testkit::stream_events(&self.jetstream, &format!("tickets.{tenant}.*.incident.>")).await
    }

    /// Waits until the correlator consumed everything published.
    async fn settled(&self) {
        eventually(
            "the correlator to catch up",
            Duration::from_secs(30),
            || async {
                let mut consumer = self
                    .jetstream
                    .get_consumer_from_stream::<pull::Config, _, _>(
                        "incident-correlator",
                        aia_bus::STREAM,
                    )
                    .await
                    .ok()?;
                let info = consumer.info().await.ok()?;
                (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
            },
        )
        .await;
    }

    async fn stop(self) -> TestDatabase {
        self.stop.cancel();
        for instance in self.instances {
            instance.await.unwrap().unwrap();
        }
        self.db
    }
}

/// (tenant, ticket, minute, the outage's axis or none, entities).
type Arrival = (
    &'static str,
    &'static str,
    i64,
    Option<usize>,
    &'static [&'static str],
);

fn ids(tickets: &[&str]) -> BTreeSet<String> {
    tickets.iter().map(|t| (*t).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_makes_one_incident_two_outages_stay_two_and_everyday_tickets_none() {
    let mut setup = setup(2, |_| {}).await;
    let now = Utc::now();
    let minutes = |m: i64| now - chrono::Duration::minutes(30) + chrono::Duration::minutes(m);
    // Two outages at acme interleaved with everyday tickets; globex gets
    // two tickets with the very vectors of acme's first outage.
    let plan: [Arrival; 14] = [
        ("acme", "A-1", 0, Some(0), &["fs01"]),
        ("acme", "X-1", 1, None, &[]),
        ("acme", "A-2", 2, Some(0), &[]),
        ("globex", "G-1", 2, Some(0), &["fs01"]),
        ("acme", "B-1", 3, Some(1), &[]),
        ("acme", "A-3", 4, Some(0), &["fs01"]),
        ("acme", "X-2", 5, None, &["fs01"]),
        ("acme", "B-2", 6, Some(1), &[]),
        ("globex", "G-2", 6, Some(0), &["fs01"]),
        ("acme", "A-4", 7, Some(0), &[]),
        ("acme", "B-3", 8, Some(1), &[]),
        ("acme", "X-3", 9, None, &[]),
        ("acme", "B-4", 10, Some(1), &[]),
        ("acme", "A-5", 11, Some(0), &[]),
    ];
    for (own, (tenant, ticket, minute, axis, entities)) in plan.into_iter().enumerate() {
        let vector = vector(axis, 10 + own);
        setup
            .gathered(tenant, ticket, minutes(minute), &vector, entities)
            .await;
        // One at a time, as a quiet stream delivers them.
        setup.settled().await;
    }

    let incidents = setup.incidents("acme").await;
    assert_eq!(
        incidents,
        [
            ("open".to_owned(), ids(&["A-1", "A-2", "A-3", "A-4", "A-5"])),
            ("open".to_owned(), ids(&["B-1", "B-2", "B-3", "B-4"])),
        ]
    );
    assert!(
        setup.incidents("globex").await.is_empty(),
        "globex's two tickets are no incident, whatever acme has"
    );

    let events = setup.incident_events("acme").await;
    let detected: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e.payload, Payload::IncidentDetected(_)))
        .collect();
    assert_eq!(detected.len(), 2, "{events:#?}");
    let Payload::IncidentDetected(first) = &detected[0].payload else {
        unreachable!()
    };
    let first_tickets: Vec<&str> = first.tickets.iter().map(|t| t.ticket_id.as_str()).collect();
    assert_eq!(
        first_tickets,
        ["A-1", "A-2", "A-3"],
        "detected by the third"
    );
    assert_eq!(first.detected_by.as_str(), "A-3");
    assert_eq!(first.shared_entities, ["fs01"]);
    assert_eq!(
        detected[0].ticket_id.as_str(),
        format!("incident-{}", first.incident_id)
    );
    // Each with the incident's new version and ticket count.
    let added: Vec<(u32, String, u32)> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::IncidentUpdated(u) if u.change == IncidentChange::TicketAdded => Some((
                u.version,
                u.ticket.as_ref().unwrap().ticket_id.to_string(),
                u.ticket_count,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        added,
        [
            (2, "A-4".to_owned(), 4),
            (2, "B-4".to_owned(), 4),
            (3, "A-5".to_owned(), 5)
        ]
    );
    assert!(setup.incident_events("globex").await.is_empty());

    let metrics = aia_telemetry::metrics::encode(&setup.registries[0])
        + &aia_telemetry::metrics::encode(&setup.registries[1]);
    let detected_count: f64 = metrics
        .lines()
        .filter(|line| line.starts_with("incidents_detected_total{tenant_id=\"acme\"}"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(detected_count, 2.0, "{metrics}");
    setup.rebuild_reproduces_the_tables().await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_handled_at_once_by_two_instances_is_one_incident_and_redelivery_adds_nothing() {
    let mut setup = setup(2, |_| {}).await;
    let now = Utc::now() - chrono::Duration::minutes(20);
    // Twelve tickets of one outage in the window, then their contexts
    // published at once: the two instances decide them concurrently, one
    // tenant-lock at a time.
    let mut sent = Vec::new();
    for i in 0..12 {
        let vector = vector(Some(0), 10 + i);
        sent.push(
            setup
                .recorded(
                    "acme",
                    &format!("A-{i}"),
                    now + chrono::Duration::seconds(i64::try_from(i).unwrap() * 20),
                    &vector,
                    &[],
                )
                .await,
        );
    }
    let jetstream = setup.jetstream.clone();
    futures::future::join_all(sent.iter().map(|event| {
        let jetstream = jetstream.clone();
        async move {
            aia_bus::publish_event(&jetstream, event, &format!("test:{}", event.event_id))
                .await
                .unwrap();
        }
    }))
    .await;
    setup.published += sent.len();
    setup.settled().await;
    // Both instances decided some of them.
    for registry in &setup.registries {
        let metrics = aia_telemetry::metrics::encode(registry);
        let done: f64 = metrics
            .lines()
            .filter(|line| {
                line.starts_with(
                    r#"stage_messages_total{stage="incident-correlator",outcome="done"}"#,
                )
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(done > 0.0, "an instance decided nothing:\n{metrics}");
    }
    let all: BTreeSet<String> = (0..12).map(|i| format!("A-{i}")).collect();
    // Tickets decided before their burst-mates were in the window may be
    // left out (they have no incident yet when they arrive), but those
    // grouped are in one incident.
    let incidents = setup.incidents("acme").await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert!(
        incidents[0].1.len() >= 10 && incidents[0].1.is_subset(&all),
        "{incidents:?}"
    );
    let before = setup.incident_events("acme").await;

    // Every context delivered again, as after a crash: nothing new.
    for event in &sent {
        let copy = Event::republished(event);
        setup.publish(&copy).await;
    }
    setup.settled().await;
    assert_eq!(setup.incidents("acme").await, incidents);
    let after = setup.incident_events("acme").await;
    assert_eq!(after.len(), before.len(), "{after:#?}");
    let versions: BTreeSet<u32> = after
        .iter()
        .map(|e| match &e.payload {
            Payload::IncidentDetected(d) => d.version,
            Payload::IncidentUpdated(u) => u.version,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        versions.len(),
        after.len(),
        "one event per version: {after:#?}"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_ends_once_when_its_tickets_are_resolved_and_an_old_one_goes_quiet() {
    let mut setup = setup(1, |settings| settings.incidents.quiet_minutes = 30).await;
    let now = Utc::now();
    // A current outage, then each of its tickets resolved.
    for i in 0..3 {
        let vector = vector(Some(0), 10 + i);
        setup
            .gathered(
                "acme",
                &format!("A-{i}"),
                now - chrono::Duration::minutes(5)
                    + chrono::Duration::minutes(i64::try_from(i).unwrap()),
                &vector,
                &[],
            )
            .await;
    }
    // An outage whose last ticket came an hour ago: past its quiet period.
    for i in 0..3 {
        let vector = vector(Some(1), 20 + i);
        setup
            .gathered(
                "globex",
                &format!("G-{i}"),
                now - chrono::Duration::minutes(65)
                    + chrono::Duration::minutes(i64::try_from(i).unwrap()),
                &vector,
                &[],
            )
            .await;
    }
    setup.settled().await;
    assert_eq!(setup.incidents("acme").await.len(), 1);
    for i in 0..3 {
        setup.resolved("acme", &format!("A-{i}")).await;
        // A resolution delivered twice ends nothing twice.
        setup.resolved("acme", &format!("A-{i}")).await;
    }
    setup.settled().await;
    assert_eq!(
        setup.incidents("acme").await,
        [("ended".to_owned(), ids(&["A-0", "A-1", "A-2"]))]
    );
    let ended: Vec<IncidentChange> = setup
        .incident_events("acme")
        .await
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::IncidentUpdated(u) if u.status == IncidentStatus::Ended => Some(u.change),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [IncidentChange::Resolved]);

    // globex's incident was detected just now from tickets an hour old (a
    // correlator catching up): the sweep gives it its quiet period from
    // the detection, not from the tickets.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        setup.incidents("globex").await,
        [("open".to_owned(), ids(&["G-0", "G-1", "G-2"]))]
    );
    // Half an hour later (the clock moved by hand), it ends as quiet, once
    // — though an operator acknowledged it a moment ago (its `updated_at`):
    // an acknowledgement is no ticket and keeps no incident open.
    setup
        .db
        .admin_client()
        .await
        .execute(
            "update incidents set detected_at = detected_at - interval '31 minutes',
                                  updated_at = now()
              where tenant_id = 'globex'",
            &[],
        )
        .await
        .unwrap();
    let globex = eventually("the quiet end", Duration::from_secs(10), || async {
        let incidents = setup.incidents("globex").await;
        (incidents.first().map(|i| i.0.as_str()) == Some("ended")).then_some(incidents)
    })
    .await;
    assert_eq!(globex[0].1, ids(&["G-0", "G-1", "G-2"]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let quiet: Vec<IncidentChange> = setup
        .incident_events("globex")
        .await
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::IncidentUpdated(u) => Some(u.change),
            _ => None,
        })
        .collect();
    assert_eq!(quiet, [IncidentChange::Quiet]);

    // Resolved tickets left the window: a new ticket like them relates to
    // none.
    let still_open: Vec<String> = setup
        .db
        .admin_client()
        .await
        .query(
            "select ticket_id from open_tickets where tenant_id = 'acme' and resolved_at is null",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(still_open.is_empty(), "{still_open:?}");
    setup.rebuild_reproduces_the_tables().await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_left_in_the_outbox_by_a_crash_is_published_by_the_sweep_once() {
    let setup = setup(1, |_| {}).await;
    // Decided and committed, never published: what a crash between commit
    // and publish leaves.
    let tenant = TenantId::parse("acme").unwrap();
    let incident = uuid::Uuid::now_v7();
    let event = incident_correlator::incident_event(
        &tenant,
        incident,
        None,
        Payload::IncidentDetected(aia_events::IncidentDetected {
            incident_id: incident,
            version: 1,
            tickets: vec![aia_events::IncidentTicket {
                ticket_id: TicketId::parse("A-1").unwrap(),
                subject: None,
                received_at: Utc::now(),
            }],
            shared_entities: vec![],
            summary: "1 ticket".into(),
            detected_by: TicketId::parse("A-1").unwrap(),
            threshold: 3,
            window_minutes: 30,
        }),
    );
    {
        let mut client = setup.pool.get().await.unwrap();
        let tx = aia_store::tenant_transaction(&mut client, &tenant)
            .await
            .unwrap();
        incident_correlator::store::apply(&tx, &event)
            .await
            .unwrap();
        incident_correlator::store::outbox_put(
            &tx,
            &event,
            &incident_correlator::outbox::msg_id(&event),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let published = eventually("the sweep's publish", Duration::from_secs(10), || async {
        let events = setup.incident_events("acme").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    // As the stream holds it (times to the microsecond).
    assert_eq!(published, [Event::from_json(&event.to_json()).unwrap()]);
    // Several sweeps later, still one copy, and the row is marked.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(setup.incident_events("acme").await.len(), 1);
    let admin = setup.db.admin_client().await;
    let pending: i64 = admin
        .query_one(
            "select count(*) from incident_outbox where published_at is null",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 0);
    // A crash after the publish and before the mark: the sweep publishes
    // the row again, under the same message id, and the stream keeps one.
    admin
        .execute("update incident_outbox set published_at = null", &[])
        .await
        .unwrap();
    eventually(
        "the sweep's second publish",
        Duration::from_secs(10),
        || async {
            let pending: i64 = admin
                .query_one(
                    "select count(*) from incident_outbox where published_at is null",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            (pending == 0).then_some(())
        },
    )
    .await;
    assert_eq!(setup.incident_events("acme").await.len(), 1);
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_an_incident_acknowledges_and_closes_it_from_the_console() {
    use admin::console::Role;
    const PASSWORD: &str = "a long operator password";
    let mut setup = setup(1, |_| {}).await;
    // Whole seconds: PostgreSQL rounds to the microsecond where an event's
    // JSON truncates, which could make two minutes read as one.
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0) - chrono::Duration::minutes(10);
    for i in 0..3 {
        let vector = vector(Some(0), 10 + i);
        setup
            .gathered(
                "acme",
                &format!("A-{i}"),
                now + chrono::Duration::minutes(i64::try_from(i).unwrap()),
                &vector,
                &[],
            )
            .await;
    }
    setup.settled().await;
    let url = crate::console_support::serve_on(
        &setup.db.app_url,
        &setup.db.admin_read_url,
        Keyring::parse(&setup.spec).unwrap(),
        &setup.nats.url(),
        Default::default(),
        &[
            ("ops", PASSWORD, Role::Admin),
            ("lead", PASSWORD, Role::Admin),
            ("watcher", PASSWORD, Role::Viewer),
        ],
    )
    .await;
    let ops = crate::console_support::Browser::sign_in(&url, "ops", PASSWORD).await;
    let lead = crate::console_support::Browser::sign_in(&url, "lead", PASSWORD).await;
    let watcher = crate::console_support::Browser::sign_in(&url, "watcher", PASSWORD).await;

    let (status, list) = ops.get("/console/incidents").await;
    assert_eq!(status, 200);
    assert!(
        list.contains(r#"<span class="status open">open</span>"#),
        "{list}"
    );
    assert!(list.contains("3 tickets in 2 min from"), "{list}");
    let incident = match &setup.incident_events("acme").await[0].payload {
        Payload::IncidentDetected(detected) => detected.incident_id,
        other => panic!("{other:?}"),
    };
    let page = format!("/console/incidents/acme/{incident}");
    let (status, detail) = ops.get(&page).await;
    assert_eq!(status, 200);
    for ticket in ["A-0", "A-1", "A-2"] {
        assert!(
            detail.contains(&format!(
                r#"<a href="/console/tickets/acme/{ticket}">{ticket}</a>"#
            )),
            "{detail}"
        );
    }
    let (status, timeline) = ops
        .get(&format!("/console/tickets/acme/incident-{incident}"))
        .await;
    assert_eq!(status, 200);
    assert!(timeline.contains("incident.detected"), "{timeline}");

    // A viewer may look, not change.
    let (status, _) = watcher.submit(&format!("{page}/acknowledge"), &[]).await;
    assert_eq!(status, 403);
    assert_eq!(setup.incidents("acme").await[0].0, "open");

    let (status, _) = ops.submit(&format!("{page}/acknowledge"), &[]).await;
    assert_eq!(status, 303);
    assert_eq!(setup.incidents("acme").await[0].0, "acknowledged");
    // The live gauge's count (the correlator's role, every tenant's).
    let app = aia_store::pool(&setup.db.app_url, 1).unwrap();
    let live = || async {
        app.get()
            .await
            .unwrap()
            .query("select tenant_id, live from incident_live_counts()", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1)))
            .collect::<Vec<_>>()
    };
    assert_eq!(live().await, [("acme".to_owned(), 1)]);
    // Another operator closes it: who acknowledged it is kept.
    let (status, _) = lead.submit(&format!("{page}/close"), &[]).await;
    assert_eq!(status, 303);
    assert_eq!(setup.incidents("acme").await[0].0, "ended");
    let (_, shown) = ops.get(&page).await;
    assert!(shown.contains("acknowledged by ops"), "{shown}");
    assert!(shown.contains("closed by lead"), "{shown}");
    assert_eq!(
        live().await,
        [],
        "a close in the console leaves the gauge's count"
    );
    let (status, _) = ops.submit(&format!("{page}/close"), &[]).await;
    assert_eq!(status, 409, "an ended incident is not closed twice");

    let changes: Vec<(IncidentChange, Option<String>)> = setup
        .incident_events("acme")
        .await
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::IncidentUpdated(u) => Some((u.change, u.by.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [
            (IncidentChange::Acknowledged, Some("ops".to_owned())),
            (IncidentChange::Closed, Some("lead".to_owned())),
        ]
    );
    let (_, list) = ops.get("/console/incidents").await;
    assert!(list.contains("No open incidents."), "{list}");
    let (_, all) = ops.get("/console/incidents?ended=1").await;
    assert!(all.contains("ended</span>"), "{all}");
    setup.rebuild_reproduces_the_tables().await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_operators_acknowledging_and_closing_at_once_make_one_change_each() {
    let mut setup = setup(1, |_| {}).await;
    let now = Utc::now() - chrono::Duration::minutes(10);
    for i in 0..3 {
        let vector = vector(Some(0), 10 + i);
        setup
            .gathered(
                "acme",
                &format!("A-{i}"),
                now + chrono::Duration::minutes(i64::try_from(i).unwrap()),
                &vector,
                &[],
            )
            .await;
    }
    setup.settled().await;
    let incident = match &setup.incident_events("acme").await[0].payload {
        Payload::IncidentDetected(detected) => detected.incident_id,
        other => panic!("{other:?}"),
    };
    let tenant = TenantId::parse("acme").unwrap();
    // The acknowledgements all through one connection: an action that
    // held its connection while taking another (to publish) would hang
    // them all. The closes through twenty, each on its own, so that they
    // truly overlap and only the tenant's lock keeps them to one.
    let one = aia_store::pool(&setup.db.app_url, 1).unwrap();
    let twenty = aia_store::pool(&setup.db.app_url, 20).unwrap();
    let all_at_once = |pool: &aia_store::Pool, action| {
        let (pool, jetstream, tenant) = (pool.clone(), setup.jetstream.clone(), tenant.clone());
        futures::future::join_all((0..20).map(move |n| {
            let (pool, jetstream, tenant) = (pool.clone(), jetstream.clone(), tenant.clone());
            async move {
                incident_correlator::operator::act(
                    &pool,
                    &jetstream,
                    &tenant,
                    incident,
                    action,
                    &format!("operator-{n}"),
                )
                .await
            }
        }))
    };
    use incident_correlator::operator::{Action, OperatorError};
    let within = std::time::Duration::from_secs(60);
    let acknowledged = tokio::time::timeout(within, all_at_once(&one, Action::Acknowledge))
        .await
        .expect("the actions hang on the pool");
    assert_eq!(
        acknowledged
            .iter()
            .filter(|done| matches!(done, Ok(Some(_))))
            .count(),
        1,
        "one acknowledges, the rest find it acknowledged"
    );
    assert!(acknowledged.iter().all(Result::is_ok));
    let closed = tokio::time::timeout(within, all_at_once(&twenty, Action::Close))
        .await
        .expect("the actions hang on the pool");
    assert_eq!(
        closed
            .iter()
            .filter(|done| matches!(done, Ok(Some(_))))
            .count(),
        1
    );
    assert_eq!(
        closed
            .iter()
            .filter(|done| matches!(done, Err(OperatorError::Ended)))
            .count(),
        19
    );
    let versions: Vec<(u32, IncidentChange)> = setup
        .incident_events("acme")
        .await
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::IncidentUpdated(u) => Some((u.version, u.change)),
            _ => None,
        })
        .collect();
    assert_eq!(
        versions,
        [
            (2, IncidentChange::Acknowledged),
            (3, IncidentChange::Closed)
        ]
    );
    setup.rebuild_reproduces_the_tables().await;
    setup.stop().await;
}

/// A tenant on its own embedding model, "test-model", whose cosines sit
/// high for everything (as multilingual-e5's do: everyday pairs at 0.8).
fn on_endpoint(incidents: Option<aia_store::IncidentCalibration>) -> aia_store::EmbeddingSettings {
    aia_store::EmbeddingSettings::Endpoint(aia_store::EmbeddingEndpointSettings {
        timeout_secs: 5,
        min_similarity: Some(0.75),
        likely_similarity: Some(0.9),
        lexical_weight: Some(0.0),
        incidents,
        ..aia_store::EmbeddingEndpointSettings::openai(
            "own",
            "http://embeddings.internal/v1",
            "test-model",
        )
    })
}

/// A unit vector mostly along one axis all tickets share (0.9, or 0.85 for
/// an outage's, which adds 0.4 along the outage's `axis`), the rest along
/// its own: everyday pairs at 0.81, an outage's pairs at 0.88.
fn crowded(axis: Option<usize>, own: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    match axis {
        Some(axis) => {
            v[0] = 0.85;
            v[axis] = 0.4;
            v[own] = (1.0_f32 - 0.85 * 0.85 - 0.4 * 0.4).sqrt();
        }
        None => {
            v[0] = 0.9;
            v[own] = (1.0_f32 - 0.81).sqrt();
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_nobody_calibrated_makes_no_incident_and_a_calibrated_one_finds_the_outage() {
    let mut setup = setup(1, |settings| settings.embeddings = on_endpoint(None)).await;
    setup.model = "test-model";
    let now = Utc::now();
    let minutes = |m: i64| now - chrono::Duration::minutes(40) + chrono::Duration::minutes(m);
    // Everyday tickets, alike only as every ticket is for this model: at
    // the local model's thresholds they would be an outage.
    for (n, ticket) in ["X-1", "X-2", "X-3", "X-4"].into_iter().enumerate() {
        let vector = crowded(None, 10 + n);
        setup
            .gathered("acme", ticket, minutes(n as i64), &vector, &[])
            .await;
        setup.settled().await;
    }
    assert!(setup.incidents("acme").await.is_empty());

    // The tenant calibrates its model; an outage and more everyday
    // tickets follow.
    let calibration = aia_store::IncidentCalibration {
        related: 0.87,
        related_with_entity: 0.85,
        link: 0.85,
        centroid: 0.88,
        join: 0.86,
        join_step: 0.0,
        entity_bonus: 0.0,
        join_decay: 0.0,
    };
    let keyring = Keyring::parse(&setup.spec).unwrap();
    tenants::update(
        &mut setup.pool.get().await.unwrap(),
        &keyring,
        &TenantId::parse("acme").unwrap(),
        &tenants::TenantUpdate {
            settings: Some(TenantSettings {
                embeddings: on_endpoint(Some(calibration)),
                ..TenantSettings::default()
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let plan: [Arrival; 6] = [
        ("acme", "A-1", 10, Some(1), &[]),
        ("acme", "X-5", 11, None, &[]),
        ("acme", "A-2", 12, Some(1), &[]),
        ("acme", "X-6", 13, None, &[]),
        ("acme", "A-3", 14, Some(1), &[]),
        ("acme", "A-4", 15, Some(1), &[]),
    ];
    for (own, (tenant, ticket, minute, axis, entities)) in plan.into_iter().enumerate() {
        let vector = crowded(axis, 20 + own);
        setup
            .gathered(tenant, ticket, minutes(minute), &vector, entities)
            .await;
        setup.settled().await;
    }
    assert_eq!(
        setup.incidents("acme").await,
        [("open".to_owned(), ids(&["A-1", "A-2", "A-3", "A-4"]))]
    );
    setup.stop().await;
}

/// Retention: a live incident keeps its members' rows in the window past
/// the window's own retention (its centroid is their mean); an ended one
/// goes, with its tickets, once its events have left the stream.
#[tokio::test]
async fn retention_keeps_a_live_incidents_members_and_drops_an_incident_past_its_events() {
    let mut setup = setup(1, |_| {}).await;
    let now = Utc::now() - chrono::Duration::minutes(10);
    for i in 0..3 {
        let vector = vector(Some(0), 10 + i);
        setup
            .gathered(
                "acme",
                &format!("R-{i}"),
                now + chrono::Duration::minutes(i64::try_from(i).unwrap()),
                &vector,
                &[],
            )
            .await;
    }
    setup.settled().await;
    let admin = setup.db.admin_client().await;
    let count = |sql: &'static str| {
        let admin = &admin;
        async move { admin.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("select count(*) from incidents").await, 1);
    // Three days on: past the window's retention, the incident still live.
    admin
        .batch_execute(
            "update open_tickets set received_at = received_at - interval '3 days';
             insert into open_tickets (tenant_id, ticket_id, received_at)
               values ('acme', 'LONE-1', now() - interval '3 days');",
        )
        .await
        .unwrap();
    let purge = "select purge_incident_caches('49 hours', '1 day'), purge_old_incidents('90 days')";
    let app = setup.pool.get().await.unwrap();
    app.query_one(purge, &[]).await.unwrap();
    assert_eq!(
        count("select count(*) from open_tickets where ticket_id like 'R-%'").await,
        3,
        "the live incident's members are kept"
    );
    assert_eq!(
        count("select count(*) from open_tickets where ticket_id = 'LONE-1'").await,
        0
    );
    // Ended, and detected before the stream's events expire: gone, its
    // tickets with it; the window's rows follow.
    admin
        .batch_execute(
            "update incidents set status = 'ended', ended_at = now(), end_change = 'quiet',
                    detected_at = now() - interval '91 days'",
        )
        .await
        .unwrap();
    app.query_one(purge, &[]).await.unwrap();
    assert_eq!(count("select count(*) from incidents").await, 0);
    assert_eq!(count("select count(*) from incident_tickets").await, 0);
    app.query_one(purge, &[]).await.unwrap();
    assert_eq!(count("select count(*) from open_tickets").await, 0);
    setup.stop().await;
}
