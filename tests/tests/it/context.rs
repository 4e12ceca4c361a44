//! Context gathering on a real database with stand-in knowledge-base and
//! monitoring APIs: every source, tenant isolation, timeouts and the budget.

use std::time::{Duration, Instant};

use aia_bus::{Delivery, Handled};
use aia_events::{
    ContextGathered, ContextSource, Event, ItsmKind, Payload, Priority, SourceStatus, TenantId,
    TicketChange, TicketId, TicketReceived,
};
use aia_standins::knowledge::KnowledgeStandIn;
use aia_standins::prometheus::PrometheusStandIn;
use aia_store::{Integrations, Keyring, TenantSettings, tenants};
use aia_testkit::TestDatabase;
use context_gatherer::ContextGatherer;

struct Setup {
    _db: TestDatabase,
    gatherer: ContextGatherer,
    kb: KnowledgeStandIn,
    _servers: Vec<aia_standins::Running>,
}

async fn setup(settings: impl Fn(&mut TenantSettings, &str, &str), budget: Duration) -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::create().await;
    let kb = KnowledgeStandIn::new("kb-token");
    let prometheus = PrometheusStandIn::new();
    prometheus.set("node_filesystem", "fs01.corp.local", 97.0);
    prometheus.set("node_cpu", "fs01.corp.local", 12.0);
    let kb_server = aia_standins::serve(kb.router()).await.unwrap();
    let prometheus_server = aia_standins::serve(prometheus.router()).await.unwrap();
    let spec = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&spec).unwrap();
    for tenant in ["acme", "globex"] {
        aiagents::ops::add_tenant(
            &db.app_url,
            &keyring,
            tenant,
            tenant,
            ItsmKind::ServicedeskPlus,
            "https://sdp.example.com",
            r#"{"authtoken":"t"}"#,
        )
        .await
        .unwrap();
    }
    let pool = aia_store::pool(&db.app_url, 4).unwrap();
    let mut client = pool.get().await.unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let mut acme_settings = TenantSettings {
        monitoring_enabled: true,
        ..TenantSettings::default()
    };
    settings(
        &mut acme_settings,
        &kb_server.url(),
        &prometheus_server.url(),
    );
    tenants::update(
        &mut client,
        &keyring,
        &acme,
        &tenants::TenantUpdate {
            settings: Some(acme_settings),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tenants::set_integrations(
        &mut client,
        &keyring,
        &acme,
        &Integrations {
            knowledge_base_token: Some("kb-token".into()),
            ..Integrations::default()
        },
    )
    .await
    .unwrap();
    db.admin_client()
        .await
        .batch_execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id) values
               ('acme', 'A-1', 'File server disk full', 'D: volume on the file server is full', 'Removed old shadow copies', 'high', now(), gen_random_uuid()),
               ('acme', 'A-2', 'Printer offline', 'Second floor printer offline', 'DHCP reservation', 'low', now(), gen_random_uuid()),
               ('globex', 'G-1', 'File server disk full', 'The file server disk is full', 'Globex-only fix', 'high', now(), gen_random_uuid());
             insert into knowledge_articles (tenant_id, article_id, title, body, url) values
               ('acme', 'kb1', 'Freeing disk space on file servers', 'Shadow copies and old exports fill the disk.', 'https://wiki.acme.example/disk'),
               ('globex', 'kb9', 'Globex disk runbook', 'Globex only.', null);
             insert into system_inventory (tenant_id, address, hostname, role, client, location) values
               ('acme', '10.20.1.40', 'fs01.corp.local', 'file server', 'Acme Ltd', 'Berlin'),
               ('acme', '10.99.0.0/16', null, 'branch office network', 'Acme Ltd', 'Hamburg'),
               ('acme', '2001:db8::15', 'pc-0231', 'workstation', 'Acme Ltd', 'Berlin'),
               ('acme', '10.20.1.50', 'NAS02', 'backup storage', 'Acme Ltd', 'Berlin'),
               ('globex', '10.20.1.40', 'globex-secret-host', 'server', 'Globex', 'Paris');",
        )
        .await
        .unwrap();
    let gatherer = ContextGatherer {
        tenants: std::sync::Arc::new(aia_store::TenantCache::new(
            pool.clone(),
            std::sync::Arc::new(keyring),
            std::time::Duration::ZERO,
        )),
        db: pool,
        http: reqwest::Client::new(),
        local_embedder: None,
        knowledge_cache: Default::default(),
        source_timeout: Duration::from_secs(5),
        budget,
        monitoring_timeout: Duration::from_secs(5),
        max_similar_tickets: 5,
        related: context_gatherer::sources::related::Related::live(
            aia_store::open_tickets::DEFAULT_TENANTS,
        ),
        metrics: Default::default(),
        rewriter: Some(Default::default()),
    };
    Setup {
        _db: db,
        gatherer,
        kb,
        _servers: vec![kb_server, prometheus_server],
    }
}

