//! Migrations, row-level security and secrets at rest, on a real database.

use aia_events::{ItsmKind, TenantId};
use aia_store::{Keyring, NewTenant, Secret, TenantSettings, tenants};
use aia_testkit::TestDatabase;

fn new_tenant(id: &str, secret: &str) -> NewTenant {
    NewTenant {
        tenant_id: TenantId::parse(id).unwrap(),
        name: id.into(),
        itsm: ItsmKind::ServicedeskPlus,
        itsm_base_url: "https://sdp.example.com".into(),
        itsm_credentials: Secret::new(format!("{{\"authtoken\":\"token-of-{id}\"}}")),
        webhook_secret: Secret::new(secret),
        settings: TenantSettings::default(),
        integrations: Default::default(),
    }
}

#[tokio::test]
async fn migrations_apply_once_and_a_second_run_changes_nothing() {
    let db = TestDatabase::create().await; // applies them once
    let mut admin = db.admin_client().await;
    let report = aia_store::migrate::run(&mut admin).await.unwrap();
    assert!(report.applied.is_empty());
    let every: Vec<&str> = aia_store::migrate::MIGRATIONS
        .iter()
        .map(|(version, _)| *version)
        .collect();
    assert_eq!(report.already_applied, every);
    assert!(every.len() >= 5);
}

#[tokio::test]
async fn a_tenant_session_sees_only_its_own_rows_and_no_tenant_sees_nothing() {
    let db = TestDatabase::create().await;
    let keyring = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let mut client = pool.get().await.unwrap();
    for id in ["tenant-a", "tenant-b"] {
        tenants::create(&mut client, &keyring, &new_tenant(id, "secret"))
            .await
            .unwrap();
    }
    let admin = db.admin_client().await;
    admin
        .batch_execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id)
             values ('tenant-a', 'A-1', 's', 'd', 'r', 'low', now(), gen_random_uuid()),
                    ('tenant-b', 'B-1', 's', 'd', 'r', 'low', now(), gen_random_uuid())",
        )
        .await
        .unwrap();

    let tenant_a = TenantId::parse("tenant-a").unwrap();
    let tx = aia_store::tenant_transaction(&mut client, &tenant_a)
        .await
        .unwrap();
    let visible: Vec<String> = tx
        .query("select ticket_id from ticket_history", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(visible, ["A-1"]);
    // A crafted query naming the other tenant finds nothing and changes nothing.
    let crafted = tx
        .query(
            "select * from ticket_history where tenant_id = 'tenant-b' or true",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(crafted.len(), 1);
    let updated = tx
        .execute(
            "update ticket_history set resolution = 'pwned' where tenant_id = 'tenant-b'",
            &[],
        )
        .await
        .unwrap();
    let deleted = tx
        .execute("delete from ticket_history where ticket_id = 'B-1'", &[])
        .await
        .unwrap();
    assert_eq!((updated, deleted), (0, 0));
    let insert_for_b = tx
        .execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id)
             values ('tenant-b', 'B-2', 's', 'd', 'r', 'low', now(), gen_random_uuid())",
            &[],
        )
        .await;
    assert!(
        insert_for_b.is_err(),
        "writing a row for another tenant must be refused"
    );
    drop(tx);

    // Without a tenant setting the application role sees nothing at all.
    let rows = client
        .query("select * from ticket_history", &[])
        .await
        .unwrap();
    assert!(rows.is_empty());
    let rows = client.query("select * from tenants", &[]).await.unwrap();
    assert!(rows.is_empty());
    let untouched: String = admin
        .query_one(
            "select resolution from ticket_history where ticket_id = 'B-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(untouched, "r");
}

