//! The incident notifier on real NATS and PostgreSQL against a local
//! receiver: each incident event reaches the tenant's webhook once, signed
//! so that the reference Standard Webhooks library accepts it; a failing
//! receiver is retried, one that refuses for good is recorded, a tenant
//! without a webhook gets nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aia_events::{Event, ItsmKind, Payload, TenantId, examples};
use aia_store::{Integrations, Keyring, tenants};
use aia_testkit::{NatsServer, TestDatabase, eventually};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use tokio_util::sync::CancellationToken;

/// One post as received: its headers and body.
type Post = (HeaderMap, Vec<u8>);

/// What the receiver was sent, and what it answers next.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Post>>>,
    /// Answers in order; 200 once they run out.
    answers: Arc<Mutex<Vec<StatusCode>>>,
}

impl Receiver {
    fn router(&self) -> axum::Router {
        let receiver = self.clone();
        axum::Router::new().route(
            "/hooks/incidents",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let receiver = receiver.clone();
                async move {
                    receiver
                        .received
                        .lock()
                        .unwrap()
                        .push((headers, body.to_vec()));
                    let mut answers = receiver.answers.lock().unwrap();
                    if answers.is_empty() {
                        StatusCode::OK
                    } else {
                        answers.remove(0)
                    }
                }
            }),
        )
    }

    fn received(&self) -> Vec<Post> {
        self.received.lock().unwrap().clone()
    }
}

/// Verifies with the reference Python library; true when it accepts.
fn reference_accepts(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    crate::ingress_support::python(
        crate::ingress_support::PYTHON_VERIFY,
        &[secret, &id, &timestamp, &signature],
        body,
    )
    .status
    .success()
}

