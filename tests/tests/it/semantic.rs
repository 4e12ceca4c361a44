//! Search by meaning end to end: the embedding indexer embeds each resolved
//! ticket once; `aiagents reembed` moves a tenant to another model without
//! a gap in search; the context stage searches by meaning and falls back to
//! words, saying so, when the embeddings provider fails; and the whole
//! pipeline on the real local model finds a technician's ticket for a
//! user's description that shares no words with it.

use crate::pipeline_support;

use std::time::Duration;

use aia_bus::{Delivery, Handled};
use aia_embed::{Embedder, Endpoint, EndpointConfig, LOCAL_MODEL};
use aia_events::{
    ContextSource, Event, ItsmKind, Payload, Priority, SourceStatus, TenantId, TicketChange,
    TicketId, TicketReceived,
};
use aia_llm::chain::RetryPolicy;
use aia_standins::embeddings::{Behaviour, EmbeddingsStandIn};
use aia_store::{
    EmbeddingEndpointSettings, EmbeddingSettings, Integrations, Keyring, TenantSettings, tenants,
};
use aia_testkit::{NatsServer, TestDatabase, eventually};
use aiagents::dataset::{self, Resolved};
use pipeline_support::Stack;

fn model_dir() -> std::path::PathBuf {
    std::env::var("AI_AGENTS_MODEL_DIR")
        .expect("AI_AGENTS_MODEL_DIR is not set: run the tests through `./dev test`")
        .into()
}

fn resolved(
    tenant: &str,
    id: &str,
    subject: &str,
    description: &str,
    resolution: &str,
) -> Resolved {
    serde_json::from_value(serde_json::json!({
        "tenant_id": tenant, "ticket_id": id, "subject": subject, "description": description,
        "resolution": resolution, "resolved_at": "2026-10-01T10:00:00Z", "priority": "high", "tags": []
    }))
    .unwrap()
}

async fn add_tenant(db: &TestDatabase, keyring: &Keyring, tenant: &str) {
    aiagents::ops::add_tenant(
        &db.app_url,
        keyring,
        tenant,
        tenant,
        ItsmKind::ServicedeskPlus,
        "https://sdp.example.com",
        r#"{"authtoken":"t"}"#,
    )
    .await
    .unwrap();
}

