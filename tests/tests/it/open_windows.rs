//! The windows of open tickets a process holds (`open_tickets::WindowCache`)
//! answer what a full read of the table answers at that moment — through
//! new tickets, resolutions, a transaction that commits after a later one
//! was read, more open tickets than a window holds, many tenants and many
//! tickets at once — on a real database.

use std::sync::Arc;

use aia_events::{TenantId, TicketId};
use aia_store::Pool;
use aia_store::open_tickets::{self, NewOpenTicket, WindowCache};
use aia_testkit::TestDatabase;
use chrono::{DateTime, Duration, Utc};

const MODEL: &str = "test-model";

struct Windows {
    _db: TestDatabase,
    pool: Pool,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
}

/// A window as compared here: each ticket, newest first, with whether its
/// vector came with it.
type Seen = Vec<(String, bool)>;

impl Windows {
    async fn new() -> Self {
        let db = TestDatabase::create().await;
        let pool = aia_store::pool(&db.app_url, 8).unwrap();
        let now = Utc::now();
        Self {
            _db: db,
            pool,
            since: now - Duration::hours(2),
            now,
        }
    }

    /// What the context stage does for a ticket (its window read in full).
    async fn record(&self, tenant: &str, ticket: &str, minutes_ago: i64, model: &str) {
        let received_at = self.now - Duration::minutes(minutes_ago);
        self.enter(
            &WindowCache::new(0),
            tenant,
            ticket,
            received_at,
            (model, &[0.6, 0.8]),
        )
        .await;
    }

    /// Enters a ticket into its tenant's window through `windows`, as the
    /// context stage does, and returns the ids of the window it read.
    async fn enter(
        &self,
        windows: &WindowCache,
        tenant: &str,
        ticket: &str,
        received_at: DateTime<Utc>,
        vector: (&str, &[f32]),
    ) -> Vec<String> {
        open_tickets::window_and_record(
            &mut self.pool.get().await.unwrap(),
            windows,
            &TenantId::parse(tenant).unwrap(),
            self.since,
            NewOpenTicket {
                ticket_id: &TicketId::parse(ticket).unwrap(),
                subject: Some(ticket),
                received_at,
                entities: &[],
                vector: Some(vector),
            },
            true,
        )
        .await
        .unwrap()
        .iter()
        .map(|open| open.ticket_id.as_str().to_owned())
        .collect()
    }

    async fn resolve(&self, tenant: &str, ticket: &str) {
        open_tickets::resolve(
            &mut self.pool.get().await.unwrap(),
            &TenantId::parse(tenant).unwrap(),
            &TicketId::parse(ticket).unwrap(),
            Utc::now(),
        )
        .await
        .unwrap();
    }