#[tokio::test]
async fn secrets_are_stored_encrypted_and_read_back_only_with_the_key() {
    let db = TestDatabase::create().await;
    let keyring = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    let mut client = pool.get().await.unwrap();
    let webhook_secret = "whsec-0123456789abcdef-plaintext";
    tenants::create(&mut client, &keyring, &new_tenant("acme", webhook_secret))
        .await
        .unwrap();

    // Nothing in the table, as a dump would show it, holds a plaintext secret.
    let admin = db.admin_client().await;
    let dump: String = admin
        .query_one("select string_agg(t::text, '\n') from tenants t", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!dump.contains(webhook_secret));
    assert!(!dump.contains("token-of-acme"));
    // … nor in the bytes of the encrypted columns (their text form is hex,
    // which would hide plaintext as well).
    let row = admin
        .query_one(
            "select webhook_secret_enc, itsm_credentials_enc from tenants",
            &[],
        )
        .await
        .unwrap();
    let (secret_bytes, credential_bytes): (Vec<u8>, Vec<u8>) = (row.get(0), row.get(1));
    assert!(!secret_bytes.is_empty() && !credential_bytes.is_empty());
    assert!(!String::from_utf8_lossy(&secret_bytes).contains(webhook_secret));
    assert!(!String::from_utf8_lossy(&credential_bytes).contains("token-of-acme"));

    let tenant = tenants::get(&mut client, &keyring, &TenantId::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.webhook_secrets[0].expose(), webhook_secret);
    assert!(tenant.itsm_credentials.expose().contains("token-of-acme"));

    let other_key = Keyring::parse(&Keyring::generate_spec("k2")).unwrap();
    assert!(
        tenants::get(&mut client, &other_key, &TenantId::parse("acme").unwrap())
            .await
            .is_err()
    );

    let duplicate = tenants::create(&mut client, &keyring, &new_tenant("acme", "x")).await;
    assert!(matches!(
        duplicate,
        Err(tenants::CreateTenantError::Duplicate(_))
    ));
}