/// `(ticket_id, content digest, embedded_at)` of every stored vector.
async fn vectors(db: &TestDatabase) -> Vec<(String, Vec<u8>, String)> {
    db.admin_client()
        .await
        .query(
            "select ticket_id, content_sha256, embedded_at::text from ticket_embeddings order by ticket_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indexer_embeds_each_resolved_ticket_once_and_again_only_when_it_changes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let spec = Keyring::generate_spec("k1");
    add_tenant(&db, &Keyring::parse(&spec).unwrap(), "acme").await;
    let model = std::sync::Arc::new(aia_embed::local::MiniLm::load(&model_dir()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = embedder::Config {
        stage: aia_bus::StageSettings::new(
            nats.url(),
            db.app_url.clone(),
            Keyring::parse(&spec).unwrap(),
        ),
        model_dir: model_dir(),
        addr: listener.local_addr().unwrap(),
        api_key: None,
        max_inputs: 16,
        max_parallel: 1,
        indexer: true,
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let service = tokio::spawn(embedder::serve(
        config,
        model,
        listener,
        stop.clone().cancelled_owned(),
    ));

    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let tickets = [
        resolved(
            "acme",
            "A-1",
            "VPN drops",
            "GlobalProtect tunnel drops hourly",
            "Set MTU 1400 on the gateway",
        ),
        resolved(
            "acme",
            "A-2",
            "Printer jam",
            "Tray 2 jams",
            "Replaced the pickup roller",
        ),
        // A tenant that does not exist gets nothing embedded.
        resolved("nobody", "N-1", "VPN drops", "Tunnel drops", "MTU"),
    ];
    dataset::publish_resolved(&jetstream, &tickets, &Default::default())
        .await
        .unwrap();
    let first = eventually("two vectors", Duration::from_secs(30), || async {
        let stored = vectors(&db).await;
        (stored.len() == 2).then_some(stored)
    })
    .await;

    // The same events again (a replay, published under new message ids):
    // nothing is embedded a second time.
    let replayed = tickets[0].to_event(&Default::default()).unwrap();
    aia_bus::publish_event(&jetstream, &replayed, "replay-1")
        .await
        .unwrap();
    let changed = resolved(
        "acme",
        "A-2",
        "Printer jam",
        "Tray 2 jams",
        "Replaced the pickup roller and the separation pad",
    );
    aia_bus::publish_event(
        &jetstream,
        &changed.to_event(&Default::default()).unwrap(),
        "replay-2",
    )
    .await
    .unwrap();
    let second = eventually("A-2 re-embedded", Duration::from_secs(30), || async {
        let stored = vectors(&db).await;
        (stored[1].1 != first[1].1).then_some(stored)
    })
    .await;
    assert_eq!(second.len(), 2, "a changed ticket replaces its vector");
    // Wait until the indexer has handled everything, then check A-1.
    eventually("the indexer caught up", Duration::from_secs(30), || async {
        let stream = jetstream.get_stream(aia_bus::STREAM).await.ok()?;
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(embedder::INDEXER).await.ok()?;
        let info = consumer.info().await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await;
    assert_eq!(
        vectors(&db).await[0],
        first[0],
        "A-1 was not embedded again"
    );
    stop.cancel();
    service.await.unwrap().unwrap();
}

fn quick(config: &mut EndpointConfig) {
    config.retry = RetryPolicy {
        attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
}

#[tokio::test]
async fn reembed_moves_a_tenant_to_another_model_resumably_and_search_never_has_a_gap() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::create().await;
    let keyring = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
    add_tenant(&db, &keyring, "acme").await;
    db.admin_client()
        .await
        .batch_execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id)
             select 'acme', 'T-' || n, 'Ticket ' || n, 'Description ' || n, 'Fixed ' || n, 'low', now(), gen_random_uuid()
               from generate_series(1, 40) n;
             insert into knowledge_articles (tenant_id, article_id, title, body) values
               ('acme', 'kb1', 'VPN runbook', 'Set the MTU'), ('acme', 'kb2', 'Printer runbook', 'Clean the rollers');",
        )
        .await
        .unwrap();
    // The deployment's "local" model and the tenant's new provider.
    let local_stand_in = EmbeddingsStandIn::new(LOCAL_MODEL, 32);
    let local_server = aia_standins::serve(local_stand_in.router()).await.unwrap();
    let provider = EmbeddingsStandIn::new("nomic-embed-text", 64);
    provider.require_key("sk-tenant");
    let provider_server = aia_standins::serve(provider.router()).await.unwrap();
    let mut local_config = EndpointConfig::new(format!("{}/v1", local_server.url()), LOCAL_MODEL);
    quick(&mut local_config);
    let local = Embedder::Endpoint(Endpoint::new(reqwest::Client::new(), local_config));
    let http = reqwest::Client::new();
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let mut client = pool.get().await.unwrap();
    let acme = TenantId::parse("acme").unwrap();

    let report = aiagents::reembed::run(&mut client, &keyring, &acme, Some(&local), &http, false)
        .await
        .unwrap();
    assert_eq!(
        (report.tickets, report.articles, report.promoted),
        (40, 2, false)
    );

    // The tenant moves to its own provider.
    let settings = TenantSettings {
        embeddings_next: Some(EmbeddingSettings::Endpoint(EmbeddingEndpointSettings {
            timeout_secs: 5,
            ..EmbeddingEndpointSettings::openai(
                "ollama",
                &format!("{}/v1", provider_server.url()),
                "nomic-embed-text",
            )
        })),
        ..TenantSettings::default()
    };
    tenants::update(
        &mut client,
        &keyring,
        &acme,
        &tenants::TenantUpdate {
            settings: Some(settings),
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
            embedding_keys: [("ollama".to_owned(), "sk-tenant".to_owned())].into(),
            ..Integrations::default()
        },
    )
    .await
    .unwrap();
    // The provider is down for the second batch: the run stops half-way …
    let down = || Behaviour::Status {
        code: 503,
        retry_after: None,
    };
    // (Three tries each: the default retry policy's.)
    provider.script([Behaviour::Slow(Duration::ZERO), down(), down(), down()]);
    let err = aiagents::reembed::run(&mut client, &keyring, &acme, Some(&local), &http, false)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("unavailable"), "{err:#}");
    // … the tenant still searches with its old model, whose vectors are all there …
    let tenant = tenants::get(&mut client, &keyring, &acme)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.settings.embeddings, EmbeddingSettings::Local);
    let (missing, total) = aia_store::embeddings::coverage(
        &mut client,
        &acme,
        aia_store::embeddings::Corpus::Tickets,
        LOCAL_MODEL,
    )
    .await
    .unwrap();
    assert_eq!((missing, total), (0, 40));
    // … and a second run does only what is left, then switches.
    let report = aiagents::reembed::run(&mut client, &keyring, &acme, Some(&local), &http, false)
        .await
        .unwrap();
    assert_eq!(report.model, "nomic-embed-text");
    assert_eq!(
        (report.tickets, report.articles),
        (8, 2),
        "32 tickets were stored by the first run"
    );
    assert!(report.promoted);
    assert_eq!(
        report.retired, 42,
        "the old model's vectors go once the new one is complete"
    );
    // The first run's 32, its three tries of the next 8, then the rest.
    assert_eq!(provider.batches(), [32, 8, 8, 8, 8, 2]);
    let tenant = tenants::get(&mut client, &keyring, &acme)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(tenant.settings.embeddings, EmbeddingSettings::Endpoint(ref e) if e.model == "nomic-embed-text")
    );
    assert_eq!(tenant.settings.embeddings_next, None);
}

fn received(subject: &str, description: &str) -> Event {
    Event::new_run(
        TenantId::parse("acme").unwrap(),
        TicketId::parse("SUP-9").unwrap(),
        Payload::TicketReceived(TicketReceived {
            source: ItsmKind::ServicedeskPlus,
            change: TicketChange::Created,
            subject: Some(subject.into()),
            description: description.into(),
            priority: Priority::High,
            requester: None,
            created_at: chrono::Utc::now(),
            delivery_id: "d-1".into(),
        }),
    )
}

#[tokio::test]
async fn the_context_stage_searches_by_meaning_and_says_so_when_it_falls_back_to_words() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::create().await;
    let spec = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&spec).unwrap();
    add_tenant(&db, &keyring, "acme").await;
    db.admin_client()
        .await
        .batch_execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id) values
               ('acme', 'A-1', 'VPN tunnel drops', 'GlobalProtect tunnel drops', 'MTU 1400', 'high', now(), gen_random_uuid()),
               ('acme', 'A-2', 'Printer jam', 'Tray jams', 'New roller', 'low', now(), gen_random_uuid());
             insert into knowledge_articles (tenant_id, article_id, title, body, url) values
               ('acme', 'kb-vpn', 'Tunnel drops runbook', 'Lower the MTU of the tunnel', 'https://kb.example/vpn'),
               ('acme', 'kb-printer', 'Printer rollers', 'Replace the pickup roller', null);",
        )
        .await
        .unwrap();
    let local_stand_in = EmbeddingsStandIn::new(LOCAL_MODEL, 32);
    let server = aia_standins::serve(local_stand_in.router()).await.unwrap();
    let mut config = EndpointConfig::new(format!("{}/v1", server.url()), LOCAL_MODEL);
    quick(&mut config);
    let local = Embedder::Endpoint(Endpoint::new(reqwest::Client::new(), config));
    let pool = aia_store::pool(&db.app_url, 4).unwrap();
    let acme = TenantId::parse("acme").unwrap();
    aiagents::reembed::run(
        &mut pool.get().await.unwrap(),
        &keyring,
        &acme,
        Some(&local),
        &reqwest::Client::new(),
        false,
    )
    .await
    .unwrap();
    let gatherer = context_gatherer::ContextGatherer {
        tenants: std::sync::Arc::new(aia_store::TenantCache::new(
            pool.clone(),
            std::sync::Arc::new(keyring),
            std::time::Duration::ZERO,
        )),
        db: pool,
        http: reqwest::Client::new(),
        local_embedder: Some(local),
        knowledge_cache: Default::default(),
        source_timeout: Duration::from_secs(5),
        budget: Duration::from_secs(10),
        monitoring_timeout: Duration::from_secs(5),
        max_similar_tickets: 5,
        related: context_gatherer::sources::related::Related::live(
            aia_store::open_tickets::DEFAULT_TENANTS,
        ),
        metrics: Default::default(),
        rewriter: Some(Default::default()),
    };
    let delivery = Delivery {
        attempt: 1,
        max_deliver: Some(5),
        stream_sequence: 1,
    };
    let gatherer = &gatherer;
    let delivery = &delivery;
    let gather = |event: Event| async move {
        let Handled::Publish(events) = aia_bus::dispatch(gatherer, &event, delivery.clone())
            .await
            .unwrap()
        else {
            panic!("no event")
        };
        let Payload::ContextGathered(context) = events[0].payload.clone() else {
            panic!("not context.gathered")
        };
        context
    };

    let context = gather(received("VPN tunnel drops", "The tunnel drops")).await;
    let report = context
        .sources
        .iter()
        .find(|r| r.source == ContextSource::SimilarTickets)
        .unwrap();
    assert_eq!(
        (report.status, report.detail.as_deref()),
        (SourceStatus::Ok, None)
    );
    assert_eq!(context.similar_tickets[0].ticket_id.as_str(), "A-1");
    assert_eq!(
        context.similar_tickets[0].matched_by,
        Some(aia_events::MatchedBy::Both),
        "close in meaning and sharing the words VPN, tunnel, drops"
    );
    assert_eq!(
        context.knowledge_articles[0].url.as_deref(),
        Some("https://kb.example/vpn")
    );
    let kb_report = context
        .sources
        .iter()
        .find(|r| r.source == ContextSource::KnowledgeBase)
        .unwrap();
    assert_eq!(kb_report.detail, None, "articles searched by meaning too");
    assert_eq!(
        local_stand_in.batches(),
        [2, 2, 1],
        "tickets and articles once, then the query once for both searches"
    );

    local_stand_in.script(std::iter::repeat_n(
        Behaviour::Status {
            code: 503,
            retry_after: None,
        },
        2,
    ));
    let context = gather(received("VPN tunnel drops", "The tunnel drops")).await;
    let report = context
        .sources
        .iter()
        .find(|r| r.source == ContextSource::SimilarTickets)
        .unwrap();
    assert_eq!(report.status, SourceStatus::Ok);
    let detail = report.detail.as_deref().unwrap_or_default();
    assert!(
        detail.starts_with("by words only: embeddings provider unavailable"),
        "{detail}"
    );
    assert_eq!(context.similar_tickets[0].ticket_id.as_str(), "A-1");
    assert!(
        context.similar_tickets[0].score < 0.5,
        "a match by words alone is never likely"
    );
    assert_eq!(
        context.similar_tickets[0].matched_by,
        Some(aia_events::MatchedBy::Words)
    );

    // No vectors of the model at all (history imported while the embedder
    // was away, a model just switched to): found by words, saying why,
    // not "nothing similar".
    db.admin_client()
        .await
        .batch_execute("delete from ticket_embeddings; delete from article_embeddings;")
        .await
        .unwrap();
    let context = gather(received("VPN tunnel drops", "The tunnel drops")).await;
    for source in [ContextSource::SimilarTickets, ContextSource::KnowledgeBase] {
        let report = context.sources.iter().find(|r| r.source == source).unwrap();
        assert_eq!(report.status, SourceStatus::Ok, "{source:?}: {report:?}");
        let detail = report.detail.as_deref().unwrap_or_default();
        assert!(
            detail.starts_with("by words only: no vectors of"),
            "{source:?}: {detail}"
        );
    }
    assert_eq!(context.similar_tickets[0].ticket_id.as_str(), "A-1");
    assert_eq!(
        context.knowledge_articles[0].url.as_deref(),
        Some("https://kb.example/vpn")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_finds_a_technicians_ticket_for_a_users_words_on_the_real_model() {
    let stack = Stack::start_with_model("sdp-token", None, Some(model_dir())).await;
    let secret = stack.add_tenant("acme", "sdp-token").await;
    let (_client, jetstream) = aia_bus::connect(&stack.nats.url(), "test").await.unwrap();
    let corpus = [
        resolved(
            "acme",
            "SUP-100",
            "Outlook Need Password loop",
            "WAM prompt never renders in Outlook; credential prompt loops.",
            "Re-registered the AAD broker plugin and cleared the token cache.",
        ),
        resolved(
            "acme",
            "SUP-101",
            "Spooler crash on PRN-2F",
            "Print spooler service terminates on the 2nd floor print server.",
            "Removed the corrupt HP UPD driver and restarted the spooler.",
        ),
        resolved(
            "acme",
            "SUP-102",
            "GlobalProtect MTU",
            "GP tunnel drops hourly for remote staff.",
            "Set MTU 1400 on the gateway interface.",
        ),
    ];
    dataset::publish_resolved(&jetstream, &corpus, &Default::default())
        .await
        .unwrap();
    let admin = stack.db.admin_client().await;
    eventually("the corpus embedded", Duration::from_secs(60), || async {
        let n: i64 = admin
            .query_one("select count(*) from ticket_embeddings", &[])
            .await
            .ok()?
            .get(0);
        (n == 3).then_some(())
    })
    .await;
    let (status, _) = stack
        .send(&secret, serde_json::json!({
            "tenant_id": "acme", "ticket_id": "SUP-4712", "priority": "high",
            "subject": "mail keeps wanting me to sign in",
            "description": "The yellow bar in my mail says sign in but when I click it nothing opens."
        }))
        .await;
    assert_eq!(status, 202);
    let context: serde_json::Value = eventually("the gathered context", Duration::from_secs(60), || async {
        admin
            .query_opt("select context from enhancement_history where ticket_id = 'SUP-4712' and context is not null", &[])
            .await
            .ok()?
            .map(|row| row.get(0))
    })
    .await;
    let similar = context["similar_tickets"].as_array().unwrap();
    assert_eq!(similar[0]["ticket_id"], "SUP-100", "{context:#}");
    let report = context["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"] == "similar_tickets")
        .unwrap();
    assert!(report["detail"].is_null(), "searched by meaning: {report}");
    stack.stop().await;
}

