//! `aiagents import <tool>` for every help desk and PSA: the resolved
//! tickets come page by page in the tool's own paging, with their
//! description and resolution; an import stopped after a page resumes where
//! it stopped; a date window imports only what was resolved in it.

use crate::help_desks_support::Case;

use std::time::Duration;

use aia_events::{Event, ItsmKind, Payload, TenantId};
use aia_standins::desk::Ticket;
use aia_testkit::{NatsServer, TestDatabase};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;

const RESOLVED: u64 = 150;

fn start_of_year() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

async fn resolved_events(jetstream: &aia_bus::JetStream, tenant: &str) -> Vec<Event> {
    let stream = jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: format!("tickets.{tenant}.>"),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(1000)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(message) = batch.next().await {
        events.push(Event::from_json(&message.unwrap().payload).unwrap());
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_imports_its_resolved_tickets_page_by_page_and_resumes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let keyring = aia_store::Keyring::parse(&aia_store::Keyring::generate_spec("k1")).unwrap();
    for kind in [
        ItsmKind::Zendesk,
        ItsmKind::Freshservice,
        ItsmKind::Servicenow,
        ItsmKind::Connectwise,
        ItsmKind::Autotask,
        ItsmKind::Halopsa,
    ] {
        let case = Case::start(kind).await;
        for id in 1..=RESOLVED {
            let resolved_at = start_of_year() + TimeDelta::days(i64::try_from(id).unwrap());
            case.desk().put(
                Ticket::open(
                    id,
                    &format!("Printer {id} offline"),
                    "The printer shows offline",
                )
                .resolved(&format!("Re-added printer {id} with its static address"))
                .resolved_at(resolved_at),
            );
        }
        for id in 1001..=1005 {
            case.desk()
                .put(Ticket::open(id, "Still open", "Not resolved yet"));
        }
        let itsm = aia_itsm::Itsm::for_tenant(
            reqwest::Client::new(),
            kind,
            &case.base_url,
            &case.credentials.to_string(),
        )
        .unwrap();
        let tenant = TenantId::parse(kind.as_str()).unwrap();
        // The import reads the tenant's language settings: it must exist.
        aiagents::ops::add_tenant(
            &db.app_url,
            &keyring,
            tenant.as_str(),
            kind.display_name(),
            kind,
            &case.base_url,
            &case.credentials.to_string(),
        )
        .await
        .unwrap();
        let import = |since, max_pages| {
            aiagents::import::import_from_help_desk(
                &itsm,
                &jetstream,
                &db.app_url,
                &tenant,
                since,
                None,
                1000,
                max_pages,
            )
        };

        // Stopped after one page, then resumed: every resolved ticket once.
        let first = import(None, Some(1)).await.unwrap();
        assert_eq!((first.imported, first.resumed), (100, false), "{kind:?}");
        let rest = import(None, None).await.unwrap();
        assert_eq!((rest.imported, rest.resumed), (RESOLVED, true), "{kind:?}");
        let events = resolved_events(&jetstream, tenant.as_str()).await;
        assert_eq!(events.len() as u64, RESOLVED, "{kind:?}");
        let mut ids = std::collections::BTreeSet::new();
        for event in &events {
            let Payload::TicketResolved(resolved) = &event.payload else {
                panic!("{kind:?}: {:?}", event.payload);
            };
            let n: u64 = resolved.subject["Printer ".len()..]
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                resolved.description, "The printer shows offline",
                "{kind:?}"
            );
            assert_eq!(
                resolved.language.map(|l| l.language),
                Some(aia_events::Language::English),
                "{kind:?}: decided with the tenant's settings as it entered"
            );
            assert!(
                resolved
                    .resolution
                    .contains(&format!("Re-added printer {n} ")),
                "{kind:?}: {}",
                resolved.resolution
            );
            assert_eq!(
                resolved.resolved_at,
                start_of_year() + TimeDelta::days(i64::try_from(n).unwrap()),
                "{kind:?}"
            );
            assert_eq!(event.ticket_id.as_str(), case.ticket_id(n), "{kind:?}");
            ids.insert(n);
        }
        assert_eq!(ids.len() as u64, RESOLVED, "{kind:?}: each ticket once");

        // A window imports only what was resolved in it.
        let since = start_of_year() + TimeDelta::days(120);
        let recent = import(Some(since), None).await.unwrap();
        assert_eq!(
            recent.imported,
            RESOLVED - 119,
            "{kind:?}: resolved from day 120"
        );
    }
}
