//! Write-back to Jira and Zendesk through the same plugin interface: one
//! internal note per enhancement, the note recognised on redelivery, and
//! rejected credentials named in writeback.failed.

use aia_bus::{Delivery, Handled};
use aia_events::{Event, ItsmKind, Payload, TenantId, TicketId, examples};
use aia_standins::jira::JiraStandIn;
use aia_standins::zendesk::ZendeskStandIn;
use aia_store::Keyring;
use aia_testkit::TestDatabase;
use base64::Engine as _;

fn basic(user: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

async fn writeback_for(
    kind: ItsmKind,
    base_url: &str,
    credentials: &str,
) -> (TestDatabase, writeback::Writeback) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::create().await;
    let keyring = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
    aiagents::ops::add_tenant(
        &db.app_url,
        &keyring,
        "acme-msp",
        "Acme",
        kind,
        base_url,
        credentials,
    )
    .await
    .unwrap();
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let handler = writeback::Writeback {
        tenants: std::sync::Arc::new(aia_store::TenantCache::new(
            pool.clone(),
            std::sync::Arc::new(keyring),
            std::time::Duration::ZERO,
        )),
        db: pool,
        http: reqwest::Client::new(),
        public_url: None,
        lease: std::time::Duration::from_secs(30),
    };
    (db, handler)
}

fn enhancement(ticket: &str, source: ItsmKind) -> Event {
    let mut event = examples::all()
        .into_iter()
        .find(|event| matches!(&event.payload, Payload::EnhancementGenerated(g) if !g.degraded))
        .unwrap();
    event.tenant_id = TenantId::parse("acme-msp").unwrap();
    event.ticket_id = TicketId::parse(ticket).unwrap();
    // Every call is a run of its own; redeliveries reuse the returned event.
    event.correlation_id = uuid::Uuid::now_v7();
    if let Payload::EnhancementGenerated(generated) = &mut event.payload {
        generated.source = source;
        // As models write them: nested steps, code, emphasis around code
        // (Jira refuses ADF that puts a list or a code mark where its
        // schema does not allow them).
        generated.note_markdown = "## Recommended Next Steps\n\
             1. Re-register the **AAD broker**.\n   \
             - run **`dsregcmd /status`**\n   \
             - then sign in again\n\
             2. Check the logs:\n\n   ```\n   Get-EventLog System\n   ```\n"
            .into();
    }
    event
}

async fn run(handler: &writeback::Writeback, event: Event, attempt: u32) -> Payload {
    let delivery = Delivery {
        attempt,
        max_deliver: Some(8),
        stream_sequence: 1,
    };
    match aia_bus::dispatch(handler, &event, delivery).await.unwrap() {
        Handled::Publish(events) => events[0].payload.clone(),
        Handled::Nothing => panic!("expected an event"),
    }
}

#[tokio::test]
async fn jira_gets_one_internal_adf_comment_even_after_a_crash_before_recording_it() {
    let jira = JiraStandIn::new(basic("bot@acme.example", "jira-token"));
    let server = aia_standins::serve(jira.router()).await.unwrap();
    let (db, handler) = writeback_for(
        ItsmKind::Jira,
        &server.url(),
        r#"{"email":"bot@acme.example","api_token":"jira-token"}"#,
    )
    .await;
    let event = enhancement("SUP-42", ItsmKind::Jira);
    assert!(
        matches!(run(&handler, event.clone(), 1).await, Payload::WritebackCompleted(ref done) if !done.already_present)
    );
    let comments = jira.comments("SUP-42");
    assert_eq!(comments.len(), 1);
    assert!(comments[0].internal, "the comment must be internal");
    assert_eq!(comments[0].body["type"], "doc");
    // A crash after posting and before the ledger said so.
    db.admin_client()
        .await
        .execute("update writeback_ledger set state = 'posting'", &[])
        .await
        .unwrap();
    assert!(
        matches!(run(&handler, event, 2).await, Payload::WritebackCompleted(ref done) if done.already_present)
    );
    assert_eq!(jira.comments("SUP-42").len(), 1);
}

