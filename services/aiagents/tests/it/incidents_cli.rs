//! `aiagents incidents`: an operator lists a tenant's incidents and
//! acknowledges and closes one from the command line; each change is an
//! `incident.updated` in the stream, as from the console.

use std::process::{Command, Output};

use aia_events::{IncidentChange, IncidentDetected, IncidentTicket, Payload, TenantId, TicketId};
use aia_testkit::{NatsServer, TestDatabase};

fn aiagents(db: &TestDatabase, nats: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aiagents"))
        .args(args)
        .env("AI_AGENTS_NATS_URL", nats)
        .env("AI_AGENTS_DATABASE_URL", &db.app_url)
        .env("AI_AGENTS_ADMIN_DATABASE_URL", &db.admin_read_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run aiagents")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_lists_acknowledges_and_closes_an_incident_from_the_cli() {
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    // An incident as the correlator decides one: folded and in the outbox.
    let tenant = TenantId::parse("acme").unwrap();
    let incident = uuid::Uuid::now_v7();
    let detected = incident_correlator::incident_event(
        &tenant,
        incident,
        None,
        Payload::IncidentDetected(IncidentDetected {
            incident_id: incident,
            version: 1,
            tickets: ["A-1", "A-2", "A-3"]
                .iter()
                .map(|id| IncidentTicket {
                    ticket_id: TicketId::parse(id).unwrap(),
                    subject: Some("no internet".into()),
                    received_at: chrono::Utc::now(),
                })
                .collect(),
            shared_entities: vec![],
            summary: "3 tickets in 2 min from 09:12 UTC, first \"no internet\"".into(),
            detected_by: TicketId::parse("A-3").unwrap(),
            threshold: 3,
            window_minutes: 30,
        }),
    );
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    {
        let mut client = pool.get().await.unwrap();
        let tx = aia_store::tenant_transaction(&mut client, &tenant)
            .await
            .unwrap();
        incident_correlator::store::apply(&tx, &detected)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    let listed = aiagents(&db, &nats.url(), &["incidents", "list"]);
    assert!(listed.status.success(), "{listed:?}");
    let table = stdout(&listed);
    assert!(table.contains(&incident.to_string()), "{table}");
    assert!(
        table.contains("open") && table.contains("no internet"),
        "{table}"
    );

    let id = incident.to_string();
    for (verb, said) in [
        ("acknowledge", "acknowledged"),
        ("acknowledge", "already acknowledged"),
        ("close", "closed"),
    ] {
        let done = aiagents(
            &db,
            &nats.url(),
            &[
                "incidents",
                verb,
                "--tenant",
                "acme",
                "--incident",
                &id,
                "--by",
                "dana",
            ],
        );
        assert!(done.status.success(), "{done:?}");
        assert!(stdout(&done).starts_with(said), "{}", stdout(&done));
    }
    let again = aiagents(
        &db,
        &nats.url(),
        &[
            "incidents",
            "close",
            "--tenant",
            "acme",
            "--incident",
            &id,
            "--by",
            "dana",
        ],
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("the incident has ended"),
        "{again:?}"
    );
    let ended = stdout(&aiagents(&db, &nats.url(), &["incidents", "list"]));
    assert!(
        !ended.contains(&id),
        "ended incidents are not live: {ended}"
    );
    let all = stdout(&aiagents(
        &db,
        &nats.url(),
        &["incidents", "list", "--ended"],
    ));
    assert!(all.contains(&id) && all.contains("ended"), "{all}");

    // The stream has the two changes, by who made them.
    let changes: Vec<_> = aia_testkit::stream_events(&jetstream, "tickets.acme.*.incident.>")
        .await
        .into_iter()
        .filter_map(|event| match event.payload {
            Payload::IncidentUpdated(u) => Some((u.version, u.change, u.by)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [
            (2, IncidentChange::Acknowledged, Some("dana".to_owned())),
            (3, IncidentChange::Closed, Some("dana".to_owned())),
        ]
    );
}
