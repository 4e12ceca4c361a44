//! Write-back puts exactly one note on a ticket, even when the input is
//! redelivered after the note was posted but before the ack was recorded.

use aia_bus::{Delivery, Handled};
use aia_events::{Event, ItsmKind, Payload, TicketId, examples};
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use aia_testkit::TestDatabase;
use aiagents::ops;

const AUTHTOKEN: &str = "sdp-token";

fn delivery(attempt: u32) -> Delivery {
    Delivery {
        attempt,
        max_deliver: Some(8),
        stream_sequence: 1,
    }
}

fn completed(handled: Handled) -> (bool, Option<String>) {
    match handled {
        Handled::Publish(events) => match &events[0].payload {
            Payload::WritebackCompleted(done) => (done.already_present, done.note_id.clone()),
            other => panic!("expected writeback.completed, got {other:?}"),
        },
        Handled::Nothing => panic!("expected an event"),
    }
}

async fn setup() -> (
    TestDatabase,
    ServiceDeskStandIn,
    aia_standins::Running,
    writeback::Writeback,
    Event,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::create().await;
    let sdp = ServiceDeskStandIn::new(AUTHTOKEN);
    let server = aia_standins::serve(sdp.router()).await.unwrap();
    let spec = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&spec).unwrap();
    let credentials = serde_json::json!({"authtoken": AUTHTOKEN}).to_string();
    ops::add_tenant(
        &db.app_url,
        &keyring,
        "acme-msp",
        "Acme",
        ItsmKind::ServicedeskPlus,
        &server.url(),
        &credentials,
    )
    .await
    .unwrap();
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let handler = writeback::Writeback {
        tenants: std::sync::Arc::new(aia_store::TenantCache::new(
            pool.clone(),
            std::sync::Arc::new(keyring),
            std::time::Duration::ZERO,
        )),
        db: pool,
        http: reqwest::Client::new(),
        public_url: Some("https://hooks.example.com".into()),
        lease: std::time::Duration::from_secs(30),
    };
    let event = examples::all()
        .into_iter()
        .find(|event| matches!(&event.payload, Payload::EnhancementGenerated(g) if !g.degraded))
        .unwrap();
    (db, sdp, server, handler, event)
}

/// Posts the run's note, then redelivers it as after a crash between the
/// help desk storing the note and the ledger saying so (the ledger reads
/// `posting`); whether the redelivery found the note already there.
async fn crash_after_posting_then_redeliver(
    db: &TestDatabase,
    handler: &writeback::Writeback,
    event: &Event,
) -> bool {
    completed(
        aia_bus::dispatch(handler, event, delivery(1))
            .await
            .unwrap(),
    );
    db.admin_client()
        .await
        .execute(
            "update writeback_ledger set state = 'posting', note_id = null, claimed_until = null",
            &[],
        )
        .await
        .unwrap();
    completed(
        aia_bus::dispatch(handler, event, delivery(2))
            .await
            .unwrap(),
    )
    .0
}

#[tokio::test]
async fn a_redelivered_enhancement_posts_no_second_note() {
    let (_db, sdp, _server, handler, event) = setup().await;
    let (already, note_id) = completed(
        aia_bus::dispatch(&handler, &event.clone(), delivery(1))
            .await
            .unwrap(),
    );
    assert!(!already);
    assert!(note_id.is_some());
    let (already, _) = completed(
        aia_bus::dispatch(&handler, &event.clone(), delivery(2))
            .await
            .unwrap(),
    );
    assert!(already);
    let notes = sdp.notes("SUP-1042");
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0]
            .description
            .contains(&writeback::marker(event.correlation_id))
    );
}

#[tokio::test]
async fn a_crash_after_posting_and_before_recording_it_still_leaves_one_note() {
    let (db, sdp, _server, handler, event) = setup().await;
    let already = crash_after_posting_then_redeliver(&db, &handler, &event).await;
    assert!(already, "the note on the ticket must be recognised");
    assert_eq!(sdp.notes("SUP-1042").len(), 1);
}

