//! The admin console on the running pipeline (real NATS JetStream and
//! PostgreSQL): an operator finds a ticket's run in the history, expands
//! it, exports the filter as CSV, opens the ticket's timeline from the
//! stream, dry-runs a stage, and re-drives a dead letter once its cause is
//! fixed — one note, never two.

use crate::console_support;
use crate::pipeline_support;

use std::time::Duration;

use admin::console::Role;
use aia_events::TenantId;
use aia_store::tenants;
use aia_testkit::eventually;
use console_support::Browser;
use pipeline_support::Stack;
use reqwest::StatusCode;

const PASSWORD: &str = "a long operator password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_follows_a_ticket_and_re_drives_a_dead_letter_from_the_console() {
    let stack = Stack::start("right-token", None).await;
    let acme = stack.add_tenant("acme", "right-token").await;
    let beta = stack.add_tenant("beta", "wrong-token").await;
    let send = |tenant: &'static str, ticket: &'static str, description: &'static str| serde_json::json!({"tenant_id": tenant, "ticket_id": ticket, "description": description, "priority": "high"});
    assert_eq!(
        stack
            .send(
                &acme,
                send("acme", "SUP-1", "Outlook keeps asking for my password")
            )
            .await
            .0,
        202
    );
    assert_eq!(
        stack
            .send(
                &beta,
                send("beta", "SUP-2", "Printer on floor 3 is offline")
            )
            .await
            .0,
        202
    );

    let settings = admin::console::ConsoleSettings {
        trace_url: Some("https://grafana.example.com/explore?traceId={trace_id}".into()),
        ..Default::default()
    };
    let url = console_on_url(&stack, settings).await;
    let ops = Browser::sign_in(&url, "ops", PASSWORD).await;

    // The history: acme's run completed, beta's failed.
    let page = eventually("both runs to end", Duration::from_secs(30), || async {
        let (_, page) = ops.get("/console/history").await;
        (page.contains(r#"<span class="status completed">completed</span> acme / SUP-1"#)
            && page.contains(r#"<span class="status failed">failed</span> beta / SUP-2"#))
        .then_some(page)
    })
    .await;
    // A row expands to its note as ServiceDesk Plus shows it (the HTML
    // write-back posted, with the run's marker), beside the Markdown.
    assert!(
        page.contains("The note as posted")
            && page.contains("As the technician sees it in servicedesk_plus (html)"),
        "a row expands to its note as posted"
    );
    let shown = regex::Regex::new(r#"(?s)<div class="ticket-note">(.*?)</div>"#)
        .unwrap()
        .captures(&page)
        .expect("the rendered note")[1]
        .to_owned();
    let posted = stack.sdp.notes("SUP-1")[0].description.clone();
    assert_eq!(
        shown, posted,
        "the note shown is exactly the HTML ServiceDesk Plus received"
    );
    assert!(shown.contains("<em>ai-agents-ref:"), "{shown}");
    let marker = regex::Regex::new(r"ai-agents-ref:[0-9a-f-]{36}").unwrap();
    assert!(
        page.contains("The whole context as gathered") && page.contains("similar_tickets"),
        "and to its context"
    );
    assert!(
        page.contains("How each source fared") && page.contains("similar tickets: "),
        "and to each source's report"
    );
    assert!(
        page.contains("ServiceDesk Plus rejected the API key"),
        "and to its error"
    );
    let (status, failed) = ops.get("/console/history?status=failed").await;
    assert_eq!(status, StatusCode::OK);
    assert!(failed.contains("SUP-2") && !failed.contains("SUP-1"));
    let (_, by_ticket) = ops.get("/console/history?ticket=SUP-1").await;
    assert!(by_ticket.contains("acme / SUP-1") && !by_ticket.contains("SUP-2"));
    let (status, _) = ops.get("/console/history?from=yesterday").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a malformed date is refused, not ignored"
    );

    // The CSV of the current filter.
    let response = ops.get_response("/console/history.csv?tenant=acme").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    // Every field quoted (a spreadsheet splitting on `;` splits no field).
    assert!(lines[0].starts_with(r#""tenant_id","ticket_id","run_id","status","#));
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with(r#""acme","SUP-1","#) && lines[1].contains(r#","completed","#));

    // The timeline from the stream, with trace links.
    let (status, timeline) = ops.get("/console/tickets/acme/SUP-1").await;
    assert_eq!(status, StatusCode::OK);
    let events = timeline
        .split("Every event of the ticket in the stream")
        .nth(1)
        .expect("the table of events");
    let mut last = 0;
    for event in [
        "ticket.received",
        "context.gathered",
        "enhancement.generated",
        "writeback.completed",
    ] {
        let at = events
            .find(&format!("<td>{event}</td>"))
            .unwrap_or_else(|| panic!("{event} missing"));
        assert!(at > last, "{event} out of order");
        last = at;
    }
    // Each run as a picture: its stages to scale, in words and as a table.
    assert!(timeline.contains(r#"<svg class="chart bars""#));
    for stage in ["context", "LLM", "write-back"] {
        assert!(
            timeline.contains(&format!(r#"<th scope="row">{stage}</th>"#)),
            "{stage} has no bar"
        );
    }
    assert!(timeline.contains("As the technician sees it in servicedesk_plus (html)"));
    // An event whose publisher was traced links to its trace (the test
    // process exports no traces, so this one is published with its header).
    let mut traced = aia_events::examples::all()
        .into_iter()
        .find(|event| matches!(event.payload, aia_events::Payload::TicketReceived(_)))
        .unwrap();
    traced.tenant_id = TenantId::parse("acme").unwrap();
    traced.ticket_id = aia_events::TicketId::parse("TRACED-1").unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    let (_client, publisher) = aia_bus::connect(&stack.nats.url(), "test").await.unwrap();
    publisher
        .publish_with_headers(
            aia_events::subject::for_event(aia_events::subject::DEFAULT_PREFIX, &traced),
            headers,
            traced.to_json().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let (_, timeline) = ops.get("/console/tickets/acme/TRACED-1").await;
    assert!(
        timeline.contains(r#"<a href="https://grafana.example.com/explore?traceId=4bf92f3577b34da6a3ce929d0e0e4736" rel="noopener">4bf92f3577b34da6a3ce929d0e0e4736</a>"#),
        "{timeline}"
    );
    let (status, _) = ops.get("/console/tickets/acme/NO-SUCH").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A dry-run of the context stage on the recorded input.
    let (status, dry) = ops
        .submit(
            "/console/tickets/acme/SUP-1/dry-run",
            &[("stage", "context-gatherer")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        dry.contains("Dry-run result") && dry.contains("recorded: ") && dry.contains("now: "),
        "{dry}"
    );

    // A dry-run of write-back shows the note it would post, rendered.
    let (status, dry) = ops
        .submit(
            "/console/tickets/acme/SUP-1/dry-run",
            &[("stage", "writeback")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let would = dry
        .split("What write-back would post now")
        .nth(1)
        .expect("the note write-back would post");
    assert!(
        would.contains(r#"<div class="ticket-note">"#)
            && would.contains(marker.find(&posted).unwrap().as_str()),
        "{would}"
    );

    // The dead letter, re-driven after the fix: one note, and a second
    // re-drive of the same run is refused.
    let (_, letters) = ops.get("/console/dead-letters").await;
    let run = regex::Regex::new(r#"name="runs" value="(beta/[0-9a-f-]{36})""#)
        .unwrap()
        .captures(&letters)
        .expect("beta's dead letter is listed")[1]
        .to_owned();
    let pool = aia_store::pool(&stack.db.app_url, 1).unwrap();
    let fix = tenants::TenantUpdate {
        itsm_credentials: Some(aia_store::Secret::new(r#"{"authtoken":"right-token"}"#)),
        ..Default::default()
    };
    tenants::update(
        &mut pool.get().await.unwrap(),
        &stack.keyring(),
        &TenantId::parse("beta").unwrap(),
        &fix,
    )
    .await
    .unwrap();
    let (status, _) = ops
        .submit("/console/dead-letters/redrive", &[("runs", &run)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    eventually("the re-driven note", Duration::from_secs(30), || async {
        (stack.sdp.notes("SUP-2").len() == 1).then_some(())
    })
    .await;
    let (status, _) = ops
        .submit("/console/dead-letters/redrive", &[("runs", &run)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.sdp.notes("SUP-2").len(), 1, "never a second note");
    assert_eq!(stack.sdp.notes("SUP-1").len(), 1);

    // Two admin replicas sample the stages' lag in the same minute: both
    // succeed, one row per consumer and minute stands, and the dashboard
    // charts it.
    let admin_pool = aia_store::pool(&stack.db.admin_read_url, 2).unwrap();
    let (_sampler, jetstream) = aia_bus::connect(&stack.nats.url(), "sampler")
        .await
        .unwrap();
    let (one, two) = tokio::join!(
        admin::console::lag::sample(&admin_pool, &jetstream, false),
        admin::console::lag::sample(&admin_pool, &jetstream, true),
    );
    let written = one.unwrap() + two.unwrap();
    let rows = stack
        .db
        .admin_client()
        .await
        .query(
            "select consumer, count(*) from stage_lag_samples group by consumer, sampled_at",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.iter().all(|row| row.get::<_, i64>(1) == 1));
    let consumers: std::collections::BTreeSet<String> = rows.iter().map(|row| row.get(0)).collect();
    for stage in [
        "context-gatherer",
        "llm-enhancer",
        "writeback",
        "history-projector",
    ] {
        assert!(consumers.contains(stage), "{stage} was not sampled");
    }
    assert_eq!(written, rows.len(), "every insert that counted is a row");
    let (_, dashboard) = ops.get("/console").await;
    let charted = regex::Regex::new(
        r#"<desc id="lag-writeback-desc">writeback: waiting events \(lag\) \(most events waiting in a minute\)\. the last 24 hours: latest \d+"#,
    )
    .unwrap();
    assert!(
        charted.is_match(&dashboard),
        "the dashboard charts the sample"
    );

    let (_, audit) = ops.get("/console/audit").await;
    assert!(audit.contains("dead_letter.redrive") && audit.contains("ticket.dry_run"));
    stack.stop().await;
}

/// The console on a running stack, with its operator "ops" (an admin).
async fn console_on_url(stack: &Stack, settings: admin::console::ConsoleSettings) -> String {
    let operators = [("ops", PASSWORD, Role::Admin)];
    let (app, admin_read) = (&stack.db.app_url, &stack.db.admin_read_url);
    console_support::serve_on(
        app,
        admin_read,
        stack.keyring(),
        &stack.nats.url(),
        settings,
        &operators,
    )
    .await
}

/// The console on a running stack, with its admin signed in.
async fn console_on(stack: &Stack) -> Browser {
    let url = console_on_url(stack, Default::default()).await;
    Browser::sign_in(&url, "ops", PASSWORD).await
}

async fn status_of(stack: &Stack, ticket: &str) -> Option<String> {
    stack
        .db
        .admin_client()
        .await
        .query_opt(
            "select status from enhancement_history where ticket_id = $1",
            &[&ticket],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_tenants_tickets_wait_and_are_worked_on_once_after_resuming() {
    let stack = Stack::start("right-token", None).await;
    let acme = stack.add_tenant("acme", "right-token").await;
    let ops = console_on(&stack).await;
    let (status, page) = ops
        .submit("/console/tenants/acme/processing/pause", &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"<span class="bad">paused</span> (0 events set aside)"#),
        "{page}"
    );

    let ticket = serde_json::json!({"tenant_id": "acme", "ticket_id": "SUP-10", "description": "VPN drops every hour", "priority": "high"});
    assert_eq!(stack.send(&acme, ticket).await.0, 202);
    eventually(
        "the event to be set aside",
        Duration::from_secs(20),
        || async {
            let (_, page) = ops.get("/console/tenants/acme").await;
            page.contains("(1 events set aside)").then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        stack.sdp.notes("SUP-10").is_empty(),
        "a paused tenant gets no note"
    );
    assert_eq!(
        status_of(&stack, "SUP-10").await.as_deref(),
        Some("received")
    );

    // A dry-run would set the event aside too (a write): it is refused.
    let (_, dry) = ops
        .submit(
            "/console/tickets/acme/SUP-10/dry-run",
            &[("stage", "context-gatherer")],
        )
        .await;
    assert!(dry.contains("is paused; resume it to dry-run"), "{dry}");
    let (_, page) = ops.get("/console/tenants/acme").await;
    assert!(
        page.contains("(1 events set aside)"),
        "the dry-run set nothing aside"
    );

    let (status, page) = ops
        .submit("/console/tenants/acme/processing/resume", &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Resumed: 1 set-aside events published again."),
        "{page}"
    );
    eventually(
        "the note after resuming",
        Duration::from_secs(30),
        || async {
            (status_of(&stack, "SUP-10").await.as_deref() == Some("completed")).then_some(())
        },
    )
    .await;
    assert_eq!(stack.sdp.notes("SUP-10").len(), 1);
    // Resuming again publishes nothing more.
    let (_, page) = ops
        .submit("/console/tenants/acme/processing/resume", &[])
        .await;
    assert!(page.contains("Resumed: 0 set-aside events"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.sdp.notes("SUP-10").len(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_stage_holds_its_events_in_the_stream_until_resumed() {
    let stack = Stack::start("right-token", None).await;
    let acme = stack.add_tenant("acme", "right-token").await;
    let ops = console_on(&stack).await;
    let (status, _) = ops.submit("/console/stages/writeback/pause", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, dashboard) = ops.get("/console").await;
    assert!(
        dashboard.contains("Resume writeback"),
        "the dashboard offers to resume it"
    );

    let ticket = serde_json::json!({"tenant_id": "acme", "ticket_id": "SUP-20", "description": "Disk full on FS01", "priority": "high"});
    assert_eq!(stack.send(&acme, ticket).await.0, 202);
    eventually(
        "the run to reach the paused stage",
        Duration::from_secs(20),
        || async {
            (status_of(&stack, "SUP-20").await.as_deref() == Some("enhanced")).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        stack.sdp.notes("SUP-20").is_empty(),
        "a paused write-back posts nothing"
    );
    let (_, dashboard) = ops.get("/console").await;
    let waiting = regex::Regex::new(r#"<th scope="row">writeback</th>\s*<td>1</td>"#).unwrap();
    assert!(waiting.is_match(&dashboard), "one event waits: {dashboard}");

    let (status, _) = ops.submit("/console/stages/writeback/resume", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    eventually(
        "the note after resuming",
        Duration::from_secs(30),
        || async { (stack.sdp.notes("SUP-20").len() == 1).then_some(()) },
    )
    .await;
    let (_, audit) = ops.get("/console/audit").await;
    assert!(audit.contains("stage.pause") && audit.contains("stage.resume"));
    stack.stop().await;
}
