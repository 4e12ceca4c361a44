//! The llm-enhancer against a local OpenAI-compatible server that answers
//! normally, slowly, with 429 and Retry-After, with 5xx, malformed JSON, an
//! empty choice list or an invented citation; fallback to a second (Azure)
//! provider; redaction; budgets.

use std::time::{Duration, Instant};

use aia_bus::{Delivery, Handled};
use aia_events::{EnhancementGenerated, Event, ItsmKind, Payload, TenantId, examples};
use aia_llm::chain::RetryPolicy;
use aia_standins::llm::{Behaviour, LlmStandIn};
use aia_store::{Integrations, Keyring, LlmProviderSettings, TenantSettings, tenants};
use aia_testkit::TestDatabase;
use llm_enhancer::LlmEnhancer;

struct Setup {
    registry: aia_telemetry::metrics::SharedRegistry,
    db: TestDatabase,
    llm: LlmStandIn,
    enhancer: LlmEnhancer,
    _server: aia_standins::Running,
}

async fn setup(budget_usd: Option<f64>) -> Setup {
    setup_with(budget_usd, None).await
}

/// `primary_url` replaces the primary provider's base URL.
async fn setup_with(budget_usd: Option<f64>, primary_url: Option<&str>) -> Setup {
    setup_timed(budget_usd, primary_url, 1).await
}

