//! Rebuilding the projections from the stream reproduces exactly what the
//! live projector wrote, repairs damage, and lets the projector keep
//! serving during and after the swap.

use std::time::Duration;

use aia_events::{Event, Payload, TenantId, TicketId, examples};
use aia_testkit::{NatsServer, TestDatabase, eventually};
use chrono::{TimeDelta, Utc};

/// Runs of every outcome for `tenant`, plus resolved tickets and a rating.
fn events_for(tenant: &str, n_runs: usize) -> Vec<Event> {
    let samples = examples::all();
    let mut out = Vec::new();
    for run in 0..n_runs {
        let correlation = uuid::Uuid::now_v7();
        let start = Utc::now() - TimeDelta::minutes(10);
        let kinds: &[&str] = match run % 3 {
            0 => &[
                "ticket.received",
                "context.gathered",
                "enhancement.generated",
                "writeback.completed",
                "enhancement.rated",
            ],
            1 => &["ticket.received", "context.gathered", "enhancement.failed"],
            _ => &[
                "ticket.received",
                "context.gathered",
                "enhancement.generated",
                "writeback.failed",
            ],
        };
        for (idx, kind) in kinds.iter().enumerate() {
            let mut event = samples
                .iter()
                .find(|event| event.event_type() == *kind)
                .unwrap()
                .clone();
            event.event_id = uuid::Uuid::now_v7();
            event.tenant_id = TenantId::parse(tenant).unwrap();
            event.ticket_id = TicketId::parse(&format!("T-{run}")).unwrap();
            event.correlation_id = correlation;
            event.occurred_at = start + TimeDelta::seconds(idx as i64);
            out.push(event);
        }
        if run % 4 == 0 {
            let mut resolved = samples
                .iter()
                .find(|event| event.event_type() == "ticket.resolved")
                .unwrap()
                .clone();
            resolved.event_id = uuid::Uuid::now_v7();
            resolved.tenant_id = TenantId::parse(tenant).unwrap();
            resolved.ticket_id = TicketId::parse(&format!("R-{run}")).unwrap();
            if let Payload::TicketResolved(payload) = &mut resolved.payload {
                payload.resolution = format!("fix {run}");
            }
            out.push(resolved);
        }
    }
    out
}

async fn publish(jetstream: &aia_bus::JetStream, events: &[Event]) {
    for event in events {
        aia_bus::publish_event(jetstream, event, &event.event_id.to_string())
            .await
            .unwrap();
    }
}

