//! The tenants admin API: bearer-protected CRUD with secrets shown once,
//! masked everywhere else, keyset pagination, rotation and a connection test.

use std::net::SocketAddr;
use std::sync::Arc;

use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use aia_testkit::TestDatabase;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const TOKEN: &str = "admin-token-0123456789abcdef";

struct Api {
    url: String,
    http: reqwest::Client,
    _db: TestDatabase,
    sdp_url: String,
    _sdp: aia_standins::Running,
    /// The keyring the admin service encrypts with.
    keyring_spec: String,
}

impl Api {
    async fn start() -> Self {
        let db = TestDatabase::create().await;
        let sdp = aia_standins::serve(ServiceDeskStandIn::new("good-token").router())
            .await
            .unwrap();
        let keyring_spec = Keyring::generate_spec("k1");
        let tenants = admin::tenant_admin(
            &db.app_url,
            &db.admin_read_url,
            Keyring::parse(&keyring_spec).unwrap(),
            "https://hooks.example.com".into(),
        )
        .unwrap();
        let state = admin::AppState {
            tenants: Arc::new(tenants),
            token: TOKEN.into(),
            jetstream: None,
            console: Default::default(),
        };
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, admin::app(state)).await.unwrap() });
        Self {
            url,
            http: reqwest::Client::new(),
            _db: db,
            sdp_url: sdp.url(),
            _sdp: sdp,
            keyring_spec,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, id: &str, name: &str, authtoken: &str) -> (u16, Value) {
        let body = json!({"tenant_id": id, "name": name, "itsm_kind": "servicedesk_plus",
            "itsm_base_url": self.sdp_url, "itsm_credentials": {"authtoken": authtoken}});
        self.call(reqwest::Method::POST, "/admin/tenants", Some(body))
            .await
    }
}

