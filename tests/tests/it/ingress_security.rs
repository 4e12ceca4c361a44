//! The ingress against someone who kept signed bytes, probes for tenants,
//! or scrapes the public port: one run per ticket however late a delivery
//! comes again, stale new tickets refused, unknown tenants answered as bad
//! signatures, no metrics on the webhook port.

use crate::ingress_support;

use std::time::Duration;

use aia_events::{Event, Payload};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use ingress_support::{Ingress, ticket};
use serde_json::json;

/// Every event stored so far.
async fn stored_events(ingress: &Ingress) -> Vec<Event> {
    let stream = ingress.jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let total = ingress.stored().await as usize;
    let mut messages = consumer
        .fetch()
        .max_messages(total.max(1))
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(Ok(message)) = messages.next().await {
        events.push(Event::from_json(&message.payload).unwrap());
    }
    events
}

/// The stream forgets message ids after a second: what a replay after the
/// duplicate window meets.
async fn shorten_duplicate_window(ingress: &Ingress) {
    let mut stream = ingress.jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    let mut config = stream.info().await.unwrap().config.clone();
    config.duplicate_window = Duration::from_secs(1);
    ingress.jetstream.update_stream(config).await.unwrap();
}

fn jira_created(key: &str, created: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "timestamp": 1_764_072_000_000i64, "webhookEvent": "jira:issue_created",
        "issue": {"key": key, "fields": {"summary": "VPN", "description": "drops", "priority": {"name": "Low"},
                  "created": created.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()}}
    }))
    .unwrap()
}

