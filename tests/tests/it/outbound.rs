//! Addresses operators configure are fetched by the services; none of them
//! may be a cloud's metadata endpoint or anything link-local — not as
//! configured, not after a redirect, not at the moment of the call.

use std::net::SocketAddr;

use aia_events::ItsmKind;
use aia_store::Keyring;
use aia_testkit::TestDatabase;
use axum::Router;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde_json::json;

const METADATA: &str = "http://169.254.169.254/latest/meta-data/iam/security-credentials/";

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

#[tokio::test]
async fn a_redirect_to_a_metadata_address_is_never_followed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = serve(
        Router::new()
            .route(
                "/to-metadata",
                get(|| async { Redirect::temporary(METADATA) }),
            )
            .route(
                "/to-mapped",
                get(|| async { Redirect::temporary("http://[::ffff:169.254.169.254]/") }),
            )
            .route("/to-local", get(|| async { Redirect::temporary("/fine") }))
            .route("/fine", get(|| async { "fine" })),
    )
    .await;
    let http = aia_http::outbound::client_builder().build().unwrap();
    for path in ["/to-metadata", "/to-mapped"] {
        let err = http
            .get(format!("{url}{path}"))
            .send()
            .await
            .expect_err("followed a redirect to a metadata address");
        assert!(err.is_redirect(), "{path}: {err}");
    }
    let body = http
        .get(format!("{url}/to-local"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "fine");
}

/// A 302 would make a note's `POST` a `GET` that the far end answers with
/// a 200: the redirect is handed back instead, and only 307/308, which
/// repeat the request with its body, are followed.
#[tokio::test]
async fn a_post_is_never_turned_into_a_get_by_a_redirect() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = serve(
        Router::new()
            .route("/found", post(|| async { to_notes(StatusCode::FOUND) }))
            .route(
                "/moved",
                post(|| async { to_notes(StatusCode::MOVED_PERMANENTLY) }),
            )
            .route("/see-other", post(|| async { Redirect::to("/notes") }))
            .route(
                "/permanent",
                post(|| async { Redirect::permanent("/notes") }),
            )
            .route(
                "/temporary",
                post(|| async { Redirect::temporary("/notes") }),
            )
            .route(
                "/notes",
                get(|| async { "listed" })
                    .post(|body: String| async move { format!("posted {body}") }),
            ),
    )
    .await;
    let http = aia_http::outbound::client_builder().build().unwrap();
    for (path, status) in [("/found", 302), ("/moved", 301), ("/see-other", 303)] {
        let answer = http
            .post(format!("{url}{path}"))
            .body("the note")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{path}: the redirect was followed");
    }
    for path in ["/permanent", "/temporary"] {
        let answer = http
            .post(format!("{url}{path}"))
            .body("the note")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.text().await.unwrap(), "posted the note", "{path}");
    }
}

fn to_notes(status: StatusCode) -> impl IntoResponse {
    (status, [(LOCATION, "/notes")])
}

#[tokio::test]
async fn operators_cannot_point_a_tenant_at_a_metadata_address() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::create().await;
    let tenants = aia_ops::tenant_admin(
        &db.app_url,
        &db.admin_read_url,
        Keyring::parse(&Keyring::generate_spec("k1")).unwrap(),
        "https://hooks.example.com".into(),
    )
    .unwrap();
    let create = |base_url: &str| aia_ops::tenants::CreateTenant {
        tenant_id: "acme".into(),
        name: "Acme".into(),
        itsm_kind: ItsmKind::ServicedeskPlus,
        itsm_base_url: base_url.into(),
        itsm_credentials: json!({"authtoken": "t"}),
        settings: None,
    };
    for base_url in [
        "http://169.254.169.254",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
    ] {
        let err = tenants.create(create(base_url)).await.unwrap_err();
        assert!(
            matches!(&err, aia_ops::AdminError::Invalid(text) if text.contains("link-local")),
            "{base_url}: {err}"
        );
    }
    tenants
        .create(create("https://sdp.acme.example"))
        .await
        .unwrap();
    for settings in [
        json!({"knowledge_base_url": METADATA}),
        json!({"monitoring_url": "http://169.254.169.254:9090"}),
        json!({"llm_providers": [{"name": "p", "kind": "openai", "base_url": "http://169.254.169.254/v1", "model": "m"}]}),
    ] {
        let settings: aia_store::TenantSettings = serde_json::from_value(settings.clone()).unwrap();
        let err = tenants
            .update(
                "acme",
                aia_ops::tenants::UpdateTenant {
                    name: None,
                    itsm_base_url: None,
                    itsm_credentials: None,
                    active: None,
                    settings: Some(settings),
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, aia_ops::AdminError::Invalid(_)), "{err}");
    }
    // A URL stored before the guard (or written around it) is refused
    // when the service would call it.
    let refused = aia_itsm::Itsm::for_tenant(
        aia_http::outbound::client_builder().build().unwrap(),
        ItsmKind::ServicedeskPlus,
        "http://169.254.169.254",
        r#"{"authtoken": "t"}"#,
    )
    .unwrap_err();
    assert!(refused.0.contains("link-local"), "{}", refused.0);
    let provider = aia_llm::Provider {
        name: "p".into(),
        kind: aia_llm::ProviderKind::OpenAi,
        base_url: "http://169.254.169.254/v1".into(),
        api_key: None,
        model: "m".into(),
        timeout: std::time::Duration::from_secs(1),
    };
    let err = aia_llm::complete(&reqwest::Client::new(), &provider, &[], 10)
        .await
        .unwrap_err();
    assert!(matches!(err, aia_llm::LlmError::Permanent { .. }), "{err}");
}