#[tokio::test]
async fn the_admin_role_reads_every_tenant_and_writes_nothing() {
    let db = TestDatabase::create().await;
    let owner = db.admin_client().await;
    owner
        .batch_execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id)
             values ('tenant-a', 'A-1', 's', 'd', 'r', 'low', now(), gen_random_uuid()),
                    ('tenant-b', 'B-1', 's', 'd', 'r', 'low', now(), gen_random_uuid())",
        )
        .await
        .unwrap();
    let (admin, connection) = tokio_postgres::connect(&db.admin_read_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let n: i64 = admin
        .query_one("select count(*) from ticket_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    assert!(
        admin
            .execute("update ticket_history set resolution = 'x'", &[])
            .await
            .is_err()
    );
    assert!(
        admin
            .execute("delete from ticket_history", &[])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_tenant_cache_reuses_a_read_within_its_ttl_and_sees_changes_after_it() {
    use std::sync::Arc;
    use std::time::Duration;

    let db = TestDatabase::create().await;
    let keyring = Arc::new(Keyring::parse(&Keyring::generate_spec("k1")).unwrap());
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let acme = TenantId::parse("acme").unwrap();
    tenants::create(
        &mut pool.get().await.unwrap(),
        &keyring,
        &new_tenant("acme", "s"),
    )
    .await
    .unwrap();
    let set_active = |active: bool| {
        let (pool, keyring, acme) = (pool.clone(), keyring.clone(), acme.clone());
        async move {
            let change = tenants::TenantUpdate {
                active: Some(active),
                ..Default::default()
            };
            let mut client = pool.get().await.unwrap();
            assert!(
                tenants::update(&mut client, &keyring, &acme, &change)
                    .await
                    .unwrap()
            );
        }
    };
    let ttl = Duration::from_millis(400);
    let cached = aia_store::TenantCache::new(pool.clone(), keyring.clone(), ttl);
    let uncached = aia_store::TenantCache::new(pool.clone(), keyring.clone(), Duration::ZERO);
    let active = |tenant: Option<Arc<aia_store::Tenant>>| tenant.expect("acme exists").active;

    assert!(active(cached.get(&acme).await.unwrap()));
    set_active(false).await;
    // Within the TTL the cached read stands; without a cache the change shows.
    assert!(active(cached.get(&acme).await.unwrap()));
    assert!(!active(uncached.get(&acme).await.unwrap()));
    tokio::time::sleep(ttl).await;
    assert!(!active(cached.get(&acme).await.unwrap()));

    // An unknown tenant is remembered as unknown for the TTL too.
    let ghost = TenantId::parse("ghost").unwrap();
    assert!(cached.get(&ghost).await.unwrap().is_none());
    tenants::create(
        &mut pool.get().await.unwrap(),
        &keyring,
        &new_tenant("ghost", "s"),
    )
    .await
    .unwrap();
    assert!(cached.get(&ghost).await.unwrap().is_none());
    tokio::time::sleep(ttl).await;
    assert!(cached.get(&ghost).await.unwrap().is_some());

    // A flood of made-up ids within the TTL: the cache stays within its
    // capacity, and gives up the unknown ones before a real tenant.
    let small = aia_store::TenantCache::new(pool.clone(), keyring.clone(), Duration::from_secs(60))
        .with_capacity(8);
    assert!(small.get(&acme).await.unwrap().is_some());
    for n in 0..40 {
        let made_up = TenantId::parse(&format!("made-up-{n}")).unwrap();
        assert!(small.get(&made_up).await.unwrap().is_none());
        assert!(small.held() <= 8, "{} held", small.held());
    }
    // acme is still held: a read now would see it inactive (set above),
    // the held copy still reads it so, and no database read is needed.
    set_active(true).await;
    assert!(!active(small.get(&acme).await.unwrap()), "acme was dropped");
}

#[tokio::test]
async fn a_statement_gone_stale_under_a_migration_is_forgotten_and_the_retry_succeeds() {
    let db = TestDatabase::create().await;
    let admin = db.admin_client().await;
    admin
        .batch_execute(
            "create table stale_probe (n integer); insert into stale_probe values (7);
             grant select on stale_probe to aiagents_app",
        )
        .await
        .unwrap();
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    let read = |pool: aia_store::Pool| async move {
        let client = pool.get().await.map_err(aia_store::StoreError::from)?;
        let statement = client.prepare_cached("select n from stale_probe").await?;
        let rows = client.query(&statement, &[]).await?;
        Ok::<_, aia_store::StoreError>(rows.len())
    };
    assert_eq!(read(pool.clone()).await.unwrap(), 1);

    // A migration changes the column's type under the cached statement.
    admin
        .batch_execute("alter table stale_probe alter column n type bigint")
        .await
        .unwrap();
    let err = read(pool.clone()).await.unwrap_err();
    assert!(err.is_stale_statement(), "{err}");
    assert!(err.is_transient(), "a stale statement is worth a retry");
    // Meeting it forgot the cached statements: the retry prepares afresh.
    assert_eq!(pool.get().await.unwrap().statement_cache.size(), 0);
    assert_eq!(read(pool.clone()).await.unwrap(), 1);

    // A statement that fails on its data stays permanent.
    let client = pool.get().await.unwrap();
    let err = aia_store::StoreError::from(
        client
            .query("select 1 / (n - 7) from stale_probe", &[])
            .await
            .unwrap_err(),
    );
    assert!(!err.is_transient() && !err.is_stale_statement(), "{err}");
}

/// One pooled connection of the application role (row-level security on).
async fn app_connection(db: &TestDatabase) -> aia_store::Client {
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    pool.get().await.unwrap()
}

/// The budget alerts `tenant` sees.
async fn alerts(client: &mut aia_store::Client, tenant: &TenantId) -> i64 {
    let rows = aia_store::tenant_query(client, tenant, "select count(*) from budget_alerts", &[])
        .await
        .unwrap();
    rows[0].get(0)
}

#[tokio::test]
async fn a_search_query_sets_tenant_timeout_and_custom_plans_only_for_itself() {
    let db = TestDatabase::create().await;
    let mut client = app_connection(&db).await;
    let settings =
        "select current_setting('app.tenant_id', true), current_setting('statement_timeout'),
                           current_setting('plan_cache_mode')";
    let tenant = TenantId::parse("acme").unwrap();
    let rows = aia_store::search_query(&mut client, &tenant, "2s", settings, &[])
        .await
        .unwrap();
    let inside: (Option<String>, String, String) = (rows[0].get(0), rows[0].get(1), rows[0].get(2));
    assert_eq!(
        inside,
        (Some("acme".into()), "2s".into(), "force_custom_plan".into())
    );

    // The same pooled connection afterwards carries none of it.
    let row = client.query_one(settings, &[]).await.unwrap();
    let after: (Option<String>, String, String) = (row.get(0), row.get(1), row.get(2));
    assert_ne!(after.0.as_deref(), Some("acme"));
    assert_ne!(after.1, "2s");
    assert_eq!(after.2, "auto");

    // The timeout holds: a statement over it is cancelled.
    let err = aia_store::search_query(&mut client, &tenant, "50ms", "select pg_sleep(1)", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("57014"), "{err}");
    assert!(err.is_transient());
}

/// Whether the connection is inside a transaction: a transaction-local
/// setting made by one statement outlives it only inside one.
async fn in_transaction(client: &aia_store::Client) -> bool {
    client
        .batch_execute("select set_config('app.probe', 'set', true)")
        .await
        .unwrap();
    let row = client
        .query_one(
            "select coalesce(current_setting('app.probe', true), '')",
            &[],
        )
        .await
        .unwrap();
    row.get::<_, String>(0) == "set"
}

#[tokio::test]
async fn a_tenant_query_writes_for_its_tenant_alone_commits_and_leaves_no_transaction_open() {
    let db = TestDatabase::create().await;
    let mut client = app_connection(&db).await;
    let (a, b) = (
        TenantId::parse("tenant-a").unwrap(),
        TenantId::parse("tenant-b").unwrap(),
    );
    let insert =
        "insert into budget_alerts (tenant_id, period_start) values ($1, date '2026-11-01')
                  on conflict do nothing returning tenant_id";
    let rows = aia_store::tenant_query(&mut client, &a, insert, &[&"tenant-a"])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!in_transaction(&client).await);
    // Row-level security holds inside: tenant-b can neither see tenant-a's
    // row nor write one in tenant-a's name.
    let read = "select tenant_id from budget_alerts";
    let seen = aia_store::tenant_query(&mut client, &b, read, &[])
        .await
        .unwrap();
    assert!(seen.is_empty());
    let own = aia_store::tenant_query(&mut client, &a, read, &[])
        .await
        .unwrap();
    assert_eq!(own.len(), 1);
    let err = aia_store::tenant_query(&mut client, &b, insert, &[&"tenant-a"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    // Committed: another session sees it.
    let admin = db.admin_client().await;
    let count: i64 = admin
        .query_one("select count(*) from budget_alerts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_failing_tenant_query_rolls_back_and_the_connection_serves_the_next_one() {
    let db = TestDatabase::create().await;
    let mut client = app_connection(&db).await;
    let tenant = TenantId::parse("tenant-a").unwrap();
    // Fails on the server, after the tenant was set and a row written by
    // the same statement.
    let failing = "with written as (insert into budget_alerts (tenant_id, period_start)
                                    values ('tenant-a', date '2026-11-01') returning 1)
                   select 1 / (select count(*) - 1 from written)::int";
    let err = aia_store::tenant_query(&mut client, &tenant, failing, &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("division by zero"), "{err}");
    assert!(!in_transaction(&client).await);
    // Fails before leaving: a parameter of the wrong type.
    let err = aia_store::tenant_query(&mut client, &tenant, "select $1::int", &[&"not a number"])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("error serializing parameter 0"),
        "{err}"
    );
    assert!(!in_transaction(&client).await);
    // Nothing of the failed write is left, and the connection works.
    assert_eq!(alerts(&mut client, &tenant).await, 0);
}

#[tokio::test]
async fn an_unflushed_tenant_query_or_transaction_relaxes_the_commit_for_itself_only() {
    let db = TestDatabase::create().await;
    let mut client = app_connection(&db).await;
    let tenant = TenantId::parse("tenant-a").unwrap();
    // The session's own choice (the test server's default is off).
    client
        .batch_execute("set synchronous_commit = on")
        .await
        .unwrap();
    let setting =
        "select current_setting('synchronous_commit'), current_setting('app.tenant_id', true)";
    let inside = aia_store::tenant_query_unflushed(&mut client, &tenant, setting, &[])
        .await
        .unwrap();
    assert_eq!(
        (
            inside[0].get::<_, String>(0),
            inside[0].get::<_, Option<String>>(1)
        ),
        ("off".to_string(), Some("tenant-a".to_string()))
    );
    let after = client.query_one(setting, &[]).await.unwrap();
    assert_eq!(after.get::<_, String>(0), "on");
    assert_ne!(
        after.get::<_, Option<String>>(1).as_deref(),
        Some("tenant-a")
    );
    // The same for a transaction of several statements.
    let tx = aia_store::tenant_transaction_unflushed(&mut client, &tenant)
        .await
        .unwrap();
    let inside = tx.query_one(setting, &[]).await.unwrap();
    assert_eq!(
        (
            inside.get::<_, String>(0),
            inside.get::<_, Option<String>>(1)
        ),
        ("off".to_string(), Some("tenant-a".to_string()))
    );
    tx.commit().await.unwrap();
    let after = client.query_one(setting, &[]).await.unwrap();
    assert_eq!(after.get::<_, String>(0), "on");
    assert_ne!(
        after.get::<_, Option<String>>(1).as_deref(),
        Some("tenant-a")
    );
}

#[tokio::test]
async fn a_tenant_query_dropped_after_its_first_poll_still_ends_its_transaction() {
    let db = TestDatabase::create().await;
    let mut client = app_connection(&db).await;
    let tenant = TenantId::parse("tenant-a").unwrap();
    let insert =
        "insert into budget_alerts (tenant_id, period_start) values ('tenant-a', $1::text::date)";
    // Its statements prepared on the connection by a first call, so that
    // the first poll of the next sends the whole transaction (as in a
    // stage after its first ticket).
    aia_store::tenant_query(&mut client, &tenant, insert, &[&"2026-11-01"])
        .await
        .unwrap();

    // Polled once, then dropped (as a timeout does) before any answer.
    {
        let mut first = std::pin::pin!(aia_store::tenant_query(
            &mut client,
            &tenant,
            insert,
            &[&"2026-12-01"]
        ));
        assert!(futures::poll!(first.as_mut()).is_pending());
    }

    assert!(!in_transaction(&client).await);
    assert_eq!(
        alerts(&mut client, &tenant).await,
        2,
        "the dropped statement committed"
    );
}

/// A primary demoted (or fenced) read-only under a pool: the refusal is
/// worth retrying, and the pool lets go of its idle connections to that
/// server, so the retry opens one to whichever server is writable now.
#[tokio::test]
async fn a_read_only_refusal_is_retried_on_fresh_connections() {
    let db = TestDatabase::create().await;
    let pool = aia_store::pool(&db.app_url, 4).unwrap();
    let refused = pool.get().await.unwrap();
    let idle = pool.get().await.unwrap();
    drop(idle);
    assert_eq!(pool.status().size, 2);
    refused
        .batch_execute("set default_transaction_read_only = on")
        .await
        .unwrap();
    let err: aia_store::StoreError = refused
        .execute("create table written (x int)", &[])
        .await
        .unwrap_err()
        .into();
    assert!(err.is_read_only(), "{err}");
    assert!(err.is_transient(), "{err}");
    assert_eq!(pool.status().size, 1, "the idle connection is closed");
}

/// A settings change made from the settings as read lands only while they
/// still are: one made meanwhile (a model promoted, a console save) is not
/// written over.
#[tokio::test]
async fn a_settings_change_made_from_stale_settings_changes_nothing() {
    let db = TestDatabase::create().await;
    let keyring = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    let mut client = pool.get().await.unwrap();
    tenants::create(&mut client, &keyring, &new_tenant("acme", "s"))
        .await
        .unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let read = tenants::stored_settings(&mut client, &acme)
        .await
        .unwrap()
        .unwrap();
    // Someone else's change lands first.
    let theirs = TenantSettings {
        max_note_words: 250,
        ..TenantSettings::default()
    };
    assert!(
        tenants::update(
            &mut client,
            &keyring,
            &acme,
            &tenants::TenantUpdate {
                settings: Some(theirs),
                ..Default::default()
            },
        )
        .await
        .unwrap()
    );
    // Ours, made from what was read before it: refused, nothing changed.
    let ours = TenantSettings {
        allow_static_secret: true,
        ..TenantSettings::default()
    };
    let stale = tenants::TenantUpdate {
        settings: Some(ours.clone()),
        settings_were: Some(read),
        ..Default::default()
    };
    assert!(
        !tenants::update(&mut client, &keyring, &acme, &stale)
            .await
            .unwrap()
    );
    let (now, _) = tenants::settings(&mut client, &acme)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.max_note_words, 250);
    assert!(!now.allow_static_secret);
    // Made again from what is stored now, it lands.
    let fresh = tenants::TenantUpdate {
        settings: Some(ours),
        settings_were: tenants::stored_settings(&mut client, &acme).await.unwrap(),
        ..Default::default()
    };
    assert!(
        tenants::update(&mut client, &keyring, &acme, &fresh)
            .await
            .unwrap()
    );
    let (now, _) = tenants::settings(&mut client, &acme)
        .await
        .unwrap()
        .unwrap();
    assert!(now.allow_static_secret);
}

/// Credentials given for the help desk at one address land only while the
/// tenant's address still is that one: someone who moved the tenant to
/// their own server meanwhile does not receive the real credentials with
/// the next "Test the connection".
#[tokio::test]
async fn credentials_made_for_one_address_do_not_land_on_another() {
    let db = TestDatabase::create().await;
    let keyring = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    let mut client = pool.get().await.unwrap();
    tenants::create(&mut client, &keyring, &new_tenant("acme", "s"))
        .await
        .unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let loaded = tenants::get(&mut client, &keyring, &acme)
        .await
        .unwrap()
        .unwrap();
    // Moved elsewhere (with made-up credentials) after the operator loaded it.
    assert!(
        tenants::update(
            &mut client,
            &keyring,
            &acme,
            &tenants::TenantUpdate {
                itsm_base_url: Some("https://evil.example".into()),
                itsm_credentials: Some(aia_store::Secret::new(r#"{"authtoken":"dummy"}"#)),
                ..Default::default()
            },
        )
        .await
        .unwrap()
    );
    let real = tenants::TenantUpdate {
        itsm_credentials: Some(aia_store::Secret::new(r#"{"authtoken":"the real one"}"#)),
        base_url_were: Some(loaded.itsm_base_url.clone()),
        ..Default::default()
    };
    assert!(
        !tenants::update(&mut client, &keyring, &acme, &real)
            .await
            .unwrap()
    );
    let now = tenants::get(&mut client, &keyring, &acme)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.itsm_base_url, "https://evil.example");
    assert!(!now.itsm_credentials.expose().contains("the real one"));
}