/// … and the providers wait `timeout_secs` for an answer.
async fn setup_timed(
    budget_usd: Option<f64>,
    primary_url: Option<&str>,
    timeout_secs: u32,
) -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::create().await;
    let llm = LlmStandIn::new();
    let server = aia_standins::serve(llm.router()).await.unwrap();
    let keyring = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
    aiagents::ops::add_tenant(
        &db.app_url,
        &keyring,
        "acme-msp",
        "Acme",
        ItsmKind::ServicedeskPlus,
        "https://sdp.example.com",
        r#"{"authtoken":"t"}"#,
    )
    .await
    .unwrap();
    let tenant = TenantId::parse("acme-msp").unwrap();
    let settings = TenantSettings {
        llm_providers: vec![
            LlmProviderSettings {
                name: "primary".into(),
                kind: "openai".into(),
                base_url: primary_url.map_or_else(|| format!("{}/v1", server.url()), str::to_owned),
                model: "gpt-4o-mini".into(),
                api_version: None,
                timeout_secs,
            },
            LlmProviderSettings {
                name: "azure-backup".into(),
                kind: "azure".into(),
                base_url: format!("{}/openai/deployments/gpt4o", server.url()),
                model: "gpt-4o".into(),
                api_version: Some("2024-10-21".into()),
                timeout_secs,
            },
        ],
        llm_budget_usd: budget_usd,
        ..TenantSettings::default()
    };
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let mut client = pool.get().await.unwrap();
    tenants::update(
        &mut client,
        &keyring,
        &tenant,
        &tenants::TenantUpdate {
            settings: Some(settings),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut keys = std::collections::BTreeMap::new();
    keys.insert("primary".to_owned(), "sk-primary-key-123456".to_owned());
    keys.insert("azure-backup".to_owned(), "azure-key-abcdef".to_owned());
    tenants::set_integrations(
        &mut client,
        &keyring,
        &tenant,
        &Integrations {
            llm_keys: keys,
            ..Integrations::default()
        },
    )
    .await
    .unwrap();
    let registry = aia_telemetry::metrics::registry();
    let enhancer = LlmEnhancer {
        tenants: std::sync::Arc::new(aia_store::TenantCache::new(
            pool.clone(),
            std::sync::Arc::new(keyring),
            std::time::Duration::ZERO,
        )),
        db: pool,
        http: reqwest::Client::new(),
        chain: Default::default(),
        default_provider: None,
        prices: Default::default(),
        retry: RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        metrics: llm_enhancer::metrics::LlmMetrics::register(&registry),
        dry_run: false,
    };
    Setup {
        registry,
        db,
        llm,
        enhancer,
        _server: server,
    }
}

fn context_event() -> Event {
    let mut event = examples::all()
        .into_iter()
        .find(|event| matches!(&event.payload, Payload::ContextGathered(c) if !c.similar_tickets.is_empty()))
        .unwrap();
    if let Payload::ContextGathered(context) = &mut event.payload {
        context.ticket.description = "Outlook keeps asking for my password. Reach me at jane.doe@acme.example or +49 30 1234 5678.".into();
    }
    event
}

async fn enhance(setup: &Setup) -> EnhancementGenerated {
    enhance_all(setup).await.0
}

/// The note event and any budget alert published with it.
async fn enhance_all(setup: &Setup) -> (EnhancementGenerated, Vec<Event>) {
    enhance_event(setup, &context_event()).await
}

/// The same for `event`.
async fn enhance_event(setup: &Setup, event: &Event) -> (EnhancementGenerated, Vec<Event>) {
    let delivery = Delivery {
        attempt: 1,
        max_deliver: Some(6),
        stream_sequence: 1,
    };
    match aia_bus::dispatch(&setup.enhancer, event, delivery)
        .await
        .unwrap()
    {
        Handled::Publish(events) => match &events[0].payload {
            Payload::EnhancementGenerated(generated) => (generated.clone(), events[1..].to_vec()),
            other => panic!("expected enhancement.generated, got {other:?}"),
        },
        Handled::Nothing => panic!("expected an event"),
    }
}

#[tokio::test]
async fn a_normal_answer_is_redacted_going_in_grounded_coming_out_and_costed() {
    let setup = setup(None).await;
    setup.llm.script([Behaviour::Reply(
        "## Similar Tickets\nSUP-977 was fixed by re-registering the broker; SUP-4242 too.\n\n## Relevant Documentation\nhttps://kb.example.com/a/17\n\n## System Information\nPC-0231\n\n## Recommended Next Steps\n1. Re-register the broker.".into(),
    )]);
    let generated = enhance(&setup).await;
    assert!(!generated.degraded, "{:?}", generated.degraded_reason);
    assert_eq!(
        (
            generated.provider.as_deref(),
            generated.model.as_deref(),
            generated.attempts
        ),
        (Some("primary"), Some("gpt-4o-mini"), 1)
    );
    assert!(generated.tokens_in > 0 && generated.cost_usd > 0.0);
    assert!(generated.note_markdown.contains("SUP-977 was fixed"));
    assert!(
        generated.note_markdown.contains("SUP-4242 (unverified)"),
        "{}",
        generated.note_markdown
    );
    let prompt = setup.llm.requests()[0].to_string();
    assert!(
        !prompt.contains("jane.doe@acme.example") && !prompt.contains("1234 5678"),
        "unredacted: {prompt}"
    );
    assert!(prompt.contains("[email]"));
    let (headers, _) = &setup.llm.request_meta()[0];
    assert_eq!(headers["authorization"], "Bearer sk-primary-key-123456");
}

#[tokio::test]
async fn rate_limits_are_waited_out_as_the_provider_asks() {
    let setup = setup(None).await;
    setup.llm.script([Behaviour::Status {
        code: 429,
        retry_after: Some(1),
    }]);
    let started = Instant::now();
    let generated = enhance(&setup).await;
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After was not honoured"
    );
    assert_eq!((generated.attempts, generated.degraded), (2, false));
}

#[tokio::test]
async fn server_errors_slow_answers_and_broken_bodies_are_retried_then_the_fallback_answers() {
    let setup = setup(None).await;
    setup.llm.script([
        Behaviour::Status {
            code: 500,
            retry_after: None,
        },
        Behaviour::Malformed,
        Behaviour::Slow(Duration::from_secs(3)),
        Behaviour::EmptyChoices,
    ]);
    let generated = enhance(&setup).await;
    // Three failures exhaust the primary; the Azure backup fails once (empty
    // choices) and then answers.
    assert_eq!(
        (
            generated.provider.as_deref(),
            generated.attempts,
            generated.degraded
        ),
        (Some("azure-backup"), 5, false),
        "{:?}",
        generated.degraded_reason
    );
    let (headers, query) = setup.llm.request_meta().last().cloned().unwrap();
    assert_eq!(headers["api-key"], "azure-key-abcdef");
    assert!(query.unwrap().contains("api-version=2024-10-21"));
}