    async fn read(&self, windows: &WindowCache, tenant: &str, except: &str) -> Seen {
        let mut client = self.pool.get().await.unwrap();
        let tenant = TenantId::parse(tenant).unwrap();
        let tx = aia_store::tenant_transaction(&mut client, &tenant)
            .await
            .unwrap();
        let window = windows
            .window(
                &tx,
                &tenant,
                self.since,
                &TicketId::parse(except).unwrap(),
                Some(MODEL),
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        window
            .iter()
            .map(|open| (open.ticket_id.as_str().to_owned(), open.vector.is_some()))
            .collect()
    }

    /// The held window, checked against a full read at the same moment.
    async fn held(&self, windows: &WindowCache, tenant: &str) -> Seen {
        self.held_without(windows, tenant, "none").await
    }

    /// The same, for a ticket of the window (left out of it).
    async fn held_without(&self, windows: &WindowCache, tenant: &str, except: &str) -> Seen {
        let held = self.read(windows, tenant, except).await;
        let full = self.read(&WindowCache::new(0), tenant, except).await;
        assert_eq!(held, full, "the held window of {tenant} is not the table's");
        held
    }
}

fn ids(seen: &Seen) -> Vec<&str> {
    seen.iter().map(|(id, _)| id.as_str()).collect()
}

#[tokio::test]
async fn a_held_window_follows_new_tickets_resolutions_a_late_commit_and_a_model_change() {
    let w = Windows::new().await;
    let held = WindowCache::new(16);
    for (n, ticket) in ["T-1", "T-2", "T-3"].iter().enumerate() {
        w.record("acme", ticket, 30 - n as i64, MODEL).await;
    }
    assert_eq!(ids(&w.held(&held, "acme").await), ["T-3", "T-2", "T-1"]);

    // A transaction that writes before the next read and commits after it.
    let mut late_client = w.pool.get().await.unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let late = aia_store::tenant_transaction(&mut late_client, &acme)
        .await
        .unwrap();
    late.execute(
        "insert into open_tickets (tenant_id, ticket_id, received_at, subject, model, vector)
         values ('acme', 'LATE', $1, 'late', $2, '\\x4c59'::bytea)",
        &[&(w.now - Duration::minutes(5)), &MODEL],
    )
    .await
    .unwrap();
    w.record("acme", "T-4", 3, MODEL).await;
    assert_eq!(
        ids(&w.held(&held, "acme").await),
        ["T-4", "T-3", "T-2", "T-1"]
    );
    late.commit().await.unwrap();
    assert_eq!(
        ids(&w.held(&held, "acme").await),
        ["T-4", "LATE", "T-3", "T-2", "T-1"],
        "a ticket committed after a later one was read is not missed"
    );

    w.resolve("acme", "T-2").await;
    w.resolve("acme", "LATE").await;
    assert_eq!(ids(&w.held(&held, "acme").await), ["T-4", "T-3", "T-1"]);

    // Re-embedded by another model: in the window, without a vector of
    // the model asked for.
    w.record("acme", "T-3", 28, "other-model").await;
    let seen = w.held(&held, "acme").await;
    assert_eq!(
        seen,
        [
            ("T-4".to_owned(), true),
            ("T-3".to_owned(), false),
            ("T-1".to_owned(), true),
        ]
    );
}

#[tokio::test]
async fn a_held_window_of_more_open_tickets_than_a_window_holds_stays_the_newest() {
    let w = Windows::new().await;
    let held = WindowCache::new(16);
    let owner = w._db.admin_client().await;
    let fill = |from: i32, to: i32, ago: DateTime<Utc>| {
        let owner = &owner;
        async move {
            owner
                .execute(
                    "insert into open_tickets (tenant_id, ticket_id, received_at, model, vector)
                     select 'acme', 'T-' || g, $3::timestamptz + g * interval '1 second', $4,
                            '\\x4c59'::bytea
                       from generate_series($1::int, $2::int) g",
                    &[&from, &to, &ago, &MODEL],
                )
                .await
                .unwrap();
        }
    };
    let limit = open_tickets::MAX_WINDOW_ROWS as usize;
    fill(1, 1_600, w.now - Duration::minutes(90)).await;
    let seen = w.held(&held, "acme").await;
    assert_eq!(seen.len(), limit);
    assert_eq!(seen[0].0, "T-1600");

    // The newest resolve: older ones the held copy did not keep come back.
    owner
        .execute(
            "update open_tickets set resolved_at = now()
              where tenant_id = 'acme' and ticket_id = any($1)",
            &[&(1_101..=1_600)
                .map(|n| format!("T-{n}"))
                .collect::<Vec<_>>()],
        )
        .await
        .unwrap();
    let seen = w.held(&held, "acme").await;
    assert_eq!(seen[0].0, "T-1100");
    assert_eq!(seen.len(), limit);
    // A window without one of its own tickets is still a full window.
    let seen = w.held_without(&held, "acme", "T-1100").await;
    assert_eq!(seen.len(), limit);
    assert_eq!(seen[0].0, "T-1099");

    // A flood of newer ones: the held copy drops its oldest and stays right.
    fill(2_000, 3_400, w.now - Duration::minutes(60)).await;
    let seen = w.held(&held, "acme").await;
    assert_eq!(seen[0].0, "T-3400");
    assert_eq!(seen.len(), limit);
}

#[tokio::test]
async fn a_held_window_of_many_tickets_received_at_one_instant_is_the_table_s() {
    // An import's tickets may share one received time: the held copy must
    // not lose those at its edge.
    let w = Windows::new().await;
    let held = WindowCache::new(16);
    let owner = w._db.admin_client().await;
    owner
        .execute(
            "insert into open_tickets (tenant_id, ticket_id, received_at, model, vector)
             select 'acme', 'T-' || lpad(g::text, 4, '0'), $1, $2, '\\x4c59'::bytea
               from generate_series(1, 1400) g",
            &[&(w.now - Duration::minutes(30)), &MODEL],
        )
        .await
        .unwrap();
    for _ in 0..3 {
        let seen = w.held_without(&held, "acme", "T-1400").await;
        assert_eq!(seen.len(), open_tickets::MAX_WINDOW_ROWS as usize);
        assert_eq!(seen[0].0, "T-1399");
    }
    owner
        .execute(
            "update open_tickets set resolved_at = now()
              where tenant_id = 'acme' and ticket_id >= 'T-1001'",
            &[],
        )
        .await
        .unwrap();
    let seen = w.held(&held, "acme").await;
    assert_eq!(seen.len(), open_tickets::MAX_WINDOW_ROWS as usize);
    assert_eq!(seen[0].0, "T-1000");
}

#[tokio::test]
async fn held_windows_of_many_tenants_never_mix_and_a_dropped_tenant_is_read_again() {
    let w = Windows::new().await;
    // Room for one tenant: each read of another drops the one before.
    let held = WindowCache::new(1);
    w.record("acme", "A-1", 10, MODEL).await;
    w.record("globex", "G-1", 10, MODEL).await;
    for _ in 0..2 {
        assert_eq!(ids(&w.held(&held, "acme").await), ["A-1"]);
        assert_eq!(ids(&w.held(&held, "globex").await), ["G-1"]);
    }
    w.record("acme", "A-2", 5, MODEL).await;
    assert_eq!(ids(&w.held(&held, "acme").await), ["A-2", "A-1"]);
    assert_eq!(ids(&w.held(&held, "globex").await), ["G-1"]);
}

#[tokio::test]
async fn a_hundred_tickets_at_once_through_one_held_window_each_see_a_window_without_themselves() {
    let w = Arc::new(Windows::new().await);
    let held = Arc::new(WindowCache::new(16));
    let calls = (0..100).map(|n| {
        let (w, held) = (w.clone(), held.clone());
        tokio::spawn(async move {
            let ticket = format!("T-{n}");
            let received_at = w.now - Duration::seconds(n);
            let window = w
                .enter(&held, "acme", &ticket, received_at, (MODEL, &[0.6, 0.8]))
                .await;
            assert!(!window.contains(&ticket));
        })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap();
    }
    let seen = w.held(&held, "acme").await;
    assert_eq!(seen.len(), 100);
    assert_eq!(seen[0].0, "T-0");
}

/// A live incident's centroid as the correlator holds it: the same as one
/// computed from every member's stored vector, when members join through
/// this process or another, when a member's vector is not of the model
/// asked for, and when the incident's version goes back (a restored
/// database).
#[tokio::test]
async fn a_held_centroid_is_the_centroid_of_every_member_as_members_join() {
    use incident_correlator::centroids::Centroids;
    use incident_correlator::decide;

    let w = Windows::new().await;
    let acme = TenantId::parse("acme").unwrap();
    let vectors: Vec<[f32; 2]> = vec![[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]];
    for (n, vector) in vectors.iter().enumerate() {
        let model = if n == 3 { "other-model" } else { MODEL };
        let received_at = w.now - Duration::minutes(10 - n as i64);
        let ticket = format!("T-{n}");
        w.enter(
            &WindowCache::new(0),
            "acme",
            &ticket,
            received_at,
            (model, vector),
        )
        .await;
    }
    let owner = w._db.admin_client().await;
    let incident = uuid::Uuid::now_v7();
    owner
        .execute(
            "insert into incidents (tenant_id, incident_id, version, status, summary,
                                    first_ticket_at, last_ticket_at, detected_at, detected_by,
                                    updated_at)
             values ('acme', $1, 1, 'open', 'one outage', now(), now(), now(), 'T-0', now())",
            &[&incident],
        )
        .await
        .unwrap();
    let join = |ticket: &'static str| {
        let owner = &owner;
        async move {
            // As `store::apply` folds `incident.updated` (ticket added):
            // the incident's next version, the ticket joining at it.
            owner
                .execute(
                    "with next as (
                       update incidents set version = version + 1
                        where tenant_id = 'acme' and incident_id = $2
                        returning version)
                     insert into incident_tickets
                            (tenant_id, ticket_id, incident_id, received_at, joined_version)
                     select 'acme', $1, $2, now(), version from next",
                    &[&ticket, &incident],
                )
                .await
                .unwrap();
        }
    };
    let held = Centroids::default();
    let centroid = |members: &[usize]| {
        decide::centroid(
            members
                .iter()
                .map(|n| open_tickets::as_stored(&vectors[*n]))
                .collect::<Vec<_>>()
                .iter()
                .map(Vec::as_slice),
        )
        .unwrap()
    };
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);

    join("T-0").await;
    join("T-1").await;
    let (first, members) = filled(&w, &acme, &held).await;
    assert!(close(&first, &centroid(&[0, 1])));
    assert_eq!(members, 2);
    // Joined by another instance; the one of another model counts for none
    // — in the mean, and in the count the join threshold is judged by.
    join("T-2").await;
    join("T-3").await;
    let (after, members) = filled(&w, &acme, &held).await;
    assert!(close(&after, &centroid(&[0, 1, 2])), "{after:?}");
    assert_eq!(members, 3);
    let (fresh, fresh_members) = filled(&w, &acme, &Centroids::default()).await;
    assert!(close(&fresh, &after));
    assert_eq!(fresh_members, 3);

    // The database restored to before T-2 and T-3 joined: the incident's
    // version is below the held sum's, which is read afresh.
    owner
        .batch_execute(
            "delete from incident_tickets where ticket_id in ('T-2', 'T-3');
             update incidents set version = 3;",
        )
        .await
        .unwrap();
    let (restored, members) = filled(&w, &acme, &held).await;
    assert!(close(&restored, &centroid(&[0, 1])), "{restored:?}");
    assert_eq!(members, 2);
}

/// The one live incident's centroid as `centroids` fills it, and how many
/// members' vectors it is the mean of.
async fn filled(
    w: &Windows,
    tenant: &TenantId,
    centroids: &incident_correlator::centroids::Centroids,
) -> (Vec<f32>, usize) {
    let mut client = w.pool.get().await.unwrap();
    let tx = aia_store::tenant_transaction(&mut client, tenant)
        .await
        .unwrap();
    let mut live = incident_correlator::store::live(&tx, tenant).await.unwrap();
    centroids.fill(&tx, tenant, MODEL, &mut live).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(live.len(), 1);
    let incident = live.remove(0);
    (incident.centroid.unwrap(), incident.centroid_members)
}
