//! The console under attack: guesses sent at once, lock-outs from
//! elsewhere, addresses a client makes up, sign-in forms posted from other
//! sites, NUL bytes, weak passwords, and the headers of pages that do not
//! exist.

use crate::console_support;

use std::sync::Arc;

use admin::console::auth::{self, Role};
use aia_store::Keyring;
use aia_testkit::TestDatabase;
use console_support::Browser;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, RETRY_AFTER, SET_COOKIE};

const PASSWORD: &str = "a long operator password";

struct Console {
    url: String,
    db: TestDatabase,
}

impl Console {
    async fn start(settings: admin::console::ConsoleSettings) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = TestDatabase::create().await;
        let tenants = admin::tenant_admin(
            &db.app_url,
            &db.admin_read_url,
            Keyring::parse(&Keyring::generate_spec("k1")).unwrap(),
            "https://hooks.example.com".into(),
        )
        .unwrap();
        for (name, role) in [("ops", Role::Admin), ("watcher", Role::Viewer)] {
            auth::create_user(&tenants.admin, name, PASSWORD, role)
                .await
                .unwrap();
        }
        let state = admin::AppState {
            tenants: Arc::new(tenants),
            token: "admin-token-0123456789abcdef".into(),
            jetstream: None,
            console: Arc::new(settings),
        };
        Self {
            url: console_support::serve(state).await,
            db,
        }
    }

    /// The (user name, address) pairs the sign-in limit counts.
    async fn throttle_rows(&self) -> i64 {
        self.db
            .admin_client()
            .await
            .query_one("select count(*) from console_sign_in_throttle", &[])
            .await
            .unwrap()
            .get(0)
    }

    /// A sign-in as a browser behind `forwarded_for` would send it.
    async fn sign_in(
        &self,
        http: &reqwest::Client,
        username: &str,
        password: &str,
        forwarded_for: Option<&str>,
    ) -> reqwest::Response {
        let mut request = http
            .post(format!("{}/console/sign-in", self.url))
            .form(&[("username", username), ("password", password)]);
        if let Some(address) = forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        request.send().await.unwrap()
    }
}

