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

/// Jira's import searches as each edition does: Cloud (signed in with an
/// e-mail and API token) through `/rest/api/3/search/jql`, paged by token —
/// Cloud answers 410 to the `/rest/api/2/search` it removed — and Data
/// Center (a personal access token) through `/rest/api/2/search`, paged by
/// offset. Every resolved issue arrives once, with its fix.
#[tokio::test]
async fn jira_cloud_and_data_center_import_their_resolved_issues_page_by_page() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    const ISSUES: i64 = 230;
    for data_center in [false, true] {
        let (standin, credentials) = if data_center {
            (
                aia_standins::jira::JiraStandIn::data_center("Bearer pat-1"),
                serde_json::json!({"bearer": "pat-1"}),
            )
        } else {
            (
                aia_standins::jira::JiraStandIn::new(aia_standins::desk::basic(
                    "bot@acme.example",
                    "jt-1",
                )),
                serde_json::json!({"email": "bot@acme.example", "api_token": "jt-1"}),
            )
        };
        for n in 1..=ISSUES {
            standin.put_resolved(
                &format!("SUP-{n}"),
                &format!("Printer {n} offline"),
                &format!("Re-added printer {n} with its static address"),
                start_of_year() + TimeDelta::hours(n),
            );
        }
        let server = aia_standins::serve(standin.router()).await.unwrap();
        let itsm = aia_itsm::Itsm::for_tenant(
            reqwest::Client::new(),
            ItsmKind::Jira,
            &server.url(),
            &credentials.to_string(),
        )
        .unwrap();
        let pace = aia_itsm::Pace::per_second(1000);
        let window = aia_itsm::ImportWindow::default();
        let (mut cursor, mut keys, mut pages) = (None, Vec::new(), 0);
        loop {
            let page = itsm
                .resolved_page(cursor.as_deref(), &window, &pace)
                .await
                .unwrap_or_else(|err| panic!("data center {data_center}: {err}"));
            pages += 1;
            for ticket in &page.tickets {
                assert!(ticket.resolution.contains("static address"), "{ticket:?}");
                keys.push(ticket.id.clone());
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let expected: Vec<String> = (1..=ISSUES).map(|n| format!("SUP-{n}")).collect();
        assert_eq!(keys, expected, "data center {data_center}");
        assert_eq!(pages, 3, "data center {data_center}: pages of 100");
    }
}

/// JQL reads a date in the searching user's time zone. An import whose
/// Jira account sits eight hours west of UTC still gets the issue resolved
/// an hour after its window opened, and not the ones outside the window.
#[tokio::test]
async fn a_jira_user_west_of_utc_loses_no_issue_at_the_windows_edge() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let standin =
        aia_standins::jira::JiraStandIn::new(aia_standins::desk::basic("bot@acme.example", "jt-1"))
            .with_user_offset_hours(-8);
    let since = start_of_year() + TimeDelta::days(10);
    for (key, at) in [
        ("SUP-1", since - TimeDelta::hours(1)),
        ("SUP-2", since + TimeDelta::hours(1)),
        ("SUP-3", since + TimeDelta::hours(30)),
    ] {
        standin.put_resolved(key, "VPN drops", "Renewed the certificate", at);
    }
    let server = aia_standins::serve(standin.router()).await.unwrap();
    let itsm = aia_itsm::Itsm::for_tenant(
        reqwest::Client::new(),
        ItsmKind::Jira,
        &server.url(),
        r#"{"email": "bot@acme.example", "api_token": "jt-1"}"#,
    )
    .unwrap();
    let window = aia_itsm::ImportWindow {
        since: Some(since),
        until: Some(since + TimeDelta::hours(2)),
    };
    let page = itsm
        .resolved_page(None, &window, &aia_itsm::Pace::per_second(1000))
        .await
        .unwrap();
    let keys: Vec<&str> = page.tickets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(keys, ["SUP-2"]);
}