/// Jira lists comments oldest first, a page at a time: on a busy issue our
/// note is past the first page, and the search after a crash must read on
/// to it rather than post a second.
#[tokio::test]
async fn a_crash_after_posting_on_a_busy_jira_issue_still_leaves_one_comment() {
    let jira = JiraStandIn::new(basic("bot@acme.example", "jira-token"));
    let server = aia_standins::serve(jira.router()).await.unwrap();
    let (db, handler) = writeback_for(
        ItsmKind::Jira,
        &server.url(),
        r#"{"email":"bot@acme.example","api_token":"jira-token"}"#,
    )
    .await;
    for n in 0..70 {
        jira.add_comment("SUP-43", &format!("Update {n}: still looking"));
    }
    let event = enhancement("SUP-43", ItsmKind::Jira);
    assert!(
        matches!(run(&handler, event.clone(), 1).await, Payload::WritebackCompleted(ref done) if !done.already_present)
    );
    // The talk went on: our comment is the 71st of 131, on the second of
    // the stand-in's pages of 50 — and inside the first 100, which a client
    // stepping by the page size it asked for would skip.
    for n in 70..130 {
        jira.add_comment("SUP-43", &format!("Update {n}: still looking"));
    }
    db.admin_client()
        .await
        .execute("update writeback_ledger set state = 'posting'", &[])
        .await
        .unwrap();
    assert!(
        matches!(run(&handler, event, 2).await, Payload::WritebackCompleted(ref done) if done.already_present),
        "our comment, past the first pages, must be recognised"
    );
    assert_eq!(jira.comments("SUP-43").len(), 131);
}

#[tokio::test]
async fn jira_service_management_requests_get_a_private_request_comment() {
    let jira = JiraStandIn::new("Bearer pat-123");
    let server = aia_standins::serve(jira.router()).await.unwrap();
    let (_db, handler) = writeback_for(
        ItsmKind::Jira,
        &server.url(),
        r#"{"bearer":"pat-123","api":"servicedesk"}"#,
    )
    .await;
    assert!(matches!(
        run(&handler, enhancement("HELP-7", ItsmKind::Jira), 1).await,
        Payload::WritebackCompleted(_)
    ));
    let comments = jira.comments("HELP-7");
    assert_eq!(comments.len(), 1);
    assert!(comments[0].internal);
    // Its text is rendered as wiki markup: no Markdown heading to become
    // a numbered list.
    let body = comments[0].body.as_str().unwrap();
    assert!(body.starts_with("h2. Recommended Next Steps\n"), "{body}");
    assert!(body.contains("AAD broker"));
}