/// One ticket the provider refuses (past its input limit, say) stops no
/// other from being embedded: the batch is asked again one by one and the
/// refused one is passed over. Texts sent to an endpoint are cut to what
/// any provider takes.
#[tokio::test]
async fn reembed_passes_over_a_text_the_provider_refuses_and_embeds_the_rest() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::create().await;
    let keyring = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
    add_tenant(&db, &keyring, "acme").await;
    db.admin_client()
        .await
        .batch_execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id)
             select 'acme', 'T-' || n, 'Ticket ' || n, repeat('log line ', 5000), 'Fixed ' || n, 'low', now(), gen_random_uuid()
               from generate_series(1, 3) n;",
        )
        .await
        .unwrap();
    let stand_in = EmbeddingsStandIn::new(LOCAL_MODEL, 32);
    // The batch of three refused; then each alone: the second refused.
    let refused = || Behaviour::Status {
        code: 400,
        retry_after: None,
    };
    stand_in.script([refused(), Behaviour::Normal, refused()]);
    let server = aia_standins::serve(stand_in.router()).await.unwrap();
    let mut config = EndpointConfig::new(format!("{}/v1", server.url()), LOCAL_MODEL);
    quick(&mut config);
    let local = Embedder::Endpoint(Endpoint::new(reqwest::Client::new(), config));
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let mut client = pool.get().await.unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let refused = aiagents::reembed::run(
        &mut client,
        &keyring,
        &acme,
        Some(&local),
        &reqwest::Client::new(),
        false,
    )
    .await
    .expect_err("the move is not completed while one is refused");
    assert!(
        refused.to_string().contains("1 items the provider refused"),
        "{refused}"
    );
    let stored: i64 = db
        .admin_client()
        .await
        .query_one("select count(*) from ticket_embeddings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 2, "the other two are embedded");

    assert!(
        stand_in.longest_input() <= aia_embed::MAX_INPUT_CHARS,
        "texts are cut to what any provider takes: {}",
        stand_in.longest_input()
    );
}