fn incident_events(tenant: &str) -> Vec<Event> {
    examples::all()
        .into_iter()
        .filter(|e| {
            matches!(
                e.payload,
                Payload::IncidentDetected(_) | Payload::IncidentUpdated(_)
            )
        })
        .map(|mut e| {
            e.tenant_id = TenantId::parse(tenant).unwrap();
            e
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_incident_event_reaches_the_tenants_webhook_once_signed_and_retried() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let receiver = Receiver::default();
    // The first post is answered 503: retried on the consumer's backoff.
    receiver
        .answers
        .lock()
        .unwrap()
        .push(StatusCode::SERVICE_UNAVAILABLE);
    let server = aia_standins::serve(receiver.router()).await.unwrap();
    let spec = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&spec).unwrap();
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::now_v7().as_bytes())
    );
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
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
    }
    // Only acme has a webhook.
    let acme = TenantId::parse("acme").unwrap();
    let mut client = pool.get().await.unwrap();
    tenants::set_integrations(
        &mut client,
        &keyring,
        &acme,
        &Integrations {
            incident_webhook_secret: Some(secret.clone()),
            incident_webhook_url: Some(format!("{}/hooks/incidents", server.url())),
            ..Integrations::default()
        },
    )
    .await
    .unwrap();

    let stop = CancellationToken::new();
    let console_keyring = Keyring::parse(&spec).unwrap();
    let mut config = incident_notifier::Config::new(nats.url(), db.app_url.clone(), keyring);
    config.stage.tenant_cache_ttl = Duration::ZERO;
    let notifier = tokio::spawn(incident_notifier::run(
        config,
        stop.clone().cancelled_owned(),
    ));
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let acme_events = incident_events("acme");
    for (n, event) in acme_events
        .iter()
        .chain(&incident_events("globex"))
        .enumerate()
    {
        aia_bus::publish_event(&jetstream, event, &format!("test:{n}"))
            .await
            .unwrap();
    }

    // Every acme event delivered: the first after one 503 and a retry.
    let delivered = eventually("every event delivered", Duration::from_secs(60), || async {
        let received = receiver.received();
        (received.len() == acme_events.len() + 1).then_some(received)
    })
    .await;
    let ids: Vec<&str> = delivered
        .iter()
        .map(|(headers, _)| headers["webhook-id"].to_str().unwrap())
        .collect();
    // Events are posted concurrently: whichever met the 503 was posted
    // again under the same webhook-id, every other once.
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for id in &ids {
        *counts.entry(id).or_default() += 1;
    }
    assert_eq!(
        counts.values().filter(|n| **n == 2).count(),
        1,
        "one retried: {counts:?}"
    );
    assert!(counts.values().all(|n| *n <= 2), "{counts:?}");
    let expected: std::collections::BTreeSet<String> = acme_events
        .iter()
        .map(|e| incident_notifier::webhook_id(e).unwrap())
        .collect();
    let got: std::collections::BTreeSet<String> =
        counts.keys().map(|id| (*id).to_owned()).collect();
    assert_eq!(got, expected);
    // One incident's versions reach the receiver in order, the 503'd one's
    // retry included: a later version waited for it.
    let mut last_version: std::collections::BTreeMap<String, u32> = Default::default();
    for id in &ids {
        // incident:<tenant>:<incident>:v<version>:<digest>
        let parts: Vec<&str> = id.split(':').collect();
        let (incident, version) = (parts[2], parts[3]);
        let version: u32 = version.trim_start_matches('v').parse().unwrap();
        let before = last_version
            .insert(incident.to_owned(), version)
            .unwrap_or(0);
        assert!(
            before <= version,
            "v{version} of {incident} after v{before}: {ids:?}"
        );
    }
    for (headers, body) in &delivered {
        assert!(
            reference_accepts(&secret, headers, body),
            "the reference library refused {headers:?}"
        );
        assert!(!reference_accepts(
            "whsec_d3JvbmcgIHNlY3JldA==",
            headers,
            body
        ));
        let body: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["data"]["tenant_id"], "acme");
        assert!(body["type"].as_str().unwrap().starts_with("incident."));
    }

    // The same events again (a redelivery, a replay): nothing is re-sent.
    for (n, event) in acme_events.iter().enumerate() {
        aia_bus::publish_event(
            &jetstream,
            &Event::republished(event),
            &format!("again:{n}"),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), acme_events.len() + 1);

    // A receiver that refuses for good is not retried; the ledger says why.
    receiver.answers.lock().unwrap().push(StatusCode::GONE);
    let mut gone = acme_events[0].clone();
    if let Payload::IncidentDetected(detected) = &mut gone.payload {
        detected.incident_id = uuid::Uuid::now_v7();
    }
    aia_bus::publish_event(&jetstream, &gone, "gone")
        .await
        .unwrap();
    let failed = eventually("the refusal recorded", Duration::from_secs(15), || async {
        let rows = db
            .admin_client()
            .await
            .query(
                "select state, http_status, last_error from incident_notifications where state = 'failed'",
                &[],
            )
            .await
            .unwrap();
        (!rows.is_empty()).then(|| {
            let status: Option<i32> = rows[0].get(1);
            let error: Option<String> = rows[0].get(2);
            (status, error)
        })
    })
    .await;
    assert_eq!(failed.0, Some(410));
    assert!(failed.1.unwrap().contains("410"));
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        receiver.received().len(),
        acme_events.len() + 2,
        "a 410 is not retried"
    );
    let states: Vec<(String, i64)> = db
        .admin_client()
        .await
        .query(
            "select state, count(*) from incident_notifications group by state order by state",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        states,
        [
            (
                "delivered".to_owned(),
                i64::try_from(acme_events.len()).unwrap()
            ),
            ("failed".to_owned(), 1),
            (
                "skipped".to_owned(),
                i64::try_from(incident_events("globex").len()).unwrap()
            ),
        ],
        "globex has no webhook: its versions are recorded as skipped, none posted"
    );

    // The console lists the notification given up on, with why.
    let url = crate::console_support::serve_on(
        &db.app_url,
        &db.admin_read_url,
        console_keyring,
        &nats.url(),
        Default::default(),
        &[(
            "ops",
            "a long operator password",
            admin::console::Role::Viewer,
        )],
    )
    .await;
    let ops =
        crate::console_support::Browser::sign_in(&url, "ops", "a long operator password").await;
    let (status, page) = ops.get("/console/incidents?tenant=acme").await;
    assert_eq!(status, 200);
    assert!(page.contains("Notifications that failed"), "{page}");
    assert!(page.contains("the webhook answered 410 Gone"), "{page}");
    stop.cancel();
    notifier.await.unwrap().unwrap();
}

/// A notification whose last delivery ended without an answer recorded (a
/// crash, the database away) stays pending and is never tried again: once
/// older than every retry takes, it is listed with the failed ones.
#[tokio::test]
async fn a_notification_left_pending_past_every_retry_is_listed_as_failed() {
    let db = TestDatabase::create().await;
    let admin = db.admin_client().await;
    admin
        .batch_execute(
            "insert into incident_notifications (tenant_id, webhook_id, event_type, state, attempts, last_error, updated_at) values
               ('acme', 'incident:acme:1:v1', 'incident.detected', 'pending', 8, 'the webhook answered 503', now() - interval '3 hours'),
               ('acme', 'incident:acme:2:v1', 'incident.detected', 'pending', 1, null, now() - interval '5 minutes'),
               ('acme', 'incident:acme:3:v1', 'incident.detected', 'failed', 1, 'the webhook answered 410', now() - interval '1 hour');",
        )
        .await
        .unwrap();
    // As the console reads it.
    let console = aia_store::pool(&db.admin_read_url, 1).unwrap();
    let listed = incident_notifier::ledger::failed(&console.get().await.unwrap(), Some("acme"), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|f| f.webhook_id.as_str()).collect();
    assert_eq!(ids, ["incident:acme:3:v1", "incident:acme:1:v1"]);
    assert_eq!(
        listed[1].last_error.as_deref(),
        Some(
            "no final answer recorded: the last delivery ended without one (last error: the webhook answered 503)"
        )
    );
}

