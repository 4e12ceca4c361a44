//! The ingress accepts every genuine delivery exactly once, from every
//! supported sender and signing scheme, and answers operators' probes.

use crate::ingress_support;

use std::time::Duration;

use aia_events::{Event, TenantId};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use ingress_support::{Ingress, Options, PYTHON_SIGN, PYTHON_VERIFY, python, ticket};
use serde_json::json;

/// Every event in the stream, with its subject.
async fn events(ingress: &Ingress) -> Vec<(String, Event)> {
    let stream = ingress.jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_millis(300))
        .messages()
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.unwrap();
        out.push((
            message.subject.to_string(),
            Event::from_json(&message.payload).unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn every_signing_scheme_is_accepted_and_stores_one_ticket_received() {
    let ingress = Ingress::start().await;
    let json_type = ("content-type", "application/json".to_owned());

    let body = serde_json::to_vec(&ticket("acme", "1")).unwrap();
    let (status, answer, _) = ingress
        .post(
            "/webhook/servicedesk",
            &[
                json_type.clone(),
                ("x-servicedesk-signature", ingress.sign(&body)),
            ],
            body,
        )
        .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("accepted")),
        "{answer}"
    );

    let body = serde_json::to_vec(&ticket("acme", "2")).unwrap();
    let prefixed = format!("sha256={}", ingress.sign(&body));
    let (status, _, _) = ingress
        .post(
            "/webhook/servicedesk",
            &[json_type.clone(), ("x-servicedesk-signature", prefixed)],
            body,
        )
        .await;
    assert_eq!(status, 202);

    let body = serde_json::to_vec(&ticket("acme", "3")).unwrap();
    let now = chrono::Utc::now().timestamp();
    let signature = ingress::auth::sign::standard_webhooks(&ingress.secret, "msg_3", now, &body);
    let headers = [
        json_type.clone(),
        ("webhook-id", "msg_3".to_owned()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", signature),
    ];
    let (status, _, _) = ingress.post("/webhook/servicedesk", &headers, body).await;
    assert_eq!(status, 202);

    let body = serde_json::to_vec(&ticket("acme", "4")).unwrap();
    let (status, _, _) = ingress
        .post(
            "/webhook/servicedesk",
            &[json_type, ("x-webhook-secret", ingress.secret.clone())],
            body,
        )
        .await;
    assert_eq!(status, 202);

    let stored = events(&ingress).await;
    let subjects: Vec<&str> = stored.iter().map(|(subject, _)| subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "tickets.acme.1.ticket.received",
            "tickets.acme.2.ticket.received",
            "tickets.acme.3.ticket.received",
            "tickets.acme.4.ticket.received",
        ]
    );
    assert!(
        stored
            .iter()
            .all(|(_, event)| event.tenant_id == TenantId::parse("acme").unwrap())
    );
}

