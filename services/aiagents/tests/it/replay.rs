//! Debugging a ticket from the CLI: its story, a dry-run of each stage, a
//! re-drive that never doubles a note unless asked, a range of the stream,
//! and clear refusals that publish nothing.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use aia_events::ItsmKind;
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use aia_testkit::{NatsServer, TestDatabase, eventually};
use aiagents::{all_in_one, dataset::Query, ops, webhook};

struct Env<'a> {
    nats: &'a NatsServer,
    db: &'a TestDatabase,
    keys: &'a str,
}

fn aiagents(env: &Env<'_>, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aiagents"))
        .args(args)
        .env("AI_AGENTS_NATS_URL", env.nats.url())
        .env("AI_AGENTS_DATABASE_URL", &env.db.app_url)
        .env("AI_AGENTS_SECRET_KEYS", env.keys)
        .env_remove("AI_AGENTS_LLM_BASE_URL")
        .env("RUST_LOG", "error")
        .output()
        .expect("run aiagents")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn refused(output: &Output, expected: &str) {
    assert!(
        !output.status.success(),
        "should have failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in {stderr}"
    );
}

async fn stored(nats: &NatsServer) -> u64 {
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let mut stream = jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_follows_a_ticket_replays_its_stages_and_re_drives_it() {
    // Services give their spans trace ids once telemetry is installed.
    let _telemetry = aia_telemetry::init("replay-test");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    let sdp = ServiceDeskStandIn::new("t");
    let sdp_server = aia_standins::serve(sdp.router()).await.unwrap();
    ops::apply_nats(&nats.url()).await.unwrap();
    let keys = Keyring::generate_spec("k1");
    let created = ops::add_tenant(
        &db.app_url,
        &Keyring::parse(&keys).unwrap(),
        "acme",
        "Acme",
        ItsmKind::ServicedeskPlus,
        &sdp_server.url(),
        r#"{"authtoken":"t"}"#,
    )
    .await
    .unwrap();
    let start = || {
        all_in_one::start(all_in_one::Settings {
            nats_url: nats.url(),
            database_url: db.app_url.clone(),
            keyring_spec: keys.clone(),
            llm: None,
            ingress_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            model_dir: None,
            metrics_addr: None,
        })
    };
    let running = start().await.unwrap();
    let query: Query = serde_json::from_value(serde_json::json!({
        "tenant_id": "acme", "ticket_id": "SUP-1", "subject": "Printer offline", "description": "The printer is offline", "priority": "low"}))
    .unwrap();
    let http = reqwest::Client::new();
    webhook::send_servicedesk(
        &http,
        &running.ingress_url,
        created.webhook_secret.expose(),
        webhook::servicedesk_body(&query),
    )
    .await
    .unwrap();
    eventually("the note", Duration::from_secs(30), || async {
        (!sdp.notes("SUP-1").is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let env = Env {
        nats: &nats,
        db: &db,
        keys: &keys,
    };

    // The story, in order, for people and for scripts.
    let story = ok(&aiagents(
        &env,
        &["replay", "story", "--tenant", "acme", "--ticket", "SUP-1"],
    ));
    let types: Vec<&str> = [
        "ticket.received",
        "context.gathered",
        "enhancement.generated",
        "writeback.completed",
    ]
    .into_iter()
    .filter(|t| story.contains(t))
    .collect();
    assert_eq!(types.len(), 4, "{story}");
    let json = ok(&aiagents(
        &env,
        &[
            "replay", "story", "--tenant", "acme", "--ticket", "SUP-1", "--json",
        ],
    ));
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[1]["causation_id"], lines[0]["event_id"]);
    assert!(
        lines
            .iter()
            .all(|line| line["trace_id"].as_str().is_some_and(|t| t.len() == 32))
    );

    // Dry runs publish and write nothing.
    let before = stored(&nats).await;
    let context = ok(&aiagents(
        &env,
        &[
            "replay",
            "dry-run",
            "--tenant",
            "acme",
            "--ticket",
            "SUP-1",
            "--stage",
            "context-gatherer",
        ],
    ));
    assert!(
        context.contains("recorded:") && context.contains("now:"),
        "{context}"
    );
    let note = ok(&aiagents(
        &env,
        &[
            "replay",
            "dry-run",
            "--tenant",
            "acme",
            "--ticket",
            "SUP-1",
            "--stage",
            "llm-enhancer",
        ],
    ));
    assert!(
        note.contains("--- recorded note ---") && note.contains("--- note now ---"),
        "{note}"
    );
    let render = ok(&aiagents(
        &env,
        &[
            "replay",
            "dry-run",
            "--tenant",
            "acme",
            "--ticket",
            "SUP-1",
            "--stage",
            "writeback",
        ],
    ));
    assert!(
        render.contains("would post to servicedesk_plus ticket SUP-1 (internal)"),
        "{render}"
    );
    assert_eq!(stored(&nats).await, before, "a dry run published something");
    assert_eq!(sdp.notes("SUP-1").len(), 1);

    // Bad input: a clear error, a non-zero exit, nothing published.
    refused(
        &aiagents(
            &env,
            &["replay", "story", "--tenant", "nobody", "--ticket", "SUP-1"],
        ),
        "unknown tenant nobody",
    );
    refused(
        &aiagents(
            &env,
            &["replay", "story", "--tenant", "acme", "--ticket", "SUP-404"],
        ),
        "no events for ticket SUP-404",
    );
    refused(
        &aiagents(
            &env,
            &[
                "replay", "dry-run", "--tenant", "acme", "--ticket", "SUP-1", "--stage", "ingress",
            ],
        ),
        "unknown stage",
    );
    refused(
        &aiagents(
            &env,
            &[
                "replay",
                "events",
                "--tenant",
                "acme",
                "--since",
                "2026-01-02T00:00:00Z",
                "--until",
                "2026-01-01T00:00:00Z",
            ],
        ),
        "the range is empty",
    );
    refused(
        &aiagents(
            &env,
            &["replay", "events", "--tenant", "acme", "--from-seq", "9999"],
        ),
        "no events of acme in that range",
    );
    assert_eq!(stored(&nats).await, before);

    // A range of the stream, leaving the durable consumers untouched.
    let events = ok(&aiagents(
        &env,
        &[
            "replay",
            "events",
            "--tenant",
            "acme",
            "--from-seq",
            "2",
            "--json",
        ],
    ));
    assert_eq!(events.lines().count(), 3);
    // A time given beside a sequence still bounds what is shown.
    let refused_range = aiagents(
        &env,
        &[
            "replay",
            "events",
            "--tenant",
            "acme",
            "--from-seq",
            "2",
            "--since",
            "2999-01-01T00:00:00Z",
        ],
    );
    refused(&refused_range, "no events of acme in that range");

    // Re-drive the write-back in the same run: no second note. With
    // --new-note, the operator asked for one.
    ok(&aiagents(
        &env,
        &[
            "replay",
            "redrive",
            "--tenant",
            "acme",
            "--ticket",
            "SUP-1",
            "--stage",
            "writeback",
        ],
    ));
    let admin = db.admin_client().await;
    eventually(
        "the re-driven write-back",
        Duration::from_secs(30),
        || async {
            let n: i64 = admin
                .query_one("select attempts from writeback_ledger", &[])
                .await
                .ok()?
                .get::<_, i32>(0)
                .into();
            (n >= 2).then_some(())
        },
    )
    .await;
    assert_eq!(
        sdp.notes("SUP-1").len(),
        1,
        "a re-drive in the same run must not post again"
    );
    ok(&aiagents(
        &env,
        &[
            "replay",
            "redrive",
            "--tenant",
            "acme",
            "--ticket",
            "SUP-1",
            "--stage",
            "writeback",
            "--new-note",
        ],
    ));
    eventually(
        "the requested second note",
        Duration::from_secs(30),
        || async { (sdp.notes("SUP-1").len() == 2).then_some(()) },
    )
    .await;
    running.stop().await.unwrap();
}
