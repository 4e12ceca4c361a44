//! The tenant's LLM rewrites a lay ticket into a technician's terms before
//! the searches (`query_rewrite`, off by default): on a real database with
//! the OpenAI-compatible stand-in — what it is asked, that the terms find
//! what the ticket alone cannot, what it costs, and that a missing
//! provider, a used-up budget or a failing or slow model leave the ticket
//! searched by its own words.

use std::time::Duration;

use aia_bus::{Delivery, Handled};
use aia_events::{
    ContextGathered, Event, ItsmKind, Payload, Priority, TenantId, TicketChange, TicketId,
    TicketReceived,
};
use aia_standins::llm::{Behaviour, LlmStandIn};
use aia_store::{Integrations, Keyring, LlmProviderSettings, TenantSettings, tenants};
use aia_testkit::TestDatabase;
use context_gatherer::ContextGatherer;

const TERMS: &str = "IPsec tunnel, SA lifetime mismatch, rekey";

/// Shares no word with the resolved IPsec ticket.
const LAY_TICKET: &str =
    "Cannot reach the shared drive from home, it keeps cutting out. Call me on jane@acme.example";

struct Setup {
    db: TestDatabase,
    gatherer: ContextGatherer,
    llm: LlmStandIn,
    _server: aia_standins::Running,
}

async fn setup(settings: impl FnOnce(&mut TenantSettings)) -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::create().await;
    let llm = LlmStandIn::new();
    llm.reply_with(TERMS);
    let server = aia_standins::serve(llm.router()).await.unwrap();
    let keyring = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
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
        query_rewrite: true,
        llm_providers: vec![LlmProviderSettings {
            name: "primary".into(),
            kind: "openai".into(),
            base_url: format!("{}/v1", server.url()),
            model: "gpt-4o-mini".into(),
            api_version: None,
            timeout_secs: 5,
        }],
        ..TenantSettings::default()
    };
    settings(&mut acme_settings);
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
            llm_keys: [("primary".to_owned(), "sk-primary-key-123456".to_owned())].into(),
            ..Integrations::default()
        },
    )
    .await
    .unwrap();
    db.admin_client()
        .await
        .batch_execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id) values
               ('acme', 'A-1', 'IPsec tunnel to branch drops hourly', 'Site-to-site IPsec SA renegotiation fails at rekey',
                'Phase 2 lifetime mismatch; set both ends to 3600 s', 'high', now(), gen_random_uuid()),
               ('acme', 'A-2', 'Printer offline', 'Second floor printer offline', 'DHCP reservation', 'low', now(), gen_random_uuid()),
               ('globex', 'G-1', 'IPsec tunnel drops', 'IPsec SA lifetime mismatch at rekey', 'Globex-only fix', 'high', now(), gen_random_uuid());",
        )
        .await
        .unwrap();
    let gatherer = ContextGatherer {
        tenants: std::sync::Arc::new(aia_store::TenantCache::new(
            pool.clone(),
            std::sync::Arc::new(keyring),
            Duration::ZERO,
        )),
        db: pool,
        http: reqwest::Client::new(),
        local_embedder: None,
        knowledge_cache: Default::default(),
        source_timeout: Duration::from_secs(2),
        budget: Duration::from_secs(10),
        monitoring_timeout: Duration::from_secs(2),
        max_similar_tickets: 5,
        related: context_gatherer::sources::related::Related::live(
            aia_store::open_tickets::DEFAULT_TENANTS,
        ),
        metrics: Default::default(),
        rewriter: Some(Default::default()),
    };
    Setup {
        db,
        gatherer,
        llm,
        _server: server,
    }
}