async fn projected_through(owner: &tokio_postgres::Client, jetstream: &aia_bus::JetStream) {
    let mut stream = jetstream.get_stream(aia_bus::STREAM).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence as i64;
    eventually(
        "the live projector to catch up",
        Duration::from_secs(30),
        || async {
            let row = owner
                .query_opt("select stream_sequence from projection_checkpoints", &[])
                .await
                .ok()??;
            (row.get::<_, i64>(0) >= last).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_reproduces_the_live_projection_repairs_damage_and_keeps_serving() {
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let projector = tokio::spawn(history_projector::run(
        history_projector::Config::new(nats.url(), db.app_url.clone()),
        shutdown.clone().cancelled_owned(),
    ));
    publish(&jetstream, &events_for("acme", 30)).await;
    publish(&jetstream, &events_for("globex", 20)).await;
    let (owner, connection) = tokio_postgres::connect(&db.admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    projected_through(&owner, &jetstream).await;
    let live = aia_testkit::projection_snapshot(&owner).await;
    assert!(live[0].contains("\"completed\"") && live[0].contains("\"failed\""));

    let indexes_before = indexes(&owner).await;

    // Damage the read models, then rebuild everything.
    owner
        .batch_execute(
            "update enhancement_history set status = 'received', note_markdown = 'tampered';
             delete from ticket_history where tenant_id = 'globex';
             update tenant_daily_stats set completed = 999;",
        )
        .await
        .unwrap();
    let report = history_projector::rebuild::rebuild_all(&jetstream, &db.admin_url)
        .await
        .unwrap();
    assert_eq!(report.runs, 50);
    assert_eq!(
        aia_testkit::projection_snapshot(&owner).await,
        live,
        "the rebuild differs from the live projection"
    );
    assert_eq!(
        indexes(&owner).await,
        indexes_before,
        "the rebuilt tables lost or renamed an index"
    );

    // Events that arrive while a rebuild runs end up in the swapped-in tables
    // exactly once: a second rebuild of the settled state changes nothing.
    let more = events_for("initech", 10);
    let (rebuilt, ()) = tokio::join!(
        history_projector::rebuild::rebuild_all(&jetstream, &db.admin_url),
        publish(&jetstream, &more)
    );
    rebuilt.unwrap();
    projected_through(&owner, &jetstream).await;
    let settled = aia_testkit::projection_snapshot(&owner).await;
    assert!(settled[0].contains("initech") && !settled[0].contains("tampered"));
    history_projector::rebuild::rebuild_all(&jetstream, &db.admin_url)
        .await
        .unwrap();
    assert_eq!(aia_testkit::projection_snapshot(&owner).await, settled);

    // The projector keeps serving after the swaps, into the new tables.
    publish(&jetstream, &events_for("acme", 3)).await;
    projected_through(&owner, &jetstream).await;
    let after = aia_testkit::projection_snapshot(&owner).await;
    assert_ne!(after, settled);
    // Row-level security survived the swap.
    let (app, connection) = tokio_postgres::connect(&db.app_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let visible: i64 = app
        .query_one("select count(*) from enhancement_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 0, "without a tenant the app role must see nothing");

    // One tenant: its damage is repaired, the other tenant is untouched.
    owner
        .batch_execute(
            "update enhancement_history set note_markdown = 'tampered' where tenant_id = 'globex';
             update enhancement_history set note_markdown = 'left alone' where tenant_id = 'acme';",
        )
        .await
        .unwrap();
    let report = history_projector::rebuild::rebuild_tenant(
        &jetstream,
        &db.admin_url,
        &TenantId::parse("globex").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(report.runs, 20);
    let tampered: i64 = owner
        .query_one(
            "select count(*) from enhancement_history where note_markdown = 'tampered'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let left: i64 = owner
        .query_one(
            "select count(*) from enhancement_history where note_markdown = 'left alone'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!((tampered, left), (0, 33));

    // One rebuild at a time: while one runs (its lock held here), a second
    // is refused before it touches a table; once it is done, one runs.
    owner
        .execute(
            "select pg_advisory_lock(hashtext('aiagents rebuild of the read models'))",
            &[],
        )
        .await
        .unwrap();
    for refused in [
        history_projector::rebuild::rebuild_all(&jetstream, &db.admin_url).await,
        history_projector::rebuild::rebuild_tenant(
            &jetstream,
            &db.admin_url,
            &TenantId::parse("acme").unwrap(),
        )
        .await,
    ] {
        let err = refused.expect_err("a second rebuild at once");
        assert!(err.to_string().contains("another rebuild"), "{err}");
    }
    owner
        .execute(
            "select pg_advisory_unlock(hashtext('aiagents rebuild of the read models'))",
            &[],
        )
        .await
        .unwrap();
    history_projector::rebuild::rebuild_all(&jetstream, &db.admin_url)
        .await
        .unwrap();

    shutdown.cancel();
    projector.await.unwrap().unwrap();
}

/// The projection tables' index names.
async fn indexes(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "select tablename || '.' || indexname from pg_indexes
              where schemaname = 'public'
                and tablename in ('enhancement_history', 'ticket_history', 'tenant_daily_stats')
              order by 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect()
}

/// The rows from before the stream's first event the test put in: the
/// day's counters, the run and the resolved ticket.
async fn kept_from_before_the_stream(owner: &tokio_postgres::Client) -> (i64, i64, i64) {
    let row = owner
        .query_one(
            "select (select count(*) from tenant_daily_stats where day = current_date - 200),
                    (select count(*) from enhancement_history where ticket_id = 'OLD-1'),
                    (select count(*) from ticket_history where ticket_id = 'OLD-1')",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// The stream restored from an older backup than the database: the read
/// models' checkpoint is past the stream's last event. The projector
/// refuses to start (it would take every new event up to the checkpoint
/// for one already applied, and drop it without a word); a rebuild makes
/// the read models follow the stream, and the projector then applies what
/// comes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_older_than_the_read_models_stops_the_projector_until_a_rebuild() {
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    publish(&jetstream, &events_for("acme", 3)).await;
    let owner = db.admin_client().await;
    // As the restored database says: projected far past this stream.
    owner
        .execute(
            "insert into projection_checkpoints (projection, stream_sequence) values ('history', 5000)
             on conflict (projection) do update set stream_sequence = 5000",
            &[],
        )
        .await
        .unwrap();
    let refused = history_projector::run(
        history_projector::Config::new(nats.url(), db.app_url.clone()),
        std::future::pending(),
    )
    .await
    .expect_err("the projector must not start");
    assert!(
        refused.to_string().contains("aiagents rebuild"),
        "{refused}"
    );

    // What the read models hold from before the stream's first event (its
    // run events expired; counters and resolved tickets are kept for good):
    // a rebuild keeps it rather than lose it.
    owner
        .batch_execute(
            "insert into tenant_daily_stats (tenant_id, day, cost_usd) values ('acme', current_date - 200, 7.0);
             insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, received_at, last_event_id)
             values ('acme', gen_random_uuid(), 'OLD-1', 'completed', now() - interval '30 days', gen_random_uuid());
             insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id)
             values ('acme', 'OLD-1', 'Old', 'An old ticket', 'An old fix', 'low', now() - interval '200 days', gen_random_uuid());",
        )
        .await
        .unwrap();
    let report = history_projector::rebuild::rebuild_all(&jetstream, &db.admin_url)
        .await
        .unwrap();
    assert_eq!(report.runs, 3);
    let kept = kept_from_before_the_stream(&owner).await;
    assert_eq!(kept, (1, 1, 1), "what the stream no longer holds is kept");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let projector = tokio::spawn(history_projector::run(
        history_projector::Config::new(nats.url(), db.app_url.clone()),
        shutdown.clone().cancelled_owned(),
    ));
    publish(&jetstream, &events_for("globex", 2)).await;
    projected_through(&owner, &jetstream).await;
    let runs: i64 = owner
        .query_one("select count(*) from enhancement_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 6, "the events after the restore are applied");
    // One tenant's rebuild keeps them too.
    history_projector::rebuild::rebuild_tenant(
        &jetstream,
        &db.admin_url,
        &aia_events::TenantId::parse("acme").unwrap(),
    )
    .await
    .unwrap();
    let kept = kept_from_before_the_stream(&owner).await;
    assert_eq!(kept, (1, 1, 1), "a tenant's rebuild keeps them too");
    shutdown.cancel();
    projector.await.unwrap().unwrap();
}

/// A long read holding the history (a CSV export) makes the swap give up
/// after its lock timeout, rather than queue every other reader of the
/// tables behind it with the live projector paused; nothing is swapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_behind_a_long_read_gives_up_rather_than_block_every_reader() {
    let nats = NatsServer::start().await;
    let db = TestDatabase::create().await;
    aiagents::ops::apply_nats(&nats.url()).await.unwrap();
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    publish(&jetstream, &events_for("acme", 2)).await;
    let mut reader = db.admin_client().await;
    let long_read = reader.transaction().await.unwrap();
    long_read
        .batch_execute("lock table enhancement_history in access share mode")
        .await
        .unwrap();
    let refused = history_projector::rebuild::rebuild_all(&jetstream, &db.admin_url)
        .await
        .expect_err("the swap must give up");
    assert!(
        format!("{refused:#}").contains("lock timeout"),
        "{refused:#}"
    );
    long_read.rollback().await.unwrap();
    history_projector::rebuild::rebuild_all(&jetstream, &db.admin_url)
        .await
        .unwrap();
}
