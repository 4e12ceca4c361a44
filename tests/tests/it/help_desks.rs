//! Each help desk and PSA end to end, through its own webhook and its own
//! API on a stand-in: a resolved ticket enters the history, a new ticket
//! gets exactly one private note that cites it, a redelivered webhook and a
//! crash between posting and recording add nothing, revoked credentials
//! end in a dead letter that a re-drive completes once the tenant's
//! credentials are fixed, and the resolved-ticket import pages and resumes.

use crate::help_desks_support::{Case, Happened};

use std::net::SocketAddr;
use std::time::Duration;

use aia_bus::{Delivery, Handled};
use aia_events::{Event, ItsmKind, Payload, TenantId};
use aia_standins::desk::Ticket;
use aia_standins::llm::LlmStandIn;
use aia_store::{Keyring, Secret, tenants};
use aia_testkit::{NatsServer, TestDatabase, eventually};
use aiagents::{all_in_one, ops};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;

const TENANT: &str = "acme";

struct Run {
    case: Case,
    nats: NatsServer,
    db: TestDatabase,
    llm: LlmStandIn,
    _llm_server: aia_standins::Running,
    keyring_spec: String,
    secret: Secret,
    running: all_in_one::Running,
    http: reqwest::Client,
}

impl Run {
    async fn start(kind: ItsmKind) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let case = Case::start(kind).await;
        let nats = NatsServer::start().await;
        let db = TestDatabase::create().await;
        let llm = LlmStandIn::new();
        let llm_server = aia_standins::serve(llm.router()).await.unwrap();
        ops::apply_nats(&nats.url()).await.unwrap();
        let keyring_spec = Keyring::generate_spec("k1");
        let secret = ops::add_tenant(
            &db.app_url,
            &Keyring::parse(&keyring_spec).unwrap(),
            TENANT,
            "Acme",
            kind,
            &case.base_url,
            &case.credentials.to_string(),
        )
        .await
        .unwrap()
        .webhook_secret;
        let running = all_in_one::start(all_in_one::Settings {
            nats_url: nats.url(),
            database_url: db.app_url.clone(),
            keyring_spec: keyring_spec.clone(),
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
        Self {
            case,
            nats,
            db,
            llm,
            _llm_server: llm_server,
            keyring_spec,
            secret,
            running,
            http: reqwest::Client::new(),
        }
    }

    fn keyring(&self) -> Keyring {
        Keyring::parse(&self.keyring_spec).unwrap()
    }

    /// Sends the tool's webhook; the ingress's status and answer.
    async fn send(&self, happened: Happened, ticket: &Ticket) -> (u16, serde_json::Value) {
        let (path, headers, body) = self.case.webhook(TENANT, &self.secret, happened, ticket);
        let mut request = self
            .http
            .post(format!("{}{path}", self.running.ingress_url))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// The ticket's events in the stream, oldest first.
    async fn events(&self, ticket: &str) -> Vec<Event> {
        let (_client, jetstream) = aia_bus::connect(&self.nats.url(), "test").await.unwrap();
        let stream = jetstream.get_stream(aia_bus::STREAM).await.unwrap();
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: format!("tickets.{TENANT}.{ticket}.>"),
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
        let mut events = Vec::new();
        while let Some(message) = batch.next().await {
            events.push(Event::from_json(&message.unwrap().payload).unwrap());
        }
        events
    }

    async fn generated(&self, ticket: &str) -> Option<Event> {
        self.events(ticket)
            .await
            .into_iter()
            .find(|event| matches!(event.payload, Payload::EnhancementGenerated(_)))
    }
}

async fn a_help_desk_works_both_ways(kind: ItsmKind) {
    let run = Run::start(kind).await;
    let desk = run.case.desk().clone();
    let tool = kind.display_name();

    // A resolved ticket enters the tenant's history, read back through the API.
    let solved = Ticket::open(
        101,
        "VPN drops every hour",
        "The VPN tunnel drops every hour for remote staff",
    )
    .resolved("Raised the IKE SA lifetime on the firewall to eight hours");
    desk.put(solved.clone());
    let (status, answer) = run.send(Happened::Resolved, &solved).await;
    assert_eq!(status, 202, "{tool}: {answer}");
    let admin = run.db.admin_client().await;
    let solved_id = run.case.ticket_id(101);
    let resolution: String = eventually(
        "the resolved ticket in the history",
        Duration::from_secs(30),
        || async {
            admin
                .query_opt(
                    "select resolution from ticket_history where tenant_id = $1 and ticket_id = $2",
                    &[&TENANT, &solved_id],
                )
                .await
                .ok()?
                .map(|row| row.get(0))
        },
    )
    .await;
    assert!(
        resolution.contains("IKE SA lifetime"),
        "{tool}: {resolution}"
    );

    // A new ticket gets one private note, in the tool's format, citing it.
    let new = Ticket::open(
        102,
        "VPN keeps disconnecting",
        "My VPN disconnects every hour since this morning",
    );
    desk.put(new.clone());
    let (status, answer) = run.send(Happened::Created, &new).await;
    assert_eq!(status, 202, "{tool}: {answer}");
    let notes = eventually("the note", Duration::from_secs(30), || async {
        let notes = desk.notes(102);
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert!(notes[0].internal, "{tool}: the note must be private");
    assert!(
        notes[0].body.contains("ai-agents-ref:"),
        "{tool}: {}",
        notes[0].body
    );
    assert!(
        notes[0].body.contains("Recommended Next Steps"),
        "{tool}: {}",
        notes[0].body
    );
    let prompts: Vec<String> = run
        .llm
        .requests()
        .iter()
        .filter_map(|request| {
            request["messages"][1]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(
        prompts
            .iter()
            .any(|prompt| prompt.contains("VPN disconnects every hour")
                && prompt.contains(&solved_id)
                && prompt.contains("IKE SA lifetime")),
        "{tool}: the resolved ticket reaches the prompt: {prompts:?}"
    );

    // The tool redelivers the webhook: no second note.
    let (status, _) = run.send(Happened::Created, &new).await;
    assert!(matches!(status, 200 | 202), "{tool}: {status}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(desk.notes(102).len(), 1, "{tool}: exactly one note");

    crash_between_posting_and_recording_posts_nothing_more(&run, &run.case.ticket_id(102)).await;
    assert_eq!(desk.notes(102).len(), 1, "{tool}: one note after the crash");

    revoked_credentials_end_in_a_dead_letter_that_a_redrive_completes(&run).await;
    run.running.stop().await.unwrap();
}

/// The write-back of the run is redone as after a crash that left the
/// ledger at "posting" (its lease run out by the time the run is
/// redelivered): the tool's notes are listed, the marker found.
async fn crash_between_posting_and_recording_posts_nothing_more(run: &Run, ticket: &str) {
    let event = run.generated(ticket).await.expect("the enhancement");
    run.db
        .admin_client()
        .await
        .execute(
            "update writeback_ledger set state = 'posting', claimed_until = null where ticket_id = $1",
            &[&ticket],
        )
        .await
        .unwrap();
    let pool = aia_store::pool(&run.db.app_url, 2).unwrap();
    let handler = writeback::Writeback {
        tenants: std::sync::Arc::new(aia_store::TenantCache::new(
            pool.clone(),
            std::sync::Arc::new(run.keyring()),
            Duration::ZERO,
        )),
        db: pool,
        http: reqwest::Client::new(),
        public_url: None,
        lease: std::time::Duration::from_secs(30),
    };
    let delivery = Delivery {
        attempt: 2,
        max_deliver: Some(8),
        stream_sequence: 1,
    };
    match aia_bus::dispatch(&handler, &event, delivery).await.unwrap() {
        Handled::Publish(events) => assert!(
            matches!(&events[0].payload, Payload::WritebackCompleted(done) if done.already_present),
            "{:?}",
            events[0].payload
        ),
        Handled::Nothing => panic!("the delivery was set aside, not completed by its marker"),
    }
}

async fn revoked_credentials_end_in_a_dead_letter_that_a_redrive_completes(run: &Run) {
    let desk = run.case.desk();
    let tool = run.case.kind.display_name();
    let (_client, jetstream) = aia_bus::connect(&run.nats.url(), "test").await.unwrap();
    aia_ops::pause::pause_stage(&jetstream, "writeback")
        .await
        .unwrap();
    let ticket = Ticket::open(
        103,
        "Outlook asks for the password",
        "Outlook prompts again and again",
    );
    desk.put(ticket.clone());
    let (status, answer) = run.send(Happened::Created, &ticket).await;
    assert_eq!(status, 202, "{tool}: {answer}");
    let id = run.case.ticket_id(103);
    eventually("the enhancement", Duration::from_secs(30), || {
        run.generated(&id)
    })
    .await;
    // The tool's admin rotates the key before write-back gets to it.
    run.case.rotate_credentials();
    aia_ops::pause::resume_stage(&jetstream, "writeback")
        .await
        .unwrap();
    let admin_pool = aia_store::pool(&run.db.admin_read_url, 2).unwrap();
    let letter = eventually("the dead letter", Duration::from_secs(30), || async {
        aia_ops::dead_letters::list(&admin_pool, Some(TENANT), 10)
            .await
            .ok()?
            .into_iter()
            .find(|letter| letter.ticket_id == id)
    })
    .await;
    let reason = letter.reason.clone().unwrap_or_default();
    let name = tool.split(' ').next().unwrap();
    assert!(reason.contains(name), "{tool}: {reason}");
    assert!(desk.notes(103).is_empty());

    // The operator stores the new credentials and re-drives: one note.
    let pool = aia_store::pool(&run.db.app_url, 1).unwrap();
    let update = tenants::TenantUpdate {
        itsm_credentials: Some(Secret::new(run.case.rotated_credentials.to_string())),
        ..Default::default()
    };
    tenants::update(
        &mut pool.get().await.unwrap(),
        &run.keyring(),
        &TenantId::parse(TENANT).unwrap(),
        &update,
    )
    .await
    .unwrap();
    aia_ops::dead_letters::redrive(&admin_pool, &jetstream, TENANT, letter.correlation_id)
        .await
        .unwrap();
    eventually(
        "the re-driven run to complete",
        Duration::from_secs(30),
        || async {
            let dead = aia_ops::dead_letters::list(&admin_pool, Some(TENANT), 10)
                .await
                .ok()?;
            (desk.notes(103).len() == 1 && dead.is_empty()).then_some(())
        },
    )
    .await;
    assert!(
        aia_ops::dead_letters::redrive(&admin_pool, &jetstream, TENANT, letter.correlation_id)
            .await
            .is_err(),
        "{tool}: a second re-drive is refused"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(desk.notes(103).len(), 1, "{tool}: never doubled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_works_both_ways() {
    a_help_desk_works_both_ways(ItsmKind::Zendesk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshservice_works_both_ways() {
    a_help_desk_works_both_ways(ItsmKind::Freshservice).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servicenow_works_both_ways() {
    a_help_desk_works_both_ways(ItsmKind::Servicenow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectwise_works_both_ways() {
    a_help_desk_works_both_ways(ItsmKind::Connectwise).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autotask_works_both_ways() {
    a_help_desk_works_both_ways(ItsmKind::Autotask).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_works_both_ways() {
    a_help_desk_works_both_ways(ItsmKind::Halopsa).await;
}