/// Jira Data Center has only the platform API v2, whose comments are
/// wiki-markup text: the note goes there, internal, and a crash after
/// posting still leaves one (the marker is found in v2's comments).
#[tokio::test]
async fn jira_data_center_gets_one_internal_wiki_comment_through_api_v2() {
    let jira = JiraStandIn::data_center("Bearer pat-123");
    let server = aia_standins::serve(jira.router()).await.unwrap();
    let (db, handler) =
        writeback_for(ItsmKind::Jira, &server.url(), r#"{"bearer":"pat-123"}"#).await;
    let event = enhancement("OPS-9", ItsmKind::Jira);
    assert!(
        matches!(run(&handler, event.clone(), 1).await, Payload::WritebackCompleted(ref done) if !done.already_present)
    );
    let comments = jira.comments("OPS-9");
    assert_eq!(comments.len(), 1);
    assert!(comments[0].internal);
    let body = comments[0].body.as_str().expect("a text body");
    assert!(body.starts_with("h2. Recommended Next Steps\n"), "{body}");
    assert!(body.contains("#* run *{{dsregcmd /status}}*"), "{body}");
    db.admin_client()
        .await
        .execute("update writeback_ledger set state = 'posting'", &[])
        .await
        .unwrap();
    assert!(
        matches!(run(&handler, event, 2).await, Payload::WritebackCompleted(ref done) if done.already_present)
    );
    assert_eq!(jira.comments("OPS-9").len(), 1);
}

#[tokio::test]
async fn zendesk_gets_one_private_comment_and_a_bad_token_is_named() {
    let zendesk = ZendeskStandIn::new(basic("bot@acme.example/token", "zd-token"));
    let server = aia_standins::serve(zendesk.router()).await.unwrap();
    let (db, handler) = writeback_for(
        ItsmKind::Zendesk,
        &server.url(),
        r#"{"email":"bot@acme.example","api_token":"zd-token"}"#,
    )
    .await;
    for id in [4711, 4712] {
        zendesk.desk.put(aia_standins::desk::Ticket::open(
            id,
            "Sign-in loop",
            "Teams keeps asking to sign in",
        ));
    }
    let event = enhancement("4711", ItsmKind::Zendesk);
    assert!(matches!(
        run(&handler, event.clone(), 1).await,
        Payload::WritebackCompleted(_)
    ));
    db.admin_client()
        .await
        .execute("update writeback_ledger set state = 'posting'", &[])
        .await
        .unwrap();
    run(&handler, event, 2).await;
    let comments = zendesk.comments(4711);
    assert_eq!(comments.len(), 1, "exactly one comment");
    assert!(!comments[0].public);
    assert!(
        comments[0]
            .html_body
            .contains("<strong>AAD broker</strong>"),
        "{}",
        comments[0].html_body
    );

    let (_db, wrong) = writeback_for(
        ItsmKind::Zendesk,
        &server.url(),
        r#"{"email":"bot@acme.example","api_token":"revoked"}"#,
    )
    .await;
    match run(&wrong, enhancement("4712", ItsmKind::Zendesk), 1).await {
        Payload::WritebackFailed(failed) => {
            assert_eq!(failed.reason, "Zendesk rejected the API key");
            assert!(failed.permanent);
        }
        other => panic!("expected writeback.failed, got {other:?}"),
    }
}

#[tokio::test]
async fn tenants_choose_visibility_and_a_header_and_footer_line() {
    let jira = JiraStandIn::new(basic("bot@acme.example", "jira-token"));
    let server = aia_standins::serve(jira.router()).await.unwrap();
    let (db, handler) = writeback_for(
        ItsmKind::Jira,
        &server.url(),
        r#"{"email":"bot@acme.example","api_token":"jira-token"}"#,
    )
    .await;
    db.admin_client()
        .await
        .batch_execute(
            "update tenants set settings = settings || '{\"note_visible_to_requester\": true,
                \"note_header\": \"Suggested by AI Agents\", \"note_footer\": \"Questions? Call the service desk.\"}'",
        )
        .await
        .unwrap();
    run(&handler, enhancement("SUP-43", ItsmKind::Jira), 1).await;
    let comment = &jira.comments("SUP-43")[0];
    assert!(
        !comment.internal,
        "the tenant wants requesters to see the note"
    );
    let text = aia_itsm::jira::adf::to_text(&comment.body);
    assert!(text.starts_with("Suggested by AI Agents"), "{text}");
    assert!(text.contains("Questions? Call the service desk."), "{text}");
}

#[tokio::test]
async fn servicedesk_plus_cloud_notes_use_zoho_oauth_with_a_cached_refreshed_token() {
    use aia_standins::servicedesk::ServiceDeskStandIn;
    let sdp = ServiceDeskStandIn::cloud("client-1", "secret-1", "refresh-1");
    let server = aia_standins::serve(sdp.router()).await.unwrap();
    let credentials = serde_json::json!({"client_id": "client-1", "client_secret": "secret-1",
        "refresh_token": "refresh-1", "accounts_url": server.url()})
    .to_string();
    let (_db, handler) = writeback_for(
        ItsmKind::ServicedeskPlus,
        &format!("{}/app/itdesk", server.url()),
        &credentials,
    )
    .await;
    for (n, ticket) in ["101", "102"].iter().enumerate() {
        let outcome = run(&handler, enhancement(ticket, ItsmKind::ServicedeskPlus), 1).await;
        assert!(
            matches!(outcome, Payload::WritebackCompleted(_)),
            "{outcome:?}"
        );
        assert_eq!(sdp.notes(ticket).len(), 1, "note {n}");
    }
    assert_eq!(
        sdp.tokens_issued(),
        1,
        "the access token is cached between calls"
    );
    // The token expires: the next call is refused once, refreshes, succeeds.
    sdp.revoke_tokens();
    assert!(matches!(
        run(&handler, enhancement("103", ItsmKind::ServicedeskPlus), 1).await,
        Payload::WritebackCompleted(_)
    ));
    assert_eq!(sdp.tokens_issued(), 2);
    assert_eq!(sdp.rejected(), 1);

    let wrong = serde_json::json!({"client_id": "client-1", "client_secret": "secret-1",
        "refresh_token": "revoked", "accounts_url": server.url()})
    .to_string();
    let (_db, refused) = writeback_for(
        ItsmKind::ServicedeskPlus,
        &format!("{}/app/itdesk", server.url()),
        &wrong,
    )
    .await;
    match run(&refused, enhancement("104", ItsmKind::ServicedeskPlus), 1).await {
        Payload::WritebackFailed(failed) => {
            assert!(failed.permanent);
            assert_eq!(
                failed.reason,
                "ServiceDesk Plus Cloud refused the OAuth refresh token (invalid_code)"
            );
        }
        other => panic!("expected writeback.failed, got {other:?}"),
    }
}

#[tokio::test]
async fn every_tool_fetches_a_ticket_as_text() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let jira = JiraStandIn::new("Bearer pat");
    let jira_server = aia_standins::serve(jira.router()).await.unwrap();
    let zendesk = ZendeskStandIn::new("Bearer zd");
    zendesk.desk.put(aia_standins::desk::Ticket::open(
        12,
        "Ticket 12",
        "Printer offline",
    ));
    let zendesk_server = aia_standins::serve(zendesk.router()).await.unwrap();
    let sdp = aia_standins::servicedesk::ServiceDeskStandIn::new("t");
    sdp.add_resolved(aia_standins::servicedesk::ResolvedRequest {
        id: 77,
        subject: "Printer".into(),
        description_html: "<p>Printer <b>offline</b></p>".into(),
        resolution_html: String::new(),
        priority: "Low".into(),
        resolved_ms: 1_764_000_000_000,
    });
    let sdp_server = aia_standins::serve(sdp.router()).await.unwrap();
    let http = reqwest::Client::new();
    let cases = [
        (
            ItsmKind::Jira,
            jira_server.url(),
            r#"{"bearer":"pat"}"#,
            "SUP-5",
            "Issue SUP-5",
            "VPN drops",
        ),
        (
            ItsmKind::Zendesk,
            zendesk_server.url(),
            r#"{"oauth_token":"zd"}"#,
            "12",
            "Ticket 12",
            "Printer offline",
        ),
        (
            ItsmKind::ServicedeskPlus,
            sdp_server.url(),
            r#"{"authtoken":"t"}"#,
            "77",
            "Printer",
            "Printer offline",
        ),
    ];
    for (kind, url, credentials, ticket, subject, description) in cases {
        let itsm = aia_itsm::Itsm::for_tenant(http.clone(), kind, &url, credentials).unwrap();
        let fetched = itsm
            .fetch_ticket(&TicketId::parse(ticket).unwrap())
            .await
            .unwrap();
        assert_eq!(
            (fetched.subject.as_str(), fetched.description.as_str()),
            (subject, description),
            "{kind:?}"
        );
    }
}

