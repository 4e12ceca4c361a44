//! The hostile table of the six further tools' webhooks: forged, stale,
//! unauthenticated, malformed and lying deliveries each get their status
//! and error code and store nothing; a ConnectWise callback whose
//! `key_url` names another host is refused without fetching anything.

use crate::ingress_support::Ingress;

use aia_events::{ItsmKind, TenantId};
use aia_standins::autotask::AutotaskStandIn;
use aia_standins::connectwise::{self, ConnectWiseStandIn};
use aia_standins::desk::{Ticket, basic};
use aia_standins::freshservice::FreshserviceStandIn;
use aia_standins::halopsa::HaloStandIn;
use aia_standins::zendesk::{self, ZendeskStandIn};
use aia_store::{NewTenant, Secret, TenantSettings};
use serde_json::json;

const ZENDESK_SECRET: &str = "zendesk-signing-secret";

async fn add_tenant(
    ingress: &Ingress,
    id: &str,
    kind: ItsmKind,
    base_url: String,
    credentials: serde_json::Value,
) {
    let pool = aia_store::pool(&ingress.db.app_url, 1).unwrap();
    aia_store::tenants::create(
        &mut pool.get().await.unwrap(),
        &ingress.keyring,
        &NewTenant {
            tenant_id: TenantId::parse(id).unwrap(),
            name: id.into(),
            itsm: kind,
            itsm_base_url: base_url,
            itsm_credentials: Secret::new(credentials.to_string()),
            webhook_secret: Secret::new(ingress.secret.clone()),
            settings: TenantSettings::default(),
            integrations: Default::default(),
        },
    )
    .await
    .unwrap();
}