#[tokio::test]
async fn redelivered_webhooks_get_the_first_event_id_and_store_nothing_new() {
    let ingress = Ingress::start().await;
    let body = ticket("acme", "SUP-9");
    let (_, first, _) = ingress.post_signed("/webhook/servicedesk", &body).await;
    let (status, second, _) = ingress.post_signed("/webhook/servicedesk", &body).await;
    assert_eq!(status, 202);
    assert_eq!(first["event_id"], second["event_id"]);
    assert_eq!(second["duplicate"], true);

    // Standard Webhooks: the sender's retry re-signs with a new timestamp but
    // keeps the id.
    let json_type = ("content-type", "application/json".to_owned());
    let mut ids = Vec::new();
    for offset in [0, 5] {
        let bytes = serde_json::to_vec(&ticket("acme", "SUP-10")).unwrap();
        let now = chrono::Utc::now().timestamp() - offset;
        let signature =
            ingress::auth::sign::standard_webhooks(&ingress.secret, "msg_10", now, &bytes);
        let headers = [
            json_type.clone(),
            ("webhook-id", "msg_10".to_owned()),
            ("webhook-timestamp", now.to_string()),
            ("webhook-signature", signature),
        ];
        let (status, answer, _) = ingress.post("/webhook/servicedesk", &headers, bytes).await;
        assert_eq!(status, 202);
        ids.push(answer["event_id"].clone());
    }
    assert_eq!(ids[0], ids[1]);

    // Jira: the same X-Atlassian-Webhook-Identifier is the same delivery.
    let mut ids = Vec::new();
    let created = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f%z")
        .to_string();
    for attempt in 0..2 {
        let bytes = serde_json::to_vec(&json!({
            "timestamp": 1_764_072_000_000i64 + attempt, "webhookEvent": "jira:issue_created",
            "issue": {"key": "SUP-11", "fields": {"summary": "VPN", "description": "drops", "priority": {"name": "Low"},
                      "created": created}}
        }))
        .unwrap();
        let headers = [
            json_type.clone(),
            (
                "x-hub-signature",
                format!("sha256={}", ingress.sign(&bytes)),
            ),
            ("x-atlassian-webhook-identifier", "delivery-11".to_owned()),
            ("x-atlassian-webhook-retry", attempt.to_string()),
        ];
        let (status, answer, _) = ingress.post("/webhook/jira/acme", &headers, bytes).await;
        assert_eq!(status, 202, "{answer}");
        ids.push(answer["event_id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ingress.stored().await, 3);
}

#[tokio::test]
async fn resolved_tickets_arrive_on_both_paths_and_from_jira_transitions() {
    let ingress = Ingress::start().await;
    // acme's tickets are all German, whatever their words look like.
    ingress
        .db
        .merge_tenant_settings("acme", json!({"languages": {"fixed": "de"}}))
        .await;
    for (path, id) in [
        ("/webhook/servicedesk/resolved-ticket", "R-1"),
        ("/webhook/servicedesk/resolved", "R-2"),
    ] {
        let body = json!({"tenant_id": "acme", "ticket_id": id, "subject": "VPN", "description": "drops",
            "resolution": "raised the SA lifetime", "resolved_date": "2026-11-01T10:00:00+01:00",
            "priority": "medium", "tags": ["vpn"]});
        let (status, answer, _) = ingress.post_signed(path, &body).await;
        assert_eq!(status, 202, "{path}: {answer}");
    }
    let json_type = ("content-type", "application/json".to_owned());
    let jira = |body: serde_json::Value| serde_json::to_vec(&body).unwrap();
    let resolved = jira(json!({
        "timestamp": 1_764_072_000_000i64, "webhookEvent": "jira:issue_updated",
        "issue": {"key": "SUP-7", "fields": {"summary": "Printer", "description": {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Printer offline"}]}]},
            "priority": {"name": "Highest"}, "resolution": {"name": "Fixed"}, "status": {"statusCategory": {"key": "done"}},
            "resolutiondate": "2026-11-25T11:00:00.000+0000"}},
        "changelog": {"items": [{"field": "resolution", "toString": "Fixed"}]}
    }));
    let signature = format!("sha256={}", ingress.sign(&resolved));
    let (status, _, _) = ingress
        .post(
            "/webhook/jira/acme",
            &[json_type.clone(), ("x-hub-signature", signature)],
            resolved,
        )
        .await;
    assert_eq!(status, 202);
    let comment =
        jira(json!({"timestamp": 1, "webhookEvent": "comment_created", "comment": {"body": "hi"}}));
    let signature = format!("sha256={}", ingress.sign(&comment));
    let (status, answer, _) = ingress
        .post(
            "/webhook/jira/acme",
            &[json_type, ("x-hub-signature", signature)],
            comment,
        )
        .await;
    assert_eq!((status, answer["status"].as_str()), (202, Some("ignored")));

    let stored = events(&ingress).await;
    let subjects: Vec<&str> = stored.iter().map(|(subject, _)| subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "tickets.acme.R-1.ticket.resolved",
            "tickets.acme.R-2.ticket.resolved",
            "tickets.acme.SUP-7.ticket.resolved"
        ]
    );
    let aia_events::Payload::TicketResolved(jira_resolved) = &stored[2].1.payload else {
        panic!()
    };
    assert_eq!(jira_resolved.priority, aia_events::Priority::Critical);
    assert_eq!(jira_resolved.description, "Printer offline");
    // Each carries the language the tenant's settings gave it, so the
    // history is searched in German like acme's new tickets.
    for (subject, event) in &stored {
        let aia_events::Payload::TicketResolved(resolved) = &event.payload else {
            panic!("{subject}")
        };
        let language = resolved.language.expect(subject);
        assert_eq!(
            (language.language, language.decided_by),
            (aia_events::Language::German, aia_events::DecidedBy::Tenant),
            "{subject}"
        );
    }
}

#[tokio::test]
async fn the_rate_limit_counts_only_signed_requests_and_names_the_wait() {
    let ingress = Ingress::start().await;
    // Unsigned requests do not use up the tenant's budget (3 per minute for "strict")…
    for _ in 0..5 {
        let body = serde_json::to_vec(&ticket("strict", "X")).unwrap();
        let (status, _, _) = ingress
            .post(
                "/webhook/servicedesk",
                &[("content-type", "application/json".into())],
                body,
            )
            .await;
        assert_eq!(status, 401);
    }
    for n in 0..3 {
        let (status, answer, _) = ingress
            .post_signed("/webhook/servicedesk", &ticket("strict", &format!("S-{n}")))
            .await;
        assert_eq!(status, 202, "{answer}");
    }
    let (status, answer, headers) = ingress
        .post_signed("/webhook/servicedesk", &ticket("strict", "S-4"))
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // …which is per endpoint.
    let body = json!({"tenant_id": "strict", "ticket_id": "R", "subject": "s", "description": "d", "resolution": "r",
        "resolved_date": "2026-11-01T10:00:00Z", "priority": "low"});
    assert_eq!(
        ingress
            .post_signed("/webhook/servicedesk/resolved", &body)
            .await
            .0,
        202
    );
    assert_eq!(ingress.stored().await, 4);
}

/// `X-ServiceDesk-Signature` signs the body alone, with no timestamp: a
/// captured request stays valid. Replayed a hundred times at once, it is
/// answered as the duplicate it is and uses up none of the tenant's limit
/// (3 a minute for "strict"), so its real webhooks still get through.
#[tokio::test]
async fn a_hundred_replays_of_one_signed_request_use_up_none_of_the_limit() {
    let ingress = Ingress::start().await;
    let captured = ticket("strict", "S-1");
    let (status, first, _) = ingress.post_signed("/webhook/servicedesk", &captured).await;
    assert_eq!(status, 202, "{first}");
    let replays = futures::future::join_all(
        (0..100).map(|_| ingress.post_signed("/webhook/servicedesk", &captured)),
    )
    .await;
    for (status, answer, _) in &replays {
        assert_eq!(*status, 202, "{answer}");
        assert_eq!(answer["duplicate"], true, "{answer}");
        assert_eq!(answer["event_id"], first["event_id"], "{answer}");
    }
    for n in 2..4 {
        let (status, answer, _) = ingress
            .post_signed("/webhook/servicedesk", &ticket("strict", &format!("S-{n}")))
            .await;
        assert_eq!(status, 202, "a real webhook after the replays: {answer}");
    }
    assert_eq!(ingress.stored().await, 3);

    // Jira's X-Hub-Signature covers the body only: a replay that makes up
    // its unsigned delivery id each time is still the same delivery.
    let created = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f%z")
        .to_string();
    let bytes = serde_json::to_vec(&json!({
        "timestamp": 1_764_072_000_000i64, "webhookEvent": "jira:issue_created",
        "issue": {"key": "SUP-21", "fields": {"summary": "VPN", "description": "drops",
                  "priority": {"name": "Low"}, "created": created}}
    }))
    .unwrap();
    let signature = format!("sha256={}", ingress.sign(&bytes));
    let ingress = &ingress;
    let jira = |n: usize| {
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("x-hub-signature", signature.clone()),
            ("x-atlassian-webhook-identifier", format!("made-up-{n}")),
        ];
        let bytes = bytes.clone();
        async move { ingress.post("/webhook/jira/strict", &headers, bytes).await }
    };
    let (status, first, _) = jira(0).await;
    assert_eq!(status, 202, "{first}");
    let replays = futures::future::join_all((1..=30).map(jira)).await;
    for (status, answer, _) in &replays {
        assert_eq!(
            (*status, &answer["duplicate"]),
            (202, &json!(true)),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn failed_signatures_are_capped_per_tenant() {
    let ingress = Ingress::start().await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let body = serde_json::to_vec(&ticket("acme", "X")).unwrap();
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("x-servicedesk-signature", "00".repeat(32)),
        ];
        statuses.push(ingress.post("/webhook/servicedesk", &headers, body).await.0);
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(&statuses[10..], &[429, 429]);
    // A correctly signed delivery still gets through.
    assert_eq!(
        ingress
            .post_signed("/webhook/servicedesk", &ticket("acme", "ok"))
            .await
            .0,
        202
    );
}

#[tokio::test]
async fn a_rotated_secret_takes_effect_within_the_cache_ttl_and_the_old_one_keeps_working() {
    let ingress = Ingress::start().await;
    assert_eq!(
        ingress
            .post_signed("/webhook/servicedesk", &ticket("acme", "before"))
            .await
            .0,
        202
    );
    let pool = aia_store::pool(&ingress.db.app_url, 1).unwrap();
    let mut client = pool.get().await.unwrap();
    let new_secret = aia_store::tenants::rotate_webhook_secret(
        &mut client,
        &ingress.keyring,
        &TenantId::parse("acme").unwrap(),
        Duration::from_secs(24 * 3600),
    )
    .await
    .unwrap()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // the harness's cache TTL is 200 ms
    let body = serde_json::to_vec(&ticket("acme", "after-new")).unwrap();
    let signature = ingress::auth::sign::hex(new_secret.expose(), &body);
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("x-servicedesk-signature", signature),
    ];
    assert_eq!(
        ingress.post("/webhook/servicedesk", &headers, body).await.0,
        202
    );
    assert_eq!(
        ingress
            .post_signed("/webhook/servicedesk", &ticket("acme", "after-old"))
            .await
            .0,
        202
    );
}

#[tokio::test]
async fn when_jetstream_is_unreachable_the_answer_is_503_readiness_says_why_and_the_retry_stores_once()
 {
    let mut ingress = Ingress::start_with(Options {
        publish_timeout: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let ready = ingress
        .http
        .get(format!("{}/health/ready", ingress.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // Warm the tenant cache, then take NATS away.
    assert_eq!(
        ingress
            .post_signed("/webhook/servicedesk", &ticket("acme", "1"))
            .await
            .0,
        202
    );
    ingress.nats.kill();
    let retry_body = ticket("acme", "2");
    let (status, answer, _) = ingress
        .post_signed("/webhook/servicedesk", &retry_body)
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{answer}"
    );
    let ready = ingress
        .http
        .get(format!("{}/health/ready", ingress.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let readiness: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(readiness["dependencies"]["nats"], "unavailable");
    assert_eq!(readiness["dependencies"]["postgres"], "ok");
    ingress.nats.restart().await;
    aia_testkit::eventually("NATS to be back", Duration::from_secs(10), || async {
        (ingress
            .http
            .get(format!("{}/health/ready", ingress.url))
            .send()
            .await
            .ok()?
            .status()
            == 200)
            .then_some(())
    })
    .await;
    // The sender retries as told; the ticket is stored exactly once.
    let (status, answer, _) = ingress
        .post_signed("/webhook/servicedesk", &retry_body)
        .await;
    assert_eq!(status, 202, "{answer}");
    let tickets: Vec<String> = events(&ingress)
        .await
        .into_iter()
        .map(|(_, event)| event.ticket_id.to_string())
        .collect();
    assert_eq!(tickets, ["1", "2"]);
}

#[tokio::test]
async fn metrics_count_requests_by_tenant_endpoint_and_outcome() {
    let ingress = Ingress::start().await;
    ingress
        .post_signed("/webhook/servicedesk", &ticket("acme", "1"))
        .await;
    let body = serde_json::to_vec(&ticket("acme", "2")).unwrap();
    ingress
        .post(
            "/webhook/servicedesk",
            &[("content-type", "application/json".into())],
            body,
        )
        .await;
    let text = aia_telemetry::metrics::encode(&ingress.registry);
    for expected in [
        r#"webhook_requests_total{tenant_id="acme",endpoint="servicedesk",outcome="accepted"} 1"#,
        r#"webhook_requests_total{tenant_id="acme",endpoint="servicedesk",outcome="invalid_signature"} 1"#,
        r#"webhook_signature_failures_total{tenant_id="acme"} 1"#,
        "webhook_publish_duration_seconds_count 1",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

#[test]
fn the_openapi_document_describes_every_route() {
    let document: serde_json::Value = serde_json::from_str(ingress::OPENAPI).unwrap();
    for (method, path) in ingress::ROUTES {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not described"
        );
    }
    let described: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        described,
        ingress::ROUTES.len(),
        "the document describes routes that do not exist"
    );
    let codes = &document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
        ["enum"];
    assert!(codes.as_array().unwrap().len() >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_finishes_the_requests_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ingress = Ingress::start().await;
    let config = ingress::Config::new(
        ingress.nats.url(),
        ingress.db.app_url.clone(),
        aia_store::Keyring::parse(&ingress.keyring.export_spec()).unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ingress::serve(config, listener, async move {
        let _ = stopped.await;
    }));

    // A request whose body is still arriving when the shutdown comes.
    let body = serde_json::to_vec(&ticket("acme", "IN-FLIGHT")).unwrap();
    let head = format!(
        "POST /webhook/servicedesk HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-servicedesk-signature: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        ingress.sign(&body),
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    socket.write_all(&body[10..]).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    server.await.unwrap().unwrap();
    assert_eq!(ingress.stored().await, 1);
    // Once drained, the server is gone.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secret_we_issue_works_with_the_reference_standard_webhooks_library() {
    let ingress = Ingress::start().await;
    let created = aiagents::ops::add_tenant(
        &ingress.db.app_url,
        &ingress.keyring,
        "sender",
        "Sender",
        aia_events::ItsmKind::ServicedeskPlus,
        "http://127.0.0.1:9",
        r#"{"authtoken": "unused"}"#,
    )
    .await
    .unwrap();
    let secret = created.webhook_secret.expose().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let now = chrono::Utc::now().timestamp().to_string();
    let json_type = ("content-type", "application/json".to_owned());

    // A sender on the official library, configured with the secret as shown.
    let body = serde_json::to_vec(&ticket("sender", "PY-1")).unwrap();
    let signed = python(PYTHON_SIGN, &[&secret, "msg_py_1", &now], &body);
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let signature = String::from_utf8(signed.stdout).unwrap().trim().to_owned();
    assert!(signature.starts_with("v1,"), "{signature}");
    let headers = [
        json_type.clone(),
        ("webhook-id", "msg_py_1".to_owned()),
        ("webhook-timestamp", now.clone()),
        ("webhook-signature", signature.clone()),
    ];
    let (status, answer, _) = ingress
        .post("/webhook/servicedesk", &headers, body.clone())
        .await;
    assert_eq!(status, 202, "{answer}");

    // The same signature over another body is refused.
    let other = serde_json::to_vec(&ticket("sender", "PY-2")).unwrap();
    let (status, _, _) = ingress.post("/webhook/servicedesk", &headers, other).await;
    assert_eq!(status, 401);

    // And the library accepts what our own signer produces for that secret.
    let ours =
        ingress::auth::sign::standard_webhooks(&secret, "msg_py_3", now.parse().unwrap(), &body);
    let verified = python(PYTHON_VERIFY, &[&secret, "msg_py_3", &now, &ours], &body);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let forged = python(PYTHON_VERIFY, &[&secret, "msg_py_4", &now, &ours], &body);
    assert!(
        !forged.status.success(),
        "a signature for another id must fail"
    );
}
