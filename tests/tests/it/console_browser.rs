//! The admin console in a real browser (headless Chromium through
//! chromedriver) on the running pipeline: an operator signs in with the
//! keyboard, creates a tenant and sees its secret once, sends a webhook and
//! watches the enhancement appear in the history, opens its timeline,
//! re-drives a dead letter, pauses and resumes a tenant, deletes one after
//! typing its id, and signs out; and the refusals — a wrong password, a form
//! stripped of its CSRF token, a page without a session, a viewer's
//! hand-made POST. Every page is screenshotted into
//! `target/console-screenshots/`, and checked for labelled fields and
//! readable contrast.

use crate::console_support;
use crate::pipeline_support;

use std::time::Duration;

use admin::console::Role;
use console_support::Chromium;
use fantoccini::Locator;
use fantoccini::key::Key;
use pipeline_support::Stack;

const PASSWORD: &str = "a long operator password";
const VIEWER_PASSWORD: &str = "a long viewer password";

/// Every form field has a label, and text and buttons have at least the
/// WCAG AA contrast (4.5:1) against what is behind them.
const ACCESSIBILITY: &str = r#"
const unlabelled = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(el => !(el.id && document.querySelector(`label[for="${el.id}"]`)) && !el.closest('label') && !el.getAttribute('aria-label'))
  .map(el => el.name || el.id);
