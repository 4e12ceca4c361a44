//! A run that fails for good is a dead letter operators can see; after the
//! cause is fixed a re-drive completes it with exactly one note, and a second
//! re-drive posts nothing.

use crate::pipeline_support;

use std::time::Duration;

use aia_events::TenantId;
use aia_store::tenants;
use aia_testkit::eventually;
use pipeline_support::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_back_is_listed_re_driven_after_the_fix_and_never_doubled() {
    // Spans with real trace contexts, so the trace a re-drive continues is
    // visible in the events' headers.
    let _telemetry = aia_telemetry::init_with_otlp("dead-letters-test", None);
    let stack = Stack::start("right-token", None).await;
    let secret = stack.add_tenant("acme", "wrong-token").await;
    let ticket = serde_json::json!({"tenant_id": "acme", "ticket_id": "SUP-9", "description": "Printer offline", "priority": "low"});
    assert_eq!(stack.send(&secret, ticket).await.0, 202);

    let admin_pool = aia_store::pool(&stack.db.admin_read_url, 2).unwrap();
    let letter = eventually("the dead letter", Duration::from_secs(30), || async {
        aia_ops::dead_letters::list(&admin_pool, Some("acme"), 10)
            .await
            .ok()?
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(
        (letter.ticket_id.as_str(), letter.stage.as_deref()),
        ("SUP-9", Some("writeback"))
    );
    assert_eq!(
        letter.reason.as_deref(),
        Some("ServiceDesk Plus rejected the API key")
    );
    assert_eq!(letter.attempts, Some(1));
    assert!(stack.sdp.notes("SUP-9").is_empty());

    // The operator fixes the credentials and re-drives.
    let pool = aia_store::pool(&stack.db.app_url, 1).unwrap();
    let update = tenants::TenantUpdate {
        itsm_credentials: Some(aia_store::Secret::new(r#"{"authtoken":"right-token"}"#)),
        ..Default::default()
    };
    tenants::update(
        &mut pool.get().await.unwrap(),
        &stack.keyring(),
        &TenantId::parse("acme").unwrap(),
        &update,
    )
    .await
    .unwrap();
    let (_client, jetstream) = aia_bus::connect(&stack.nats.url(), "test").await.unwrap();
    // Five operators (or one double click) re-drive it at once: one re-drive
    // goes, the others are told it is in flight.
    let redrives = futures::future::join_all((0..5).map(|_| {
        aia_ops::dead_letters::redrive(&admin_pool, &jetstream, "acme", letter.correlation_id)
    }))
    .await;
    assert_eq!(
        redrives.iter().filter(|redrive| redrive.is_ok()).count(),
        1,
        "{redrives:?}"
    );
    let admin = stack.db.admin_client().await;
    eventually(
        "the re-driven run to complete",
        Duration::from_secs(30),
        || async {
            let status: String = admin
                .query_one(
                    "select status from enhancement_history where ticket_id = 'SUP-9'",
                    &[],
                )
                .await
                .ok()?
                .get(0);
            (status == "completed").then_some(())
        },
    )
    .await;
    assert_eq!(stack.sdp.notes("SUP-9").len(), 1);
    // The re-driven write-back is in the ticket's one trace, not a new one.
    let story = aia_ops::replay::story(
        &jetstream,
        &TenantId::parse("acme").unwrap(),
        &aia_events::TicketId::parse("SUP-9").unwrap(),
    )
    .await
    .unwrap();
    let traces: std::collections::BTreeSet<Option<String>> =
        story.iter().map(|line| line.trace_id.clone()).collect();
    assert_eq!(traces.len(), 1, "{traces:?}");
    assert!(traces.iter().all(Option::is_some), "{traces:?}");
    assert!(
        aia_ops::dead_letters::list(&admin_pool, Some("acme"), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Re-driving a run that is no longer dead is refused; nothing is posted twice.
    assert!(
        aia_ops::dead_letters::redrive(&admin_pool, &jetstream, "acme", letter.correlation_id)
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stack.sdp.notes("SUP-9").len(), 1);
    stack.stop().await;
}

/// Re-driving every dead letter carries on past one that cannot go again
/// (its input gone from the stream): the others are re-driven and complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_driving_every_letter_carries_on_past_one_that_cannot_go() {
    let stack = Stack::start("right-token", None).await;
    let secret = stack.add_tenant("acme", "wrong-token").await;
    for ticket in ["SUP-9", "SUP-10"] {
        let body = serde_json::json!({"tenant_id": "acme", "ticket_id": ticket, "description": "Printer offline", "priority": "low"});
        assert_eq!(stack.send(&secret, body).await.0, 202);
    }
    let admin_pool = aia_store::pool(&stack.db.admin_read_url, 2).unwrap();
    let letters = eventually("both dead letters", Duration::from_secs(30), || async {
        let letters = aia_ops::dead_letters::list(&admin_pool, Some("acme"), 10)
            .await
            .ok()?;
        (letters.len() == 2).then_some(letters)
    })
    .await;
    // The newest letter, tried first, cannot go again: another operator's
    // re-drive of it is recorded as in flight.
    let (gone, kept) = (&letters[0], &letters[1]);
    let owner = stack.db.admin_client().await;
    owner
        .execute(
            "insert into dead_letter_redrives (tenant_id, correlation_id, input_event_id)
             select tenant_id, correlation_id, failed_input_event_id from enhancement_history
              where tenant_id = 'acme' and correlation_id = $1",
            &[&gone.correlation_id],
        )
        .await
        .unwrap();
    let (_client, jetstream) = aia_bus::connect(&stack.nats.url(), "test").await.unwrap();
    let pool = aia_store::pool(&stack.db.app_url, 1).unwrap();
    let update = tenants::TenantUpdate {
        itsm_credentials: Some(aia_store::Secret::new(r#"{"authtoken":"right-token"}"#)),
        ..Default::default()
    };
    tenants::update(
        &mut pool.get().await.unwrap(),
        &stack.keyring(),
        &TenantId::parse("acme").unwrap(),
        &update,
    )
    .await
    .unwrap();
    let done = aia_ops::dead_letters::redrive_all(&admin_pool, &jetstream, "acme", 1000)
        .await
        .unwrap();
    assert_eq!(
        done.refused.iter().map(|(run, _)| *run).collect::<Vec<_>>(),
        [gone.correlation_id],
        "{done:?}"
    );
    assert_eq!(
        done.redriven
            .iter()
            .map(|(run, _)| *run)
            .collect::<Vec<_>>(),
        [kept.correlation_id],
        "{done:?}"
    );
    assert!(!done.more);
    eventually(
        "the other letter's note",
        Duration::from_secs(30),
        || async { (stack.sdp.notes(&kept.ticket_id).len() == 1).then_some(()) },
    )
    .await;
    assert!(stack.sdp.notes(&gone.ticket_id).is_empty());
    stack.stop().await;
}

/// A tenant over its budget still gets the raw-context note: when that
/// note fails to post, the run is a dead letter like any other (its status
/// stays `failed_budget`); once posted, it is none.
#[tokio::test]
async fn an_over_budget_run_whose_note_failed_to_post_is_a_dead_letter() {
    let db = aia_testkit::TestDatabase::create().await;
    db.admin_client()
        .await
        .batch_execute(
            "insert into enhancement_history
                    (tenant_id, correlation_id, ticket_id, status, received_at, failed_at, failed_stage,
                     error, written_back_at, last_event_id)
             values ('acme', gen_random_uuid(), 'B-1', 'failed_budget', now(), now(), 'writeback',
                     'ServiceDesk Plus answered HTTP 503', null, gen_random_uuid()),
                    ('acme', gen_random_uuid(), 'B-2', 'failed_budget', now(), null, null,
                     null, now(), gen_random_uuid()),
                    ('acme', gen_random_uuid(), 'F-1', 'failed', now(), now(), 'llm-enhancer',
                     'every provider failed', null, gen_random_uuid())",
        )
        .await
        .unwrap();
    let admin = aia_store::pool(&db.admin_read_url, 1).unwrap();
    let mut tickets: Vec<String> = aia_ops::dead_letters::list(&admin, Some("acme"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|letter| letter.ticket_id)
        .collect();
    tickets.sort();
    assert_eq!(tickets, ["B-1", "F-1"]);

    // A later run of F-1 posted its note since: re-driving the older one
    // would post a second, older note, and is refused.
    db.admin_client()
        .await
        .batch_execute(
            "insert into enhancement_history
                    (tenant_id, correlation_id, ticket_id, status, received_at, written_back_at, last_event_id)
             values ('acme', gen_random_uuid(), 'F-1', 'completed', now() + interval '1 minute',
                     now() + interval '2 minutes', gen_random_uuid())",
        )
        .await
        .unwrap();
    let failed: uuid::Uuid = db
        .admin_client()
        .await
        .query_one(
            "select correlation_id from enhancement_history where ticket_id = 'F-1' and status = 'failed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let nats = aia_testkit::NatsServer::start().await;
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let refused = aia_ops::dead_letters::redrive(&admin, &jetstream, "acme", failed)
        .await
        .expect_err("a superseded letter");
    assert!(refused.to_string().contains("later run"), "{refused}");
}

/// An operator's re-drive in a new run (`replay redrive --new-note`) pays
/// for nothing its copied input records: the copy carries no cost, so the
/// tenant's spend does not count the original's note twice.
#[tokio::test]
async fn a_re_drive_in_a_new_run_carries_no_cost_of_the_original() {
    let nats = aia_testkit::NatsServer::start().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let generated = aia_events::examples::all()
        .into_iter()
        .find(|event| {
            matches!(&event.payload, aia_events::Payload::EnhancementGenerated(g) if g.cost_usd > 0.0)
        })
        .expect("a paid note among the examples");
    for new_run in [false, true] {
        let copy_id = aia_ops::replay::redrive(&jetstream, &generated, new_run)
            .await
            .unwrap();
        let copies = aia_testkit::stream_events(&jetstream, "tickets.>").await;
        let copy = copies
            .iter()
            .find(|event| event.event_id == copy_id)
            .unwrap();
        let aia_events::Payload::EnhancementGenerated(copied) = &copy.payload else {
            panic!("{copy:?}")
        };
        if new_run {
            assert_ne!(copy.correlation_id, generated.correlation_id);
            assert_eq!(
                (copied.cost_usd, copied.tokens_in, copied.tokens_out),
                (0.0, 0, 0)
            );
        } else {
            // In its own run the projector counts a run's note once anyway.
            assert_eq!(copy.correlation_id, generated.correlation_id);
        }
    }
}