fn received(tenant: &str, subject: &str, description: &str) -> Event {
    Event::new_run(
        TenantId::parse(tenant).unwrap(),
        TicketId::parse("SUP-1").unwrap(),
        Payload::TicketReceived(TicketReceived {
            source: ItsmKind::ServicedeskPlus,
            change: TicketChange::Created,
            subject: Some(subject.into()),
            description: description.into(),
            priority: Priority::High,
            requester: None,
            created_at: chrono::Utc::now(),
            delivery_id: "d".into(),
        }),
    )
}

async fn gather(gatherer: &ContextGatherer, event: Event) -> ContextGathered {
    let delivery = Delivery {
        attempt: 1,
        max_deliver: Some(6),
        stream_sequence: 1,
    };
    match aia_bus::dispatch(gatherer, &event, delivery).await.unwrap() {
        Handled::Publish(events) => match &events[0].payload {
            Payload::ContextGathered(context) => context.clone(),
            other => panic!("expected context.gathered, got {other:?}"),
        },
        Handled::Nothing => panic!("expected an event"),
    }
}

fn status(context: &ContextGathered, source: ContextSource) -> SourceStatus {
    context
        .sources
        .iter()
        .find(|report| report.source == source)
        .unwrap()
        .status
}

#[tokio::test]
async fn every_source_contributes_and_nothing_crosses_tenants() {
    let setup = setup(
        |settings, kb, prometheus| {
            settings.knowledge_base_url = Some(kb.to_owned());
            settings.monitoring_url = Some(prometheus.to_owned());
        },
        Duration::from_secs(30),
    )
    .await;
    let context = gather(
        &setup.gatherer,
        received(
            "acme",
            "File server disk full",
            "Users cannot save to FS01 (10.20.1.40); also 10.99.3.7 in Hamburg and 2001:0db8:0000::0015 are slow, backups to nas02.corp.local fail, mail me at jane@acme.example",
        ),
    )
    .await;
    let similar: Vec<&str> = context
        .similar_tickets
        .iter()
        .map(|t| t.ticket_id.as_str())
        .collect();
    assert_eq!(similar.first(), Some(&"A-1"), "{similar:?}");
    assert!(!similar.contains(&"G-1"));

    let titles: Vec<&str> = context
        .knowledge_articles
        .iter()
        .map(|a| a.title.as_str())
        .collect();
    assert_eq!(titles[0], "Freeing disk space on file servers");
    assert!(
        titles.iter().any(|title| title.starts_with("KB 1")),
        "external articles missing: {titles:?}"
    );
    assert!(!titles.iter().any(|title| title.contains("Globex")));

    let systems: Vec<(Option<&str>, &str)> = context
        .systems
        .iter()
        .map(|s| (s.role.as_deref(), s.matched.as_str()))
        .collect();
    for expected in [
        (Some("file server"), "10.20.1.40"),
        (Some("branch office network"), "10.99.3.7"),
        (Some("workstation"), "2001:0db8:0000::0015"),
        // Kept in the inventory by its short name, named in full.
        (Some("backup storage"), "nas02.corp.local"),
    ] {
        assert!(
            systems.contains(&expected),
            "{expected:?} missing from {systems:?}"
        );
    }
    assert!(
        !context
            .systems
            .iter()
            .any(|s| s.hostname.as_deref() == Some("globex-secret-host"))
    );

    assert_eq!(context.monitoring.len(), 1, "{:?}", context.monitoring);
    assert_eq!(context.monitoring[0].host, "fs01.corp.local");
    assert!(
        context.monitoring[0].summary.starts_with("disk % is 97.0"),
        "{}",
        context.monitoring[0].summary
    );
    for source in [
        ContextSource::SimilarTickets,
        ContextSource::KnowledgeBase,
        ContextSource::Inventory,
        ContextSource::Monitoring,
    ] {
        assert_eq!(status(&context, source), SourceStatus::Ok, "{source:?}");
    }

    // The ticket left for the knowledge base masked, as for the LLM.
    let sent = setup.kb.queries();
    assert!(
        sent.iter().all(|query| !query.contains("@acme.example")),
        "{sent:?}"
    );
    assert!(
        sent.iter().any(|query| query.contains("[email]")),
        "{sent:?}"
    );

    // The external knowledge base is asked once per query and hour.
    let served = setup.kb.served();
    gather(&setup.gatherer, received("acme", "File server disk full", "Users cannot save to FS01 (10.20.1.40); also 10.99.3.7 in Hamburg and 2001:0db8:0000::0015 are slow, backups to nas02.corp.local fail, mail me at jane@acme.example")).await;
    assert_eq!(setup.kb.served(), served);
}