const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
const lum = ([r, g, b]) => {
  const c = [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
};
const background = el => {
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length >= 3 && (c.length < 4 || c[3] > 0)) return c;
  }
  return [255, 255, 255];
};
const poor = [...document.querySelectorAll('h1, h2, p, td, th, dt, dd, a, button:not([disabled]), label, summary')]
  .filter(el => el.offsetParent !== null && el.textContent.trim())
  .map(el => {
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
    return [el.tagName + ':' + el.textContent.trim().slice(0, 30), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
  })
  .filter(([, ratio]) => ratio < 4.5);
return {unlabelled, poor};
"#;

async fn check_accessibility(browser: &Chromium, page: &str) {
    let report = browser.client.execute(ACCESSIBILITY, vec![]).await.unwrap();
    assert_eq!(
        report["unlabelled"],
        serde_json::json!([]),
        "{page}: unlabelled fields"
    );
    assert_eq!(
        report["poor"],
        serde_json::json!([]),
        "{page}: contrast below 4.5:1"
    );
}

async fn goto(browser: &Chromium, url: &str) {
    browser.client.goto(url).await.unwrap();
}

async fn visit(browser: &Chromium, url: &str, shot: &str) -> String {
    browser.client.goto(url).await.unwrap();
    browser.screenshot(shot).await;
    check_accessibility(browser, shot).await;
    browser.client.source().await.unwrap()
}

async fn wait_for_text(browser: &Chromium, url: &str, text: &str) -> String {
    for _ in 0..150 {
        browser.client.goto(url).await.unwrap();
        let page = browser.client.source().await.unwrap();
        if page.contains(text) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{url} never showed {text:?}");
}

async fn click(browser: &Chromium, css: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("{css}: {err}"))
        .click()
        .await
        .unwrap();
}

async fn fill(browser: &Chromium, css: &str, text: &str) {
    let field = browser.client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// The text of the first element matching `css`, waiting for it to appear
/// (a click's page may still be loading).
async fn text_of(browser: &Chromium, css: &str) -> String {
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("{css}: {err}"))
        .text()
        .await
        .unwrap()
}

/// Waits until an element matching `css` contains `text` (the page a click
/// leads to may take a moment to replace the current one).
async fn wait_for_text_in(browser: &Chromium, css: &str, text: &str) {
    for _ in 0..100 {
        if let Ok(element) = browser.client.find(Locator::Css(css)).await
            && element.text().await.is_ok_and(|found| found.contains(text))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {text:?}");
}

/// Waits until the page and its deferred script have loaded.
async fn wait_for_ready(browser: &Chromium) {
    for _ in 0..100 {
        let state = browser
            .client
            .execute("return document.readyState", vec![])
            .await
            .unwrap();
        if state == "complete" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page never finished loading");
}

/// The focused element once it is the field `id`. The browser applies
/// `autofocus` at a rendering step after the page has loaded, so the
/// focus is awaited (within 5 s), not read at once.
async fn focused_field(browser: &Chromium, id: &str) -> fantoccini::elements::Element {
    let mut last = None;
    for _ in 0..100 {
        let focused = browser.client.active_element().await.unwrap();
        last = focused.attr("id").await.unwrap();
        if last.as_deref() == Some(id) {
            return focused;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the field {id} never had the focus (the focus is on {last:?})");
}

/// Waits until the page's path is `path`.
async fn wait_for_path(browser: &Chromium, path: &str) {
    for _ in 0..100 {
        if browser.client.current_url().await.unwrap().path() == path {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never reached {path}");
}

/// The page fits the window (tables scroll inside themselves, never the
/// page), and every chart is drawn at a readable size.
const FITS: &str = r#"
const wide = document.documentElement.scrollWidth > window.innerWidth + 1;
const beyond = wide ? [...document.querySelectorAll('body *')]
  .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
  .filter(el => { for (let e = el.parentElement; e; e = e.parentElement) { if (getComputedStyle(e).overflowX !== 'visible') return false; } return true; })
  .slice(0, 5).map(el => el.tagName + '.' + el.className) : [];
const charts = [...document.querySelectorAll('svg.chart')].map(svg => svg.getBoundingClientRect().width);
const narrow = charts.filter(width => width < 300 || width > window.innerWidth);
return {wide, beyond, narrow, charts: charts.length, inner: window.innerWidth};
"#;

/// The dashboard's charts, a tenant's, the history and a run's picture at
/// `width`: screenshotted, accessible, fitting, and a chart's table opened
/// with the keyboard.
async fn product_views(browser: &Chromium, base: &str, width: u32, device: &str) {
    browser.client.set_window_size(width, 1000).await.unwrap();
    let views = [
        ("/console", "20-dashboard-charts-24h", 5),
        ("/console?period=7d", "21-dashboard-charts-7d", 5),
        ("/console/tenants/gamma", "22-tenant-charts", 4),
        ("/console/history?tenant=gamma", "23-history", 0),
        ("/console/tickets/gamma/GAM-1", "24-run-picture", 1),
        ("/console/incidents", "25-incidents", 0),
    ];
    for (path, shot, least_charts) in views {
        let page = visit(
            browser,
            &format!("{base}{path}"),
            &format!("{shot}-{device}"),
        )
        .await;
        let fits = browser.client.execute(FITS, vec![]).await.unwrap();
        assert_eq!(
            fits["wide"], false,
            "{path} at {width} px scrolls sideways: {fits}"
        );
        assert_eq!(
            fits["narrow"],
            serde_json::json!([]),
            "{path} at {width} px: {fits}"
        );
        assert!(
            fits["charts"].as_u64().unwrap() >= least_charts,
            "{path}: {fits}"
        );
        if least_charts > 0 {
            // The charts themselves, for a person to look at.
            browser
                .client
                .execute(
                    "document.querySelector('figure.chart').scrollIntoView()",
                    vec![],
                )
                .await
                .unwrap();
            browser.screenshot(&format!("{shot}-{device}-charts")).await;
        }
        if path == "/console" {
            assert!(page.contains("3 tickets: mail does not arrive") && page.contains("MAIL-1"));
        }
    }
    // The history row opened shows the note as ServiceDesk Plus shows it.
    goto(browser, &format!("{base}/console/history?tenant=gamma")).await;
    click(browser, "ol.runs summary").await;
    wait_for_text_in(browser, "ol.runs details", "As the technician sees it").await;
    for (selector, shot) in [
        ("ol.runs details table", "26-history-context"),
        ("ol.runs details .side-by-side", "26-history-note-as-posted"),
    ] {
        browser
            .client
            .execute(
                &format!("document.querySelector('{selector}').scrollIntoView()"),
                vec![],
            )
            .await
            .unwrap();
        browser.screenshot(&format!("{shot}-{device}")).await;
    }
    check_accessibility(browser, "history, opened").await;
    // A chart's figures open as a table from the keyboard.
    goto(browser, &format!("{base}/console")).await;
    browser
        .client
        .execute(
            "document.querySelector('details.as-table summary').focus()",
            vec![],
        )
        .await
        .unwrap();
    browser
        .client
        .active_element()
        .await
        .unwrap()
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    let open = browser
        .client
        .execute(
            "return document.querySelector('details.as-table').open",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(open, true, "Enter on \"Show as table\" opens the table");
    browser
        .screenshot(&format!("27-chart-as-table-{device}"))
        .await;
    check_accessibility(browser, "chart as table").await;
}

/// Signs in with the keyboard only: the user name field has the focus,
/// Tab moves to the password, Enter submits.
async fn sign_in_by_keyboard(browser: &Chromium, base: &str, username: &str, password: &str) {
    browser
        .client
        .goto(&format!("{base}/console/sign-in"))
        .await
        .unwrap();
    let focused = focused_field(browser, "username").await;
    focused.send_keys(username).await.unwrap();
    focused
        .send_keys(&String::from(char::from(Key::Tab)))
        .await
        .unwrap();
    let focused = browser.client.active_element().await.unwrap();
    assert_eq!(
        focused.attr("id").await.unwrap().as_deref(),
        Some("password"),
        "Tab reaches the password"
    );
    focused
        .send_keys(&format!("{password}{}", char::from(Key::Enter)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_the_console_in_a_browser() {
    let stack = Stack::start("right-token", None).await;
    let operators = [
        ("ops", PASSWORD, Role::Admin),
        ("watcher", VIEWER_PASSWORD, Role::Viewer),
    ];
    let (app, admin_read) = (&stack.db.app_url, &stack.db.admin_read_url);
    let base = console_support::serve_on(
        app,
        admin_read,
        stack.keyring(),
        &stack.nats.url(),
        Default::default(),
        &operators,
    )
    .await;
    let browser = Chromium::start().await;

    // A page without a session goes to the sign-in page.
    goto(&browser, &format!("{base}/console/history")).await;
    wait_for_path(&browser, "/console/sign-in").await;
    browser.screenshot("01-sign-in").await;
    check_accessibility(&browser, "sign-in").await;

    // A wrong password is refused.
    sign_in_by_keyboard(&browser, &base, "ops", "not the password").await;
    wait_for_text_in(&browser, "p.error", "Wrong user name or password").await;
    browser.screenshot("02-wrong-password").await;

    sign_in_by_keyboard(&browser, &base, "ops", PASSWORD).await;
    wait_for_path(&browser, "/console").await;
    visit(&browser, &format!("{base}/console"), "03-dashboard").await;

    // A tenant is created; its secret is shown once.
    visit(
        &browser,
        &format!("{base}/console/tenants/new"),
        "04-new-tenant",
    )
    .await;
    fill(&browser, "#tenant_id", "gamma").await;
    fill(&browser, "#name", "Gamma Ltd").await;
    fill(&browser, "#itsm_base_url", &stack.sdp_server.url()).await;
    fill(
        &browser,
        "#itsm_credentials",
        r#"{"authtoken":"right-token"}"#,
    )
    .await;
    click(&browser, "form.narrow button[type=submit]").await;
    let secret = text_of(&browser, "code#secret").await;
    assert!(secret.len() >= 32);
    browser.screenshot("05-tenant-created").await;
    check_accessibility(&browser, "tenant created").await;
    // The script is deferred: the button works once the page has loaded.
    wait_for_ready(&browser).await;
    click(&browser, "button.copy[data-copy=secret]").await;
    // Copied to the clipboard, or (headless, no permission) selected for
    // the operator after the clipboard's one-second grace.
    let mut copied = String::new();
    for _ in 0..50 {
        copied = text_of(&browser, "button.copy[data-copy=secret]").await;
        if copied != "Copy" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        copied == "Copied" || copied.starts_with("Selected"),
        "{copied}"
    );
    let page = visit(
        &browser,
        &format!("{base}/console/tenants/gamma"),
        "06-tenant",
    )
    .await;
    assert!(!page.contains(&secret), "the secret is never shown again");

    // A webhook becomes an enhancement in the history, with its timeline.
    // Gamma's history and knowledge base, for context a technician judges.
    stack
        .db
        .admin_client()
        .await
        .batch_execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id) values
               ('gamma', 'GAM-0', 'Outlook asks for the password again and again', 'Outlook keeps asking for my password after the update', 'Cleared the cached credentials in Credential Manager', 'high', now(), gen_random_uuid());
             insert into knowledge_articles (tenant_id, article_id, title, body, url) values
               ('gamma', 'kb1', 'Outlook password prompts', 'Outlook asking for the password again: clear the cached credentials.', 'https://wiki.gamma.example/outlook');",
        )
        .await
        .unwrap();
    let ticket = serde_json::json!({"tenant_id": "gamma", "ticket_id": "GAM-1", "description": "Outlook keeps asking for my password", "priority": "high"});
    assert_eq!(
        stack.send(&aia_store::Secret::new(secret), ticket).await.0,
        202
    );
    wait_for_text(
        &browser,
        &format!("{base}/console/history?tenant=gamma"),
        r#"<span class="status completed">completed</span>"#,
    )
    .await;
    browser.screenshot("07-history").await;
    check_accessibility(&browser, "history").await;
    click(&browser, "ol.runs summary").await;
    wait_for_text_in(&browser, "ol.runs details", "The note as posted").await;
    let expanded = browser.client.source().await.unwrap();
    assert!(
        expanded.contains(r#"<th scope="row">GAM-0</th>"#)
            && expanded.contains("Similar resolved tickets"),
        "the similar ticket is listed with its band and why"
    );
    browser.screenshot("08-history-expanded").await;
    click(
        &browser,
        "ol.runs details a[href*='/console/tickets/gamma/GAM-1']",
    )
    .await;
    let timeline = browser.client.source().await.unwrap();
    for event in [
        "ticket.received",
        "context.gathered",
        "enhancement.generated",
        "writeback.completed",
    ] {
        assert!(
            timeline.contains(event),
            "{event} missing from the timeline"
        );
    }
    browser.screenshot("09-timeline").await;
    check_accessibility(&browser, "timeline").await;

    // The product views, on a desktop and on a phone.
    stack
        .db
        .admin_client()
        .await
        .batch_execute(
            "insert into incidents (tenant_id, incident_id, version, status, summary, shared_entities,
                                    first_ticket_at, last_ticket_at, detected_at, detected_by, updated_at)
             values ('gamma', '0190c9a4-0000-7000-8000-00000000aaaa', 1, 'open',
                     '3 tickets: mail does not arrive', '{mx1.gamma.example}',
                     now() - interval '20 minutes', now() - interval '5 minutes', now() - interval '10 minutes',
                     'incident-correlator', now());
             insert into incident_tickets (tenant_id, ticket_id, incident_id, subject, received_at, joined_version)
             select 'gamma', 'MAIL-' || n, '0190c9a4-0000-7000-8000-00000000aaaa', 'No mail since this morning',
                    now() - (n || ' minutes')::interval, 1
               from generate_series(1, 3) n;",
        )
        .await
        .unwrap();
    for (width, device) in [(1280, "desktop"), (390, "phone")] {
        product_views(&browser, &base, width, device).await;
    }
    browser.client.set_window_size(1280, 1000).await.unwrap();

    // A dead letter, re-driven after the fix: one note.
    let beta = stack.add_tenant("beta", "wrong-token").await;
    let ticket = serde_json::json!({"tenant_id": "beta", "ticket_id": "BET-1", "description": "Printer offline", "priority": "low"});
    assert_eq!(stack.send(&beta, ticket).await.0, 202);
    wait_for_text(&browser, &format!("{base}/console/dead-letters"), "BET-1").await;
    browser.screenshot("10-dead-letters").await;
    check_accessibility(&browser, "dead letters").await;
    // The operator fixes the credentials on the tenant's page, then re-drives.
    goto(&browser, &format!("{base}/console/tenants/beta")).await;
    fill(
        &browser,
        "#itsm_credentials",
        r#"{"authtoken":"right-token"}"#,
    )
    .await;
    click(&browser, "form[action$='/settings'] button[type=submit]").await;
    wait_for_text_in(&browser, "p.status", "Saved.").await;
    goto(&browser, &format!("{base}/console/dead-letters")).await;
    click(
        &browser,
        "button[aria-label='Re-drive ticket BET-1 of beta']",
    )
    .await;
    wait_for_text_in(&browser, "p.status", "Re-driven: 1.").await;
    browser.screenshot("11-re-driven").await;
    wait_for_text(
        &browser,
        &format!("{base}/console/history?ticket=BET-1"),
        r#"<span class="status completed">completed</span>"#,
    )
    .await;
    assert_eq!(stack.sdp.notes("BET-1").len(), 1);

    // Pause and resume the tenant.
    goto(&browser, &format!("{base}/console/tenants/gamma")).await;
    click(&browser, "form[action$='/pause'] button").await;
    wait_for_text_in(&browser, "p.status", "Paused").await;
    assert!(
        browser
            .client
            .source()
            .await
            .unwrap()
            .contains(r#"<span class="bad">paused</span>"#)
    );
    browser.screenshot("12-tenant-paused").await;
    click(&browser, "form[action$='/resume'] button").await;
    wait_for_text_in(&browser, "p.status", "Resumed").await;

    // A form stripped of its CSRF token is refused.
    browser
        .client
        .execute(
            "document.querySelector(\"form[action$='/pause'] input[name=csrf]\").remove();",
            vec![],
        )
        .await
        .unwrap();
    click(&browser, "form[action$='/pause'] button").await;
    wait_for_text_in(&browser, "p[role=alert]", "CSRF").await;
    browser.screenshot("13-refused-csrf").await;

    // A form submitted twice at once is sent once: the new secret, shown
    // only once, is not replaced by the refusal of a second rotation.
    goto(&browser, &format!("{base}/console/tenants/gamma")).await;
    wait_for_ready(&browser).await;
    let second_refused = browser
        .client
        .execute(
            r#"const form = document.querySelector('form[action$="/rotate-secret"]');
               const refused = [];
               form.addEventListener('submit', (event) => refused.push(event.defaultPrevented));
               form.requestSubmit(); form.requestSubmit();
               return refused;"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(second_refused, serde_json::json!([false, true]));
    wait_for_text_in(&browser, "h1", "New webhook secret for gamma").await;
    assert!(text_of(&browser, "code#secret").await.len() >= 32);

    // Deleting needs the id typed: the button stays disabled until then.
    goto(&browser, &format!("{base}/console/tenants/gamma")).await;
    let delete = browser
        .client
        .find(Locator::Css("form.danger button"))
        .await
        .unwrap();
    assert!(
        !delete.is_enabled().await.unwrap(),
        "disabled before the confirmation"
    );
    fill(&browser, "form.danger #confirm", "gamma").await;
    assert!(
        delete.is_enabled().await.unwrap(),
        "enabled once the id is typed"
    );
    browser.screenshot("14-delete-confirmed").await;
    delete.click().await.unwrap();
    wait_for_path(&browser, "/console/tenants").await;

    // The audit log shows all of it; then sign out.
    let audit = visit(&browser, &format!("{base}/console/audit"), "15-audit").await;
    for action in [
        "tenant.update",
        "tenant.create",
        "dead_letter.redrive",
        "tenant.pause",
        "tenant.resume",
        "tenant.delete",
    ] {
        assert!(audit.contains(action), "{action} not audited");
    }
    click(&browser, "form.signout button").await;
    wait_for_path(&browser, "/console/sign-in").await;
    goto(&browser, &format!("{base}/console")).await;
    wait_for_path(&browser, "/console/sign-in").await;

    // A viewer sees no actions, and a form made by hand is refused.
    sign_in_by_keyboard(&browser, &base, "watcher", VIEWER_PASSWORD).await;
    wait_for_path(&browser, "/console").await;
    let page = visit(
        &browser,
        &format!("{base}/console/tenants/beta"),
        "16-viewer",
    )
    .await;
    assert!(!page.contains("Pause processing") && !page.contains("Save settings"));
    browser
        .client
        .execute(
            r#"const csrf = document.querySelector('form.signout input[name=csrf]').value;
               const form = document.createElement('form');
               form.method = 'post'; form.action = '/console/tenants/beta/processing/pause';
               const input = document.createElement('input');
               input.type = 'hidden'; input.name = 'csrf'; input.value = csrf;
               form.appendChild(input); document.body.appendChild(form); form.submit();"#,
            vec![],
        )
        .await
        .unwrap();
    wait_for_text_in(&browser, "p[role=alert]", "Your role is viewer").await;
    browser.screenshot("17-viewer-refused").await;
    let paused: bool = stack
        .db
        .admin_client()
        .await
        .query_one(
            "select paused_at is not null from tenants where tenant_id = 'beta'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!paused, "the viewer's POST changed nothing");

    browser.close().await;
    stack.stop().await;
}
