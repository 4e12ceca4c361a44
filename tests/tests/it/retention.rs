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