/// A reasoning model that thinks its whole allowance away answers nothing
/// and bills it: not asked again with the same allowance (the next
/// provider is), the answer's cost includes what it billed, and it opens
/// no circuit for the other tenants.
#[tokio::test]
async fn an_answer_billed_with_no_note_is_paid_for_not_repeated_and_opens_no_circuit() {
    let setup = setup(None).await;
    setup.llm.script([Behaviour::Thought {
        completion_tokens: 4096,
    }]);
    let generated = enhance(&setup).await;
    assert_eq!(
        (
            generated.provider.as_deref(),
            generated.attempts,
            generated.degraded
        ),
        (Some("azure-backup"), 2, false),
        "{:?}",
        generated.degraded_reason
    );
    let thought = aia_llm::cost::PriceTable::default().cost("gpt-4o-mini", 1000, 4096);
    assert!(
        generated.cost_usd >= thought,
        "{} must include the {thought} billed for the empty answer",
        generated.cost_usd
    );
    // Six in a row (more than the circuit's threshold of failures) leave
    // the primary open to the next ticket.
    setup.llm.script((0..6).map(|_| Behaviour::Thought {
        completion_tokens: 100,
    }));
    for _ in 0..3 {
        enhance(&setup).await;
    }
    setup.llm.script([]);
    let generated = enhance(&setup).await;
    assert_eq!(
        generated.provider.as_deref(),
        Some("primary"),
        "{generated:?}"
    );
}

/// A call we stop waiting for goes on at the provider, which bills the
/// answer: it is charged at its estimate (the prompt, the whole completion
/// allowance), so slow calls do not pass through a budget for free.
#[tokio::test]
async fn a_call_that_timed_out_is_charged_at_its_estimate() {
    let setup = setup(None).await;
    let answered = enhance(&setup).await;
    // The primary waits 1 s; this answer comes after 3.
    setup.llm.script([Behaviour::Slow(Duration::from_secs(3))]);
    let after_a_timeout = enhance(&setup).await;
    assert_eq!(
        (
            after_a_timeout.provider.as_deref(),
            after_a_timeout.attempts
        ),
        (Some("primary"), 2),
        "{:?}",
        after_a_timeout.degraded_reason
    );
    let allowance = aia_llm::cost::PriceTable::default().cost("gpt-4o-mini", 0, 200);
    assert!(
        after_a_timeout.cost_usd >= answered.cost_usd + allowance,
        "{} charged after a timeout, {} for the answer alone",
        after_a_timeout.cost_usd,
        answered.cost_usd
    );
}

#[tokio::test]
async fn when_every_provider_fails_the_ticket_gets_the_labelled_raw_context() {
    let setup = setup(None).await;
    setup.llm.script([
        Behaviour::Status {
            code: 400,
            retry_after: None,
        },
        Behaviour::Status {
            code: 503,
            retry_after: None,
        },
        Behaviour::Status {
            code: 503,
            retry_after: None,
        },
        Behaviour::Status {
            code: 503,
            retry_after: None,
        },
    ]);
    let generated = enhance(&setup).await;
    assert!(generated.degraded);
    assert!(generated.note_markdown.contains("## Context Gathered"));
    assert!(
        generated
            .note_markdown
            .contains("_Note: AI synthesis unavailable, showing raw context._")
    );
    let reason = generated.degraded_reason.unwrap();
    assert!(
        reason.contains("primary answered HTTP 400")
            && reason.contains("azure-backup answered HTTP 503"),
        "{reason}"
    );
    assert_eq!(
        generated.attempts, 4,
        "no retry after a 400, three tries on 503"
    );
}

#[tokio::test]
async fn a_provider_that_keeps_failing_is_skipped_by_its_circuit_breaker() {
    // The primary refuses connections; the backup answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let setup = setup_with(None, Some(&dead_url)).await;
    // Three failed tries of the primary, then the backup; in the second run
    // the fifth consecutive failure opens the circuit after two tries; the
    // third run goes straight to the backup.
    for expected_attempts in [4, 3] {
        let generated = enhance(&setup).await;
        assert_eq!(
            (generated.provider.as_deref(), generated.attempts),
            (Some("azure-backup"), expected_attempts)
        );
    }
    let generated = enhance(&setup).await;
    assert_eq!(
        (generated.provider.as_deref(), generated.attempts),
        (Some("azure-backup"), 1),
        "the open circuit must skip the primary"
    );
}