fn received(tenant: &str, description: &str) -> Event {
    Event::new_run(
        TenantId::parse(tenant).unwrap(),
        TicketId::parse("SUP-1").unwrap(),
        Payload::TicketReceived(TicketReceived {
            source: ItsmKind::ServicedeskPlus,
            change: TicketChange::Created,
            subject: Some("Help".into()),
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

fn found(context: &ContextGathered) -> Vec<&str> {
    context
        .similar_tickets
        .iter()
        .map(|ticket| ticket.ticket_id.as_str())
        .collect()
}

#[tokio::test]
async fn the_llms_terms_find_the_fix_the_lay_words_miss_and_the_call_is_paid_for() {
    let setup = setup(|_| {}).await;
    let context = gather(&setup.gatherer, received("acme", LAY_TICKET)).await;

    assert_eq!(found(&context), ["A-1"], "{context:#?}");
    let rewrite = context.query_rewrite.expect("a rewrite");
    assert_eq!(rewrite.terms.as_deref(), Some(TERMS));
    assert_eq!(rewrite.skipped_because, None);
    assert_eq!(rewrite.provider.as_deref(), Some("primary"));
    assert!(rewrite.tokens_in > 0 && rewrite.tokens_out > 0);
    let expected = aia_llm::cost::PriceTable::default().cost(
        "gpt-4o-mini",
        rewrite.tokens_in,
        rewrite.tokens_out,
    );
    assert!(expected > 0.0);
    assert!((rewrite.cost_usd - expected).abs() < 1e-12);

    // One small call: the instructions, the ticket with personal data
    // masked (the tenant's default), one line out.
    let requests = setup.llm.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request["messages"][0]["content"],
        context_gatherer::rewrite::instructions(aia_events::Language::English)
    );
    let asked = request["messages"][1]["content"].as_str().unwrap();
    assert!(asked.contains("shared drive"), "{asked}");
    assert!(!asked.contains("jane@acme.example"), "{asked}");
    assert_eq!(request["max_tokens"], context_gatherer::rewrite::MAX_TOKENS);
}

#[tokio::test]
async fn a_german_ticket_is_rewritten_in_english_and_german_terms_and_finds_the_english_fix() {
    let setup = setup(|_| {}).await;
    // As asked: English terms, then the same in German.
    setup
        .llm
        .reply_with("IPsec tunnel, SA lifetime mismatch, rekey\nIPsec-Tunnel, SA-Lebensdauer");
    let german = "Von zu Hause komme ich nicht auf das gemeinsame Laufwerk, die Verbindung \
                  bricht immer wieder ab. Bitte rufen Sie mich zurück.";
    let context = gather(&setup.gatherer, received("acme", german)).await;

    let language = context.language.expect("the language is recorded");
    assert_eq!(language.language, aia_events::Language::German);
    let rewrite = context.query_rewrite.as_ref().expect("a rewrite");
    assert_eq!(
        rewrite.terms.as_deref(),
        Some("IPsec tunnel, SA lifetime mismatch, rekey, IPsec-Tunnel, SA-Lebensdauer")
    );
    // The English terms reach the English ticket the German words cannot.
    assert_eq!(found(&context), ["A-1"], "{context:#?}");
    let requests = setup.llm.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0]["messages"][0]["content"],
        context_gatherer::rewrite::instructions(aia_events::Language::German)
    );
    assert_eq!(
        requests[0]["max_tokens"],
        context_gatherer::rewrite::max_tokens(aia_events::Language::German)
    );
}

#[tokio::test]
async fn off_by_default_nothing_is_asked_and_the_lay_words_find_nothing() {
    let setup = setup(|settings| settings.query_rewrite = false).await;
    let context = gather(&setup.gatherer, received("acme", LAY_TICKET)).await;

    assert!(context.query_rewrite.is_none());
    assert!(found(&context).is_empty(), "{context:#?}");
    assert!(setup.llm.requests().is_empty());
}

#[tokio::test]
async fn a_failing_model_is_asked_once_and_the_ticket_is_searched_alone() {
    let setup = setup(|_| {}).await;
    setup.llm.fail_with(Some(500));
    let context = gather(
        &setup.gatherer,
        received("acme", "The printer on the second floor is offline"),
    )
    .await;

    let rewrite = context.query_rewrite.clone().expect("a rewrite record");
    assert_eq!(rewrite.terms, None);
    let why = rewrite.skipped_because.unwrap();
    assert!(why.contains("HTTP 500"), "{why}");
    assert_eq!(rewrite.cost_usd, 0.0);
    assert_eq!(setup.llm.requests().len(), 1, "no retries for a rewrite");
    assert_eq!(found(&context), ["A-2"]);
}

#[tokio::test]
async fn a_slow_model_is_given_up_on_within_the_source_timeout() {
    let setup = setup(|_| {}).await;
    setup.llm.script([Behaviour::Slow(Duration::from_secs(4))]);
    let context = gather(
        &setup.gatherer,
        received("acme", "The printer on the second floor is offline"),
    )
    .await;

    let why = context
        .query_rewrite
        .clone()
        .unwrap()
        .skipped_because
        .unwrap();
    assert!(why.contains("did not answer within 2000 ms"), "{why}");
    assert_eq!(found(&context), ["A-2"]);
}

/// The stage's budget is one for the whole ticket: a rewrite that used
/// most of it leaves the sources only what is left, not each its own
/// timeout again.
#[tokio::test]
async fn the_sources_after_a_slow_rewrite_get_only_what_is_left_of_the_budget() {
    let mut setup = setup(|_| {}).await;
    setup.gatherer.source_timeout = Duration::from_secs(3);
    setup.gatherer.budget = Duration::from_secs(4);
    setup.llm.script([Behaviour::Slow(Duration::from_secs(6))]);
    // The search waits on a lock for as long as it is let.
    let mut locker = setup.db.admin_client().await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("lock table ticket_history in access exclusive mode")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let context = gather(
        &setup.gatherer,
        received("acme", "The printer on the second floor is offline"),
    )
    .await;
    let took = started.elapsed();
    lock.rollback().await.unwrap();
    // 3 s of rewrite, then 1 s left for the search: not 3 s more.
    assert!(took < Duration::from_millis(5_500), "took {took:?}");
    let similar = context
        .sources
        .iter()
        .find(|report| report.source == aia_events::ContextSource::SimilarTickets)
        .unwrap();
    assert_eq!(
        similar.status,
        aia_events::SourceStatus::Timeout,
        "{similar:?}"
    );
    assert!(similar.latency_ms <= 1_500, "{similar:?}");
}

#[tokio::test]
async fn over_its_budget_a_tenant_gets_no_rewrite_and_no_call() {
    let setup = setup(|settings| settings.llm_budget_usd = Some(1.0)).await;
    setup
        .db
        .admin_client()
        .await
        .batch_execute(
            "insert into tenant_daily_stats (tenant_id, day, cost_usd) values ('acme', current_date, 5.0)",
        )
        .await
        .unwrap();
    let context = gather(&setup.gatherer, received("acme", LAY_TICKET)).await;

    let why = context
        .query_rewrite
        .clone()
        .unwrap()
        .skipped_because
        .unwrap();
    assert!(why.contains("budget"), "{why}");
    assert!(setup.llm.requests().is_empty());
    assert!(found(&context).is_empty());
}

#[tokio::test]
async fn without_a_provider_the_rewrite_says_so_and_asks_nobody() {
    let setup = setup(|settings| settings.llm_providers.clear()).await;
    let context = gather(&setup.gatherer, received("acme", LAY_TICKET)).await;

    let why = context
        .query_rewrite
        .clone()
        .unwrap()
        .skipped_because
        .unwrap();
    assert_eq!(why, "no LLM provider is configured");
    assert!(setup.llm.requests().is_empty());
}

#[tokio::test]
async fn the_terms_never_reach_another_tenants_tickets() {
    let setup = setup(|_| {}).await;
    let context = gather(&setup.gatherer, received("acme", LAY_TICKET)).await;
    assert!(!found(&context).contains(&"G-1"));
    // Globex has the rewrite off: its own ticket is searched as written.
    let context = gather(&setup.gatherer, received("globex", LAY_TICKET)).await;
    assert!(context.query_rewrite.is_none());
    assert!(found(&context).is_empty());
}