#[tokio::test]
async fn a_rejected_api_key_ends_the_run_with_a_reason_and_no_retry() {
    let (db, sdp, server, handler, event) = setup().await;
    // A second tenant whose help desk rejects our token.
    let bad_key_event = Event {
        tenant_id: aia_events::TenantId::parse("bad-key").unwrap(),
        ticket_id: TicketId::parse("SUP-1").unwrap(),
        ..event.clone()
    };
    ops::add_tenant(
        &db.app_url,
        handler.tenants.keyring(),
        "bad-key",
        "Bad key",
        ItsmKind::ServicedeskPlus,
        &server.url(),
        r#"{"authtoken":"wrong"}"#,
    )
    .await
    .unwrap();
    match aia_bus::dispatch(&handler, &bad_key_event, delivery(1))
        .await
        .unwrap()
    {
        Handled::Publish(events) => match &events[0].payload {
            Payload::WritebackFailed(failed) => {
                assert_eq!(failed.reason, "ServiceDesk Plus rejected the API key");
                assert_eq!(failed.http_status, Some(401));
                assert!(failed.permanent);
            }
            other => panic!("expected writeback.failed, got {other:?}"),
        },
        Handled::Nothing => panic!("expected an event"),
    }
    assert!(sdp.all_notes().is_empty());
}

/// Two deliveries of one run at once (a redelivery while the first still
/// works, a re-drive while the original is in flight), the help desk slow
/// to store the note: the second waits for the first's lease instead of
/// searching for a note that is not there yet and posting its own, then
/// finds the run written back — even on its last delivery, which must not
/// end the run as failed while the first posts.
#[tokio::test]
async fn two_deliveries_of_one_run_at_once_leave_one_note() {
    let (_db, sdp, _server, handler, event) = setup().await;
    sdp.hang_before_storing(Some(std::time::Duration::from_millis(800)));
    let first = aia_bus::dispatch(&handler, &event, delivery(1));
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        aia_bus::dispatch(&handler, &event, delivery(8)).await
    };
    let (first, second) = tokio::join!(first, second);
    assert!(!completed(first.unwrap()).0, "the first posted the note");
    let (already, _) = completed(second.expect("the second waited for the first"));
    assert!(already, "the second found the first's note");
    assert_eq!(sdp.all_notes().len(), 1);
}

/// On a busy ticket our note may be past the first page of its notes (the
/// help desk lists ten unless asked for more): the marker search reads
/// every page, and still finds it.
#[tokio::test]
async fn a_crash_after_posting_on_a_busy_ticket_still_leaves_one_note() {
    let (db, sdp, _server, handler, event) = setup().await;
    // Technicians and the requester had talked on the ticket before it.
    for n in 0..150 {
        sdp.add_note(
            event.ticket_id.as_str(),
            &format!("Update {n}: still looking"),
        );
    }
    let already = crash_after_posting_then_redeliver(&db, &handler, &event).await;
    assert!(
        already,
        "our note, past the first pages, must be recognised"
    );
    let ours = sdp
        .notes(event.ticket_id.as_str())
        .iter()
        .filter(|note| {
            note.description
                .contains(&writeback::marker(event.correlation_id))
        })
        .count();
    assert_eq!(ours, 1);
}

/// A holder whose lease ran out and was taken by another delivery cannot
/// renew it, so it does not post; the new holder can, and a posted run is
/// nobody's to renew.
#[tokio::test]
async fn a_lease_taken_over_cannot_be_renewed_by_its_old_holder() {
    use writeback::ledger::{self, Claim};
    let (db, _sdp, _server, _handler, event) = setup().await;
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    let mut client = pool.get().await.unwrap();
    let (tenant, run, ticket) = (&event.tenant_id, event.correlation_id, &event.ticket_id);
    let (old, new) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let long = std::time::Duration::from_secs(30);
    let short = std::time::Duration::from_millis(50);
    let claimed = ledger::claim(&mut client, tenant, run, ticket, old, short).await;
    assert_eq!(claimed.unwrap(), Claim::Fresh);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let claimed = ledger::claim(&mut client, tenant, run, ticket, new, long).await;
    assert_eq!(claimed.unwrap(), Claim::Uncertain);
    let renewed = ledger::renew(&mut client, tenant, run, old, long).await;
    assert!(!renewed.unwrap(), "the old holder must not post");
    let renewed = ledger::renew(&mut client, tenant, run, new, long).await;
    assert!(renewed.unwrap());
    ledger::mark_posted(&mut client, tenant, run, None)
        .await
        .unwrap();
    let renewed = ledger::renew(&mut client, tenant, run, new, long).await;
    assert!(!renewed.unwrap(), "a posted run is nobody's to renew");
}

