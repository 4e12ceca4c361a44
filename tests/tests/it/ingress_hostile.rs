//! Hostile and broken requests: each gets its expected status and error
//! code, and none stores anything in the stream.

use crate::ingress_support;

use ingress_support::{Ingress, ticket};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn json_headers(signature: String) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".into()),
        ("x-servicedesk-signature", signature),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_is_refused_with_its_status_and_stores_nothing() {
    let ingress = Ingress::start().await;
    let signed = |body: Vec<u8>| json_headers(ingress.sign(&body));
    let with = |changes: Value| {
        let mut body = ticket("acme", "T-1");
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        serde_json::to_vec(&body).unwrap()
    };
    let sdp = "/webhook/servicedesk".to_owned();
    let resolved = "/webhook/servicedesk/resolved-ticket".to_owned();
    let mut cases: Vec<Case> = Vec::new();
    let mut case = |name, path: &String, headers, body, status, code| {
        cases.push(Case {
            name,
            path: path.clone(),
            headers,
            body,
            status,
            code,
        });
    };

    // Malformed bodies.
    for (name, raw) in [
        ("malformed JSON", &b"{"[..]),
        (
            "truncated JSON",
            &br#"{"event":"ticket_created","ticket_id":"T-1","tenant_id":"acme","descr"#[..],
        ),
        ("empty body", &b""[..]),
        ("JSON array", &b"[1,2,3]"[..]),
        ("JSON string", &br#""acme""#[..]),
        (
            "invalid UTF-8",
            &b"{\"tenant_id\":\"acme\",\"description\":\"\xff\xfe\"}"[..],
        ),
        ("trailing garbage", &br#"{"tenant_id":"acme"} x"#[..]),
    ] {
        case(
            name,
            &sdp,
            signed(raw.to_vec()),
            raw.to_vec(),
            400,
            "invalid_payload",
        );
    }
    let nested = format!(
        "{{\"tenant_id\":\"acme\",\"x\":{}{}}}",
        "[".repeat(300),
        "]".repeat(300)
    );
    case(
        "deeply nested JSON",
        &sdp,
        signed(nested.clone().into_bytes()),
        nested.into_bytes(),
        400,
        "invalid_payload",
    );
    let duplicated = br#"{"event":"ticket_created","ticket_id":"T-1","tenant_id":"acme","description":"a","description":"b","priority":"high","created_at":"2026-01-01T00:00:00Z"}"#.to_vec();
    case(
        "duplicated keys",
        &sdp,
        signed(duplicated.clone()),
        duplicated,
        400,
        "invalid_payload",
    );
    let dup_tenant = br#"{"tenant_id":"acme","tenant_id":"other"}"#.to_vec();
    case(
        "duplicated tenant_id",
        &sdp,
        signed(dup_tenant.clone()),
        dup_tenant,
        400,
        "invalid_payload",
    );

    // Tenant ids that are not ids.
    for (name, tenant) in [
        ("tenant id with a dot", json!("ac.me")),
        ("tenant id with a star", json!("ac*")),
        ("tenant id with a gt", json!("acme>")),
        ("tenant id with a space", json!("ac me")),
        ("tenant id in capitals", json!("ACME")),
        ("tenant id as a number", json!(42)),
        ("tenant id missing", Value::Null),
    ] {
        let body = with(json!({"tenant_id": tenant}));
        case(
            name,
            &sdp,
            signed(body.clone()),
            body,
            400,
            "invalid_payload",
        );
    }
    let body = with(json!({"tenant_id": "nobody-here"}));
    case(
        "unknown tenant (answered as a bad signature, so tenants cannot be enumerated)",
        &sdp,
        signed(body.clone()),
        body,
        401,
        "invalid_signature",
    );

    // Signatures.
    let body = with(json!({}));
    case(
        "no signature",
        &sdp,
        vec![("content-type", "application/json".into())],
        body.clone(),
        401,
        "invalid_signature",
    );
    case(
        "garbage signature",
        &sdp,
        json_headers("not-hex".into()),
        body.clone(),
        401,
        "invalid_signature",
    );
    case(
        "signature of another body",
        &sdp,
        json_headers(ingress.sign(b"{}")),
        body.clone(),
        401,
        "invalid_signature",
    );
    case(
        "signature with another secret",
        &sdp,
        json_headers(ingress::auth::sign::hex("guess", &body)),
        body.clone(),
        401,
        "invalid_signature",
    );
    case(
        "empty signature",
        &sdp,
        json_headers(String::new()),
        body.clone(),
        401,
        "invalid_signature",
    );
    case(
        "wrong static secret",
        &sdp,
        vec![
            ("content-type", "application/json".into()),
            ("x-webhook-secret", "guess".into()),
        ],
        body.clone(),
        401,
        "invalid_signature",
    );
    let strict = with(json!({"tenant_id": "strict"}));
    case(
        "static secret where the tenant forbids it",
        &sdp,
        vec![
            ("content-type", "application/json".into()),
            ("x-webhook-secret", ingress.secret.clone()),
        ],
        strict,
        401,
        "invalid_signature",
    );
    let now = chrono::Utc::now().timestamp();
    for (name, timestamp, id_signed, id_sent) in [
        (
            "standard webhooks replayed timestamp",
            now - 600,
            "msg_1",
            "msg_1",
        ),
        (
            "standard webhooks future timestamp",
            now + 120,
            "msg_1",
            "msg_1",
        ),
        ("standard webhooks other id", now, "msg_1", "msg_2"),
    ] {
        let signature =
            ingress::auth::sign::standard_webhooks(&ingress.secret, id_signed, timestamp, &body);
        let code = if name.contains("timestamp") {
            "stale_timestamp"
        } else {
            "invalid_signature"
        };
        case(
            name,
            &sdp,
            vec![
                ("content-type", "application/json".into()),
                ("webhook-id", id_sent.into()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ],
            body.clone(),
            401,
            code,
        );
    }
    let old = with(
        json!({"created_at": (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339()}),
    );
    case(
        "replayed creation timestamp",
        &sdp,
        signed(old.clone()),
        old,
        401,
        "stale_timestamp",
    );
    let dormant = with(json!({"tenant_id": "dormant"}));
    case(
        "inactive tenant",
        &sdp,
        signed(dormant.clone()),
        dormant,
        403,
        "inactive_tenant",
    );

    // Size and content type.
    let huge = with(json!({"description": "x".repeat(300 * 1024)}));
    case(
        "body over the limit",
        &sdp,
        signed(huge.clone()),
        huge,
        413,
        "payload_too_large",
    );
    let plain = vec![
        ("content-type", "text/plain".into()),
        ("x-servicedesk-signature", ingress.sign(&body)),
    ];
    case(
        "text content type",
        &sdp,
        plain,
        body.clone(),
        415,
        "unsupported_media_type",
    );
    let form = vec![("content-type", "application/x-www-form-urlencoded".into())];
    case(
        "form content type",
        &sdp,
        form,
        body.clone(),
        415,
        "unsupported_media_type",
    );
    case(
        "no content type",
        &sdp,
        vec![("x-servicedesk-signature", ingress.sign(&body))],
        body.clone(),
        415,
        "unsupported_media_type",
    );

    // Fields of the wrong type (400) and values out of range (422).
    for (name, changes) in [
        ("description missing", json!({"description": null})),
        ("description a number", json!({"description": 7})),
        ("ticket id missing", json!({"ticket_id": null})),
        ("ticket id negative", json!({"ticket_id": -1})),
        ("ticket id an object", json!({"ticket_id": {"id": 1}})),
        ("ticket id with a newline", json!({"ticket_id": "a\nb"})),
        ("ticket id empty", json!({"ticket_id": ""})),
        (
            "created_at not a timestamp",
            json!({"created_at": "yesterday"}),
        ),
        ("priority missing", json!({"priority": null})),
    ] {
        let body = with(changes);
        case(
            name,
            &sdp,
            signed(body.clone()),
            body,
            400,
            "invalid_payload",
        );
    }
    let huge_number = br#"{"event":"ticket_created","ticket_id":1e400,"tenant_id":"acme","description":"a","priority":"high","created_at":"2026-01-01T00:00:00Z"}"#.to_vec();
    case(
        "huge number",
        &sdp,
        signed(huge_number.clone()),
        huge_number,
        400,
        "invalid_payload",
    );
    for (name, changes) in [
        (
            "description over 10,000 characters",
            json!({"description": "é".repeat(10_001)}),
        ),
        ("unknown priority", json!({"priority": "p1"})),
        (
            "timestamp without a zone",
            json!({"created_at": "2026-11-25T10:00:00"}),
        ),
        ("NUL in the description", json!({"description": "a\u{0}b"})),
        ("unknown event", json!({"event": "ticket_deleted"})),
    ] {
        let body = with(changes);
        case(name, &sdp, signed(body.clone()), body, 422, "invalid_value");
    }

    // Resolved tickets.
    let resolved_body = |changes: Value| {
        let mut body = json!({"tenant_id": "acme", "ticket_id": "R-1", "subject": "s", "description": "d",
            "resolution": "r", "resolved_date": "2026-11-01T10:00:00Z", "priority": "low", "tags": ["a"]});
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        serde_json::to_vec(&body).unwrap()
    };
    let body = resolved_body(json!({"resolution": null}));
    case(
        "resolved without resolution",
        &resolved,
        signed(body.clone()),
        body,
        400,
        "invalid_payload",
    );
    let body = resolved_body(json!({"tags": "vpn"}));
    case(
        "resolved tags not a list",
        &resolved,
        signed(body.clone()),
        body,
        400,
        "invalid_payload",
    );
    let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let body = resolved_body(json!({"tags": many}));
    case(
        "resolved with 51 tags",
        &resolved,
        signed(body.clone()),
        body,
        422,
        "invalid_value",
    );

    // Jira.
    let jira_body =
        serde_json::to_vec(&json!({"webhookEvent": "jira:issue_created", "timestamp": 1})).unwrap();
    let hub = |body: &[u8]| {
        vec![
            ("content-type", "application/json".into()),
            ("x-hub-signature", format!("sha256={}", ingress.sign(body))),
        ]
    };
    case(
        "jira tenant with a dot",
        &"/webhook/jira/ac.me".to_owned(),
        hub(&jira_body),
        jira_body.clone(),
        400,
        "invalid_payload",
    );
    case(
        "jira unknown tenant (answered as a bad signature)",
        &"/webhook/jira/nobody".to_owned(),
        hub(&jira_body),
        jira_body.clone(),
        401,
        "invalid_signature",
    );
    let bare = vec![
        ("content-type", "application/json".into()),
        ("x-hub-signature", ingress.sign(&jira_body)),
    ];
    case(
        "jira signature without prefix",
        &"/webhook/jira/acme".to_owned(),
        bare,
        jira_body.clone(),
        401,
        "invalid_signature",
    );
    case(
        "jira issue missing",
        &"/webhook/jira/acme".to_owned(),
        hub(&jira_body),
        jira_body,
        400,
        "invalid_payload",
    );
    let bad_description = serde_json::to_vec(
        &json!({"webhookEvent": "jira:issue_created", "timestamp": 1,
        "issue": {"key": "SUP-1", "fields": {"summary": "s", "description": 42}}}),
    )
    .unwrap();
    case(
        "jira description a number",
        &"/webhook/jira/acme".to_owned(),
        hub(&bad_description),
        bad_description,
        400,
        "invalid_payload",
    );

    let unknown_path = b"{}".to_vec();
    case(
        "unknown endpoint",
        &"/webhook/zendesk".to_owned(),
        json_headers(String::new()),
        unknown_path,
        404,
        "not_found",
    );

    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let (status, answer, _) = ingress
            .post(&case.path, &case.headers, case.body.clone())
            .await;
        let code = answer["error"]["code"].as_str().unwrap_or("");
        let message = answer["error"]["message"].as_str().unwrap_or("");
        if status != case.status
            || code != case.code
            || answer["status"] != "error"
            || message.is_empty()
        {
            failures.push(format!(
                "{}: expected {} {}, got {status} {answer}",
                case.name, case.status, case.code
            ));
        }
        let stored = ingress.stored().await;
        assert_eq!(stored, 0, "{} stored an event", case.name);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