/// A list of comments that cannot be read is not an empty list: the marker
/// search says so (and is tried again) instead of finding no note and
/// posting a second one.
#[tokio::test]
async fn an_unreadable_list_of_jira_comments_is_no_empty_one() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let router = axum::Router::new().route(
        "/rest/api/3/issue/{key}/comment",
        axum::routing::get(|| async {
            ([("content-type", "application/json")], "{\"comments\": [")
        }),
    );
    let server = aia_standins::serve(router).await.unwrap();
    let itsm = aia_itsm::Itsm::for_tenant(
        reqwest::Client::new(),
        ItsmKind::Jira,
        &server.url(),
        r#"{"email": "bot@acme.example", "api_token": "jt-1"}"#,
    )
    .unwrap();
    let read = itsm.note_texts(&TicketId::parse("SUP-1").unwrap()).await;
    assert!(
        matches!(read, Err(aia_itsm::ItsmError::Transient { .. })),
        "{read:?}"
    );
}

/// Autotask refuses for good with an HTTP 500 and its `errors`: a note for a
/// ticket it no longer has fails at once, saying why, and is not retried
/// for an hour as if Autotask were down.
#[tokio::test]
async fn autotask_refusing_a_note_for_good_fails_at_once_with_its_reason() {
    use aia_standins::autotask::AutotaskStandIn;
    let autotask = AutotaskStandIn::new("api@acme.example", "at-secret-1", "INTEGRATION-1");
    let server = aia_standins::serve(autotask.router()).await.unwrap();
    let (_db, handler) = writeback_for(
        ItsmKind::Autotask,
        &format!("{}/atservicesrest", server.url()),
        r#"{"username":"api@acme.example","secret":"at-secret-1","integration_code":"INTEGRATION-1"}"#,
    )
    .await;
    match run(&handler, enhancement("424242", ItsmKind::Autotask), 1).await {
        Payload::WritebackFailed(failed) => {
            assert!(failed.permanent, "{failed:?}");
            assert_eq!(failed.http_status, Some(500));
            assert!(
                failed.reason.contains("Ticket 424242 does not exist."),
                "{}",
                failed.reason
            );
        }
        other => panic!("expected writeback.failed, got {other:?}"),
    }
}

