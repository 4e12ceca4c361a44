//! A signed ServiceDesk Plus webhook travels the whole pipeline on real
//! NATS JetStream and PostgreSQL, and one trace covers every stage — as a
//! collector receives it over OTLP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use aia_events::{Event, ItsmKind};
use aia_standins::llm::LlmStandIn;
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use aia_testkit::{NatsServer, OtlpReceiver, ReceivedSpan, TestDatabase, eventually};
use aiagents::dataset::{Query, Resolved};
use aiagents::{all_in_one, dataset, ops, webhook};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;

const AUTHTOKEN: &str = "sdp-token-acme";

fn resolved(
    tenant: &str,
    id: &str,
    subject: &str,
    description: &str,
    resolution: &str,
) -> Resolved {
    serde_json::from_value(serde_json::json!({
        "tenant_id": tenant, "ticket_id": id, "subject": subject, "description": description,
        "resolution": resolution, "resolved_at": "2026-10-01T10:00:00Z", "priority": "high", "tags": ["vpn"]
    }))
    .unwrap()
}

/// Every event published for one ticket, in stream order, with its
/// `traceparent` header.
async fn events_of(
    jetstream: &aia_bus::JetStream,
    tenant: &str,
    ticket: &str,
) -> Vec<(Event, String)> {
    let stream = jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: format!("tickets.{tenant}.{ticket}.>"),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.unwrap();
        let traceparent = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("traceparent"))
            .map(|value| value.as_str().to_owned())
            .unwrap_or_default();
        events.push((Event::from_json(&message.payload).unwrap(), traceparent));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhook_becomes_one_note_with_one_trace_across_every_stage() {
    let collector = OtlpReceiver::start().await;
    let logs = LogBuffer::default();
    let telemetry = aia_telemetry::init_with_otlp_and_logs(
        "e2e",
        aia_telemetry::OtlpConfig {
            endpoint: Some(collector.traces_url().to_owned()),
            protocol: "http/protobuf".into(),
        },
        logs.clone(),
    );
    let _ = rustls::crypto::ring::default_provider().install_default();

    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    let llm = LlmStandIn::new();
    let llm_server = aia_standins::serve(llm.router()).await.unwrap();
    let sdp = ServiceDeskStandIn::new(AUTHTOKEN);
    let sdp_server = aia_standins::serve(sdp.router()).await.unwrap();
    ops::apply_nats(&nats.url()).await.unwrap();

    let keyring_spec = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&keyring_spec).unwrap();
    let credentials = serde_json::json!({"authtoken": AUTHTOKEN}).to_string();
    let mut secrets = HashMap::new();
    for tenant in ["acme", "globex"] {
        let created = ops::add_tenant(
            &db.app_url,
            &keyring,
            tenant,
            tenant,
            ItsmKind::ServicedeskPlus,
            &sdp_server.url(),
            &credentials,
        )
        .await
        .unwrap();
        secrets.insert(tenant, created.webhook_secret);
    }

    let running = all_in_one::start(all_in_one::Settings {
        nats_url: nats.url(),
        database_url: db.app_url.clone(),
        keyring_spec,
        llm: Some(aia_llm::Provider {
            kind: aia_llm::ProviderKind::OpenAi,
            name: "standin".into(),
            base_url: format!("{}/v1", llm_server.url()),
            api_key: Some("sk-test".into()),
            model: "gpt-4o-mini".into(),
            timeout: Duration::from_secs(5),
        }),
        ingress_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        public_url: None,
        model_dir: None,
        metrics_addr: None,
    })
    .await
    .unwrap();

    // The history corpus enters as ticket.resolved events, like an import.
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let corpus = [
        resolved(
            "acme",
            "ACME-1",
            "VPN tunnel drops hourly",
            "FortiClient VPN disconnects every hour",
            "Aligned the IPsec SA lifetime to 28800 s",
        ),
        resolved(
            "acme",
            "ACME-2",
            "Printer offline",
            "Second floor printer offline",
            "DHCP reservation for the printer",
        ),
        resolved(
            "globex",
            "GLOBEX-9",
            "VPN drops every hour",
            "VPN disconnects every hour for remote staff",
            "Globex-only fix: replaced the firewall",
        ),
    ];
    dataset::publish_resolved(&jetstream, &corpus, &Default::default())
        .await
        .unwrap();
    let admin = db.admin_client().await;
    eventually(
        "the corpus in ticket_history",
        Duration::from_secs(30),
        || async {
            let count: i64 = admin
                .query_one("select count(*) from ticket_history", &[])
                .await
                .ok()?
                .get(0);
            (count == 3).then_some(())
        },
    )
    .await;

    let query: Query = serde_json::from_value(serde_json::json!({
        "tenant_id": "acme", "ticket_id": "SUP-4711", "subject": "VPN keeps disconnecting",
        "description": "My VPN drops every hour since this morning", "priority": "high"
    }))
    .unwrap();
    // The help desk refuses the first note (503): write-back retries, and
    // the redelivery shows in the trace as a second attempt.
    sdp.unavailable_for_notes(1);
    let http = reqwest::Client::new();
    let body = webhook::servicedesk_body(&query);
    let (status, answer) = webhook::send_servicedesk(
        &http,
        &running.ingress_url,
        secrets["acme"].expose(),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "accepted");

    // The note lands on the right ticket, once, built from this tenant's context only.
    let notes = eventually("the note", Duration::from_secs(30), || async {
        let notes = sdp.notes("SUP-4711");
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert!(
        notes[0]
            .description
            .contains("<h2>Recommended Next Steps</h2>"),
        "{}",
        notes[0].description
    );
    assert!(!notes[0].show_to_requester);
    let prompt = llm.requests()[0]["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        prompt.contains("ACME-1"),
        "the similar acme ticket reaches the prompt: {prompt}"
    );
    assert!(
        !prompt.contains("GLOBEX-9") && !prompt.contains("Globex-only"),
        "another tenant's ticket leaked: {prompt}"
    );

    // The run is projected as completed.
    let row = eventually("the completed history row", Duration::from_secs(30), || async {
        admin
            .query_opt(
                "select status, model, prompt_version, processing_ms, written_back_at is not null
                   from enhancement_history where tenant_id = 'acme' and ticket_id = 'SUP-4711' and status = 'completed'",
                &[],
            )
            .await
            .ok()?
    })
    .await;
    assert_eq!(row.get::<_, String>(0), "completed");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("gpt-4o-mini")
    );
    assert!(row.get::<_, bool>(4));

    // A redelivered webhook (same body) is absorbed: 202, nothing new stored, no second note.
    let before = events_of(&jetstream, "acme", "SUP-4711").await.len();
    let (status, _) =
        webhook::send_servicedesk(&http, &running.ingress_url, secrets["acme"].expose(), body)
            .await
            .unwrap();
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = events_of(&jetstream, "acme", "SUP-4711").await;
    assert_eq!(events.len(), before, "the redelivery stored a new event");
    assert_eq!(sdp.notes("SUP-4711").len(), 1, "exactly one note");

    // One trace from the webhook through every stage, carried in NATS headers.
    let types: Vec<&str> = events.iter().map(|(event, _)| event.event_type()).collect();
    assert_eq!(
        types,
        [
            "ticket.received",
            "context.gathered",
            "enhancement.generated",
            "writeback.completed"
        ]
    );
    let trace_ids: Vec<&str> = events
        .iter()
        .map(|(_, tp)| aia_telemetry::trace_id_of(tp).expect("traceparent"))
        .collect();
    assert!(
        trace_ids.iter().all(|id| *id == trace_ids[0]),
        "trace ids differ: {trace_ids:?}"
    );
    let correlation = events[0].0.correlation_id;
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].0.causation_id,
            Some(pair[0].0.event_id),
            "causation chain"
        );
        assert_eq!(pair[1].0.correlation_id, correlation);
    }

    running.stop().await.unwrap();
    tokio::task::spawn_blocking(move || telemetry.flush())
        .await
        .unwrap();
    let spans = collector.spans();
    let in_trace: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.trace_id == trace_ids[0])
        .collect();
    assert!(
        in_trace
            .iter()
            .any(|span| span.name == "POST /webhook/servicedesk"),
        "the trace starts at the webhook's server span"
    );
    let send_spans: Vec<&str> = in_trace
        .iter()
        .filter(|span| span.name.starts_with("send "))
        .map(|span| span.span_id.as_str())
        .collect();
    for stage in [
        "context-gatherer",
        "llm-enhancer",
        "writeback",
        "history-projector",
    ] {
        let process: Vec<&&ReceivedSpan> = in_trace
            .iter()
            .filter(|span| {
                span.name.starts_with("process ") && span.attribute("stage") == Some(stage)
            })
            .collect();
        assert!(
            !process.is_empty(),
            "{stage} has no span in the webhook's trace"
        );
        for span in process {
            assert!(
                send_spans.contains(&span.parent_span_id.as_str()),
                "{stage}'s span is not a child of a publish"
            );
            assert_eq!(span.attribute("messaging.system"), Some("nats"));
        }
    }
    let mut writeback_attempts: Vec<(String, String, String)> = in_trace
        .iter()
        .filter(|span| {
            span.name.starts_with("process ") && span.attribute("stage") == Some("writeback")
        })
        .map(|span| {
            (
                span.attribute("messaging.message.delivery_count")
                    .unwrap_or_default()
                    .to_owned(),
                span.attribute("outcome").unwrap_or_default().to_owned(),
                span.parent_span_id.clone(),
            )
        })
        .collect();
    writeback_attempts.sort();
    assert_eq!(
        writeback_attempts
            .iter()
            .map(|(attempt, outcome, _)| (attempt.as_str(), outcome.as_str()))
            .collect::<Vec<_>>(),
        [("1", "retry"), ("2", "done")],
        "the refused note and its redelivery are two attempts in one trace"
    );
    assert_eq!(
        writeback_attempts[0].2, writeback_attempts[1].2,
        "both attempts are children of the same publish"
    );
    let llm_call = in_trace
        .iter()
        .find(|span| span.attribute("gen_ai.request.model").is_some())
        .expect("the LLM call is a GenAI client span in the trace");
    assert_eq!(
        llm_call.attribute("gen_ai.request.model"),
        Some("gpt-4o-mini")
    );
    assert!(llm_call.attribute("gen_ai.usage.input_tokens").is_some());
    // Calls to other systems are client spans of the same trace: HTTP for
    // the help desk and the LLM provider, database for the context queries.
    for peer in ["servicedesk-plus", "llm-provider"] {
        let statuses: Vec<&str> = in_trace
            .iter()
            .filter(|span| {
                span.attribute("peer.service") == Some(peer)
                    && span.attribute("server.address") == Some("127.0.0.1")
            })
            .filter_map(|span| span.attribute("http.response.status_code"))
            .collect();
        assert!(
            statuses.iter().any(|status| status.starts_with('2')),
            "{peer}: HTTP client spans with statuses {statuses:?}"
        );
    }
    assert!(
        in_trace
            .iter()
            .any(|span| span.name == "SELECT ticket_history"
                && span.attribute("db.system.name") == Some("postgresql")),
        "the similar-ticket query is a database span in the trace"
    );
    let leaked = spans
        .iter()
        .flat_map(|span| span.attributes.iter())
        .any(|(_, value)| {
            value.contains("VPN drops every hour")
                || value.contains(AUTHTOKEN)
                || value.contains(secrets["acme"].expose())
        });
    assert!(
        !leaked,
        "ticket text or a secret went into a span attribute"
    );

    // Logs at debug level name tenants and tickets but never a secret.
    let logged = logs.text();
    assert!(
        logged.contains("\"tenant_id\":\"acme\""),
        "logs lack tenant fields"
    );
    assert!(
        logged.contains(&format!("\"trace_id\":\"{}\"", trace_ids[0])),
        "log lines of the run must carry its trace id"
    );
    for secret in [
        AUTHTOKEN,
        secrets["acme"].expose(),
        secrets["globex"].expose(),
        "sk-test",
    ] {
        assert!(!logged.contains(secret), "a secret was logged");
    }
}

/// Log lines captured in memory.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