#[tokio::test]
async fn a_handler_needs_one_database_connection_at_a_time() {
    // A cold tenant cache reads the tenant through the pool; a handler that
    // held a connection while it did would wait forever on a pool of one
    // (and, with 32 messages in flight on a pool of 16, on a real one).
    let mut setup = setup(Some(100.0)).await;
    let pool = aia_store::pool(&setup.db.app_url, 1).unwrap();
    let keyring = setup.enhancer.tenants.keyring().clone();
    setup.enhancer.tenants = std::sync::Arc::new(aia_store::TenantCache::new(
        pool.clone(),
        keyring,
        Duration::from_secs(60),
    ));
    setup.enhancer.db = pool;
    let generated = tokio::time::timeout(Duration::from_secs(20), enhance(&setup))
        .await
        .expect("the handler waited on a connection it held itself");
    assert_eq!(generated.provider.as_deref(), Some("primary"));
}

#[tokio::test]
async fn over_the_budget_no_model_is_asked_and_the_run_is_marked() {
    let setup = setup(Some(5.0)).await;
    setup
        .db
        .admin_client()
        .await
        .batch_execute("insert into tenant_daily_stats (tenant_id, day, cost_usd) values ('acme-msp', current_date, 6.0)")
        .await
        .unwrap();
    let generated = enhance(&setup).await;
    assert!(generated.budget_exceeded && generated.degraded);
    assert!(generated.note_markdown.contains("## Context Gathered"));
    assert!(
        setup.llm.requests().is_empty(),
        "an over-budget tenant must not reach the provider"
    );
}