/// HaloPSA lists a ticket's actions a page at a time: on a busy ticket our
/// note is past the first page, and the search after a crash reads on to
/// it rather than post a second.
#[tokio::test]
async fn a_crash_after_posting_on_a_busy_halo_ticket_still_leaves_one_note() {
    use aia_standins::desk::Ticket;
    use aia_standins::halopsa::HaloStandIn;
    let halo = HaloStandIn::new("halo-client", "halo-secret-1");
    let server = aia_standins::serve(halo.router()).await.unwrap();
    let (db, handler) = writeback_for(
        ItsmKind::Halopsa,
        &server.url(),
        r#"{"client_id":"halo-client","client_secret":"halo-secret-1"}"#,
    )
    .await;
    halo.desk.put(Ticket::open(
        77,
        "Laptop fan loud",
        "The fan runs at full speed",
    ));
    for n in 0..130 {
        halo.desk
            .add_note(77, &format!("Update {n}: still looking"), true)
            .unwrap();
    }
    let event = enhancement("77", ItsmKind::Halopsa);
    assert!(
        matches!(run(&handler, event.clone(), 1).await, Payload::WritebackCompleted(ref done) if !done.already_present)
    );
    db.admin_client()
        .await
        .execute("update writeback_ledger set state = 'posting'", &[])
        .await
        .unwrap();
    assert!(
        matches!(run(&handler, event, 2).await, Payload::WritebackCompleted(ref done) if done.already_present),
        "our action, the 131st, must be recognised"
    );
    assert_eq!(halo.desk.notes(77).len(), 131);
}