struct Case {
    name: String,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tools_hostile_requests_are_refused_and_store_nothing() {
    let ingress = Ingress::start().await;
    let zd = ZendeskStandIn::new(basic("bot@acme.example/token", "zd"));
    let zd_server = aia_standins::serve(zd.router()).await.unwrap();
    add_tenant(&ingress, "zd", ItsmKind::Zendesk, zd_server.url(),
        json!({"email": "bot@acme.example", "api_token": "zd", "webhook_signing_secret": ZENDESK_SECRET})).await;
    let fs = FreshserviceStandIn::new("fs-key");
    let fs_server = aia_standins::serve(fs.router()).await.unwrap();
    add_tenant(
        &ingress,
        "fs",
        ItsmKind::Freshservice,
        fs_server.url(),
        json!({"api_key": "fs-key"}),
    )
    .await;
    add_tenant(
        &ingress,
        "sn",
        ItsmKind::Servicenow,
        "http://127.0.0.1:9".into(),
        json!({"username": "u", "password": "p"}),
    )
    .await;
    let cw = ConnectWiseStandIn::new("acme", "pub", "priv");
    let cw_server = aia_standins::serve(cw.router()).await.unwrap();
    add_tenant(
        &ingress,
        "cw",
        ItsmKind::Connectwise,
        format!("{}{}", cw_server.url(), connectwise::API_PATH),
        json!({"company_id": "acme", "public_key": "pub", "private_key": "priv", "client_id": "c"}),
    )
    .await;
    let elsewhere = ConnectWiseStandIn::new("evil", "pub", "priv");
    let elsewhere_server = aia_standins::serve(elsewhere.router()).await.unwrap();
    let at = AutotaskStandIn::new("api@acme.example", "s", "CODE");
    let at_server = aia_standins::serve(at.router()).await.unwrap();
    add_tenant(
        &ingress,
        "at",
        ItsmKind::Autotask,
        format!("{}/atservicesrest", at_server.url()),
        json!({"username": "api@acme.example", "secret": "s", "integration_code": "CODE"}),
    )
    .await;
    let halo = HaloStandIn::new("client", "secret");
    let halo_server = aia_standins::serve(halo.router()).await.unwrap();
    add_tenant(
        &ingress,
        "halo",
        ItsmKind::Halopsa,
        halo_server.url(),
        json!({"client_id": "client", "client_secret": "secret"}),
    )
    .await;

    let json_type = || ("content-type", "application/json".to_owned());
    let shared = || vec![json_type(), ("x-webhook-secret", ingress.secret.clone())];
    let mut cases: Vec<Case> = Vec::new();
    let mut case = |name: &str, path: &str, headers, body: Vec<u8>, status, code| {
        cases.push(Case {
            name: name.into(),
            path: path.into(),
            headers,
            body,
            status,
            code,
        });
    };
    let unknown = Ticket::open(4040, "Nobody has this ticket", "It does not exist");

    // Zendesk: the signature over timestamp and body, with the signing secret.
    let zendesk_body = br#"{"event": "ticket.created", "ticket_id": "4040"}"#.to_vec();
    let zendesk = |timestamp: &str, signed: &[u8]| {
        vec![
            json_type(),
            (
                "x-zendesk-webhook-signature",
                zendesk::webhook_signature(ZENDESK_SECRET, timestamp, signed),
            ),
            (
                "x-zendesk-webhook-signature-timestamp",
                timestamp.to_owned(),
            ),
        ]
    };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let old = (chrono::Utc::now() - chrono::Duration::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let path = "/webhook/zendesk/zd";
    case(
        "zendesk signature over another body",
        path,
        zendesk(&now, b"{}"),
        zendesk_body.clone(),
        401,
        "invalid_signature",
    );
    case(
        "zendesk signature ten minutes old",
        path,
        zendesk(&old, &zendesk_body),
        zendesk_body.clone(),
        401,
        "stale_timestamp",
    );
    let mut untimed = zendesk(&now, &zendesk_body);
    untimed.pop();
    case(
        "zendesk signature without its timestamp",
        path,
        untimed,
        zendesk_body.clone(),
        401,
        "invalid_signature",
    );
    case(
        "zendesk static secret where signatures are due",
        path,
        shared(),
        zendesk_body.clone(),
        401,
        "invalid_signature",
    );
    let exploded = br#"{"event": "ticket.exploded", "ticket_id": "1"}"#.to_vec();
    case(
        "zendesk unknown event",
        path,
        zendesk(&now, &exploded),
        exploded,
        422,
        "invalid_value",
    );
    let lettered = br#"{"event": "ticket.created", "ticket_id": "12a"}"#.to_vec();
    case(
        "zendesk ticket id not a number",
        path,
        zendesk(&now, &lettered),
        lettered,
        422,
        "invalid_value",
    );
    case(
        "zendesk ticket the help desk does not know",
        path,
        zendesk(&now, &zendesk_body),
        zendesk_body,
        502,
        "help_desk_refused",
    );

    // Freshservice: a shared secret (it cannot sign).
    let path = "/webhook/freshservice/fs";
    let fs_body = aia_standins::freshservice::webhook_body("created", 4040).into_bytes();
    case(
        "freshservice without credentials",
        path,
        vec![json_type()],
        fs_body.clone(),
        401,
        "invalid_signature",
    );
    let wrong = vec![
        json_type(),
        ("authorization", basic("fs", "not-the-secret")),
    ];
    case(
        "freshservice wrong basic password",
        path,
        wrong,
        fs_body.clone(),
        401,
        "invalid_signature",
    );
    let no_id = br#"{"event": "created"}"#.to_vec();
    case(
        "freshservice without ticket_id",
        path,
        shared(),
        no_id,
        400,
        "invalid_payload",
    );
    let weird = br#"{"event": "exploded", "ticket_id": 1}"#.to_vec();
    case(
        "freshservice unknown event",
        path,
        shared(),
        weird,
        422,
        "invalid_value",
    );
    case(
        "freshservice ticket the help desk does not know",
        path,
        shared(),
        fs_body,
        502,
        "help_desk_refused",
    );

    // ServiceNow: the business rule's whole incident.
    let path = "/webhook/servicenow/sn";
    let sn_ticket = Ticket::open(7, "Mail down", "Nobody receives mail");
    let sn_body = aia_standins::servicenow::webhook_body("created", &sn_ticket).into_bytes();
    case(
        "servicenow without credentials",
        path,
        vec![json_type()],
        sn_body.clone(),
        401,
        "invalid_signature",
    );
    // A tenant on another tool (ConnectWise, which signs) that refuses the
    // raw secret is not let in through a tool that cannot sign.
    case(
        "servicenow endpoint with the raw secret for a tenant on another tool",
        "/webhook/servicenow/cw",
        shared(),
        sn_body.clone(),
        401,
        "invalid_signature",
    );
    let no_number =
        br#"{"event": "created", "short_description": "x", "description": "y"}"#.to_vec();
    case(
        "servicenow without number",
        path,
        shared(),
        no_number,
        400,
        "invalid_payload",
    );
    let mut nul: serde_json::Value = serde_json::from_slice(&sn_body).unwrap();
    nul["description"] = "a\u{0}b".into();
    case(
        "servicenow description with a NUL",
        path,
        shared(),
        serde_json::to_vec(&nul).unwrap(),
        422,
        "invalid_value",
    );

    // ConnectWise: signed with the key that key_url serves, from its own site only.
    let path = "/webhook/connectwise/cw";
    let (body, signature) = cw.callback(&cw_server.url(), "added", &unknown);
    let forged = connectwise::callback_signature("not-the-signing-key", body.as_bytes());
    case(
        "connectwise forged signature",
        path,
        vec![json_type(), ("x-content-signature", forged)],
        body.clone().into_bytes(),
        401,
        "invalid_signature",
    );
    let (foreign, foreign_signature) =
        elsewhere.callback(&elsewhere_server.url(), "added", &unknown);
    case(
        "connectwise key_url on another host",
        path,
        vec![json_type(), ("x-content-signature", foreign_signature)],
        foreign.into_bytes(),
        401,
        "invalid_signature",
    );
    // Another company on the same (shared cloud) site, signing with the
    // key that site serves it: not this tenant's callback, whatever the
    // signature says.
    let mut other_company: serde_json::Value = serde_json::from_str(&body).unwrap();
    other_company["CompanyId"] = "globex".into();
    let other_company = serde_json::to_vec(&other_company).unwrap();
    case(
        "connectwise callback of another company on the tenant's site",
        path,
        vec![
            json_type(),
            (
                "x-content-signature",
                cw.callback_signature_of(&other_company),
            ),
        ],
        other_company,
        401,
        "invalid_signature",
    );
    let mut other_key: serde_json::Value = serde_json::from_str(&body).unwrap();
    other_key["Metadata"]["key_url"] = format!(
        "{}{}/system/callbackkey/1?companyName=globex",
        cw_server.url(),
        connectwise::API_PATH
    )
    .into();
    let other_key = serde_json::to_vec(&other_key).unwrap();
    case(
        "connectwise key_url of another company on the tenant's site",
        path,
        vec![
            json_type(),
            ("x-content-signature", cw.callback_signature_of(&other_key)),
        ],
        other_key,
        401,
        "invalid_signature",
    );
    let metadata = format!(
        "http://169.254.169.254{}/system/callbackkey/1",
        connectwise::API_PATH
    );
    let mut metadata_body: serde_json::Value = serde_json::from_str(&body).unwrap();
    metadata_body["Metadata"]["key_url"] = metadata.into();
    case(
        "connectwise key_url at the metadata service",
        path,
        vec![json_type(), ("x-content-signature", signature.clone())],
        serde_json::to_vec(&metadata_body).unwrap(),
        401,
        "invalid_signature",
    );
    case(
        "connectwise without signature or secret",
        path,
        vec![json_type()],
        body.clone().into_bytes(),
        401,
        "invalid_signature",
    );
    let mut broken: serde_json::Value = serde_json::from_str(&body).unwrap();
    broken["Entity"] = "{not json".into();
    let broken = broken.to_string();
    let broken_signature = connectwise::callback_signature("cw-signing-key-1", broken.as_bytes());
    case(
        "connectwise entity not JSON",
        path,
        vec![json_type(), ("x-content-signature", broken_signature)],
        broken.into_bytes(),
        400,
        "invalid_payload",
    );
    case(
        "connectwise ticket the PSA does not know",
        path,
        vec![json_type(), ("x-content-signature", signature)],
        body.into_bytes(),
        502,
        "help_desk_refused",
    );

    // Autotask: X-Hook-Signature with the webhook's secret key.
    let path = "/webhook/autotask/at";
    let (body, signature) = at.callout(&ingress.secret, "Create", &unknown);
    let (_, wrong_key) = at.callout("another-secret", "Create", &unknown);
    case(
        "autotask signed with another key",
        path,
        vec![json_type(), ("x-hook-signature", wrong_key)],
        body.clone().into_bytes(),
        401,
        "invalid_signature",
    );
    let hex = format!("sha1={}", "0".repeat(40));
    case(
        "autotask hex signature",
        path,
        vec![json_type(), ("x-hook-signature", hex)],
        body.clone().into_bytes(),
        401,
        "invalid_signature",
    );
    let nameless = br#"{"Action": "Create", "EntityType": "Ticket", "Fields": {}}"#.to_vec();
    let nameless_signature = aia_standins::autotask::hook_signature(&ingress.secret, &nameless);
    case(
        "autotask callout without Id",
        path,
        vec![json_type(), ("x-hook-signature", nameless_signature)],
        nameless,
        400,
        "invalid_payload",
    );
    case(
        "autotask ticket the PSA does not know",
        path,
        vec![json_type(), ("x-hook-signature", signature)],
        body.into_bytes(),
        502,
        "help_desk_refused",
    );

    // HaloPSA: a shared secret; batches of more than one refused.
    let path = "/webhook/halopsa/halo";
    let halo_body = aia_standins::halopsa::webhook_body(&unknown).into_bytes();
    case(
        "halopsa without credentials",
        path,
        vec![json_type()],
        halo_body.clone(),
        401,
        "invalid_signature",
    );
    let batch = br#"[{"id": 1}, {"id": 2}]"#.to_vec();
    case(
        "halopsa batch of two",
        path,
        shared(),
        batch,
        422,
        "invalid_value",
    );
    let nameless = br#"{"ticket": {"summary": "no id"}}"#.to_vec();
    case(
        "halopsa ticket without id",
        path,
        shared(),
        nameless,
        400,
        "invalid_payload",
    );
    case(
        "halopsa ticket the PSA does not know",
        path,
        shared(),
        halo_body,
        502,
        "help_desk_refused",
    );

    // Every tool: malformed bodies and an unknown tenant (answered as a bad signature).
    for tool in [
        "zendesk",
        "freshservice",
        "servicenow",
        "connectwise",
        "autotask",
        "halopsa",
    ] {
        case(
            &format!("{tool} unknown tenant"),
            &format!("/webhook/{tool}/nobody"),
            shared(),
            b"{}".to_vec(),
            401,
            "invalid_signature",
        );
        case(
            &format!("{tool} tenant with a dot"),
            &format!("/webhook/{tool}/ac.me"),
            shared(),
            b"{}".to_vec(),
            400,
            "invalid_payload",
        );
    }
    for (tool, tenant) in [
        ("freshservice", "fs"),
        ("servicenow", "sn"),
        ("halopsa", "halo"),
    ] {
        let path = format!("/webhook/{tool}/{tenant}");
        for (name, raw) in [
            ("malformed JSON", &b"{"[..]),
            ("JSON string", &br#""x""#[..]),
            ("invalid UTF-8", &b"{\"ticket_id\":\"\xff\"}"[..]),
        ] {
            case(
                &format!("{tool} {name}"),
                &path,
                shared(),
                raw.to_vec(),
                400,
                "invalid_payload",
            );
        }
    }

    let mut failures = Vec::new();
    for case in &cases {
        let (status, answer, _) = ingress
            .post(&case.path, &case.headers, case.body.clone())
            .await;
        let code = answer["error"]["code"].as_str().unwrap_or("");
        if status != case.status || code != case.code || answer["status"] != "error" {
            failures.push(format!(
                "{}: expected {} {}, got {status} {answer}",
                case.name, case.status, case.code
            ));
        }
        assert_eq!(ingress.stored().await, 0, "{} stored an event", case.name);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        elsewhere.key_fetches(),
        0,
        "a key was fetched from a host the tenant does not use"
    );
    assert!(
        cw.key_fetches() >= 1,
        "the tenant's own site serves the key"
    );
}

/// A forged ConnectWise callback makes us ask the tenant's site for its
/// signing key (the key may have been rotated). A hundred at once ask it
/// no more than the tenant's budget a minute, and the genuine callback
/// after them is still let in with the key they left cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_forged_connectwise_callbacks_at_once_fetch_the_key_a_few_times_only() {
    let ingress = Ingress::start().await;
    let cw = ConnectWiseStandIn::new("acme", "pub", "priv");
    let cw_server = aia_standins::serve(cw.router()).await.unwrap();
    add_tenant(
        &ingress,
        "cw",
        ItsmKind::Connectwise,
        format!("{}{}", cw_server.url(), connectwise::API_PATH),
        json!({"company_id": "acme", "public_key": "pub", "private_key": "priv", "client_id": "c"}),
    )
    .await;
    let ticket = Ticket::open(4041, "Printer", "It jams");
    cw.desk.put(ticket.clone());
    let (body, genuine) = cw.callback(&cw_server.url(), "added", &ticket);
    let path = "/webhook/connectwise/cw";
    let answers = futures::future::join_all((0..100).map(|n| {
        let forged = connectwise::callback_signature(&format!("guess-{n}"), body.as_bytes());
        let headers = vec![
            ("content-type", "application/json".to_owned()),
            ("x-content-signature", forged),
        ];
        let ingress = &ingress;
        let body = body.clone().into_bytes();
        async move { ingress.post(path, &headers, body).await.0 }
    }))
    .await;
    // Refused, and once the tenant's failures pile up, told to slow down.
    assert!(
        answers.iter().all(|status| [401, 429].contains(status)),
        "{answers:?}"
    );
    let fetched = cw.key_fetches();
    assert!(
        (1..=6).contains(&fetched),
        "{fetched} key fetches for a hundred forged callbacks"
    );
    let headers = vec![
        ("content-type", "application/json".to_owned()),
        ("x-content-signature", genuine),
    ];
    let (status, answer, _) = ingress.post(path, &headers, body.into_bytes()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(cw.key_fetches(), fetched, "the cached key served");
}

/// Twenty genuine callbacks at once, no key fetched yet (a start, a burst
/// of tickets): one fetch, and every one verifies with the key it brought.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_genuine_connectwise_callbacks_fetches_the_key_once() {
    let ingress = Ingress::start().await;
    let cw = ConnectWiseStandIn::new("acme", "pub", "priv");
    let cw_server = aia_standins::serve(cw.router()).await.unwrap();
    add_tenant(
        &ingress,
        "cw",
        ItsmKind::Connectwise,
        format!("{}{}", cw_server.url(), connectwise::API_PATH),
        json!({"company_id": "acme", "public_key": "pub", "private_key": "priv", "client_id": "c"}),
    )
    .await;
    let callbacks: Vec<(String, String)> = (0..20)
        .map(|n| {
            let ticket = Ticket::open(5000 + n, "Printer", "It jams");
            cw.desk.put(ticket.clone());
            cw.callback(&cw_server.url(), "added", &ticket)
        })
        .collect();
    let answers = futures::future::join_all(callbacks.into_iter().map(|(body, signature)| {
        let ingress = &ingress;
        async move {
            let headers = vec![
                ("content-type", "application/json".to_owned()),
                ("x-content-signature", signature),
            ];
            ingress
                .post("/webhook/connectwise/cw", &headers, body.into_bytes())
                .await
                .0
        }
    }))
    .await;
    assert!(answers.iter().all(|status| *status == 202), "{answers:?}");
    assert_eq!(cw.key_fetches(), 1);
}