#[tokio::test]
async fn reaching_the_alert_share_of_the_budget_publishes_one_alert_per_period() {
    let setup = setup(Some(10.0)).await;
    setup
        .db
        .admin_client()
        .await
        .batch_execute("insert into tenant_daily_stats (tenant_id, day, cost_usd) values ('acme-msp', current_date, 8.5)")
        .await
        .unwrap();
    let (generated, alerts) = enhance_all(&setup).await;
    assert!(!generated.budget_exceeded, "80 % warns, it does not block");
    assert_eq!(alerts.len(), 1);
    let Payload::BudgetThresholdReached(alert) = &alerts[0].payload else {
        panic!("expected the alert")
    };
    assert_eq!(
        (alert.spent_usd, alert.budget_usd, alert.alert_ratio),
        (8.5, 10.0, 0.8)
    );
    // Another run past the share: the period is alerted already.
    let mut later = context_event();
    later.correlation_id = uuid::Uuid::now_v7();
    later.event_id = uuid::Uuid::now_v7();
    let (_, again) = enhance_event(&setup, &later).await;
    assert!(again.is_empty(), "one alert per period");
    // The alerting run redelivered (its publish failed, or it crashed after
    // recording the alert): it publishes its alert again, the same one.
    let (_, redelivered) = enhance_all(&setup).await;
    assert_eq!(redelivered.len(), 1, "the alert is the run's output");
    let Payload::BudgetThresholdReached(again) = &redelivered[0].payload else {
        panic!("expected the alert again")
    };
    assert_eq!(again.period_start, alert.period_start);
    let metrics = aia_telemetry::metrics::encode(&setup.registry);
    assert!(
        metrics.contains(r#"llm_notes_total{outcome="model"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"llm_input_tokens_total{tenant_id="acme-msp",model="gpt-4o-mini"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_inactive_tenants_ticket_ends_failed_without_calling_a_model() {
    let setup = setup(None).await;
    let pool = aia_store::pool(&setup.db.app_url, 1).unwrap();
    tenants::update(
        &mut pool.get().await.unwrap(),
        setup.enhancer.tenants.keyring(),
        &TenantId::parse("acme-msp").unwrap(),
        &tenants::TenantUpdate {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let delivery = Delivery {
        attempt: 1,
        max_deliver: Some(6),
        stream_sequence: 1,
    };
    let Handled::Publish(events) = aia_bus::dispatch(&setup.enhancer, &context_event(), delivery)
        .await
        .unwrap()
    else {
        panic!("expected the run to end with an event");
    };
    match &events[..] {
        [event] => match &event.payload {
            Payload::EnhancementFailed(failed) => {
                assert_eq!(failed.reason, aia_bus::handler::TENANT_INACTIVE);
                assert_eq!(failed.stage, aia_events::Stage::LlmEnhancer);
            }
            other => panic!("expected enhancement.failed, got {other:?}"),
        },
        other => panic!("expected one event, got {other:?}"),
    }
    assert!(
        setup.llm.requests().is_empty(),
        "an inactive tenant's ticket spent a model call"
    );
}

/// A burst of a hundred tickets at once against a budget that holds a few
/// calls: each call claims its estimated cost on the tenant's ledger before
/// it is made, so exactly as many are made as the budget holds — where
/// reading the spend after the fact let all hundred through.
#[tokio::test]
async fn a_hundred_tickets_at_once_make_only_the_calls_the_budget_holds() {
    const BUDGET_USD: f64 = 0.05;
    let setup = setup_timed(Some(BUDGET_USD), None, 10).await;
    // Slow answers: every claim is made long before the first call settles.
    setup
        .llm
        .script((0..100).map(|_| Behaviour::Slow(Duration::from_millis(2500))));
    let tickets: Vec<Event> = (0..100)
        .map(|_| {
            let mut event = context_event();
            event.correlation_id = uuid::Uuid::now_v7();
            event.event_id = uuid::Uuid::now_v7();
            event
        })
        .collect();
    let delivery = || Delivery {
        attempt: 1,
        max_deliver: Some(6),
        stream_sequence: 1,
    };
    let handled = futures::future::join_all(
        tickets
            .iter()
            .map(|event| aia_bus::dispatch(&setup.enhancer, event, delivery())),
    )
    .await;
    let mut exceeded = 0;
    for handled in handled {
        let Handled::Publish(events) = handled.unwrap() else {
            panic!("expected an event")
        };
        let Payload::EnhancementGenerated(generated) = &events[0].payload else {
            panic!("expected enhancement.generated")
        };
        exceeded += usize::from(generated.budget_exceeded);
    }
    let calls = setup.llm.requests().len();
    let admin = setup.db.admin_client().await;
    let claims = admin
        .query(
            "select reserved_usd, cost_usd from llm_budget_claims where tenant_id = 'acme-msp'",
            &[],
        )
        .await
        .unwrap();
    // Every ticket is the same prompt, so every claim reserved the same.
    let reserved: f64 = claims[0].get(0);
    assert!(claims.iter().all(|row| row.get::<_, f64>(0) == reserved));
    // Calls are made up to the grace share of the budget.
    let grace = TenantSettings::default().llm_budget_grace_ratio;
    let fit = (BUDGET_USD * grace / reserved).floor() as usize;
    assert!(
        (1..100).contains(&fit),
        "the test's budget holds {fit} calls"
    );
    assert_eq!(calls, fit, "calls made against a budget holding {fit}");
    assert_eq!(claims.len(), fit, "one claim per call made");
    assert_eq!(exceeded, 100 - fit, "the others get the raw context");
    // Each settled at what it cost; the period holds exactly that.
    let settled: f64 = claims.iter().map(|row| row.get::<_, f64>(1)).sum();
    let spent: f64 = admin
        .query_one(
            "select spent_usd from llm_budget_periods where tenant_id = 'acme-msp'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        (spent - settled).abs() < 1e-12 && settled > 0.0,
        "{spent} vs {settled}"
    );
}

/// A ticket delivered again after it claimed its call and before it
/// settled (a crash in between) finds its open claim: nothing is reserved
/// twice, and the period holds what the call cost. Delivered once more
/// after settling, its second call is a second cost, counted as such.
#[tokio::test]
async fn a_redelivered_ticket_does_not_reserve_its_call_twice() {
    let setup = setup(Some(5.0)).await;
    let event = context_event();
    let delivery = || Delivery {
        attempt: 2,
        max_deliver: Some(6),
        stream_sequence: 1,
    };
    // The first delivery claimed, then its process died.
    let budget = aia_llm::budget::Budget::of(&TenantSettings {
        llm_budget_usd: Some(5.0),
        ..TenantSettings::default()
    })
    .unwrap();
    let pool = aia_store::pool(&setup.db.app_url, 1).unwrap();
    let tenant = TenantId::parse("acme-msp").unwrap();
    let claim_id = format!("{}:note", event.correlation_id);
    aia_llm::budget::claim(
        &mut pool.get().await.unwrap(),
        &tenant,
        &claim_id,
        budget,
        0.5,
    )
    .await
    .unwrap();
    let ledger = || async {
        let row = setup
            .db
            .admin_client()
            .await
            .query_one(
                "select count(*), sum(cost_usd)::float8,
                        (select spent_usd from llm_budget_periods where tenant_id = 'acme-msp')
                   from llm_budget_claims where tenant_id = 'acme-msp'",
                &[],
            )
            .await
            .unwrap();
        let ledger: (i64, Option<f64>, f64) = (row.get(0), row.get(1), row.get(2));
        ledger
    };
    assert_eq!(
        ledger().await,
        (1, None, 0.5),
        "the open claim reserved 0.5"
    );

    aia_bus::dispatch(&setup.enhancer, &event, delivery())
        .await
        .unwrap();
    let (claims, cost, spent) = ledger().await;
    let cost = cost.expect("the claim is settled");
    assert_eq!(claims, 1);
    assert!(cost > 0.0);
    assert!(
        (spent - cost).abs() < 1e-12,
        "{spent} held against a call of {cost}"
    );

    aia_bus::dispatch(&setup.enhancer, &event, delivery())
        .await
        .unwrap();
    let (claims, again, spent) = ledger().await;
    assert_eq!(claims, 1);
    assert!(
        (spent - (cost + again.unwrap())).abs() < 1e-12,
        "two calls made, {spent} held"
    );
    assert_eq!(setup.llm.requests().len(), 2);

    // Two deliveries that both found the claim open both called the model:
    // the later settle books its own cost beside the first's.
    aia_llm::budget::settle(&mut pool.get().await.unwrap(), &tenant, &claim_id, 0.25)
        .await
        .unwrap();
    let (_, _, after) = ledger().await;
    assert!((after - (spent + 0.25)).abs() < 1e-12, "{after}");
}

/// An operator's dry run calls the model for real: the call is claimed and
/// settled on the tenant's budget like any (it was spend nowhere), each dry
/// run under its own claim, and no alert is published.
#[tokio::test]
async fn a_dry_runs_call_is_spend_on_the_budget() {
    let mut setup = setup(Some(10.0)).await;
    setup.enhancer.dry_run = true;
    let (generated, alerts) = enhance_all(&setup).await;
    let (again, _) = enhance_all(&setup).await;
    assert!(alerts.is_empty());
    let rows = setup
        .db
        .admin_client()
        .await
        .query(
            "select claim_id, cost_usd from llm_budget_claims where claim_id like '%:dry-run:%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "one claim per dry run");
    let settled: f64 = rows.iter().map(|row| row.get::<_, f64>(1)).sum();
    assert!(
        (settled - generated.cost_usd - again.cost_usd).abs() < 1e-12,
        "{settled}"
    );
    assert!(generated.cost_usd > 0.0);
}

/// Every call of a tenant claims on its period's one row: a holder that
/// stalls with the row locked (a connection lost mid-transaction, a lock
/// taken by hand) costs the next claim an error within the ledger's bound,
/// not a wait without end, and the connection it used claims again once
/// the row is free.
#[tokio::test]
async fn a_claim_behind_a_stalled_holder_of_the_period_ends_within_its_bound() {
    let setup = setup(Some(5.0)).await;
    let budget = aia_llm::budget::Budget::of(&TenantSettings {
        llm_budget_usd: Some(5.0),
        ..TenantSettings::default()
    })
    .unwrap();
    let pool = aia_store::pool(&setup.db.app_url, 1).unwrap();
    let tenant = TenantId::parse("acme-msp").unwrap();
    let claim = |claim_id: &'static str| {
        let pool = pool.clone();
        let tenant = tenant.clone();
        async move {
            let mut client = pool.get().await.unwrap();
            aia_llm::budget::claim(&mut client, &tenant, claim_id, budget, 0.1).await
        }
    };
    claim("run-1:note").await.unwrap();

    let mut holder = setup.db.admin_client().await;
    let stalled = holder.transaction().await.unwrap();
    stalled
        .execute(
            "select 1 from llm_budget_periods where tenant_id = 'acme-msp' for update",
            &[],
        )
        .await
        .unwrap();
    let started = Instant::now();
    let waited = tokio::time::timeout(Duration::from_secs(30), claim("run-2:note"))
        .await
        .expect("the claim ends on its own");
    assert!(waited.is_err(), "claimed past a locked period: {waited:?}");
    assert!(started.elapsed() >= Duration::from_secs(4));

    stalled.rollback().await.unwrap();
    let claimed = claim("run-2:note").await.unwrap();
    assert!(!claimed.decision.exceeded);
}
