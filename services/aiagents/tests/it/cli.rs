//! The operator CLI as an operator runs it: a separate process configured by
//! environment variables, against real servers.

use std::process::{Command, Output};

use aia_store::Keyring;
use aia_testkit::TestDatabase;

fn aiagents(db: &TestDatabase, keys: &str, args: &[&str]) -> Output {
    aiagents_given(db, keys, args, "", &[])
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "aiagents failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn every_command_explains_itself() {
    let bin = env!("CARGO_BIN_EXE_aiagents");
    for args in [
        vec!["--help"],
        vec!["migrate", "--help"],
        vec!["nats", "apply", "--help"],
        vec!["tenant", "add", "--help"],
        vec!["tenant", "list", "--help"],
        vec!["tenant", "rotate-secret", "--help"],
        vec!["tenant", "end-rotation", "--help"],
        vec!["secrets", "reencrypt", "--help"],
        vec!["demo", "--help"],
        vec!["serve", "--help"],
        vec!["keygen", "--help"],
    ] {
        let output = Command::new(bin).args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("Usage:") && text.lines().count() > 3,
            "{args:?}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_are_managed_from_the_cli_and_no_secret_is_stored_in_plaintext() {
    let db = TestDatabase::create().await;
    let sdp = aia_standins::serve(
        aia_standins::servicedesk::ServiceDeskStandIn::new("sdp-key-4711").router(),
    )
    .await
    .unwrap();
    let old_keys = Keyring::generate_spec("k1");
    let credentials = r#"{"authtoken":"sdp-key-4711"}"#;
    let added = stdout(&aiagents(
        &db,
        &old_keys,
        &[
            "tenant",
            "add",
            "--id",
            "acme",
            "--name",
            "Acme",
            "--itsm-url",
            &sdp.url(),
            "--itsm-credentials",
            credentials,
        ],
    ));
    assert!(
        added.contains("https://hooks.example.com/webhook/jira/acme"),
        "{added}"
    );
    let secret = added
        .lines()
        .find_map(|line| line.strip_prefix("webhook secret:"))
        .map(str::trim)
        .unwrap()
        .to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 50,
        "{secret}"
    );

    let listed = stdout(&aiagents(&db, &old_keys, &["tenant", "list"]));
    assert!(
        listed.contains("acme") && listed.contains("servicedesk_plus"),
        "{listed}"
    );
    let shown = stdout(&aiagents(&db, &old_keys, &["tenant", "show", "acme"]));
    assert!(
        !shown.contains(&secret) && !shown.contains("sdp-key-4711"),
        "{shown}"
    );
    assert!(
        stdout(&aiagents(
            &db,
            &old_keys,
            &["tenant", "test-connection", "acme"]
        ))
        .contains("accepted")
    );
    let rotated = stdout(&aiagents(
        &db,
        &old_keys,
        &["tenant", "rotate-secret", "acme"],
    ));
    assert!(rotated.contains("new webhook secret:"));
    // A second rotation waits for the first to end; ended, it may start.
    let refused = aiagents(&db, &old_keys, &["tenant", "rotate-secret", "acme"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("End the rotation first"));
    assert!(
        stdout(&aiagents(
            &db,
            &old_keys,
            &["tenant", "end-rotation", "acme"]
        ))
        .contains("rotation of acme ended")
    );
    let rotated_again = stdout(&aiagents(
        &db,
        &old_keys,
        &["tenant", "rotate-secret", "acme"],
    ));
    assert!(rotated_again.contains("The previous secret stays valid for 24 hours"));
    // The secrets the database holds now: the newest and the one before it.
    let issued = |output: &str| {
        output
            .lines()
            .find_map(|line| line.strip_prefix("new webhook secret:"))
            .map(str::trim)
            .expect("the new secret is shown")
            .to_owned()
    };
    let (previous, current) = (issued(&rotated), issued(&rotated_again));

    // A dump of the database holds no secret in plaintext — in its text,
    // nor in the bytes of its bytea columns (which a dump writes as hex).
    let bindir =
        std::env::var("AI_AGENTS_PG_BINDIR").expect("the test stack sets AI_AGENTS_PG_BINDIR");
    let dump = Command::new(format!("{bindir}/pg_dump"))
        .arg(&db.admin_url)
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains("COPY public.tenants"),
        "the dump has the tenants table"
    );
    let bytes: Vec<Vec<u8>> = dump
        .split("\\\\x")
        .skip(1)
        .map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            hex::decode(&digits[..digits.len() - digits.len() % 2]).unwrap()
        })
        .collect();
    assert!(
        bytes.iter().any(|value| value.len() > 32),
        "the dump's encrypted columns were found"
    );
    for plaintext in [previous.as_str(), current.as_str(), "sdp-key-4711"] {
        assert!(
            !dump.contains(plaintext),
            "a secret is in the dump in plaintext"
        );
        assert!(
            !bytes.iter().any(|value| value
                .windows(plaintext.len())
                .any(|w| w == plaintext.as_bytes())),
            "a secret is in a bytea column of the dump in plaintext"
        );
    }

    // Key rotation: a new primary key, re-encrypt, then the old key can go.
    let new_keys = format!("{},{old_keys}", Keyring::generate_spec("k2"));
    let reencrypted = stdout(&aiagents(&db, &new_keys, &["secrets", "reencrypt"]));
    assert!(
        reencrypted.contains("1 tenants checked, 3 secrets re-encrypted with key k2"),
        "{reencrypted}"
    );
    let only_new = new_keys.split(',').next().unwrap().to_owned();
    let shown = stdout(&aiagents(&db, &only_new, &["tenant", "show", "acme"]));
    assert!(shown.contains("\"tenant_id\": \"acme\""));
    assert!(
        !aiagents(&db, &old_keys, &["tenant", "show", "acme"])
            .status
            .success()
    );

    let refused = aiagents(&db, &only_new, &["tenant", "delete", "acme"]);
    assert!(
        !refused.status.success(),
        "delete without --yes must refuse"
    );
    stdout(&aiagents(
        &db,
        &only_new,
        &["tenant", "delete", "acme", "--yes"],
    ));
    assert!(!stdout(&aiagents(&db, &only_new, &["tenant", "list"])).contains("acme"));
}