#[tokio::test]
async fn a_slow_source_times_out_within_the_budget_and_the_run_goes_on() {
    let setup = setup(
        |settings, kb, _| {
            settings.knowledge_base_url = Some(kb.to_owned());
            settings.knowledge_base_timeout_secs = 1;
            settings.monitoring_enabled = false;
            settings.inventory_enabled = false;
        },
        Duration::from_secs(2),
    )
    .await;
    setup.kb.slow_down(Duration::from_secs(10));
    let started = Instant::now();
    let context = gather(
        &setup.gatherer,
        received("acme", "Printer offline", "The printer is offline again"),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    // Local articles found nothing and the external one timed out.
    assert_eq!(
        status(&context, ContextSource::KnowledgeBase),
        SourceStatus::Timeout
    );
    assert_eq!(
        status(&context, ContextSource::SimilarTickets),
        SourceStatus::Ok
    );
    assert_eq!(
        status(&context, ContextSource::Inventory),
        SourceStatus::Disabled
    );
    assert_eq!(
        status(&context, ContextSource::Monitoring),
        SourceStatus::Disabled
    );
    assert_eq!(context.similar_tickets[0].ticket_id.as_str(), "A-2");
}

#[tokio::test]
async fn unknown_tenants_end_the_run_with_a_reason() {
    let setup = setup(|_, _, _| {}, Duration::from_secs(30)).await;
    let delivery = Delivery {
        attempt: 1,
        max_deliver: Some(6),
        stream_sequence: 1,
    };
    let Handled::Publish(events) =
        aia_bus::dispatch(&setup.gatherer, &received("nobody", "x", "y"), delivery)
            .await
            .unwrap()
    else {
        panic!("expected an event");
    };
    let Payload::EnhancementFailed(failed) = &events[0].payload else {
        panic!("expected enhancement.failed")
    };
    assert_eq!(failed.reason, "tenant does not exist");
}

/// A `ticket.received` of `ticket`, received `minutes_ago`.
fn received_as(tenant: &str, ticket: &str, description: &str, minutes_ago: i64) -> Event {
    let mut event = received(tenant, "help", description);
    event.ticket_id = TicketId::parse(ticket).unwrap();
    event.occurred_at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    event
}

fn related_ids(context: &ContextGathered) -> Vec<&str> {
    context
        .related_open
        .iter()
        .map(|r| r.ticket_id.as_str())
        .collect()
}

#[tokio::test]
async fn related_open_tickets_are_the_tenants_own_recent_open_ones_naming_what_the_inventory_knows()
{
    let setup = setup(|_, _, _| {}, Duration::from_secs(30)).await;
    let gatherer = &setup.gatherer;
    // Older than the two-hour window, and the first of the day.
    gather(
        gatherer,
        received_as("acme", "OLD-1", "Cannot save to 10.20.1.40", 180),
    )
    .await;
    let first = gather(
        gatherer,
        received_as("acme", "SUP-1", "Cannot save to 10.20.1.40", 30),
    )
    .await;
    assert!(first.related_open.is_empty(), "{:?}", first.related_open);
    assert_eq!(
        status(&first, ContextSource::RelatedTickets),
        SourceStatus::Empty
    );
    // No words in common; the inventory knows the host, its address and site.
    let second = gather(
        gatherer,
        received_as("acme", "SUP-2", "fs01.corp.local refuses my files", 20),
    )
    .await;
    assert_eq!(related_ids(&second), ["SUP-1"]);
    assert_eq!(
        second.related_open[0].shared_entities,
        ["10.20.1.40", "fs01.corp.local", "site:Berlin"]
    );
    assert_eq!(
        second.related_open[0].similarity, None,
        "no embedder: by names only"
    );
    assert_eq!(
        status(&second, ContextSource::RelatedTickets),
        SourceStatus::Ok
    );
    let note = llm_enhancer::incident::section(
        &second,
        &llm_enhancer::generate::NoteShape::new(300, aia_events::Language::English),
    )
    .unwrap();
    assert!(
        note.contains("1 other open ticket from the last 10 minutes looks like this one: SUP-1"),
        "{note}"
    );
    assert!(
        note.contains("both mention 10.20.1.40, fs01.corp.local, site:Berlin"),
        "{note}"
    );

    // Another tenant's tickets on the same address are never related.
    let globex = gather(
        gatherer,
        received_as("globex", "SUP-3", "Cannot save to 10.20.1.40", 10),
    )
    .await;
    assert!(globex.related_open.is_empty(), "{:?}", globex.related_open);
    // A ticket naming nothing in common relates to nothing.
    let printer = gather(
        gatherer,
        received_as("acme", "SUP-4", "Paper jam on the second floor printer", 9),
    )
    .await;
    assert!(printer.related_open.is_empty());

    // A resolved ticket leaves the window; a redelivered one is not its
    // own relative and is recorded once.
    let acme = TenantId::parse("acme").unwrap();
    aia_store::open_tickets::resolve(
        &mut gatherer.db.get().await.unwrap(),
        &acme,
        &TicketId::parse("SUP-1").unwrap(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let again = gather(
        gatherer,
        received_as("acme", "SUP-2", "fs01.corp.local refuses my files", 20),
    )
    .await;
    assert!(again.related_open.is_empty(), "{:?}", again.related_open);
    let fifth = gather(
        gatherer,
        received_as("acme", "SUP-5", "10.20.1.40 is gone again", 5),
    )
    .await;
    assert_eq!(related_ids(&fifth), ["SUP-2"]);

    // A dry run reads the window and writes nothing to it.
    let dry = ContextGatherer {
        related: context_gatherer::sources::related::Related::dry_run(),
        rewriter: None,
        metrics: Default::default(),
        knowledge_cache: Default::default(),
        tenants: gatherer.tenants.clone(),
        db: gatherer.db.clone(),
        http: gatherer.http.clone(),
        local_embedder: None,
        source_timeout: gatherer.source_timeout,
        budget: gatherer.budget,
        monitoring_timeout: gatherer.monitoring_timeout,
        max_similar_tickets: gatherer.max_similar_tickets,
    };
    let dry_run = gather(&dry, received_as("acme", "SUP-6", "10.20.1.40 down", 1)).await;
    assert_eq!(related_ids(&dry_run), ["SUP-5", "SUP-2"]);
    let recorded: Vec<String> = setup
        ._db
        .admin_client()
        .await
        .query(
            "select ticket_id from open_tickets where tenant_id = 'acme' order by ticket_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(recorded, ["OLD-1", "SUP-1", "SUP-2", "SUP-4", "SUP-5"]);
}

/// A German ticket is read in German: its words are stemmed as German
/// (so "Aufträge" finds a resolved ticket's "Auftrag", which English
/// stemming would miss), its language is recorded with how it was decided,
/// and a tenant that is German-only has every ticket read in German.
#[tokio::test]
async fn a_german_ticket_is_searched_with_german_stems_and_its_language_is_recorded() {
    let setup = setup(|_, _, _| {}, Duration::from_secs(30)).await;
    setup
        ._db
        .admin_client()
        .await
        .batch_execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id, language) values
               ('acme', 'A-de', 'Druckauftrag bleibt hängen',
                'Jeder Auftrag an den Etagendrucker bleibt in der Warteschlange stehen.',
                'Spooler-Dienst auf dem Druckserver neu gestartet.', 'low', now(), gen_random_uuid(), 'de');",
        )
        .await
        .unwrap();
    let ticket = received(
        "acme",
        "Aufträge kommen nicht an",
        "Seit heute Morgen kommen meine Aufträge nicht mehr am Drucker an, sie bleiben einfach in der Schlange stehen.",
    );
    let context = gather(&setup.gatherer, ticket.clone()).await;
    let language = context.language.expect("v5 records the language");
    assert_eq!(language.language, aia_events::Language::German);
    assert_eq!(language.decided_by, aia_events::DecidedBy::Detected);
    let similar: Vec<&str> = context
        .similar_tickets
        .iter()
        .map(|t| t.ticket_id.as_str())
        .collect();
    assert_eq!(similar, ["A-de"], "found by its German stems");

    // The same words stemmed as English share nothing with the German ticket.
    let mut client = setup.gatherer.db.get().await.unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let as_english = context_gatherer::sources::similar::similar_tickets(
        &mut client,
        &acme,
        "Aufträge kommen nicht an\nSeit heute Morgen kommen meine Aufträge nicht mehr am Drucker an, sie bleiben einfach in der Schlange stehen.",
        aia_events::Language::English,
        5,
    )
    .await
    .unwrap();
    assert!(
        as_english.iter().all(|t| t.ticket_id.as_str() != "A-de"),
        "English stemming would have missed it: {as_english:?}"
    );

    // A German-only tenant: every ticket is read in German, even one whose
    // words say too little or look English.
    setup
        ._db
        .merge_tenant_settings("acme", serde_json::json!({"languages": {"fixed": "de"}}))
        .await;
    let context = gather(&setup.gatherer, received("acme", "VPN", "error 0x80070005")).await;
    let language = context.language.unwrap();
    assert_eq!(
        (language.language, language.decided_by),
        (aia_events::Language::German, aia_events::DecidedBy::Tenant)
    );
}

#[tokio::test]
async fn a_ticket_is_embedded_for_its_incidents_with_both_searches_off() {
    let stand_in = aia_standins::embeddings::EmbeddingsStandIn::new("nomic-embed-text", 64);
    let provider = aia_standins::serve(stand_in.router()).await.unwrap();
    let base_url = format!("{}/v1", provider.url());
    let setup = setup(
        move |settings, _, _| {
            settings.similar_tickets_enabled = false;
            settings.knowledge_base_enabled = false;
            settings.embeddings = aia_store::EmbeddingSettings::Endpoint(
                aia_store::EmbeddingEndpointSettings::openai(
                    "ollama",
                    &base_url,
                    "nomic-embed-text",
                ),
            );
        },
        Duration::from_secs(30),
    )
    .await;
    let context = gather(
        &setup.gatherer,
        received("acme", "VPN drops", "The VPN drops every hour"),
    )
    .await;
    assert_eq!(
        status(&context, ContextSource::SimilarTickets),
        SourceStatus::Disabled
    );
    assert_eq!(stand_in.batches(), [1], "the ticket is embedded once");
    // It entered the window of open tickets with its vector, which the
    // correlator groups by.
    let row = setup
        ._db
        .admin_client()
        .await
        .query_one(
            "select model, vector is not null from open_tickets
              where tenant_id = 'acme' and ticket_id = 'SUP-1'",
            &[],
        )
        .await
        .unwrap();
    let (model, has_vector): (Option<String>, bool) = (row.get(0), row.get(1));
    assert_eq!(model.as_deref(), Some("nomic-embed-text"));
    assert!(has_vector);
}

/// A database that cannot serve a source for a passing reason (here a lock
/// it may not wait for, as under a failover or a migration) has the ticket
/// gathered again while deliveries are left, instead of a context that
/// merely looks empty; on the last delivery the run goes on and says why.
#[tokio::test]
async fn a_database_that_cannot_serve_a_source_has_the_ticket_gathered_again() {
    let mut setup = setup(|_, _, _| {}, Duration::from_secs(10)).await;
    let separator = if setup._db.app_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let impatient = format!(
        "{}{separator}options=-c%20lock_timeout%3D200ms",
        setup._db.app_url
    );
    setup.gatherer.db = aia_store::pool(&impatient, 4).unwrap();
    let mut locker = setup._db.admin_client().await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("lock table ticket_history in access exclusive mode")
        .await
        .unwrap();
    let event = received("acme", "File server disk full", "The D: volume is full");
    let delivery = |attempt| Delivery {
        attempt,
        max_deliver: Some(6),
        stream_sequence: 1,
    };
    let again = aia_bus::dispatch(&setup.gatherer, &event, delivery(1))
        .await
        .expect_err("gathered again, not sent on");
    assert!(again.reason.contains("gathering again"), "{}", again.reason);

    let Handled::Publish(events) = aia_bus::dispatch(&setup.gatherer, &event, delivery(6))
        .await
        .expect("the last delivery goes on")
    else {
        panic!("expected context.gathered")
    };
    let Payload::ContextGathered(context) = &events[0].payload else {
        panic!("expected context.gathered")
    };
    let similar = context
        .sources
        .iter()
        .find(|report| report.source == ContextSource::SimilarTickets)
        .unwrap();
    assert_eq!(similar.status, SourceStatus::Error);
    assert!(
        similar
            .detail
            .as_deref()
            .is_some_and(|detail| detail.starts_with("database unavailable")),
        "{similar:?}"
    );

    lock.rollback().await.unwrap();
    let context = gather(&setup.gatherer, event).await;
    assert_eq!(
        status(&context, ContextSource::SimilarTickets),
        SourceStatus::Ok
    );
}

/// The window of open tickets could not be read in time (its table locked,
/// as under a long migration): the source says so, and the ticket still
/// enters the window, or the correlator would leave it out of any incident
/// for good and no later ticket would relate to it.
#[tokio::test]
async fn a_ticket_whose_window_read_timed_out_still_enters_the_window() {
    let mut setup = setup(|_, _, _| {}, Duration::from_secs(30)).await;
    setup.gatherer.source_timeout = Duration::from_millis(500);
    let mut lock_holder = setup._db.admin_client().await;
    let lock = lock_holder.transaction().await.unwrap();
    lock.batch_execute("lock table open_tickets in access exclusive mode")
        .await
        .unwrap();
    let gathering = tokio::spawn({
        let event = received(
            "acme",
            "VPN drops",
            "fs01.corp.local: the VPN drops every hour",
        );
        let gatherer = setup.gatherer;
        async move { gather(&gatherer, event).await }
    });
    // Past the source's timeout; then the table is free again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    lock.commit().await.unwrap();
    let context = gathering.await.unwrap();
    assert_eq!(
        status(&context, ContextSource::RelatedTickets),
        SourceStatus::Timeout
    );
    let rows = setup
        ._db
        .admin_client()
        .await
        .query(
            "select entities from open_tickets where tenant_id = 'acme' and ticket_id = 'SUP-1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the ticket is in the window");
    let entities: Vec<String> = rows[0].get(0);
    assert!(
        entities.iter().any(|e| e.contains("fs01")),
        "with what it names: {entities:?}"
    );
}

/// A ticket gathered again once resolved (a replay, an operator's dry run)
/// is not offered as its own similar ticket, whose resolution would read
/// as the note's prediction.
#[tokio::test]
async fn a_resolved_ticket_gathered_again_is_not_its_own_similar_ticket() {
    let setup = setup(|_, _, _| {}, Duration::from_secs(30)).await;
    setup
        ._db
        .admin_client()
        .await
        .batch_execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id)
             values ('acme', 'SUP-1', 'File server disk full', 'The file server disk is full again',
                     'Moved the exports away', 'high', now(), gen_random_uuid())",
        )
        .await
        .unwrap();
    let context = gather(
        &setup.gatherer,
        received(
            "acme",
            "File server disk full",
            "The file server disk is full again",
        ),
    )
    .await;
    let ids: Vec<&str> = context
        .similar_tickets
        .iter()
        .map(|t| t.ticket_id.as_str())
        .collect();
    assert!(!ids.contains(&"SUP-1"), "{ids:?}");
    assert!(ids.contains(&"A-1"), "the others are still found: {ids:?}");
}

