//! What the stream keeps: the events of an enhancement run expire with
//! their TTL, resolved tickets — the history corpus every projection and
//! vector is rebuilt from — stay.

use std::time::Duration;

use aia_events::{
    Event, ItsmKind, Payload, Priority, TenantId, TicketChange, TicketId, TicketReceived,
    TicketResolved,
};
use aia_testkit::{NatsServer, eventually};

#[tokio::test]
async fn run_events_expire_and_resolved_tickets_stay() {
    let nats = NatsServer::start().await;
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    aia_bus::topology::Topology::builtin()
        .unwrap()
        .apply(&jetstream)
        .await
        .unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let received = Event::new_run(
        tenant.clone(),
        TicketId::parse("SUP-1").unwrap(),
        Payload::TicketReceived(TicketReceived {
            source: ItsmKind::ServicedeskPlus,
            change: TicketChange::Created,
            subject: Some("VPN".into()),
            description: "drops".into(),
            priority: Priority::High,
            requester: None,
            created_at: chrono::Utc::now(),
            delivery_id: "d1".into(),
        }),
    );
    let resolved = Event::new_run(
        tenant,
        TicketId::parse("SUP-0").unwrap(),
        Payload::TicketResolved(TicketResolved {
            source: ItsmKind::ServicedeskPlus,
            subject: "VPN".into(),
            description: "drops".into(),
            resolution: "MTU".into(),
            priority: Priority::High,
            tags: vec![],
            resolved_at: chrono::Utc::now(),
            language: None,
        }),
    );
    aia_bus::publish_event(&jetstream, &received, "m1")
        .await
        .unwrap();
    aia_bus::publish_event(&jetstream, &resolved, "m2")
        .await
        .unwrap();
    let stream = jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    let header = |subject: &'static str| {
        let stream = stream.clone();
        async move {
            let message = stream.direct_get_last_for_subject(subject).await.unwrap();
            message
                .headers
                .get("Nats-TTL")
                .map(|v| v.as_str().to_owned())
        }
    };
    assert_eq!(
        header("tickets.acme.SUP-1.ticket.received")
            .await
            .as_deref(),
        Some("7776000")
    );
    assert_eq!(header("tickets.acme.SUP-0.ticket.resolved").await, None);

    // The server honours the TTL: a run event with a short one expires, the
    // resolved ticket stays.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-TTL", "1");
    jetstream
        .publish_with_headers(
            "tickets.acme.SUP-2.ticket.received",
            headers,
            received.to_json().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let count = || {
        let mut stream = stream.clone();
        async move { stream.info().await.unwrap().state.messages }
    };
    assert_eq!(count().await, 3);
    eventually(
        "the short-lived event to expire",
        Duration::from_secs(10),
        || async { (count().await == 2).then_some(()) },
    )
    .await;
    assert!(
        stream
            .direct_get_last_for_subject("tickets.acme.SUP-0.ticket.resolved")
            .await
            .is_ok()
    );
}

/// The purges run as the schema's owner, for every tenant, over tables
/// that force row-level security: each table a purge deletes from must let
/// the owner see its rows, or the purge deletes nothing where the owner is
/// not a superuser (as in production; the tests' owner is one, so the
/// deletion below alone would pass without the policy).
#[tokio::test]
async fn every_table_a_purge_deletes_from_lets_the_owner_maintain_it_and_old_claims_go() {
    let db = aia_testkit::TestDatabase::create().await;
    let admin = db.admin_client().await;
    let purged = [
        "enhancement_history",
        "llm_budget_claims",
        "llm_budget_periods",
        "open_tickets",
        "incident_outbox",
    ];
    for table in purged {
        let row = admin
            .query_one(
                "select count(*) from pg_policies
                  where tablename = $1 and policyname = 'owner_maintenance'
                    and roles @> array[(select tableowner from pg_tables where tablename = $1)]::name[]",
                &[&table],
            )
            .await
            .unwrap();
        assert_eq!(
            row.get::<_, i64>(0),
            1,
            "{table} has no policy for its owner"
        );
    }
    admin
        .batch_execute(
            "insert into llm_budget_claims (tenant_id, claim_id, period_start, reserved_usd, cost_usd, claimed_at) values
               ('acme', 'old:note', current_date - 400, 0.01, 0.01, now() - interval '400 days'),
               ('acme', 'open-old:note', current_date - 400, 0.01, null, now() - interval '400 days'),
               ('acme', 'new:note', current_date, 0.01, 0.01, now())",
        )
        .await
        .unwrap();
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    history_projector::retention::purge(&pool, Duration::from_secs(86_400 * 90))
        .await
        .unwrap();
    let left: Vec<String> = admin
        .query(
            "select claim_id from llm_budget_claims order by claim_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        left,
        ["new:note"],
        "claims past retention go, settled or not"
    );
    let refused = history_projector::retention::purge(&pool, Duration::from_secs(60)).await;
    assert!(refused.is_err(), "a retention of a minute is refused");
}