/// A gateway's 502 after the help desk stored the note says nothing about
/// the note: the lease stays, so no other delivery posts before it ends,
/// and the next attempt finds the note by its marker. A 503, which stores
/// nothing, lets the lease go at once.
#[tokio::test]
async fn a_gateway_error_keeps_the_lease_and_a_refusal_lets_it_go() {
    use writeback::ledger::{self, Claim};
    let (db, sdp, _server, handler, event) = setup().await;
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    let (tenant, run, ticket) = (&event.tenant_id, event.correlation_id, &event.ticket_id);
    let someone_else = || async {
        let mut client = pool.get().await.unwrap();
        ledger::claim(
            &mut client,
            tenant,
            run,
            ticket,
            uuid::Uuid::now_v7(),
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap()
    };

    sdp.bad_gateway_after_storing(1);
    let failed = aia_bus::dispatch(&handler, &event, delivery(1))
        .await
        .expect_err("a 502 is not a success");
    assert!(
        failed.retry_after >= Some(handler.lease),
        "retried only when the lease ends: {:?}",
        failed.retry_after
    );
    assert!(
        matches!(someone_else().await, Claim::Held { .. }),
        "the lease outlives a 502"
    );
    assert_eq!(sdp.all_notes().len(), 1, "the help desk stored the note");

    // The lease ends; the next attempt finds the note, and posts none.
    db.admin_client()
        .await
        .execute("update writeback_ledger set claimed_until = now()", &[])
        .await
        .unwrap();
    let (already, _) = completed(
        aia_bus::dispatch(&handler, &event, delivery(2))
            .await
            .unwrap(),
    );
    assert!(already);
    assert_eq!(sdp.all_notes().len(), 1);

    // A 503 on another run: nothing stored, the lease let go at once.
    let mut other = event.clone();
    other.correlation_id = uuid::Uuid::now_v7();
    sdp.unavailable_for_notes(1);
    aia_bus::dispatch(&handler, &other, delivery(1))
        .await
        .expect_err("a 503 is not a success");
    let mut client = pool.get().await.unwrap();
    let claim = ledger::claim(
        &mut client,
        tenant,
        other.correlation_id,
        ticket,
        uuid::Uuid::now_v7(),
        std::time::Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(claim, Claim::Uncertain, "a 503 lets the lease go");
}

/// On the run's last delivery a call that got no answer (here a gateway's
/// 502 after the help desk stored the note) is not the end: no attempt
/// comes after it to find the note, so this one waits out its lease and
/// looks — the run ends written back, not as a dead letter with the note
/// on the ticket.
#[tokio::test]
async fn a_last_delivery_whose_post_got_no_answer_finds_the_note_it_stored() {
    let (_db, sdp, _server, mut handler, event) = setup().await;
    handler.lease = std::time::Duration::from_secs(1);
    sdp.bad_gateway_after_storing(1);
    let (already, _) = completed(
        aia_bus::dispatch(&handler, &event, delivery(8))
            .await
            .expect("the note the help desk stored is found"),
    );
    assert!(already, "recorded as found on the ticket");
    assert_eq!(sdp.all_notes().len(), 1, "one note, none posted again");

    // Not the last delivery: the next one looks, when the lease ends.
    let mut other = event.clone();
    other.correlation_id = uuid::Uuid::now_v7();
    sdp.bad_gateway_after_storing(1);
    aia_bus::dispatch(&handler, &other, delivery(1))
        .await
        .expect_err("retried, the lease kept");
    assert_eq!(sdp.all_notes().len(), 2);
}