/// One tenant's Prometheus hanging through an outage (a burst of its
/// tickets, each asking) does not take another tenant's monitoring with it:
/// the slots are per monitoring API, not for the whole process.
#[tokio::test]
async fn a_hanging_prometheus_of_one_tenant_leaves_anothers_monitoring_answered() {
    use context_gatherer::sources::monitoring;
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Accepts connections and never answers.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_url = format!("http://{}", hanging.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hanging.accept().await {
            held.push(socket);
        }
    });
    let prometheus = aia_standins::prometheus::PrometheusStandIn::new();
    // Down: a finding.
    prometheus.set("up", "fs01", 0.0);
    let working = aia_standins::serve(prometheus.router()).await.unwrap();
    let http = reqwest::Client::new();
    let queries = aia_store::MonitoringQuery::defaults();
    let hosts = vec!["fs01".to_owned()];
    let window = Duration::from_secs(3);
    // Ten tickets of the first tenant at once: forty queries waiting.
    let burst: Vec<_> = (0..10)
        .map(|_| {
            let (http, url, hosts, queries) = (
                http.clone(),
                hanging_url.clone(),
                hosts.clone(),
                queries.clone(),
            );
            tokio::spawn(async move {
                let asked = monitoring::Asked {
                    hosts: &hosts,
                    queries: &queries,
                    language: aia_events::Language::English,
                };
                monitoring::check(&http, &url, None, asked, window).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Its own ticket's window ends well before the hanging ones give up.
    let found = monitoring::check(
        &http,
        &working.url(),
        None,
        monitoring::Asked {
            hosts: &hosts,
            queries: &queries,
            language: aia_events::Language::English,
        },
        Duration::from_millis(1500),
    )
    .await
    .unwrap();
    assert!(
        found.iter().any(|finding| finding.host == "fs01"),
        "the other tenant's Prometheus is asked and answers: {found:?}"
    );
    for ticket in burst {
        let _ = ticket.await.unwrap();
    }
}