/// Behind a trusted proxy on loopback, as the console is deployed behind
/// an ingress controller.
fn behind_proxy() -> admin::console::ConsoleSettings {
    admin::console::ConsoleSettings {
        trusted_proxies: admin::console::parse_trusted_proxies("127.0.0.1").unwrap(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_hundred_guesses_at_once_check_at_most_the_limit_and_the_right_one_waits_past_it() {
    let console = Console::start(Default::default()).await;
    let http = console_support::client();
    let attempts = (0..100).map(|n| {
        let password = if n == 60 {
            PASSWORD.to_owned()
        } else {
            format!("wrong guess number {n}")
        };
        let http = http.clone();
        let console = &console;
        async move {
            console
                .sign_in(&http, "ops", &password, None)
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let throttled = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let checked = statuses.len() - throttled;
    assert!(
        checked <= auth::FREE_FAILURES as usize,
        "{checked} passwords were checked against a limit of {}: {statuses:?}",
        auth::FREE_FAILURES
    );
    assert!(
        statuses.iter().all(|status| [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::UNAUTHORIZED,
            StatusCode::SEE_OTHER
        ]
        .contains(status)),
        "{statuses:?}"
    );
    let signed_in = statuses.contains(&StatusCode::SEE_OTHER);
    if !signed_in {
        // The right password came after the limit: it waits like the rest.
        let response = console.sign_in(&http, "ops", PASSWORD, None).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().get(SET_COOKIE).is_none());
    }
    let counted: i32 = console
        .db
        .admin_client()
        .await
        .query_opt(
            "select failures from console_sign_in_throttle where username = 'ops'",
            &[],
        )
        .await
        .unwrap()
        .map_or(0, |row| row.get(0));
    assert!(
        counted <= auth::FREE_FAILURES,
        "{counted} attempts were counted"
    );
}

#[tokio::test]
async fn failures_elsewhere_never_lock_out_the_right_password_from_a_clean_address() {
    let console = Console::start(behind_proxy()).await;
    let http = console_support::client();
    // Someone guesses ops's password from one address until it must wait.
    for n in 0..auth::FREE_FAILURES {
        let response = console
            .sign_in(&http, "ops", &format!("guess {n}"), Some("203.0.113.9"))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = console
        .sign_in(&http, "ops", PASSWORD, Some("203.0.113.9"))
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...and sprays made-up names from it.
    for n in 0..auth::WIDE_FAILURES {
        console
            .sign_in(
                &http,
                &format!("made-up-{n}"),
                "guessing",
                Some("203.0.113.9"),
            )
            .await;
    }
    // The operator, from the office, is let through.
    let response = console
        .sign_in(&http, "ops", PASSWORD, Some("198.51.100.7"))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // A colleague who shares the attacker's address but has not failed
    // from it is let through as well.
    let response = console
        .sign_in(&http, "watcher", PASSWORD, Some("203.0.113.9"))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // While ops's name is under attack, a new address that fails once
    // waits at once.
    for n in 0..auth::WIDE_FAILURES {
        console
            .sign_in(&http, "ops", "wrong", Some(&format!("192.0.2.{n}")))
            .await;
    }
    let response = console
        .sign_in(&http, "ops", PASSWORD, Some("192.0.2.1"))
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Attempts with names no operator can have (2.5 KB of junk each), or
/// passwords longer than any an operator sets, are refused before they
/// cost a row or a password check.
#[tokio::test]
async fn junk_names_and_passwords_cost_nothing() {
    let console = Console::start(behind_proxy()).await;
    let http = console_support::client();
    let junk = "x".repeat(2500);
    for name in [junk.as_str(), "-starts-badly", "Ops Team"] {
        let response = console
            .sign_in(&http, name, "guessing", Some("203.0.113.50"))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
    }
    let long_password = "p".repeat(auth::MAX_PASSWORD_BYTES + 1);
    let response = console
        .sign_in(&http, "ops", &long_password, Some("203.0.113.50"))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        console.throttle_rows().await,
        0,
        "nothing was counted for them"
    );
}

#[tokio::test]
async fn a_client_cannot_choose_its_address_without_a_trusted_proxy() {
    let console = Console::start(Default::default()).await;
    let http = console_support::client();
    for n in 0..auth::FREE_FAILURES {
        let forged = format!("198.51.100.{n}");
        console
            .sign_in(&http, "ops", "wrong password", Some(&forged))
            .await;
    }
    let response = console
        .sign_in(&http, "ops", PASSWORD, Some("198.51.100.200"))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "X-Forwarded-For from an untrusted peer changed the client"
    );
}

#[tokio::test]
async fn a_pair_backs_off_ever_longer_instead_of_being_locked() {
    let console = Console::start(Default::default()).await;
    let http = console_support::client();
    for _ in 0..auth::FREE_FAILURES {
        console.sign_in(&http, "ops", "wrong password", None).await;
    }
    let retry_after = |response: &reqwest::Response| -> u64 {
        response.headers()[RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let response = console.sign_in(&http, "ops", PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let first = retry_after(&response);
    assert!(
        first <= auth::FIRST_BACKOFF.as_secs() && first > 0,
        "{first}"
    );
    // The wait runs out: one more attempt is checked, and a wrong one
    // doubles the wait.
    let expire = "update console_sign_in_throttle set last_failure_at = now() - interval '1 hour'";
    console
        .db
        .admin_client()
        .await
        .execute(expire, &[])
        .await
        .unwrap();
    let response = console.sign_in(&http, "ops", "wrong again", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = console.sign_in(&http, "ops", PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let second = retry_after(&response);
    assert!(
        second > first && second <= 2 * auth::FIRST_BACKOFF.as_secs(),
        "{first} then {second}"
    );
    // Once it has run out, the right password signs in and clears the pair.
    console
        .db
        .admin_client()
        .await
        .execute(expire, &[])
        .await
        .unwrap();
    let response = console.sign_in(&http, "ops", PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(console.throttle_rows().await, 0);
}

#[tokio::test]
async fn a_sign_in_form_posted_from_another_site_is_refused() {
    let console = Console::start(Default::default()).await;
    let http = console_support::client();
    let host = console.url.trim_start_matches("http://").to_owned();
    let post = |headers: Vec<(&'static str, String)>| {
        let mut request = http
            .post(format!("{}/console/sign-in", console.url))
            .form(&[("username", "ops"), ("password", PASSWORD)]);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    for headers in [
        vec![("origin", "https://evil.example".to_owned())],
        vec![("origin", "null".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
        vec![
            ("sec-fetch-site", "same-site".to_owned()),
            ("origin", format!("http://{host}")),
        ],
    ] {
        let response = post(headers.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(response.headers().get(SET_COOKIE).is_none());
    }
    for headers in [
        vec![("origin", format!("http://{host}"))],
        vec![("sec-fetch-site", "same-origin".to_owned())],
    ] {
        let response = post(headers.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{headers:?}");
    }
}

#[tokio::test]
async fn a_nul_byte_in_a_filter_or_form_is_refused_with_422_and_changes_nothing() {
    let console = Console::start(Default::default()).await;
    let ops = Browser::sign_in(&console.url, "ops", PASSWORD).await;
    for path in [
        "/console/history?ticket=SUP%00-1",
        "/console/tenants?search=%00",
        "/console/dead-letters?tenant=a%00b",
    ] {
        let (status, page) = ops.get(path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {page}");
    }
    let (status, _) = ops
        .submit(
            "/console/tenants",
            &[
                ("tenant_id", "nul-tenant"),
                ("name", "Acme\u{0}MSP"),
                ("itsm_kind", "servicedesk_plus"),
                ("itsm_base_url", "https://sdp.acme.example"),
                ("itsm_credentials", r#"{"authtoken":"x"}"#),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let tenants: i64 = console
        .db
        .admin_client()
        .await
        .query_one("select count(*) from tenants", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tenants, 0);
}

#[tokio::test]
async fn weak_passwords_are_refused_when_an_operator_is_made() {
    let console = Console::start(Default::default()).await;
    let pool = aia_store::pool(&console.db.admin_read_url, 1).unwrap();
    for (username, password) in [
        ("spaces", "            "),
        ("repeated", "zzzzzzzzzzzzzzzz"),
        ("samename1234", "samename1234"),
        ("common", "qwerty123456"),
    ] {
        let err = auth::create_user(&pool, username, password, Role::Viewer)
            .await
            .unwrap_err();
        assert!(
            matches!(err, auth::AuthError::WeakPassword(_)),
            "{username}: {err}"
        );
    }
    let users: i64 = console
        .db
        .admin_client()
        .await
        .query_one("select count(*) from console_users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 2, "only the test's own operators exist");
}

#[tokio::test]
async fn hsts_is_sent_only_when_the_console_says_it_is_served_over_https() {
    let plain = Console::start(Default::default()).await;
    let response = console_support::client()
        .get(format!("{}/console/sign-in", plain.url))
        .send()
        .await
        .unwrap();
    assert!(!response.headers().contains_key("strict-transport-security"));
    let https = Console::start(admin::console::ConsoleSettings {
        hsts: true,
        ..Default::default()
    })
    .await;
    let response = console_support::client()
        .get(format!("{}/console/sign-in", https.url))
        .send()
        .await
        .unwrap();
    let hsts = response.headers()["strict-transport-security"]
        .to_str()
        .unwrap();
    assert!(hsts.starts_with("max-age=31536000"), "{hsts}");
}

#[tokio::test]
async fn an_unknown_console_path_answers_the_consoles_page_with_its_headers() {
    let console = Console::start(Default::default()).await;
    let response = console_support::client()
        .get(format!("{}/console/no-such-page", console.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().contains_key(CONTENT_SECURITY_POLICY));
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // The API keeps its JSON answer.
    let response = console_support::client()
        .get(format!("{}/admin/no-such-endpoint", console.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn a_ticket_id_with_slashes_cannot_steer_a_link_to_another_tenants_page() {
    let console = Console::start(Default::default()).await;
    console
        .db
        .admin_client()
        .await
        .batch_execute(
            "insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, last_event_id)
             values ('t-one', gen_random_uuid(), 'a/../../t-two/T2', 'completed', now(), gen_random_uuid())",
        )
        .await
        .unwrap();
    let ops = Browser::sign_in(&console.url, "ops", PASSWORD).await;
    let (status, page) = ops.get("/console/history?tenant=t-one").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("/console/tickets/t-one/a%2F..%2F..%2Ft-two%2FT2"),
        "the ticket id is not one encoded path segment:\n{page}"
    );
    assert!(!page.contains("/console/tickets/t-one/a/"), "{page}");
    // The same on an incident's page.
    console
        .db
        .admin_client()
        .await
        .batch_execute(
            "insert into incidents (tenant_id, incident_id, version, status, summary, shared_entities,
                                    first_ticket_at, last_ticket_at, detected_at, detected_by, updated_at)
             values ('t-one', '0190c9a4-0000-7000-8000-00000000bbbb', 1, 'open', '3 tickets', '{}',
                     now(), now(), now(), 'incident-correlator', now());
             insert into incident_tickets (tenant_id, ticket_id, incident_id, subject, received_at, joined_version)
             values ('t-one', 'a/../../t-two/T2', '0190c9a4-0000-7000-8000-00000000bbbb', 'x', now(), 1);",
        )
        .await
        .unwrap();
    let (status, page) = ops
        .get("/console/incidents/t-one/0190c9a4-0000-7000-8000-00000000bbbb")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("/console/tickets/t-one/a%2F..%2F..%2Ft-two%2FT2"),
        "the ticket id is not one encoded path segment:\n{page}"
    );
    assert!(!page.contains("/console/tickets/t-one/a/"), "{page}");
}

/// A large history, and an operator who starts the two CSV exports the
/// console allows at once and reads neither.
async fn two_exports_held_unread(console: &Console) -> (Browser, Vec<reqwest::Response>) {
    console
        .db
        .admin_client()
        .await
        .batch_execute(
            "insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, subject, received_at, last_event_id)
             select 't-one', gen_random_uuid(), 'T-' || n, 'completed', repeat('printer offline ', 12),
                    now() - (n || ' seconds')::interval, gen_random_uuid()
               from generate_series(1, 150000) n",
        )
        .await
        .unwrap();
    let ops = Browser::sign_in(&console.url, "ops", PASSWORD).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let export = ops.get_response("/console/history.csv").await;
        assert_eq!(export.status(), StatusCode::OK);
        held.push(export);
    }
    (ops, held)
}

/// Clients that start a CSV export of a large history and never read it
/// hold only the exports' own connections: a third export is told to come
/// back, and every page keeps answering.
#[tokio::test]
async fn exports_that_are_never_read_do_not_hang_the_console() {
    let console = Console::start(Default::default()).await;
    let (ops, held) = two_exports_held_unread(&console).await;
    let third = ops.get_response("/console/history.csv").await;
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    for _ in 0..20 {
        let (status, page) = ops.get("/console").await;
        assert_eq!(status, StatusCode::OK, "{page}");
    }
    drop(held);
}

/// An export nobody reads on lets its connection go once it has waited
/// for its client long enough: the server process behind it, blocked
/// writing to the socket, ends with it, and the next export gets one.
#[tokio::test]
async fn an_export_that_stops_being_read_closes_its_connection() {
    let console = Console::start(admin::console::ConsoleSettings {
        export_stalled_after: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let (ops, held) = two_exports_held_unread(&console).await;
    // Both still held by their clients, neither read: after the stall,
    // their connections are closed and a third export is served.
    let third = aia_testkit::eventually(
        "an export served again",
        std::time::Duration::from_secs(30),
        || async {
            let third = ops.get_response("/console/history.csv").await;
            (third.status() == StatusCode::OK).then_some(third)
        },
    )
    .await;
    let body = third.text().await.unwrap();
    assert_eq!(
        body.lines().count(),
        150_001,
        "the whole history, header and all"
    );
    drop(held);
}

/// A page shows the outcome its own form sent it to, never words a link
/// made elsewhere puts in its URL.
#[tokio::test]
async fn a_crafted_link_cannot_put_words_on_a_console_page() {
    let console = Console::start(Default::default()).await;
    let ops = Browser::sign_in(&console.url, "ops", PASSWORD).await;
    for page in ["/console/dead-letters", "/console/incidents"] {
        let (status, body) = ops
            .get(&format!(
                "{page}?message=Your+session+expired%3A+sign+in+at+evil.example&tag=00"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!body.contains("evil.example"), "{page}: {body}");
    }
}
