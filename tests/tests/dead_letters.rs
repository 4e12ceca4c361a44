//! A run that fails for good is a dead letter operators can see; after the
//! cause is fixed a re-drive completes it with exactly one note, and a second
//! re-drive posts nothing.

use std::net::SocketAddr;
use std::time::Duration;

use aia_events::{ItsmKind, TenantId};
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::{Keyring, tenants};
use aia_testkit::{NatsServer, TestDatabase, eventually};
use aiagents::{all_in_one, dataset::Query, ops, webhook};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_back_is_listed_re_driven_after_the_fix_and_never_doubled() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    let sdp = ServiceDeskStandIn::new("right-token");
    let sdp_server = aia_standins::serve(sdp.router()).await.unwrap();
    ops::apply_nats(&nats.url()).await.unwrap();
    let spec = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&spec).unwrap();
    let created = ops::add_tenant(
        &db.app_url,
        &keyring,
        "acme",
        "Acme",
        ItsmKind::ServicedeskPlus,
        &sdp_server.url(),
        r#"{"authtoken":"wrong-token"}"#,
    )
    .await
    .unwrap();
    let running = all_in_one::start(all_in_one::Settings {
        nats_url: nats.url(),
        database_url: db.app_url.clone(),
        keyring_spec: spec.clone(),
        llm: None,
        ingress_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        public_url: None,
    })
    .await
    .unwrap();
    let query: Query = serde_json::from_value(serde_json::json!({
        "tenant_id": "acme", "ticket_id": "SUP-9", "description": "Printer offline", "priority": "low"}))
    .unwrap();
    let http = reqwest::Client::new();
    let (status, _) = webhook::send_servicedesk(
        &http,
        &running.ingress_url,
        created.webhook_secret.expose(),
        webhook::servicedesk_body(&query),
    )
    .await
    .unwrap();
    assert_eq!(status, 202);

    let admin_pool = aia_store::pool(&db.admin_read_url, 2).unwrap();
    let letter = eventually("the dead letter", Duration::from_secs(30), || async {
        admin::dead_letters::list(&admin_pool, Some("acme"), 10)
            .await
            .ok()?
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(
        (letter.ticket_id.as_str(), letter.stage.as_deref()),
        ("SUP-9", Some("writeback"))
    );
    assert_eq!(
        letter.reason.as_deref(),
        Some("ServiceDesk Plus rejected the API key")
    );
    assert_eq!(letter.attempts, Some(1));
    assert!(sdp.notes("SUP-9").is_empty());

    // The operator fixes the credentials and re-drives.
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    let mut client = pool.get().await.unwrap();
    tenants::update(
        &mut client,
        &keyring,
        &TenantId::parse("acme").unwrap(),
        &tenants::TenantUpdate {
            itsm_credentials: Some(aia_store::Secret::new(r#"{"authtoken":"right-token"}"#)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    admin::dead_letters::redrive(&admin_pool, &jetstream, "acme", letter.correlation_id)
        .await
        .unwrap();
    let admin = db.admin_client().await;
    eventually(
        "the re-driven run to complete",
        Duration::from_secs(30),
        || async {
            let status: String = admin
                .query_one(
                    "select status from enhancement_history where ticket_id = 'SUP-9'",
                    &[],
                )
                .await
                .ok()?
                .get(0);
            (status == "completed").then_some(())
        },
    )
    .await;
    assert_eq!(sdp.notes("SUP-9").len(), 1);
    assert!(
        admin::dead_letters::list(&admin_pool, Some("acme"), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Re-driving a run that is no longer dead is refused; nothing is posted twice.
    let again =
        admin::dead_letters::redrive(&admin_pool, &jetstream, "acme", letter.correlation_id).await;
    assert!(again.is_err());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sdp.notes("SUP-9").len(), 1);
    running.stop().await.unwrap();
}