#[tokio::test]
async fn requests_without_the_bearer_token_are_refused() {
    let api = Api::start().await;
    for token in [None, Some("wrong"), Some("admin-token-0123456789abcdeX")] {
        let mut request = api.http.get(format!("{}/admin/tenants", api.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{token:?}");
    }
    let health = api
        .http
        .get(format!("{}/health", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_created_tenant_shows_its_secret_once_and_masks_it_ever_after() {
    let api = Api::start().await;
    let (status, created) = api.create("acme", "Acme Ltd", "sdp-secret-token-123").await;
    assert_eq!(status, 201, "{created}");
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    // Standard Webhooks form: whsec_ and base64 of 32 bytes.
    assert!(
        secret.starts_with("whsec_") && secret.len() == 50,
        "{secret}"
    );
    assert_eq!(
        created["tenant"]["webhook_urls"]["jira"],
        "https://hooks.example.com/webhook/jira/acme"
    );
    assert_eq!(created["tenant"]["itsm_credentials"]["authtoken"], "sd…23");
    assert_ne!(created["tenant"]["webhook_secret"], secret);

    let (status, shown) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    assert_eq!(status, 200);
    let text = shown.to_string();
    assert!(
        !text.contains(&secret) && !text.contains("sdp-secret-token-123"),
        "{text}"
    );

    let (status, duplicate) = api.create("acme", "Again", "x").await;
    assert_eq!(
        (status, duplicate["error"]["code"].as_str()),
        (409, Some("duplicate_tenant"))
    );
    let (status, _) = api.create("Not Valid", "x", "x").await;
    assert_eq!(status, 422);
    let bad = api
        .http
        .post(format!("{}/admin/tenants", api.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn tenants_list_in_pages_and_by_search() {
    let api = Api::start().await;
    for (id, name) in [
        ("alpha", "Alpha"),
        ("bravo", "Bravo Globex"),
        ("charlie", "Charlie"),
        ("delta", "Delta"),
        ("globex", "Globex"),
    ] {
        assert_eq!(api.create(id, name, "t").await.0, 201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/admin/tenants?limit=2&cursor={cursor}"),
            None => "/admin/tenants?limit=2".to_owned(),
        };
        let (status, page) = api.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["tenant_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["alpha", "bravo", "charlie", "delta", "globex"]);
    let (_, found) = api
        .call(reqwest::Method::GET, "/admin/tenants?search=globex", None)
        .await;
    let ids: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bravo", "globex"]);
}

/// `PATCH` changes what it names and keeps the rest; `PUT` replaces the
/// settings it is given.
#[tokio::test]
async fn a_patch_changes_only_the_settings_it_names() {
    let api = Api::start().await;
    api.create("acme", "Acme", "good-token").await;
    let (status, _) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme",
            Some(
                json!({"settings": {"max_note_words": 300, "allow_static_secret": true,
                                     "incidents": {"threshold": 5}}}),
            ),
        )
        .await;
    assert_eq!(status, 200);
    let (status, patched) = api
        .call(
            reqwest::Method::PATCH,
            "/admin/tenants/acme",
            Some(json!({"active": false, "settings": {"max_note_words": 250, "incidents": {"quiet_minutes": 60}}})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["active"], false);
    assert_eq!(patched["settings"]["max_note_words"], 250);
    assert_eq!(patched["settings"]["allow_static_secret"], true, "kept");
    assert_eq!(patched["settings"]["incidents"]["threshold"], 5, "kept");
    assert_eq!(patched["settings"]["incidents"]["quiet_minutes"], 60);
    // A misspelt field and a bad value are refused and change nothing.
    for (body, expected) in [
        (json!({"settings": {"max_note_wrods": 1}}), 422),
        (json!({"settings": {"max_note_words": 5}}), 422),
        // Past any date there is: every new ticket's webhook would fail.
        (
            json!({"settings": {"max_event_age_hours": 4_000_000_000_u32}}),
            422,
        ),
        (
            json!({"settings": {"reenhance_interval_mins": 4_000_000_000_u32}}),
            422,
        ),
        (json!({"settings": {"max_event_age_hours": 0}}), 422),
        (json!({"nmae": "x"}), 400),
    ] {
        let (status, answer) = api
            .call(
                reqwest::Method::PATCH,
                "/admin/tenants/acme",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    let (_, shown) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    assert_eq!(shown["settings"]["max_note_words"], 250);
    let (status, _) = api
        .call(
            reqwest::Method::PATCH,
            "/admin/tenants/nobody",
            Some(json!({"settings": {"max_note_words": 250}})),
        )
        .await;
    assert_eq!(status, 404);
}

/// A hundred patches at once, each changing one of ten settings: they take
/// their turns, every one lands, and none is written over by another.
#[tokio::test]
async fn a_hundred_patches_at_once_all_land_and_none_is_written_over() {
    let api = Api::start().await;
    api.create("acme", "Acme", "good-token").await;
    let changes = [
        json!({"similar_tickets_enabled": false}),
        json!({"knowledge_base_enabled": false}),
        json!({"inventory_enabled": false}),
        json!({"redact_personal_data": false}),
        json!({"feedback_links": false}),
        json!({"note_visible_to_requester": true}),
        json!({"allow_static_secret": true}),
        json!({"max_note_words": 321}),
        json!({"max_event_age_hours": 48}),
        json!({"incidents": {"quiet_minutes": 61}}),
    ];
    let (api, changes) = (&api, &changes);
    let answers = futures::future::join_all((0..100).map(|n| {
        let change = changes[n % changes.len()].clone();
        async move {
            let (status, _) = api
                .call(
                    reqwest::Method::PATCH,
                    "/admin/tenants/acme",
                    Some(json!({"settings": change})),
                )
                .await;
            (n % changes.len(), status)
        }
    }))
    .await;
    assert!(
        answers.iter().all(|(_, status)| *status == 200),
        "{answers:?}"
    );
    let landed: std::collections::BTreeSet<usize> = answers
        .iter()
        .filter(|(_, status)| *status == 200)
        .map(|(change, _)| *change)
        .collect();
    assert_eq!(landed.len(), changes.len(), "{answers:?}");
    let (_, shown) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    let mut settings = shown["settings"].clone();
    for change in &landed {
        let mut expected = settings.clone();
        aia_ops::tenants::merge::merge_patch(&mut expected, &changes[*change]);
        assert_eq!(expected, settings, "change {} was lost", changes[*change]);
        settings = expected;
    }
}

#[tokio::test]
async fn update_rotate_test_and_soft_delete_a_tenant() {
    let api = Api::start().await;
    api.create("acme", "Acme", "good-token").await;
    let (status, updated) = api
        .call(reqwest::Method::PUT, "/admin/tenants/acme", Some(json!({"name": "Acme Corp", "active": false,
            "settings": {"max_note_words": 300, "similar_tickets_enabled": true, "knowledge_base_enabled": false,
                         "inventory_enabled": true, "monitoring_enabled": false, "allow_static_secret": false}})))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["name"].as_str(), updated["active"].as_bool()),
        (Some("Acme Corp"), Some(false))
    );
    assert_eq!(updated["settings"]["max_note_words"], 300);
    let (status, _) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme",
            Some(json!({"settings": {"max_note_words": 5}})),
        )
        .await;
    assert_eq!(status, 422);

    let (status, rotated) = api
        .call(
            reqwest::Method::POST,
            "/admin/tenants/acme/rotate-secret",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let rotated_secret = rotated["webhook_secret"].as_str().unwrap();
    assert!(rotated_secret.starts_with("whsec_") && rotated_secret.len() == 50);
    let (_, shown) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    assert_eq!(shown["rotation_in_progress"], true);

    let (_, test) = api
        .call(
            reqwest::Method::POST,
            "/admin/tenants/acme/test-connection",
            None,
        )
        .await;
    assert_eq!(test["ok"], true, "{test}");
    api.call(
        reqwest::Method::PUT,
        "/admin/tenants/acme",
        Some(json!({"itsm_credentials": {"authtoken": "revoked"}})),
    )
    .await;
    let (_, test) = api
        .call(
            reqwest::Method::POST,
            "/admin/tenants/acme/test-connection",
            None,
        )
        .await;
    assert_eq!(
        (test["ok"].as_bool(), test["message"].as_str()),
        (Some(false), Some("ServiceDesk Plus rejected the API key"))
    );

    let (status, _) = api
        .call(reqwest::Method::DELETE, "/admin/tenants/acme", None)
        .await;
    assert_eq!(status, 204);
    let (status, gone) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (404, Some("unknown_tenant"))
    );
    let (_, list) = api.call(reqwest::Method::GET, "/admin/tenants", None).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (status, _) = api
        .call(reqwest::Method::DELETE, "/admin/tenants/acme", None)
        .await;
    assert_eq!(status, 404);

    // Every change the API made is in the audit log, by "api", without a
    // secret; what it refused is not.
    let audit: Vec<(String, String)> = api
        ._db
        .admin_client()
        .await
        .query(
            "select action, detail::text from console_audit
              where username = 'api' and tenant_id = 'acme' order by audit_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let actions: Vec<&str> = audit.iter().map(|(action, _)| action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "tenant.create",
            "tenant.update",
            "tenant.rotate_secret",
            "tenant.update",
            "tenant.delete"
        ]
    );
    assert!(audit[3].1.contains("itsm_credentials") && !audit[3].1.contains("revoked"));
}

#[tokio::test]
async fn dead_letters_and_feedback_statistics_are_served() {
    let api = Api::start().await;
    api.create("acme", "Acme", "good-token").await;
    let (status, letters) = api
        .call(
            reqwest::Method::GET,
            "/admin/dead-letters?tenant=acme",
            None,
        )
        .await;
    assert_eq!((status, letters), (200, json!({"items": []})));
    let (status, stats) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme/feedback", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(stats["rated"], 0);
    let (status, refused) = api
        .call(
            reqwest::Method::POST,
            "/admin/dead-letters/acme/01a21486-ea70-745b-acae-b59b9aa01079/redrive",
            None,
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "no stream configured here"
    );
}

/// A paging service's address is its token (Slack's, Teams', PagerDuty's):
/// given in the settings, the incident webhook is kept with the
/// integrations, encrypted, shown only as its origin, and a dump of the
/// database does not hold it.
#[tokio::test]
async fn an_incident_webhook_address_is_kept_encrypted_and_shown_as_its_origin() {
    let api = Api::start().await;
    api.create("acme", "Acme", "good-token").await;
    let url = "https://hooks.slack.com/services/T01/B02/paging-token-0123456789";
    let (status, view) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme",
            Some(json!({"settings": {"incidents": {"webhook_url": url, "threshold": 4}}})),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["incident_webhook"], "https://hooks.slack.com/…",
        "{view}"
    );
    assert_eq!(view["settings"]["incidents"]["webhook_url"], Value::Null);
    assert_eq!(view["settings"]["incidents"]["threshold"], 4);
    assert!(!view.to_string().contains("paging-token"), "{view}");
    let db = api._db.admin_client().await;
    let stored: String = db
        .query_one(
            "select settings::text || coalesce(encode(integrations_enc, 'escape'), '') from tenants where tenant_id = 'acme'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!stored.contains("paging-token"), "stored in the clear");
    // Keys saved later by a client that does not name the address keep it;
    // naming it as null stops the webhook.
    let (status, set) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme/integrations",
            Some(json!({"incident_webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["incident_webhook_url"], true, "{set}");
    let (_, view) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    assert_eq!(
        view["incident_webhook"], "https://hooks.slack.com/…",
        "{view}"
    );
    let (status, set) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme/integrations",
            Some(json!({"incident_webhook_url": null})),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["incident_webhook_url"], false, "{set}");
    let (_, view) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    assert_eq!(view["incident_webhook"], Value::Null, "{view}");
    // A tenant an older version saved with the address in its settings:
    // saves that do not name another keep it; naming none stops it.
    let legacy = "https://hooks.example.com/services/legacy-token-77";
    db.execute(
        "update tenants set settings = jsonb_set(settings, '{incidents,webhook_url}', to_jsonb($1::text))
          where tenant_id = 'acme'",
        &[&legacy],
    )
    .await
    .unwrap();
    let (status, view) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme",
            Some(json!({"settings": {"max_note_words": 300}})),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["incident_webhook"], "https://hooks.example.com/…",
        "{view}"
    );
    assert!(!view.to_string().contains("legacy-token"), "{view}");
    let (status, _) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme/integrations",
            Some(json!({"incident_webhook_url": null})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, view) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    assert_eq!(view["incident_webhook"], Value::Null, "{view}");
    assert_eq!(view["settings"]["max_note_words"], 300, "{view}");
    let stored: String = db
        .query_one(
            "select settings::text from tenants where tenant_id = 'acme'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!stored.contains("legacy-token"), "{stored}");
    // An address the deployment may not call is refused either way.
    let (status, _) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme/integrations",
            Some(json!({"incident_webhook_url": "ftp://example.com/x"})),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn integrations_are_replaced_encrypted_and_never_echoed() {
    let api = Api::start().await;
    api.create("acme", "Acme", "good-token").await;
    let body = json!({"knowledge_base_token": "kb-secret-1", "embedding_keys": {"openai": "sk-embed-secret"},
                      "llm_keys": {"litellm": "sk-llm-secret"}});
    let (status, answer) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme/integrations",
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"knowledge_base_token": true, "incident_webhook_secret": false, "incident_webhook_url": false, "monitoring_token": false, "llm_keys": ["litellm"], "embedding_keys": ["openai"]})
    );
    // The column's bytes as stored (its text form would be hex, and hide
    // a plaintext key as well as an encrypted one).
    let raw: Vec<u8> = api
        ._db
        .admin_client()
        .await
        .query_one(
            "select integrations_enc from tenants where tenant_id = 'acme'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!raw.is_empty());
    assert!(
        !String::from_utf8_lossy(&raw).contains("sk-embed-secret"),
        "stored in the clear"
    );
    let (_, view) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    assert!(!view.to_string().contains("secret-1") && !view.to_string().contains("sk-"));
    // A misspelt field is refused, and changes nothing.
    let (status, _) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme/integrations",
            Some(json!({"embeding_keys": {}})),
        )
        .await;
    assert_eq!(status, 400);
    // An incident webhook secret receivers cannot read is refused.
    for secret in ["not-whsec", "whsec_!!!", "whsec_c2hvcnQ="] {
        let (status, answer) = api
            .call(
                reqwest::Method::PUT,
                "/admin/tenants/acme/integrations",
                Some(json!({"incident_webhook_secret": secret})),
            )
            .await;
        assert_eq!(status, 422, "{secret}: {answer}");
    }
    let (status, answer) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme/integrations",
            Some(json!({"incident_webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/nobody/integrations",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn answers_that_carry_a_secret_are_never_cached_and_a_rotation_can_revoke_at_once() {
    let api = Api::start().await;
    let body = json!({"tenant_id": "acme", "name": "Acme", "itsm_kind": "servicedesk_plus",
        "itsm_base_url": api.sdp_url, "itsm_credentials": {"authtoken": "t"}});
    let created = api
        .http
        .post(format!("{}/admin/tenants", api.url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let rotate = |query: &str| {
        api.http
            .post(format!(
                "{}/admin/tenants/acme/rotate-secret{query}",
                api.url
            ))
            .bearer_auth(TOKEN)
            .send()
    };
    let rotated = rotate("").await.unwrap();
    assert_eq!(rotated.headers()["cache-control"], "no-store");
    let answer: Value = rotated.json().await.unwrap();
    assert!(
        answer["note"].as_str().unwrap().contains("24 hours"),
        "{answer}"
    );
    let (_, shown) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    assert_eq!(shown["rotation_in_progress"], true);
    // A second rotation while the first's previous secret is still valid
    // would drop whichever secret the help desk still sends: refused, and
    // the secret the first gave out stays the current one.
    let first = answer["webhook_secret"].as_str().unwrap().to_owned();
    let again = futures::future::join_all((0..5).map(|_| rotate(""))).await;
    for answer in again {
        assert_eq!(answer.unwrap().status(), 422);
    }
    let (_, shown) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    let masked = shown["webhook_secret"].as_str().unwrap();
    assert!(
        masked.ends_with(&first[first.len() - 2..]),
        "{masked} is not {first} masked"
    );
    // Ending the rotation drops the previous secret and keeps the current;
    // then a rotation may start again.
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            "/admin/tenants/acme/end-rotation",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, shown) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    assert_eq!(shown["rotation_in_progress"], false);
    assert_eq!(shown["webhook_secret"].as_str(), Some(masked));
    let again = rotate("").await.unwrap();
    assert_eq!(again.status(), 200);

    let revoked = rotate("?revoke_previous=true").await.unwrap();
    assert_eq!(revoked.status(), 200);
    let answer: Value = revoked.json().await.unwrap();
    assert!(
        answer["note"].as_str().unwrap().contains("revoked"),
        "{answer}"
    );
    let (_, shown) = api
        .call(reqwest::Method::GET, "/admin/tenants/acme", None)
        .await;
    assert_eq!(shown["rotation_in_progress"], false);

    let refused = rotate("?revoke_previous=true&keep_previous_hours=2")
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let refused = rotate("?keep_previous_hours=1000").await.unwrap();
    assert_eq!(refused.status(), 422);
}

/// Credentials are write-only; an address that moves to another host must
/// not take them along, or the next call there reads them back.
#[tokio::test]
async fn credentials_and_keys_are_never_sent_to_an_address_they_were_not_given_for() {
    let api = Api::start().await;
    api.create("acme", "Acme", "good-token").await;
    let stored = || async {
        let pool = aia_store::pool(&api._db.app_url, 1).unwrap();
        aia_store::tenants::get(
            &mut pool.get().await.unwrap(),
            &Keyring::parse(&api.keyring_spec).unwrap(),
            &aia_events::TenantId::parse("acme").unwrap(),
        )
        .await
        .unwrap()
        .unwrap()
    };
    // The help desk elsewhere with the stored credentials: refused.
    let (status, answer) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme",
            Some(json!({"itsm_base_url": "https://attacker.test/"})),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(stored().await.itsm_base_url, api.sdp_url);
    // Elsewhere with its credentials given again, or another path on the
    // same host: taken.
    let (status, answer) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme",
            Some(json!({"itsm_base_url": format!("{}/sdpapi", api.sdp_url)})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme",
            Some(json!({"itsm_base_url": "https://sdp.acme.example/", "itsm_credentials": {"authtoken": "new-token"}})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");

    // An LLM provider and the knowledge base with their keys.
    let settings = |llm: &str, kb: &str| {
        json!({"settings": {"llm_providers": [
                {"name": "main", "base_url": llm, "model": "gpt-4o-mini"},
                {"name": "spare", "base_url": "https://spare.acme.example/v1", "model": "m"}],
            "knowledge_base_url": kb}})
    };
    let (status, answer) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme",
            Some(settings(
                "https://llm.acme.example/v1",
                "https://kb.acme.example",
            )),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    api.call(
        reqwest::Method::PUT,
        "/admin/tenants/acme/integrations",
        Some(
            json!({"knowledge_base_token": "kb-1", "llm_keys": {"main": "sk-1", "spare": "sk-2"}}),
        ),
    )
    .await;
    // The provider moved to another host, the knowledge base to another
    // path: the provider's key is forgotten, the rest kept.
    let (status, answer) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme",
            Some(settings(
                "https://attacker.test/v1",
                "https://kb.acme.example/v2",
            )),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let integrations = stored().await.integrations;
    assert_eq!(
        integrations.llm_keys.keys().collect::<Vec<_>>(),
        vec!["spare"]
    );
    assert_eq!(integrations.knowledge_base_token.as_deref(), Some("kb-1"));
    // In two saves: the provider removed, then added back elsewhere. The
    // removal already takes its key.
    let (status, _) = api
        .call(
            reqwest::Method::PUT,
            "/admin/tenants/acme",
            Some(json!({"settings": {"llm_providers": [
                {"name": "main", "base_url": "https://attacker.test/v1", "model": "gpt-4o-mini"}]}})),
        )
        .await;
    assert_eq!(status, 200);
    let integrations = stored().await.integrations;
    assert!(integrations.llm_keys.is_empty(), "{integrations:?}");
    assert_eq!(
        integrations.knowledge_base_token, None,
        "its address was removed"
    );
}

/// A bound set after a value was stored beyond it (read clamped ever
/// since) does not refuse a change of something else: the value is saved
/// at its bound.
#[tokio::test]
async fn a_value_stored_beyond_a_later_bound_does_not_block_another_change() {
    let api = Api::start().await;
    api.create("acme", "Acme", "good-token").await;
    api._db
        .merge_tenant_settings(
            "acme",
            json!({"max_event_age_hours": 4_000_000_000_u32, "reenhance_interval_mins": 4_000_000_000_u32}),
        )
        .await;
    let (status, answer) = api
        .call(
            reqwest::Method::PATCH,
            "/admin/tenants/acme",
            Some(json!({"settings": {"max_note_words": 321}})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["settings"]["max_note_words"], 321);
    assert_eq!(
        answer["settings"]["max_event_age_hours"],
        aia_store::tenant_settings::MAX_EVENT_AGE_HOURS
    );
    assert_eq!(
        answer["settings"]["reenhance_interval_mins"],
        aia_store::tenant_settings::MAX_REENHANCE_INTERVAL_MINS
    );
}