/// A tenant without a webhook records each version as skipped, so once it
/// sets one the next version is posted at once (it waited two minutes for a
/// version that would never be posted); and a version decided again with
/// other content — a database restored ahead of the stream, then rebuilt —
/// is another message under another webhook-id, not dropped as a repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_set_mid_incident_posts_at_once_and_a_version_decided_again_is_its_own_message() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let receiver = Receiver::default();
    let server = aia_standins::serve(receiver.router()).await.unwrap();
    let spec = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&spec).unwrap();
    aiagents::ops::add_tenant(
        &db.app_url,
        &keyring,
        "acme",
        "acme",
        ItsmKind::ServicedeskPlus,
        "https://sdp.example.com",
        r#"{"authtoken":"t"}"#,
    )
    .await
    .unwrap();
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let stop = CancellationToken::new();
    let mut config = incident_notifier::Config::new(
        nats.url(),
        db.app_url.clone(),
        Keyring::parse(&spec).unwrap(),
    );
    config.stage.tenant_cache_ttl = Duration::ZERO;
    let notifier = tokio::spawn(incident_notifier::run(
        config,
        stop.clone().cancelled_owned(),
    ));
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let events = incident_events("acme");
    let (detected, added) = (&events[0], &events[1]);

    // No webhook yet: version 1 is skipped.
    aia_bus::publish_event(&jetstream, detected, "v1")
        .await
        .unwrap();
    let admin = db.admin_client().await;
    eventually("v1 skipped", Duration::from_secs(15), || async {
        let rows = admin
            .query(
                "select 1 from incident_notifications where state = 'skipped' and version = 1",
                &[],
            )
            .await
            .unwrap();
        (!rows.is_empty()).then_some(())
    })
    .await;

    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::now_v7().as_bytes())
    );
    tenants::set_integrations(
        &mut pool.get().await.unwrap(),
        &keyring,
        &TenantId::parse("acme").unwrap(),
        &Integrations {
            incident_webhook_secret: Some(secret),
            incident_webhook_url: Some(format!("{}/hooks/incidents", server.url())),
            ..Integrations::default()
        },
    )
    .await
    .unwrap();
    aia_bus::publish_event(&jetstream, added, "v2")
        .await
        .unwrap();
    // Well inside the two minutes a version waits for the one before it.
    eventually("v2 posted", Duration::from_secs(20), || async {
        (receiver.received().len() == 1).then_some(())
    })
    .await;

    // Version 2 decided again, with another ticket.
    let mut again = Event::republished(added);
    if let Payload::IncidentUpdated(updated) = &mut again.payload {
        updated.ticket.as_mut().unwrap().ticket_id =
            aia_events::TicketId::parse("SUP-2001").unwrap();
    }
    aia_bus::publish_event(&jetstream, &again, "v2-again")
        .await
        .unwrap();
    let posts = eventually(
        "the second decision posted",
        Duration::from_secs(20),
        || async {
            let received = receiver.received();
            (received.len() == 2).then_some(received)
        },
    )
    .await;
    let ids: Vec<&str> = posts
        .iter()
        .map(|(headers, _)| headers["webhook-id"].to_str().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1], "two decisions, two messages");
    assert_eq!(
        Some(ids[0].to_owned()),
        incident_notifier::webhook_id(added)
    );
    assert_eq!(
        Some(ids[1].to_owned()),
        incident_notifier::webhook_id(&again)
    );

    // Version 3 was delivered by the release before, under the id without
    // a digest: after the upgrade, a copy of it is not posted again.
    let acknowledged = &events[2];
    let Payload::IncidentUpdated(v3) = &acknowledged.payload else {
        panic!("the third example is an update")
    };
    admin
        .execute(
            "insert into incident_notifications
                    (tenant_id, webhook_id, event_type, state, attempts, incident_id, version)
             values ('acme', $1, 'incident.updated', 'delivered', 1, $2, 3)",
            &[
                &format!("incident:acme:{}:v3", v3.incident_id),
                &v3.incident_id,
            ],
        )
        .await
        .unwrap();
    aia_bus::publish_event(&jetstream, acknowledged, "v3")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "v3 was delivered before the upgrade"
    );
    stop.cancel();
    notifier.await.unwrap().unwrap();
}

/// A receiver that answers a redirect is not followed: the signed body is
/// never posted where the redirect points (a compromised relay could point
/// it at the deployment's own network).
#[tokio::test]
async fn a_redirect_from_a_receiver_is_not_followed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let captured = Receiver::default();
    let inside = aia_standins::serve(captured.router()).await.unwrap();
    let target = format!("{}/hooks/incidents", inside.url());
    let relay = aia_standins::serve(axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let target = target.clone();
            async move {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, target)],
                )
            }
        }),
    ))
    .await
    .unwrap();
    let client = incident_notifier::client(Duration::from_secs(5)).unwrap();
    let answer = client
        .post(format!("{}/hook", relay.url()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::TEMPORARY_REDIRECT);
    assert!(captured.received().is_empty(), "the redirect was followed");
}
