//! Importing history and reference data from files, as an operator does,
//! and scoring retrieval on a data set.

use std::process::{Command, Output};
use std::time::Duration;

use aia_testkit::{NatsServer, TestDatabase, eventually};

fn aiagents(db: &TestDatabase, nats: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aiagents"))
        .args(args)
        .env("AI_AGENTS_NATS_URL", nats)
        .env("AI_AGENTS_DATABASE_URL", &db.app_url)
        .env("AI_AGENTS_OWNER_DATABASE_URL", &db.admin_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run aiagents")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_articles_and_inventory_import_idempotently_and_bad_files_change_nothing() {
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let projector = tokio::spawn(history_projector::run(
        history_projector::Config::new(nats.url(), db.app_url.clone()),
        shutdown.clone().cancelled_owned(),
    ));
    // acme's customers all write German (its tickets are full of English
    // product words); globex keeps the default, detection.
    let keyring = aia_store::Keyring::parse(&aia_store::Keyring::generate_spec("k1")).unwrap();
    for tenant in ["acme", "globex"] {
        aiagents::ops::add_tenant(
            &db.app_url,
            &keyring,
            tenant,
            tenant,
            aia_events::ItsmKind::ServicedeskPlus,
            "http://127.0.0.1:9",
            r#"{"authtoken":"x"}"#,
        )
        .await
        .unwrap();
    }
    db.merge_tenant_settings("acme", serde_json::json!({"languages": {"fixed": "de"}}))
        .await;
    let admin = db.admin_client().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("tickets.csv");
    std::fs::write(
        &csv,
        "ticket_id,subject,description,resolution,resolved_at,priority,tags\n\
         SUP-1,VPN drops,\"VPN drops, hourly\",Raised the SA lifetime,2026-10-01T10:00:00Z,High,vpn;network\n\
         SUP-2,Printer offline,Printer shows offline,DHCP reservation,2026-10-02T10:00:00+02:00,low,printer\n",
    )
    .unwrap();
    let import_csv = |file: std::path::PathBuf| {
        ok(&aiagents(
            &db,
            &nats.url(),
            &[
                "import",
                "tickets",
                "--tenant",
                "acme",
                "--file",
                file.to_str().unwrap(),
            ],
        ))
    };
    for _ in 0..2 {
        // The second, at once: the stream's duplicate window or the
        // history (if the projector was quicker) keeps it from doubling.
        let out = import_csv(csv.clone());
        assert!(
            out.contains("2 resolved tickets published")
                || out.contains("0 resolved tickets published for acme, 2 already"),
            "{out}"
        );
    }
    // A tenant that does not exist (a typo) gets nothing published.
    let refused = aiagents(
        &db,
        &nats.url(),
        &[
            "import",
            "tickets",
            "--tenant",
            "acmee",
            "--file",
            csv.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("tenant acmee does not exist"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    eventually(
        "the imported tickets in ticket_history",
        Duration::from_secs(20),
        || async {
            let n: i64 = admin
                .query_one("select count(*) from ticket_history", &[])
                .await
                .ok()?
                .get(0);
            (n == 2).then_some(())
        },
    )
    .await;
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let mut stream = jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        2,
        "importing twice stored the tickets twice"
    );
    // Long after the stream's duplicate window, the history still keeps an
    // unchanged file from being published again; a changed ticket is.
    let out = import_csv(csv.clone());
    assert!(
        out.contains("0 resolved tickets published for acme, 2 already in its history"),
        "{out}"
    );
    assert_eq!(stream.info().await.unwrap().state.messages, 2);
    let changed = dir.path().join("changed.csv");
    std::fs::write(
        &changed,
        std::fs::read_to_string(&csv)
            .unwrap()
            .replace("DHCP reservation", "DHCP reservation renewed"),
    )
    .unwrap();
    let out = import_csv(changed);
    assert!(
        out.contains("1 resolved tickets published for acme, 1 already"),
        "{out}"
    );
    assert_eq!(stream.info().await.unwrap().state.messages, 3);
    let tags: Vec<String> = admin
        .query_one(
            "select tags from ticket_history where ticket_id = 'SUP-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tags, ["vpn", "network"]);
    // Stored in acme's fixed language, not the English its words look like.
    let languages: Vec<String> = admin
        .query(
            "select language from ticket_history where tenant_id = 'acme' order by ticket_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(languages, ["de", "de"]);
    // A changed language setting is a reason to import them again.
    db.merge_tenant_settings("acme", serde_json::json!({"languages": {"fixed": "fr"}}))
        .await;
    let out = import_csv(csv.clone());
    assert!(
        out.contains("2 resolved tickets published for acme, 0 already"),
        "{out}"
    );
    db.merge_tenant_settings("acme", serde_json::json!({"languages": {"fixed": "de"}}))
        .await;

    // The demo data set imports too (JSON with resolved[]), into another tenant.
    ok(&aiagents(
        &db,
        &nats.url(),
        &[
            "import",
            "tickets",
            "--tenant",
            "globex",
            "--file",
            "../../demo/tickets.json",
        ],
    ));

    let articles = dir.path().join("articles.json");
    std::fs::write(&articles, r#"[{"article_id": "kb-1", "title": "VPN lifetimes", "body": "Match the SA lifetime.", "url": "https://wiki/kb-1", "tags": "vpn"}]"#).unwrap();
    for _ in 0..2 {
        ok(&aiagents(
            &db,
            &nats.url(),
            &[
                "import",
                "articles",
                "--tenant",
                "acme",
                "--file",
                articles.to_str().unwrap(),
            ],
        ));
    }
    let n: i64 = admin
        .query_one("select count(*) from knowledge_articles", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let language: String = admin
        .query_one("select language from knowledge_articles", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        language, "de",
        "articles are read in acme's fixed language too"
    );

    let inventory = dir.path().join("inventory.csv");
    std::fs::write(&inventory, "address,hostname,role,client,location\n10.20.1.40,fs01,file server,Acme,Berlin\n10.99.0.0/16,,branch network,Acme,Hamburg\n,pc-0231,workstation,Acme,Berlin\n").unwrap();
    let out = ok(&aiagents(
        &db,
        &nats.url(),
        &[
            "import",
            "inventory",
            "--tenant",
            "acme",
            "--file",
            inventory.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("3 entries"), "{out}");
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "address,hostname,role,client,location\n10.20.1.999,x,y,z,w\n",
    )
    .unwrap();
    let refused = aiagents(
        &db,
        &nats.url(),
        &[
            "import",
            "inventory",
            "--tenant",
            "acme",
            "--file",
            bad.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    let n: i64 = admin
        .query_one("select count(*) from system_inventory", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3, "a refused import must leave the inventory as it was");
    // A header-only export would empty it: refused unless said so; and a
    // tenant that does not exist gets no inventory.
    let empty = dir.path().join("empty.csv");
    std::fs::write(
        &empty,
        "address,hostname,role,client,location
",
    )
    .unwrap();
    let inventory_of = |tenant: &str, file: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "import",
            "inventory",
            "--tenant",
            tenant,
            "--file",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        aiagents(&db, &nats.url(), &args)
    };
    let refused = inventory_of("acme", &empty, &[]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--allow-empty"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let refused = inventory_of("acmee", &inventory, &[]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("tenant acmee does not exist"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let count = || async {
        admin
            .query_one("select count(*) from system_inventory", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(count().await, 3);
    ok(&inventory_of("acme", &empty, &["--allow-empty"]));
    assert_eq!(count().await, 0, "emptied when asked to");

    // A list of something other than tickets is refused with its place, not
    // a crash.
    let not_tickets = dir.path().join("ids.json");
    std::fs::write(&not_tickets, r#"["SUP-1", "SUP-2"]"#).unwrap();
    let refused = aiagents(
        &db,
        &nats.url(),
        &[
            "import",
            "tickets",
            "--tenant",
            "acme",
            "--file",
            not_tickets.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "an error, not a panic");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("item 0 is not an object"), "{said}");

    shutdown.cancel();
    projector.await.unwrap().unwrap();
}

#[tokio::test]
async fn retrieval_is_scored_beside_the_original_method() {
    let db = TestDatabase::create().await;
    let out = ok(&aiagents(
        &db,
        "nats://127.0.0.1:1",
        &[
            "eval-retrieval",
            "../../demo/tickets.json",
            "../../tests/data/retrieval-lay.json",
        ],
    ));
    assert!(
        out.contains("| original (plainto_tsquery on description) |"),
        "{out}"
    );
    // Every set given is scored on its own.
    let demo = out
        .find("demo/tickets.json:")
        .expect("the demo set's table");
    let lay = out.find("retrieval-lay.json: 30 queries (24 with a relevant ticket, 6 without)");
    assert!(lay.is_some_and(|lay| lay > demo), "{out}");
    assert_eq!(
        out.matches("| original (plainto_tsquery").count(),
        2,
        "{out}"
    );
    let ours = out.lines().find(|line| line.starts_with("| ours")).unwrap();
    let recall: f64 = ours.split('|').nth(2).unwrap().trim().parse().unwrap();
    assert!(
        recall >= 0.99,
        "our retriever should find every demo ticket: {ours}"
    );
    // The cross-tenant column of every row of ours (the original's search
    // filters by tenant in its SQL, so its zero says nothing).
    let ours: Vec<&str> = out
        .lines()
        .filter(|line| line.starts_with("| ours"))
        .collect();
    assert!(!ours.is_empty(), "{out}");
    for row in ours {
        assert_eq!(
            row.split('|').nth(6).map(str::trim),
            Some("0"),
            "no cross-tenant hits: {row}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn history_imports_from_servicedesk_page_by_page_and_resumes_after_a_stop() {
    use aia_standins::servicedesk::{ResolvedRequest, ServiceDeskStandIn};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let sdp = ServiceDeskStandIn::new("sdp-token");
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .timestamp_millis();
    for id in 1..=250u64 {
        sdp.add_resolved(ResolvedRequest {
            id: 1000 + id,
            subject: format!("Request {id}"),
            description_html: format!("<div>Printer {id} offline<br>since&nbsp;today</div>"),
            resolution_html: "<p>Restarted the spooler &amp; cleared the queue</p>".into(),
            priority: if id % 2 == 0 {
                "High".into()
            } else {
                "Low".into()
            },
            resolved_ms: base + i64::try_from(id).unwrap() * 86_400_000,
        });
    }
    let server = aia_standins::serve(sdp.router()).await.unwrap();
    let client = aia_itsm::Itsm::for_tenant(
        reqwest::Client::new(),
        aia_events::ItsmKind::ServicedeskPlus,
        &server.url(),
        r#"{"authtoken":"sdp-token"}"#,
    )
    .unwrap();
    let (_nats_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let tenant = aia_events::TenantId::parse("acme").unwrap();
    let keyring = aia_store::Keyring::parse(&aia_store::Keyring::generate_spec("k1")).unwrap();
    aiagents::ops::add_tenant(
        &db.app_url,
        &keyring,
        "acme",
        "Acme",
        aia_events::ItsmKind::ServicedeskPlus,
        &server.url(),
        r#"{"authtoken":"sdp-token"}"#,
    )
    .await
    .unwrap();

    // Stopped after one page, then resumed: every request once.
    let first = aiagents::import::import_from_help_desk(
        &client,
        &jetstream,
        &db.app_url,
        &tenant,
        None,
        None,
        1000,
        Some(1),
    )
    .await
    .unwrap();
    assert_eq!((first.imported, first.resumed), (100, false));
    let rest = aiagents::import::import_from_help_desk(
        &client,
        &jetstream,
        &db.app_url,
        &tenant,
        None,
        None,
        1000,
        None,
    )
    .await
    .unwrap();
    assert_eq!((rest.imported, rest.resumed), (250, true));
    assert!(!rest.already_complete);
    let mut stream = jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 250);
    // Run again when finished: nothing is fetched, and it says so.
    let again = aiagents::import::import_from_help_desk(
        &client,
        &jetstream,
        &db.app_url,
        &tenant,
        None,
        None,
        1000,
        None,
    )
    .await
    .unwrap();
    assert!(again.already_complete);
    assert_eq!(stream.info().await.unwrap().state.messages, 250);

    // A date range imports only what was resolved in it.
    let since = chrono::DateTime::parse_from_rfc3339("2026-09-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let recent = aiagents::import::import_from_help_desk(
        &client,
        &jetstream,
        &db.app_url,
        &tenant,
        Some(since),
        None,
        1000,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        recent.imported,
        250 - 242,
        "requests resolved from 1 September"
    );

    let shutdown = tokio_util::sync::CancellationToken::new();
    let projector = tokio::spawn(history_projector::run(
        history_projector::Config::new(nats.url(), db.app_url.clone()),
        shutdown.clone().cancelled_owned(),
    ));
    let admin = db.admin_client().await;
    eventually("the imported history", Duration::from_secs(30), || async {
        let n: i64 = admin
            .query_one(
                "select count(*) from ticket_history where tenant_id = 'acme'",
                &[],
            )
            .await
            .ok()?
            .get(0);
        (n == 250).then_some(())
    })
    .await;
    let row = admin
        .query_one(
            "select description, resolution, priority from ticket_history where ticket_id = '1002'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Printer 2 offline\nsince today");
    assert_eq!(
        row.get::<_, String>(1),
        "Restarted the spooler & cleared the queue"
    );
    assert_eq!(row.get::<_, String>(2), "high");
    shutdown.cancel();
    projector.await.unwrap().unwrap();
}

/// A ticket in a file is held to what a webhook's may carry: a NUL (which
/// PostgreSQL cannot store, in an event kept for good) is dropped and a
/// description past the webhooks' limit is cut, so it is stored — and,
/// imported again, found already stored rather than published again.
#[tokio::test(flavor = "multi_thread")]
async fn an_imported_ticket_is_held_to_a_webhooks_limits_and_stored_once() {
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let projector = tokio::spawn(history_projector::run(
        history_projector::Config::new(nats.url(), db.app_url.clone()),
        shutdown.clone().cancelled_owned(),
    ));
    let keyring = aia_store::Keyring::parse(&aia_store::Keyring::generate_spec("k1")).unwrap();
    aiagents::ops::add_tenant(
        &db.app_url,
        &keyring,
        "acme",
        "acme",
        aia_events::ItsmKind::ServicedeskPlus,
        "http://127.0.0.1:9",
        r#"{"authtoken":"x"}"#,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tickets.json");
    let description = format!("Disk full\u{0}{}", "log line ".repeat(4_000));
    std::fs::write(
        &file,
        serde_json::json!([{"ticket_id": "SUP-9", "subject": "Disk full", "description": description,
            "resolution": "Moved the logs", "resolved_at": "2026-10-01T10:00:00Z", "priority": "high"}])
        .to_string(),
    )
    .unwrap();
    let import = || {
        ok(&aiagents(
            &db,
            &nats.url(),
            &[
                "import",
                "tickets",
                "--tenant",
                "acme",
                "--file",
                file.to_str().unwrap(),
            ],
        ))
    };
    let out = import();
    assert!(out.contains("1 resolved tickets published"), "{out}");
    let admin = db.admin_client().await;
    let stored: String = eventually("the ticket in the history", Duration::from_secs(20), || async {
        admin
            .query_opt(
                "select description from ticket_history where tenant_id = 'acme' and ticket_id = 'SUP-9'",
                &[],
            )
            .await
            .ok()?
            .map(|row| row.get(0))
    })
    .await;
    assert!(!stored.contains('\u{0}'));
    assert_eq!(
        stored.chars().count(),
        aia_itsm::inbound::MAX_DESCRIPTION_CHARS
    );
    let again = import();
    assert!(
        again.contains("0 resolved tickets published for acme, 1 already"),
        "{again}"
    );
    shutdown.cancel();
    projector.await.unwrap().unwrap();
}