#[tokio::test]
async fn the_same_signed_bytes_sent_after_the_duplicate_window_start_no_second_run() {
    let ingress = Ingress::start().await;
    shorten_duplicate_window(&ingress).await;
    let body = ticket("acme", "T-100");
    let (status, first, _) = ingress.post_signed("/webhook/servicedesk", &body).await;
    assert_eq!(status, 202, "{first}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, again, _) = ingress.post_signed("/webhook/servicedesk", &body).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["event_id"], first["event_id"]);
    assert_eq!(ingress.stored().await, 1, "a replay started a second run");
    // A new ticket of the tenant does start a run.
    let (status, other, _) = ingress
        .post_signed("/webhook/servicedesk", &ticket("acme", "T-101"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(other["duplicate"], false);
    assert_eq!(ingress.stored().await, 2);
}

#[tokio::test]
async fn updates_start_a_run_only_for_a_ticket_without_one_unless_the_tenant_re_enhances() {
    let ingress = Ingress::start().await;
    shorten_duplicate_window(&ingress).await;
    let update = |id: &str, text: &str| {
        let mut body = ticket("acme", id);
        body["event"] = json!("ticket_updated");
        body["description"] = json!(text);
        body
    };
    ingress
        .post_signed("/webhook/servicedesk", &ticket("acme", "T-1"))
        .await;
    // A ticket with a run: an update starts none.
    let (status, answer, _) = ingress
        .post_signed(
            "/webhook/servicedesk",
            &update("T-1", "now also the printer"),
        )
        .await;
    assert_eq!((status, answer["duplicate"].clone()), (202, json!(true)));
    // A ticket we never saw created: its first update starts one run.
    let (status, answer, _) = ingress
        .post_signed(
            "/webhook/servicedesk",
            &update("T-2", "old ticket, new words"),
        )
        .await;
    assert_eq!((status, answer["duplicate"].clone()), (202, json!(false)));
    assert_eq!(ingress.stored().await, 2);

    // The tenant re-enhances updates, at most once an hour.
    ingress
        .db
        .merge_tenant_settings(
            "acme",
            serde_json::json!({"reenhance_updates": true, "reenhance_interval_mins": 60}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the tenant cache and the window
    let (status, answer, _) = ingress
        .post_signed("/webhook/servicedesk", &update("T-1", "within the hour"))
        .await;
    assert_eq!((status, answer["duplicate"].clone()), (202, json!(true)));
    ingress
        .db
        .admin_client()
        .await
        .batch_execute(
            "update ticket_intake set claimed_at = now() - interval '61 minutes' where ticket_id = 'T-1'",
        )
        .await
        .unwrap();
    let (status, answer, _) = ingress
        .post_signed("/webhook/servicedesk", &update("T-1", "an hour later"))
        .await;
    assert_eq!(
        (status, answer["duplicate"].clone()),
        (202, json!(false)),
        "{answer}"
    );
    assert_eq!(ingress.stored().await, 3);
}

/// Twenty different deliveries of one new ticket at once (a help desk's
/// retries, each signed afresh): one run, one event in the stream, and
/// every delivery answered 202.
#[tokio::test]
async fn twenty_deliveries_of_one_new_ticket_at_once_start_one_run() {
    let ingress = Ingress::start().await;
    let ingress = &ingress;
    let answers = futures::future::join_all((0..20).map(|n| async move {
        let mut body = ticket("acme", "T-20");
        body["description"] = json!(format!("VPN drops (delivery {n})"));
        ingress.post_signed("/webhook/servicedesk", &body).await
    }))
    .await;
    assert!(
        answers.iter().all(|(status, _, _)| *status == 202),
        "{:?}",
        answers
            .iter()
            .map(|(status, answer, _)| (status, answer))
            .collect::<Vec<_>>()
    );
    let runs: std::collections::BTreeSet<String> = answers
        .iter()
        .filter_map(|(_, answer, _)| answer["event_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(ingress.stored().await, 1);
}

#[tokio::test]
async fn a_run_claimed_but_never_published_is_published_once_by_the_next_delivery() {
    let ingress = Ingress::start().await;
    let body = ticket("acme", "T-7");
    // The ingress stopped between its claim and its publish: the claim
    // holds the event, unconfirmed.
    let (status, first, _) = ingress.post_signed("/webhook/servicedesk", &body).await;
    assert_eq!(status, 202);
    let stored = stored_events(&ingress).await;
    let mut orphan = stored[0].clone();
    orphan.ticket_id = aia_events::TicketId::parse("T-8").unwrap();
    orphan.event_id = uuid::Uuid::now_v7();
    orphan.correlation_id = orphan.event_id;
    ingress
        .db
        .admin_client()
        .await
        .execute(
            "insert into ticket_intake (tenant_id, ticket_id, kind, event_id, msg_id, event)
             values ('acme', 'T-8', 'created', $1, 'orphan-msg-id', $2)",
            &[&orphan.event_id, &orphan.to_json()],
        )
        .await
        .unwrap();
    for _ in 0..2 {
        let (status, answer, _) = ingress
            .post_signed("/webhook/servicedesk", &ticket("acme", "T-8"))
            .await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["event_id"], json!(orphan.event_id), "{first}");
    }
    let events = stored_events(&ingress).await;
    let t8: Vec<&Event> = events
        .iter()
        .filter(|event| event.ticket_id.as_str() == "T-8")
        .collect();
    assert_eq!(t8.len(), 1, "the claimed event is stored exactly once");
    assert_eq!(t8[0].event_id, orphan.event_id);
    let confirmed: bool = ingress
        .db
        .admin_client()
        .await
        .query_one(
            "select published_at is not null from ticket_intake where ticket_id = 'T-8'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(confirmed);
}

#[tokio::test]
async fn a_new_ticket_created_longer_ago_than_the_tenant_accepts_is_refused_as_stale() {
    let ingress = Ingress::start().await;
    let ingress = &ingress;
    let post = |bytes: Vec<u8>| {
        let headers = vec![
            ("content-type", "application/json".to_owned()),
            (
                "x-hub-signature",
                format!("sha256={}", ingress.sign(&bytes)),
            ),
        ];
        async move { ingress.post("/webhook/jira/acme", &headers, bytes).await }
    };
    let two_days_ago = chrono::Utc::now() - chrono::Duration::hours(48);
    let (status, answer, _) = post(jira_created("SUP-1", two_days_ago)).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (422, json!("stale_event")),
        "{answer}"
    );
    assert_eq!(ingress.stored().await, 0);
    let (status, answer, _) = post(jira_created("SUP-2", chrono::Utc::now())).await;
    assert_eq!(status, 202, "{answer}");
    // The tenant accepts three days.
    ingress
        .db
        .merge_tenant_settings("acme", serde_json::json!({"max_event_age_hours": 72}))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, answer, _) = post(jira_created("SUP-3", two_days_ago)).await;
    assert_eq!(status, 202, "{answer}");
    let stored = stored_events(ingress).await;
    assert!(
        stored
            .iter()
            .all(|event| matches!(event.payload, Payload::TicketReceived(_)))
    );
    assert_eq!(stored.len(), 2);
    // An age stored past any date there is (written before the settings
    // were bounded, or by hand) is read as the most allowed, a year: the
    // webhook is answered, not dropped by a panic.
    ingress
        .db
        .merge_tenant_settings(
            "acme",
            serde_json::json!({"max_event_age_hours": 4_000_000_000_u32}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, answer, _) = post(jira_created("SUP-4", two_days_ago)).await;
    assert_eq!(status, 202, "{answer}");
    let two_years_ago = chrono::Utc::now() - chrono::Duration::days(730);
    let (status, answer, _) = post(jira_created("SUP-5", two_years_ago)).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (422, json!("stale_event")),
        "{answer}"
    );
}

#[tokio::test]
async fn an_unknown_tenant_is_answered_exactly_as_a_bad_signature_on_every_route() {
    let ingress = Ingress::start().await;
    let wrong = |tenant: &str| {
        let bytes = serde_json::to_vec(&ticket(tenant, "T-1")).unwrap();
        (
            vec![
                ("content-type", "application/json".to_owned()),
                ("x-servicedesk-signature", "00".repeat(32)),
            ],
            bytes,
        )
    };
    let (headers, bytes) = wrong("acme");
    let existing = ingress.post("/webhook/servicedesk", &headers, bytes).await;
    let (headers, bytes) = wrong("nobody-here");
    let unknown = ingress.post("/webhook/servicedesk", &headers, bytes).await;
    assert_eq!(existing.0, unknown.0);
    assert_eq!(existing.1, unknown.1);
    assert_eq!(unknown.0, 401);
    // A made-up tenant's stale signed timestamp answers as an existing one's.
    let stale = |tenant: &str| {
        let bytes = serde_json::to_vec(&ticket(tenant, "T-1")).unwrap();
        let old = (chrono::Utc::now().timestamp() - 3600).to_string();
        (
            vec![
                ("content-type", "application/json".to_owned()),
                ("webhook-id", "msg_1".to_owned()),
                ("webhook-timestamp", old),
                ("webhook-signature", "v1,AAAA".to_owned()),
            ],
            bytes,
        )
    };
    let (headers, bytes) = stale("acme");
    let existing = ingress.post("/webhook/servicedesk", &headers, bytes).await;
    let (headers, bytes) = stale("nobody-here");
    let unknown = ingress.post("/webhook/servicedesk", &headers, bytes).await;
    assert_eq!((existing.0, &existing.1), (unknown.0, &unknown.1));
    // Every tool's route answers the same way: its own signature header is
    // checked for a made-up tenant as for a real one, the signed
    // timestamps beside it too.
    let now = chrono::Utc::now();
    let stale_webhook = [
        ("webhook-id", "msg_1".to_owned()),
        ("webhook-timestamp", (now.timestamp() - 3600).to_string()),
        ("webhook-signature", "v1,AAAA".to_owned()),
    ];
    let zendesk_at = |at: chrono::DateTime<chrono::Utc>| {
        vec![
            ("x-zendesk-webhook-signature", "AAAA".to_owned()),
            ("x-zendesk-webhook-signature-timestamp", at.to_rfc3339()),
        ]
    };
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("zendesk", zendesk_at(now)),
        ("zendesk", zendesk_at(now - chrono::Duration::hours(1))),
        ("autotask", vec![("x-hook-signature", "AAAA".to_owned())]),
        (
            "connectwise",
            vec![("x-content-signature", "AAAA".to_owned())],
        ),
        (
            "jira",
            vec![("x-hub-signature", format!("sha256={}", "00".repeat(32)))],
        ),
        (
            "freshservice",
            vec![("authorization", "Bearer not-the-secret".to_owned())],
        ),
        ("servicenow", vec![]),
        ("halopsa", vec![]),
    ];
    // Where Standard Webhooks is checked before the tool's own signature
    // (Jira, Freshservice, ServiceNow, HaloPSA), stale headers beside it
    // would answer both at once and the made-up tenant's own check would
    // never run: those routes get the tool's headers alone. (Ten failures
    // a minute per tenant id is the limit: one request per case.)
    let stale_first = ["zendesk", "autotask", "connectwise"];
    let cases = cases.into_iter().map(|(tool, mut own)| {
        if stale_first.contains(&tool) {
            own.extend(stale_webhook.iter().cloned());
        }
        (tool, own)
    });
    for (tool, own) in cases {
        let body = serde_json::to_vec(&json!({"ticket": {"id": 7}, "Metadata": {}})).unwrap();
        let mut headers = vec![("content-type", "application/json".to_owned())];
        headers.extend(own);
        let existing = ingress
            .post(&format!("/webhook/{tool}/acme"), &headers, body.clone())
            .await;
        let unknown = ingress
            .post(&format!("/webhook/{tool}/nobody-here"), &headers, body)
            .await;
        assert_eq!(
            (existing.0, &existing.1),
            (unknown.0, &unknown.1),
            "{tool} with {headers:?}"
        );
        assert_eq!(unknown.0, 401, "{tool}: {}", unknown.1);
    }
    // The operator still sees which it was.
    let metrics = aia_telemetry::metrics::encode(&ingress.registry);
    assert!(metrics.contains(r#"outcome="unknown_tenant""#), "{metrics}");
    assert!(
        metrics.contains(r#"outcome="invalid_signature""#),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_webhook_port_serves_no_metrics() {
    let ingress = Ingress::start().await;
    ingress
        .post_signed("/webhook/servicedesk", &ticket("acme", "T-1"))
        .await;
    let response = ingress
        .http
        .get(format!("{}/metrics", ingress.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body = response.text().await.unwrap();
    assert!(!body.contains("acme"), "{body}");
}

/// Posts a ticket signed with `secret`; the status.
async fn post_with(ingress: &Ingress, secret: &str, ticket_id: &str) -> u16 {
    let body = serde_json::to_vec(&ticket("acme", ticket_id)).unwrap();
    let signature = ingress::auth::sign::hex(secret, &body);
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("x-servicedesk-signature", signature),
    ];
    ingress.post("/webhook/servicedesk", &headers, body).await.0
}

#[tokio::test]
async fn a_leaked_secret_is_revoked_by_one_rotation_and_a_rotated_out_one_expires() {
    let ingress = Ingress::start().await;
    let tenants = aia_ops::tenant_admin(
        &ingress.db.app_url,
        &ingress.db.admin_read_url,
        aia_store::Keyring::parse(&ingress.keyring.export_spec()).unwrap(),
        "https://hooks.example.com".into(),
    )
    .unwrap();
    let cache_ttl = Duration::from_millis(300); // the harness's is 200 ms
    let leaked = ingress.secret.clone();

    // An ordinary rotation: both work while senders switch over.
    let second = tenants
        .rotate_secret("acme", aia_ops::tenants::KEEP_PREVIOUS)
        .await
        .unwrap();
    tokio::time::sleep(cache_ttl).await;
    assert_eq!(post_with(&ingress, &leaked, "A-1").await, 202);
    assert_eq!(post_with(&ingress, &second, "A-2").await, 202);
    // ...until the previous secret's time runs out.
    ingress
        .db
        .admin_client()
        .await
        .batch_execute(
            "update tenants set webhook_secret_prev_expires_at = now() - interval '1 second'",
        )
        .await
        .unwrap();
    tokio::time::sleep(cache_ttl).await;
    assert_eq!(post_with(&ingress, &leaked, "A-3").await, 401);
    assert_eq!(post_with(&ingress, &second, "A-4").await, 202);

    // The second secret leaks: one rotation revokes it at once.
    let third = tenants.rotate_secret("acme", Duration::ZERO).await.unwrap();
    tokio::time::sleep(cache_ttl).await;
    assert_eq!(post_with(&ingress, &second, "A-5").await, 401);
    assert_eq!(post_with(&ingress, &third, "A-6").await, 202);
    let (previous, expires): (Option<Vec<u8>>, Option<chrono::DateTime<chrono::Utc>>) = {
        let row = ingress
            .db
            .admin_client()
            .await
            .query_one(
                "select webhook_secret_prev_enc, webhook_secret_prev_expires_at from tenants where tenant_id = 'acme'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(
        (previous, expires),
        (None, None),
        "no previous secret is kept"
    );
}

/// A feedback link for `acme`'s ticket `T-1` in a run begun `days_ago`.
fn feedback_link(ingress: &Ingress, days_ago: u64) -> String {
    let started = std::time::SystemTime::now() - Duration::from_secs(days_ago * 86_400 + 60);
    let since_epoch = started.duration_since(std::time::UNIX_EPOCH).unwrap();
    let run = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        since_epoch.as_secs(),
        since_epoch.subsec_nanos(),
    ));
    let token = aia_store::feedback::token(&ingress.keyring, "acme", "T-1", run);
    format!("{}/feedback/acme/T-1/{run}/{token}", ingress.url)
}

fn ratings(events: &[Event]) -> Vec<aia_events::EnhancementRated> {
    events
        .iter()
        .filter_map(|event| match &event.payload {
            Payload::EnhancementRated(rated) => Some(rated.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_feedback_link_only_shows_the_choice_and_the_form_records_what_the_page_says() {
    let ingress = Ingress::start().await;
    let link = feedback_link(&ingress, 1);
    // Following the link (a mail scanner does) records nothing.
    let page = ingress
        .http
        .get(format!("{link}?rating=down"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"value="down" checked"#), "{page}");
    assert!(page.contains(r#"method="post""#), "{page}");
    assert_eq!(ingress.stored().await, 0, "a GET recorded a rating");
    let submission = regex::Regex::new(r#"name="submission" value="([0-9a-f]+)""#)
        .unwrap()
        .captures(&page)
        .expect("the form names its submission")[1]
        .to_owned();

    let send = |rating: &'static str, submission: String| {
        let link = link.clone();
        let http = ingress.http.clone();
        async move {
            let response = http
                .post(&link)
                .form(&[
                    ("rating", rating),
                    ("comment", ""),
                    ("submission", &submission),
                ])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    // Up, down, up within a minute: every rating is stored, and the page
    // says what it stored.
    let (status, said) = send("up", submission.clone()).await;
    assert_eq!(status, 200);
    assert!(said.contains("Recorded: helpful"), "{said}");
    let (_, said) = send("down", "second0001".into()).await;
    assert!(said.contains("Recorded: not helpful"), "{said}");
    let (_, said) = send("up", "third00001".into()).await;
    assert!(said.contains("Recorded: helpful"), "{said}");
    // The same form sent twice is one rating, and the page says so.
    let (status, said) = send("up", submission).await;
    assert_eq!(status, 200);
    assert!(said.contains("already sent"), "{said}");
    let stored = ratings(&stored_events(&ingress).await);
    let thumbs: Vec<Option<bool>> = stored.iter().map(|rated| rated.thumbs_up).collect();
    assert_eq!(thumbs, [Some(true), Some(false), Some(true)]);
}

#[tokio::test]
async fn a_feedback_link_expires_after_the_tenants_link_lifetime() {
    let ingress = Ingress::start().await;
    let old = feedback_link(&ingress, 31);
    let response = ingress
        .http
        .get(format!("{old}?rating=up"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    let response = ingress
        .http
        .post(&old)
        .json(&json!({"thumbs_up": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    assert_eq!(ingress.stored().await, 0);
    let fresh = feedback_link(&ingress, 29);
    let response = ingress
        .http
        .post(&fresh)
        .json(&json!({"thumbs_up": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

/// A body trickled in slower than the ingress waits is answered 408 and
/// stores nothing; the task and the connection are not held for it.
#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off_with_408_and_stores_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ingress = Ingress::start_with(ingress_support::Options {
        request_timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let body = serde_json::to_vec(&ticket("acme", "T-SLOW")).unwrap();
    let address = ingress.url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /webhook/servicedesk HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         x-servicedesk-signature: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        ingress.sign(&body),
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // Ten bytes of the body, then nothing for longer than the ingress waits.
    socket.write_all(&body[..10]).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_string(&mut answer))
        .await
        .expect("the ingress answers without the rest of the body")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert_eq!(ingress.stored().await, 0);
}

/// Made-up tenant ids arrive before anything is authenticated: a hundred at
/// once cost two reads of the tenant ids (the one the first began, and one
/// a second later for those that asked while it ran), not a read each
/// (which held the pool while real webhooks waited); and a tenant created
/// a moment after a read is found on its first webhook, not refused until
/// the second has passed.
#[tokio::test]
async fn a_hundred_made_up_tenant_ids_cost_two_reads_and_a_tenant_created_a_moment_ago_is_found() {
    let db = aia_testkit::TestDatabase::create().await;
    let pool = aia_store::pool(&db.app_url, 4).unwrap();
    let known = std::sync::Arc::new(ingress::known::KnownTenants::new(pool));
    let made_up = futures::future::join_all((0..100).map(|n| {
        let known = known.clone();
        async move {
            let id = aia_events::TenantId::parse(&format!("made-up-{n}")).unwrap();
            known.may_exist(&id).await.unwrap()
        }
    }))
    .await;
    assert!(made_up.iter().all(|exists| !exists));
    assert_eq!(known.reads(), 2);

    let keyring = aia_store::Keyring::parse(&aia_store::Keyring::generate_spec("k1")).unwrap();
    aiagents::ops::add_tenant(
        &db.app_url,
        &keyring,
        "newcomer",
        "Newcomer",
        aia_events::ItsmKind::ServicedeskPlus,
        "https://sdp.example.com",
        r#"{"authtoken":"t"}"#,
    )
    .await
    .unwrap();
    // Within a second of the last read, which could not have seen it.
    let newcomer = aia_events::TenantId::parse("newcomer").unwrap();
    assert!(known.may_exist(&newcomer).await.unwrap());
    assert_eq!(known.reads(), 3);
    // Held now: no read.
    assert!(known.may_exist(&newcomer).await.unwrap());
    assert_eq!(known.reads(), 3);
}
