//! The admin console over HTTP, as a browser speaks to it: sign-in with
//! Argon2 passwords, session cookies, CSRF tokens on every form, roles, the
//! sign-in limit, the audit log, the Content-Security-Policy, and the
//! tenant pages (secret shown once, typed-confirmation delete).

use crate::console_support;

use std::sync::Arc;

use admin::console::auth::{self, Role};
use aia_store::Keyring;
use aia_testkit::TestDatabase;
use console_support::Browser;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};

const ADMIN_PASSWORD: &str = "a long admin password";
const VIEWER_PASSWORD: &str = "a long viewer password";

struct Console {
    url: String,
    http: reqwest::Client,
    db: TestDatabase,
}

impl Console {
    async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = TestDatabase::create().await;
        let tenants = admin::tenant_admin(
            &db.app_url,
            &db.admin_read_url,
            Keyring::parse(&Keyring::generate_spec("k1")).unwrap(),
            "https://hooks.example.com".into(),
        )
        .unwrap();
        auth::create_user(&tenants.admin, "ops", ADMIN_PASSWORD, Role::Admin)
            .await
            .unwrap();
        auth::create_user(&tenants.admin, "watcher", VIEWER_PASSWORD, Role::Viewer)
            .await
            .unwrap();
        let state = admin::AppState {
            tenants: Arc::new(tenants),
            token: "admin-token-0123456789abcdef".into(),
            jetstream: None,
            console: Default::default(),
        };
        Self {
            url: console_support::serve(state).await,
            http: console_support::client(),
            db,
        }
    }

    async fn sign_in_raw(&self, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/console/sign-in", self.url))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    async fn post_raw(
        &self,
        cookie: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header(COOKIE, cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// The first column of the one row `sql` returns, read across tenants.
    async fn value<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> T {
        self.db
            .admin_client()
            .await
            .query_one(sql, &[])
            .await
            .unwrap()
            .get(0)
    }

    /// The first column of every row `sql` returns, as text.
    async fn texts(&self, sql: &str) -> Vec<String> {
        let rows = self.db.admin_client().await.query(sql, &[]).await.unwrap();
        rows.iter().map(|row| row.get(0)).collect()
    }

    async fn tenant_count(&self) -> i64 {
        self.value("select count(*) from tenants where deleted_at is null")
            .await
    }

    async fn audit_actions(&self) -> Vec<(String, String, Option<String>)> {
        self.db
            .admin_client()
            .await
            .query(
                "select username, action, tenant_id from console_audit order by audit_id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect()
    }
}

fn new_tenant<'a>(csrf: &'a str, id: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("tenant_id", id),
        ("name", "Acme MSP"),
        ("itsm_kind", "servicedesk_plus"),
        ("itsm_base_url", "https://sdp.acme.example"),
        ("itsm_credentials", r#"{"authtoken":"sdp-token-123"}"#),
    ]
}

#[tokio::test]
async fn pages_and_actions_without_a_session_go_to_the_sign_in_page() {
    let console = Console::start().await;
    for path in [
        "/console",
        "/console/tenants",
        "/console/audit",
        "/console/dead-letters",
    ] {
        let response = console
            .http
            .get(format!("{}{path}", console.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[LOCATION], "/console/sign-in", "{path}");
    }
    // A made-up cookie is no session either, and a POST changes nothing.
    let (status, _) = console
        .post_raw(
            "__Host-aia_console=00ff",
            "/console/tenants",
            &new_tenant("00ff", "acme"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(console.tenant_count().await, 0);
}

#[tokio::test]
async fn signing_in_sets_a_guarded_cookie_and_signing_out_ends_the_session() {
    let console = Console::start().await;
    let response = console.sign_in_raw("ops", ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console");
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    // `__Host-`: a sibling subdomain cannot plant one of this name.
    assert!(
        set_cookie.starts_with("__Host-aia_console="),
        "{set_cookie}"
    );
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/;",
        "Max-Age=",
    ] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} missing in {set_cookie}"
        );
    }
    // The database keeps only a digest of the cookie's token.
    let token = set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let stored: Vec<u8> = console
        .value("select token_sha256 from console_sessions")
        .await;
    // Its SHA-256, and so not the token in any form a reader could send.
    assert_eq!(
        stored,
        <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).to_vec()
    );
    assert!(!String::from_utf8_lossy(&stored).contains(&token));

    let session = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    let (status, page) = session.get("/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Dashboard") && page.contains("ops (admin)"));

    // Signing out needs the session's token too; then the cookie is dead.
    let (status, _) = session
        .post("/console/sign-out", &[("csrf", "wrong")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let response = console
        .http
        .post(format!("{}/console/sign-out", console.url))
        .header(COOKIE, &session.cookie)
        .form(&[("csrf", session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        response.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _) = session.get("/console").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a signed-out cookie opens nothing"
    );
}

#[tokio::test]
async fn wrong_passwords_are_refused_and_repeated_failures_are_throttled() {
    let console = Console::start().await;
    for (user, password) in [
        ("ops", "not the password"),
        ("nobody", ADMIN_PASSWORD),
        ("ops", ""),
    ] {
        let response = console.sign_in_raw(user, password).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{user}");
        assert!(response.headers().get(SET_COOKIE).is_none());
        let page = response.text().await.unwrap();
        assert!(page.contains("Wrong user name or password."));
    }
    for _ in 0..3 {
        console.sign_in_raw("ops", "still wrong").await;
    }
    // Five failures for "ops": even the right password now waits.
    let response = console.sign_in_raw("ops", ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(RETRY_AFTER));
    assert!(response.headers().get(SET_COOKIE).is_none());
    // Another operator is not locked out by them.
    Browser::sign_in(&console.url, "watcher", VIEWER_PASSWORD).await;
}

#[tokio::test]
async fn a_form_without_this_sessions_csrf_token_is_refused_and_changes_nothing() {
    let console = Console::start().await;
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    let other = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    assert_ne!(ops.csrf, other.csrf);
    for csrf in ["", "0000", other.csrf.as_str()] {
        let (status, page) = ops
            .post("/console/tenants", &new_tenant(csrf, "acme"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "csrf {csrf:?}");
        assert!(page.contains("CSRF"));
    }
    assert_eq!(console.tenant_count().await, 0);
    assert!(console.audit_actions().await.is_empty());
}

#[tokio::test]
async fn a_viewer_sees_the_pages_but_a_hand_made_post_is_refused() {
    let console = Console::start().await;
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    let (status, _) = ops
        .post("/console/tenants", &new_tenant(&ops.csrf, "acme"))
        .await;
    assert_eq!(status, StatusCode::OK);

    let viewer = Browser::sign_in(&console.url, "watcher", VIEWER_PASSWORD).await;
    let (status, page) = viewer.get("/console/tenants/acme").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Acme MSP"));
    assert!(
        !page.contains("Rotate the webhook secret"),
        "a viewer is offered no actions"
    );
    // The viewer's own, valid CSRF token does not make it an admin.
    for (path, form) in [
        ("/console/tenants", new_tenant(&viewer.csrf, "other")),
        (
            "/console/tenants/acme/rotate-secret",
            vec![("csrf", viewer.csrf.as_str())],
        ),
        (
            "/console/tenants/acme/end-rotation",
            vec![("csrf", viewer.csrf.as_str())],
        ),
        (
            "/console/tenants/acme/settings",
            vec![
                ("csrf", viewer.csrf.as_str()),
                ("name", "Taken over"),
                ("itsm_base_url", "https://evil.example"),
                ("max_note_words", "300"),
                ("llm_budget_period_days", "30"),
            ],
        ),
        (
            "/console/tenants/acme/processing/pause",
            vec![("csrf", viewer.csrf.as_str())],
        ),
        (
            "/console/stages/writeback/pause",
            vec![("csrf", viewer.csrf.as_str())],
        ),
        (
            "/console/tenants/acme/delete",
            vec![("csrf", viewer.csrf.as_str()), ("confirm", "acme")],
        ),
        (
            "/console/dead-letters/redrive",
            vec![
                ("csrf", viewer.csrf.as_str()),
                ("runs", "acme/0190a8e4-6c4e-7f3a-9d1e-1a2b3c4d5e6f"),
            ],
        ),
    ] {
        let (status, page) = viewer.post(path, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.contains("viewer"), "{path}");
    }
    assert_eq!(console.tenant_count().await, 1);
    let actions = console.audit_actions().await;
    assert_eq!(
        actions,
        vec![("ops".into(), "tenant.create".into(), Some("acme".into()))]
    );
}

#[tokio::test]
async fn a_new_tenants_secret_is_shown_once_and_every_change_is_audited() {
    let console = Console::start().await;
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    let (status, page) = ops
        .post("/console/tenants", &new_tenant(&ops.csrf, "acme"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let secret = regex::Regex::new(r#"<code id="secret">([^<]+)</code>"#)
        .unwrap()
        .captures(&page)
        .expect("the secret is on the creation page")[1]
        .to_owned();
    assert!(secret.len() >= 32);
    assert!(page.contains("https://hooks.example.com/webhook/servicedesk"));
    assert!(page.contains(r#"data-copy="secret""#), "with a copy button");

    // Never again: not on the tenant's page, not in the list, not in the audit log.
    for path in [
        "/console/tenants/acme",
        "/console/tenants",
        "/console/audit",
        "/console/history",
        "/console/tenants/acme",
    ] {
        let (status, page) = ops.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!page.contains(&secret), "{path} shows the secret");
        assert!(
            !page.contains("sdp-token-123"),
            "{path} shows the credentials"
        );
    }
    // Rotating shows the new one, once.
    let (status, page) = ops
        .post(
            "/console/tenants/acme/rotate-secret",
            &[("csrf", &ops.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("New webhook secret for acme") && !page.contains(&secret));

    // While the old secret is still accepted, the page offers to end the
    // rotation, not to start a second one (which would be refused); ending
    // it takes the offer away and says what changed.
    let (_, page) = ops.get("/console/tenants/acme").await;
    assert!(page.contains("previous secret still accepted"));
    assert!(page.contains("/console/tenants/acme/end-rotation"));
    assert!(!page.contains("the old one works 24 more hours"));
    let (status, page) = ops
        .post(
            "/console/tenants/acme/rotate-secret",
            &[("csrf", &ops.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("End the rotation first"), "{page}");
    let (status, page) = ops
        .post("/console/tenants/acme/end-rotation", &[("csrf", &ops.csrf)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Rotation ended"), "{page}");
    assert!(!page.contains("previous secret still accepted"));
    assert!(!page.contains("/console/tenants/acme/end-rotation"));
    assert!(page.contains("the old one works 24 more hours"));

    // A delete needs the id typed; then the tenant is gone from the list.
    let (status, _) = ops
        .post(
            "/console/tenants/acme/delete",
            &[("csrf", &ops.csrf), ("confirm", "acm")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(console.tenant_count().await, 1);
    let (status, _) = ops
        .post(
            "/console/tenants/acme/delete",
            &[("csrf", &ops.csrf), ("confirm", "acme")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(console.tenant_count().await, 0);

    let actions: Vec<String> = console
        .audit_actions()
        .await
        .into_iter()
        .map(|(who, what, tenant)| format!("{who} {what} {}", tenant.unwrap_or_default()))
        .collect();
    assert_eq!(
        actions,
        [
            "ops tenant.create acme",
            "ops tenant.rotate_secret acme",
            "ops tenant.end_rotation acme",
            "ops tenant.delete acme"
        ]
    );
    let (_, page) = ops.get("/console/audit").await;
    assert!(page.contains("tenant.rotate_secret"));
}

#[tokio::test]
async fn every_page_forbids_inline_code_framing_and_caching() {
    let console = Console::start().await;
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    let inputs = regex::Regex::new(r#"<(input|select|textarea)[^>]*\bid="([^"]+)""#).unwrap();
    let (status, _) = ops
        .post("/console/tenants", &new_tenant(&ops.csrf, "acme"))
        .await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/console/sign-in",
        "/console",
        "/console/tenants",
        "/console/tenants/new",
        "/console/dead-letters",
        "/console/audit",
    ] {
        let response = console
            .http
            .get(format!("{}{path}", console.url))
            .header(COOKIE, &ops.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let csp = response.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'none'")
                && csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        let page = response.text().await.unwrap();
        // No inline script or style: the CSP would block it anyway.
        assert!(
            !page.contains("<script>") && !page.contains("style="),
            "{path}"
        );
        // Every input has a label.
        for field in inputs.captures_iter(&page) {
            assert!(
                page.contains(&format!(r#"<label for="{}">"#, &field[2])),
                "{path}: {} unlabelled",
                &field[2]
            );
        }
    }
}

#[tokio::test]
async fn the_dashboard_sums_the_last_day_and_lists_the_newest_failures() {
    let console = Console::start().await;
    console
        .db
        .admin_client()
        .await
        .batch_execute(
            "insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, written_back_at, processing_ms, last_event_id)
             select 'acme', gen_random_uuid(), 'T-' || n, 'completed', now() - interval '1 hour', now(), n, gen_random_uuid()
               from generate_series(1, 100) n;
             insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, failed_at, failed_stage, error, last_event_id)
             values ('acme', gen_random_uuid(), 'T-999', 'failed', now() - interval '5 minutes', now(), 'writeback', 'ServiceDesk Plus refused the API key (401)', gen_random_uuid());
             insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, last_event_id)
             values ('acme', gen_random_uuid(), 'T-old', 'completed', now() - interval '3 days', gen_random_uuid());
             -- Over budget: one got its raw-context note, one's failed to post.
             insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, written_back_at, last_event_id)
             values ('acme', gen_random_uuid(), 'T-raw', 'failed_budget', now() - interval '2 hours', now(), gen_random_uuid());
             insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, failed_at, failed_stage, error, last_event_id)
             values ('acme', gen_random_uuid(), 'T-raw-lost', 'failed_budget', now() - interval '2 hours', now() - interval '1 hour', 'writeback', 'refused', gen_random_uuid());
             insert into tenant_daily_stats (tenant_id, day, cost_usd)
             with period as (
               select (now() at time zone 'utc')::date as today,
                      date '1970-01-01'
                        + (((now() at time zone 'utc')::date - date '1970-01-01') / 30) * 30 as start)
             select tenant_id, day, cost_usd from period, lateral (values
               -- acme's 30-day period: today and its first day count, the
               -- day before it (the last period) does not.
               ('acme', today, 3.25), ('acme', start, 1.00), ('acme', start - 1, 7.00),
               ('beta', today, 0.50), ('gamma', today - 40, 9.00)) v(tenant_id, day, cost_usd)
             on conflict (tenant_id, day) do update set cost_usd = tenant_daily_stats.cost_usd + excluded.cost_usd;",
        )
        .await
        .unwrap();
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    // beta has no budget.
    ops.post("/console/tenants", &new_tenant(&ops.csrf, "beta"))
        .await;
    // acme's budget: 5 USD.
    ops.post("/console/tenants", &new_tenant(&ops.csrf, "acme"))
        .await;
    let mut budget = vec![
        ("name", "Acme MSP"),
        ("itsm_base_url", "https://sdp.acme.example"),
        ("active", "on"),
        ("max_note_words", "300"),
        ("llm_budget_usd", "5"),
        ("llm_budget_period_days", "30"),
    ];
    budget.insert(0, ("csrf", ops.csrf.as_str()));
    let (status, _) = ops.post("/console/tenants/acme/settings", &budget).await;
    assert_eq!(status, StatusCode::OK);
    let (status, page) = ops.get("/console").await;
    assert_eq!(status, StatusCode::OK);
    let figure = |name: &str| {
        regex::Regex::new(&format!(r"<dt>{name}</dt><dd>([^<]+)</dd>"))
            .unwrap()
            .captures(&page)
            .unwrap_or_else(|| panic!("{name} missing"))[1]
            .to_owned()
    };
    assert_eq!(figure("Tickets received"), "103");
    // The raw-context note over budget is a note; the one that failed to
    // post is a failure.
    assert_eq!(figure("Notes written"), "101");
    assert_eq!(figure("Failed"), "2");
    assert_eq!(figure("Success rate"), "98.1 %");
    assert_eq!(figure("p95 webhook → note"), "95 ms");
    assert!(page.contains("ServiceDesk Plus refused the API key (401)"));
    assert!(page.contains("T-999"));
    // Spend in the tenant's current budget period, biggest first, against
    // the budget.
    let spend = regex::Regex::new(
        r"<tr><td>([a-z]+)</td><td>([0-9.]+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>",
    )
    .unwrap();
    let rows: Vec<Vec<String>> = spend
        .captures_iter(&page)
        .map(|row| (1..=4).map(|i| row[i].to_owned()).collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["acme", "4.25", "5.00", "85 %"],
            ["beta", "0.50", "—", "no budget"]
        ]
    );
}

#[tokio::test]
async fn history_pages_follow_each_other_without_gaps_or_repeats_and_tenants_are_searchable() {
    let console = Console::start().await;
    console
        .db
        .admin_client()
        .await
        .batch_execute(
            "insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, last_event_id)
             select 'acme', gen_random_uuid(), 'T-' || n, 'completed',
                    now() - (n % 7) * interval '1 minute', gen_random_uuid()
               from generate_series(1, 120) n",
        )
        .await
        .unwrap();
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    let tickets = regex::Regex::new(r"acme / (T-[0-9]+)").unwrap();
    let next =
        regex::Regex::new(r#"href="/console/history\?[^"]*after=([^"]+)">Older runs"#).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut pages = Vec::new();
    let mut path = "/console/history?tenant=acme".to_owned();
    loop {
        let (status, page) = ops.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        let on_page: Vec<String> = tickets
            .captures_iter(&page)
            .map(|c| c[1].to_owned())
            .collect();
        pages.push(on_page.len());
        for ticket in on_page {
            assert!(seen.insert(ticket.clone()), "{ticket} shown twice");
        }
        match next.captures(&page) {
            // Many runs share a time: the run id breaks the tie.
            Some(cursor) => path = format!("/console/history?tenant=acme&after={}", &cursor[1]),
            None => break,
        }
    }
    assert_eq!(pages, [50, 50, 20]);
    assert_eq!(seen.len(), 120);

    for id in ["acme", "globex"] {
        ops.post("/console/tenants", &new_tenant(&ops.csrf, id))
            .await;
    }
    let (_, found) = ops.get("/console/tenants?search=glob").await;
    assert!(found.contains("/console/tenants/globex") && !found.contains("/console/tenants/acme"));
}

#[tokio::test]
async fn an_expired_session_opens_nothing() {
    let console = Console::start().await;
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    let (status, _) = ops.get("/console").await;
    assert_eq!(status, StatusCode::OK);
    console
        .db
        .admin_client()
        .await
        .batch_execute("update console_sessions set expires_at = now() - interval '1 second'")
        .await
        .unwrap();
    let (status, _) = ops.get("/console").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_admin_sets_a_tenants_languages_and_an_unknown_language_is_refused() {
    let console = Console::start().await;
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    ops.post("/console/tenants", &new_tenant(&ops.csrf, "acme"))
        .await;
    let (_, page) = ops.get("/console/tenants/acme").await;
    assert!(
        page.contains(r#"<option value="" selected>Detected per ticket</option>"#),
        "{page}"
    );
    assert!(page.contains(r#"<option value="de">Deutsch</option>"#));
    let form = |fixed: &'static str, note: &'static str| {
        vec![
            ("name", "Acme MSP"),
            ("itsm_base_url", "https://sdp.acme.example"),
            ("active", "on"),
            ("max_note_words", "300"),
            ("llm_budget_period_days", "30"),
            ("language_fixed", fixed),
            ("language_default", ""),
            ("language_note", note),
        ]
    };
    let (status, page) = ops
        .submit("/console/tenants/acme/settings", &form("de", "fr"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let settings: serde_json::Value = console
        .value("select settings from tenants where tenant_id = 'acme'")
        .await;
    assert_eq!(
        settings["languages"],
        serde_json::json!({"fixed": "de", "default": null, "note": "fr"})
    );
    let (_, page) = ops.get("/console/tenants/acme").await;
    assert!(
        page.contains(r#"<option value="de" selected>Deutsch</option>"#),
        "{page}"
    );
    assert!(page.contains(r#"<option value="fr" selected>Français</option>"#));

    let (status, page) = ops
        .submit("/console/tenants/acme/settings", &form("klingon", ""))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("is not one of en, de, fr, es, nl"), "{page}");
    let unchanged: serde_json::Value = console
        .value("select settings from tenants where tenant_id = 'acme'")
        .await;
    assert_eq!(
        unchanged["languages"]["fixed"], "de",
        "a refused form changes nothing"
    );
}

#[tokio::test]
async fn an_admin_changes_a_tenants_switches_and_budget_and_the_change_is_audited() {
    let console = Console::start().await;
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    ops.post("/console/tenants", &new_tenant(&ops.csrf, "acme"))
        .await;
    let form = |budget: &'static str, words: &'static str| {
        vec![
            ("name", "Acme MSP"),
            ("itsm_base_url", "https://sdp.acme.example"),
            ("active", "on"),
            ("similar_tickets_enabled", "on"),
            ("inventory_enabled", "on"),
            ("max_note_words", words),
            ("llm_budget_usd", budget),
            ("llm_budget_period_days", "30"),
        ]
    };
    let (status, page) = ops
        .submit("/console/tenants/acme/settings", &form("25.50", "300"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Saved."));
    let settings: serde_json::Value = console
        .value("select settings from tenants where tenant_id = 'acme'")
        .await;
    assert_eq!(
        settings["knowledge_base_enabled"], false,
        "an unticked box turns a source off"
    );
    assert_eq!(settings["monitoring_enabled"], false);
    assert_eq!(settings["similar_tickets_enabled"], true);
    assert_eq!(settings["llm_budget_usd"], 25.5);
    assert_eq!(settings["max_note_words"], 300);
    let audit: serde_json::Value = console
        .value("select detail from console_audit where action = 'tenant.update'")
        .await;
    let changed: Vec<&str> = audit["changed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for name in ["knowledge_base_enabled", "llm_budget_usd", "max_note_words"] {
        assert!(changed.contains(&name), "{name} not in {changed:?}");
    }
    assert!(
        !changed.contains(&"name"),
        "unchanged fields are not listed"
    );

    // New credentials are stored encrypted and never shown or audited as values.
    let mut with_credentials = form("25.50", "300");
    with_credentials.push((
        "itsm_credentials",
        r#"{"authtoken":"rotated-sdp-token-987"}"#,
    ));
    let (status, page) = ops
        .submit("/console/tenants/acme/settings", &with_credentials)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("rotated-sdp-token-987"));
    let details: Vec<String> = console
        .texts("select detail::text from console_audit where action = 'tenant.update'")
        .await;
    assert!(
        details
            .iter()
            .any(|detail| detail.contains("itsm_credentials"))
    );
    assert!(
        details
            .iter()
            .all(|detail| !detail.contains("rotated-sdp-token-987"))
    );
    let stored: Vec<u8> = console
        .value("select itsm_credentials_enc from tenants where tenant_id = 'acme'")
        .await;
    assert!(!String::from_utf8_lossy(&stored).contains("rotated-sdp-token-987"));

    // The LLM provider chain, and a provider's key (write-only, encrypted).
    let mut with_provider = form("25.50", "300");
    let providers = r#"[{"name": "primary", "kind": "openai", "base_url": "https://llm.example.com/v1", "model": "gpt-4o-mini", "timeout_secs": 20}]"#;
    with_provider.push(("llm_providers", providers));
    with_provider.push(("llm_key_provider", "primary"));
    with_provider.push(("llm_key", "sk-console-key-4242"));
    let (status, page) = ops
        .submit("/console/tenants/acme/settings", &with_provider)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(!page.contains("sk-console-key-4242"));
    let model: String = console
        .value("select settings -> 'llm_providers' -> 0 ->> 'model' from tenants where tenant_id = 'acme'")
        .await;
    assert_eq!(model, "gpt-4o-mini");
    let stored: Vec<u8> = console
        .value("select integrations_enc from tenants where tenant_id = 'acme'")
        .await;
    assert!(!String::from_utf8_lossy(&stored).contains("sk-console-key-4242"));
    let audited = console
        .texts("select detail::text from console_audit where action = 'tenant.update'")
        .await;
    assert!(
        audited
            .iter()
            .any(|detail| detail.contains("llm_key:primary") && detail.contains("llm_providers"))
    );
    assert!(
        audited
            .iter()
            .all(|detail| !detail.contains("sk-console-key-4242"))
    );
    let mut unknown = form("25.50", "300");
    unknown.push(("llm_key_provider", "nobody"));
    unknown.push(("llm_key", "sk-x"));
    let (status, page) = ops.submit("/console/tenants/acme/settings", &unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("no LLM provider named"));
    let (status, page) = ops
        .submit(
            "/console/tenants/acme/settings",
            &[
                form("25.50", "300"),
                vec![("llm_providers", "[{\"name\": 1}]")],
            ]
            .concat(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("LLM providers"));

    // Out-of-range values are refused with the reason, and nothing changes.
    let (status, page) = ops
        .submit("/console/tenants/acme/settings", &form("-3", "300"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Budget"));
    let (status, _) = ops
        .submit("/console/tenants/acme/settings", &form("10", "5"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let budget: serde_json::Value = console
        .value("select settings -> 'llm_budget_usd' from tenants where tenant_id = 'acme'")
        .await;
    assert_eq!(budget, 25.5);
}

/// The dashboard's and a tenant's charts: the period against the one
/// before, drawn as SVG with words and a table, from the history, the lag
/// samples and the daily spend.
#[tokio::test]
async fn the_charts_set_the_period_against_the_one_before_in_pictures_words_and_tables() {
    let console = Console::start().await;
    let db = console.db.admin_client().await;
    db.batch_execute(
        "insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, written_back_at, processing_ms, context_ms, llm_ms, writeback_ms, last_event_id)
         select 'acme', gen_random_uuid(), 'NOW-' || n, 'completed', now() - interval '30 minutes', now(), 1000 + n, 100, 800 + 10 * n, 50, gen_random_uuid()
           from generate_series(1, 10) n;
         insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, failed_at, failed_stage, error, last_event_id)
         select 'acme', gen_random_uuid(), 'FAIL-' || n, 'failed', now() - interval '30 minutes', now(), 'writeback', 'refused', gen_random_uuid()
           from generate_series(1, 2) n;
         insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, written_back_at, processing_ms, last_event_id)
         select 'acme', gen_random_uuid(), 'BEFORE-' || n, 'completed', now() - interval '25 hours', now(), 400, gen_random_uuid()
           from generate_series(1, 5) n;
         insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, written_back_at, processing_ms, last_event_id)
         values ('beta', gen_random_uuid(), 'B-1', 'completed', now() - interval '30 minutes', now(), 90000, gen_random_uuid());
         insert into stage_lag_samples (consumer, sampled_at, pending, in_flight)
         values ('writeback', date_trunc('minute', now() - interval '10 minutes'), 42, 3),
                ('writeback', date_trunc('minute', now() - interval '11 minutes'), 7, 1);
         insert into tenant_daily_stats (tenant_id, day, cost_usd) values ('acme', current_date, 1.25);",
    )
    .await
    .unwrap();
    let hour = |ago: chrono::Duration| {
        use chrono::DurationRound as _;
        (chrono::Utc::now() - ago)
            .duration_trunc(chrono::Duration::hours(1))
            .unwrap()
            .format("%H:%M")
            .to_string()
    };
    let (now, before) = (
        hour(chrono::Duration::minutes(30)),
        hour(chrono::Duration::hours(25)),
    );
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    ops.post("/console/tenants", &new_tenant(&ops.csrf, "acme"))
        .await;
    let settings = [
        ("csrf", ops.csrf.as_str()),
        ("name", "Acme MSP"),
        ("itsm_base_url", "https://sdp.acme.example"),
        ("active", "on"),
        ("max_note_words", "300"),
        ("llm_budget_usd", "5"),
        ("llm_budget_period_days", "30"),
    ];
    assert_eq!(
        ops.post("/console/tenants/acme/settings", &settings)
            .await
            .0,
        StatusCode::OK
    );

    let description = |page: &str, id: &str| {
        regex::Regex::new(&format!(r#"<desc id="{id}-desc">([^<]*)</desc>"#))
            .unwrap()
            .captures(page)
            .unwrap_or_else(|| panic!("no chart {id}"))[1]
            .replace("&amp;", "&")
    };
    let (status, page) = ops.get("/console").await;
    assert_eq!(status, StatusCode::OK);
    let tickets = description(&page, "tickets");
    assert!(
        tickets.contains("received: latest ") && tickets.contains(&format!("highest 13 ({now})")),
        "{tickets}"
    );
    assert!(
        tickets.contains("notes written: latest ")
            && tickets.contains(&format!("highest 11 ({now})")),
        "{tickets}"
    );
    assert!(
        tickets.contains("received, the 24 hours before: latest 0")
            && tickets.contains(&format!("highest 5 ({before})")),
        "the day before is its own faint line: {tickets}"
    );
    let success = description(&page, "success");
    assert!(
        success.contains(&format!("highest 84.6 ({now})")),
        "{success}"
    );
    let lag = description(&page, "lag-writeback");
    assert!(
        lag.contains("highest 42 ("),
        "the most waiting in a minute of the hour: {lag}"
    );
    assert!(description(&page, "spend-acme").contains("spent this period"));
    // Every chart is an image with a title and a description, has a legend
    // and its figures as a table behind "Show as table".
    let charts = page.matches(r#"<svg class="chart""#).count();
    assert!(
        charts == 3 + aia_ops::pause::STAGES.len() + 1,
        "runs, each stage's lag and acme's spend: {charts} charts"
    );
    assert_eq!(
        page.matches(r#"role="img" aria-labelledby="#).count(),
        charts
    );
    assert_eq!(
        page.matches("<summary>Show as table</summary>").count(),
        charts
    );
    assert!(page.contains(r#"<strong aria-current="page">the last 24 hours</strong>"#));

    // A week, by six hours.
    let (_, week) = ops.get("/console?period=7d").await;
    assert!(week.contains(r#"<strong aria-current="page">the last 7 days</strong>"#));
    assert!(week.contains("tickets per 6 hours"));
    assert!(description(&week, "tickets").contains("received, the 7 days before"));

    // A tenant's page: its own runs only, and the time in each stage.
    let (status, tenant) = ops.get("/console/tenants/acme").await;
    assert_eq!(status, StatusCode::OK);
    let latency = description(&tenant, "latency");
    assert!(
        !latency.contains("90000"),
        "another tenant's run is not in acme's chart: {latency}"
    );
    let llm = description(&tenant, "stage-llm");
    assert!(llm.contains(&format!("highest 896 ({now})")), "{llm}");
    let spend = description(&tenant, "spend-acme");
    assert!(spend.contains("budget (5.00 USD): latest 5"), "{spend}");
}

/// The settings form sends every field, touched or not: a save changes only
/// what its operator changed from what the page showed. A tenant another
/// operator deactivated (a leaked secret) and a source turned off since the
/// page was loaded stay so when this one saves a new budget.
#[tokio::test]
async fn a_save_keeps_what_another_changed_since_the_page_was_loaded() {
    let console = Console::start().await;
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    ops.post("/console/tenants", &new_tenant(&ops.csrf, "acme"))
        .await;
    let (_, page) = ops.get("/console/tenants/acme").await;
    let shown = page
        .split(r#"name="shown" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form carries what it shows")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let as_shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(as_shown["active"], true);

    // Meanwhile, elsewhere.
    console
        .db
        .admin_client()
        .await
        .execute(
            "update tenants set active = false,
                    settings = settings || '{\"similar_tickets_enabled\": false}'
              where tenant_id = 'acme'",
            &[],
        )
        .await
        .unwrap();

    // The form as the browser sends it: every switch as it was shown.
    let mut form: Vec<(&str, String)> = vec![
        ("shown", shown.clone()),
        ("name", as_shown["name"].as_str().unwrap().to_owned()),
        (
            "itsm_base_url",
            as_shown["itsm_base_url"].as_str().unwrap().to_owned(),
        ),
        ("active", "on".into()),
        (
            "max_note_words",
            as_shown["settings"]["max_note_words"].to_string(),
        ),
        ("llm_budget_period_days", "30".into()),
        ("llm_budget_usd", "12".into()),
    ];
    for switch in [
        "similar_tickets_enabled",
        "knowledge_base_enabled",
        "inventory_enabled",
        "monitoring_enabled",
        "redact_personal_data",
        "query_rewrite",
        "feedback_links",
        "note_visible_to_requester",
        "allow_static_secret",
        "reenhance_updates",
    ] {
        if as_shown["settings"][switch] == true {
            form.push((switch, "on".into()));
        }
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page) = ops.submit("/console/tenants/acme/settings", &form).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Saved."), "{page}");
    let active: bool = console
        .value("select active from tenants where tenant_id = 'acme'")
        .await;
    assert!(!active, "the save re-activated a deactivated tenant");
    let settings: serde_json::Value = console
        .value("select settings from tenants where tenant_id = 'acme'")
        .await;
    assert_eq!(settings["similar_tickets_enabled"], false);
    assert_eq!(settings["llm_budget_usd"], 12.0);
}

/// The dead letters page lists the newest hundred and says when more wait,
/// so "re-drive all listed" is not read as all of them.
#[tokio::test]
async fn the_dead_letters_page_says_when_more_wait_than_it_lists() {
    let console = Console::start().await;
    let insert = |from: i32, to: i32| {
        format!(
            "insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, failed_at, failed_stage, error, last_event_id)
             select 'acme', gen_random_uuid(), 'T-' || n, 'failed', timestamptz '2026-12-01 10:00:00+00',
                    timestamptz '2026-12-01 12:00:00+00' - (n || ' seconds')::interval,
                    'writeback', 'refused', gen_random_uuid()
               from generate_series({from}, {to}) n"
        )
    };
    let admin = console.db.admin_client().await;
    admin.batch_execute(&insert(1, 100)).await.unwrap();
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    let (status, page) = ops.get("/console/dead-letters").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("more dead letters wait"), "{page}");
    assert!(page.contains("redrive 100"));

    admin.batch_execute(&insert(101, 101)).await.unwrap();
    let (_, page) = ops.get("/console/dead-letters").await;
    assert!(
        page.contains("The newest 100 are listed; more dead letters wait"),
        "{page}"
    );
    assert!(page.contains("redrive 100"));
    assert!(page.contains("T-1<"), "the newest is listed");
    assert!(!page.contains("T-101<"), "the oldest is not");
}

/// The incidents page lists the newest two hundred and says when more
/// match.
#[tokio::test]
async fn the_incidents_page_says_when_more_match_than_it_lists() {
    let console = Console::start().await;
    let insert = |from: i32, to: i32| {
        format!(
            "insert into incidents (tenant_id, incident_id, version, status, summary, shared_entities,
                                    first_ticket_at, last_ticket_at, detected_at, detected_by, updated_at)
             select 'acme', gen_random_uuid(), 1, 'open', 'outage ' || n, '{{}}',
                    timestamptz '2026-12-01 10:00:00+00', timestamptz '2026-12-01 10:00:00+00',
                    timestamptz '2026-12-01 12:00:00+00' - (n || ' seconds')::interval,
                    'incident-correlator', now()
               from generate_series({from}, {to}) n"
        )
    };
    let admin = console.db.admin_client().await;
    admin.batch_execute(&insert(1, 200)).await.unwrap();
    let ops = Browser::sign_in(&console.url, "ops", ADMIN_PASSWORD).await;
    let (status, page) = ops.get("/console/incidents").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("more incidents match"), "{page}");
    admin.batch_execute(&insert(201, 201)).await.unwrap();
    let (_, page) = ops.get("/console/incidents").await;
    assert!(
        page.contains("The newest 200 are listed; more incidents match"),
        "{page}"
    );
    assert!(page.contains(">outage 1<"), "the newest is listed");
    assert!(!page.contains(">outage 201<"), "the oldest is not");
}