fn aiagents_given(
    db: &TestDatabase,
    keys: &str,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiagents"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AI_AGENTS_DATABASE_URL", &db.app_url)
        .env("AI_AGENTS_ADMIN_DATABASE_URL", &db.admin_read_url)
        .env("AI_AGENTS_OWNER_DATABASE_URL", &db.admin_url)
        .env("AI_AGENTS_SECRET_KEYS", keys)
        .env("AI_AGENTS_PUBLIC_URL", "https://hooks.example.com")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run aiagents");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// What the README shows — `tenant update --settings` with one field,
/// `set-integrations` with one key — changes that and nothing else; and
/// credentials exported for another tenant's `add` never reach `update`.
#[tokio::test(flavor = "multi_thread")]
async fn a_partial_change_from_the_cli_keeps_every_other_setting_and_key() {
    let db = TestDatabase::create().await;
    let sdp = aia_standins::serve(
        aia_standins::servicedesk::ServiceDeskStandIn::new("sdp-key-4711").router(),
    )
    .await
    .unwrap();
    let keys = Keyring::generate_spec("k1");
    let run = |args: &[&str], stdin: &str, env: &[(&str, &str)]| {
        aiagents_given(&db, &keys, args, stdin, env)
    };
    stdout(&run(
        &[
            "tenant",
            "add",
            "--id",
            "acme",
            "--name",
            "Acme",
            "--itsm-url",
            &sdp.url(),
            // From standard input: out of shell history and `ps`.
            "--itsm-credentials",
            "-",
        ],
        r#"{"authtoken":"sdp-key-4711"}"#,
        &[],
    ));
    let settings = |field: &str| -> serde_json::Value {
        let shown: serde_json::Value =
            serde_json::from_str(&stdout(&run(&["tenant", "show", "acme"], "", &[]))).unwrap();
        shown["settings"][field].clone()
    };
    stdout(&run(
        &[
            "tenant",
            "update",
            "acme",
            "--settings",
            r#"{"allow_static_secret": true, "knowledge_base_url": "https://kb.example.com", "incidents": {"threshold": 5}}"#,
        ],
        "",
        &[],
    ));
    stdout(&run(
        &["tenant", "set-integrations", "acme"],
        r#"{"knowledge_base_token": "kb-1", "llm_keys": {"a": "key-a"}}"#,
        &[],
    ));
    let set = stdout(&run(
        &["tenant", "set-integrations", "acme"],
        r#"{"monitoring_token": "mon-1", "llm_keys": {"b": "key-b"}}"#,
        &[],
    ));
    for kept in [
        r#""knowledge_base_token":true"#,
        r#""monitoring_token":true"#,
        r#""llm_keys":["a","b"]"#,
    ] {
        assert!(set.contains(kept), "{kept}: {set}");
    }
    let set = stdout(&run(
        &["tenant", "set-integrations", "acme"],
        r#"{"llm_keys": {"a": null}}"#,
        &[],
    ));
    assert!(set.contains(r#""llm_keys":["b"]"#), "{set}");
    assert!(set.contains(r#""knowledge_base_token":true"#), "{set}");
    // The incident webhook's address, set and stopped the same way.
    let set = stdout(&run(
        &["tenant", "set-integrations", "acme"],
        r#"{"incident_webhook_url": "https://hooks.example.com/services/T1/B2/tok"}"#,
        &[],
    ));
    assert!(set.contains(r#""incident_webhook_url":true"#), "{set}");
    assert!(set.contains(r#""llm_keys":["b"]"#), "{set}");
    let set = stdout(&run(
        &["tenant", "set-integrations", "acme"],
        r#"{"incident_webhook_url": null}"#,
        &[],
    ));
    assert!(set.contains(r#""incident_webhook_url":false"#), "{set}");

    stdout(&run(
        &[
            "tenant",
            "update",
            "acme",
            "--settings",
            r#"{"max_note_words": 300, "incidents": {"quiet_minutes": 60}}"#,
        ],
        "",
        &[],
    ));
    assert_eq!(settings("max_note_words"), 300);
    assert_eq!(settings("allow_static_secret"), true);
    assert_eq!(settings("knowledge_base_url"), "https://kb.example.com");
    assert_eq!(settings("incidents")["threshold"], 5);
    assert_eq!(settings("incidents")["quiet_minutes"], 60);
    let set = stdout(&run(&["tenant", "set-integrations", "acme"], "{}", &[]));
    assert!(
        set.contains(r#""knowledge_base_token":true"#),
        "the knowledge base did not move, so its token stays: {set}"
    );

    // A typo changes nothing and says so.
    let refused = run(
        &[
            "tenant",
            "update",
            "acme",
            "--settings",
            r#"{"max_note_wrods": 10}"#,
        ],
        "",
        &[],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("max_note_wrods"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(settings("max_note_words"), 300);

    // Another tenant's exported credentials stay out of this update.
    stdout(&run(
        &["tenant", "update", "acme", "--name", "Acme Ltd"],
        "",
        &[(
            "AI_AGENTS_ITSM_CREDENTIALS",
            r#"{"authtoken":"globex-key"}"#,
        )],
    ));
    assert!(
        stdout(&run(&["tenant", "test-connection", "acme"], "", &[])).contains("accepted"),
        "acme's own credentials are unchanged"
    );
    // Credentials from standard input, out of shell history.
    stdout(&run(
        &["tenant", "update", "acme", "--itsm-credentials", "-"],
        r#"{"authtoken":"sdp-key-4711"}"#,
        &[],
    ));
}

/// `tenant list --limit` past one page of the operations (200) lists as
/// many as it asks for, and says when there are more.
#[tokio::test(flavor = "multi_thread")]
async fn listing_more_tenants_than_a_page_holds_shows_them_all() {
    let db = TestDatabase::create().await;
    let spec = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&spec).unwrap();
    for n in 0..205 {
        aiagents::ops::add_tenant(
            &db.app_url,
            &keyring,
            &format!("t{n:03}"),
            "Tenant",
            aia_events::ItsmKind::ServicedeskPlus,
            "https://sdp.example.com",
            r#"{"authtoken":"x"}"#,
        )
        .await
        .unwrap();
    }
    let rows = |out: &str| {
        out.lines()
            .filter(|line| line.starts_with('t') && !line.starts_with("tenant"))
            .count()
    };
    let all = stdout(&aiagents(
        &db,
        &spec,
        &["tenant", "list", "--limit", "1000"],
    ));
    assert_eq!(rows(&all), 205, "{all}");
    assert!(!all.contains("… more"), "{all}");
    let some = stdout(&aiagents(&db, &spec, &["tenant", "list", "--limit", "201"]));
    assert_eq!(rows(&some), 201);
    assert!(some.contains("… more"), "{some}");
}

/// An incident webhook address an older version kept in the settings, in
/// plain text, is moved into the encrypted integrations by `secrets
/// reencrypt`, and the notifier's address stays the same.
#[tokio::test(flavor = "multi_thread")]
async fn reencrypting_moves_a_plaintext_incident_webhook_into_the_integrations() {
    let db = TestDatabase::create().await;
    let spec = Keyring::generate_spec("k1");
    let keyring = Keyring::parse(&spec).unwrap();
    aiagents::ops::add_tenant(
        &db.app_url,
        &keyring,
        "acme",
        "Acme",
        aia_events::ItsmKind::ServicedeskPlus,
        "https://sdp.example.com",
        r#"{"authtoken":"x"}"#,
    )
    .await
    .unwrap();
    let admin = db.admin_client().await;
    admin
        .execute(
            "update tenants set settings = jsonb_set(settings, '{incidents,webhook_url}',
                 '\"https://hooks.example.com/services/legacy-token-42\"')
              where tenant_id = 'acme'",
            &[],
        )
        .await
        .unwrap();
    let out = stdout(&aiagents(&db, &spec, &["secrets", "reencrypt"]));
    assert!(out.contains("1 tenants checked"), "{out}");
    let settings: String = admin
        .query_one(
            "select settings::text from tenants where tenant_id = 'acme'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!settings.contains("legacy-token-42"), "{settings}");
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    let tenant = aia_store::tenants::get(
        &mut pool.get().await.unwrap(),
        &keyring,
        &aia_events::TenantId::parse("acme").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        tenant.integrations.incident_webhook(&tenant.settings),
        Some("https://hooks.example.com/services/legacy-token-42")
    );
    assert_eq!(tenant.settings.incidents.webhook_url, None);
}
