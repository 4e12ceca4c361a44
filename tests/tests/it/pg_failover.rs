//! PostgreSQL with a streaming standby (`aia_testkit::PgCluster::standby`):
//! a pool given both servers with `target_session_attrs=read-write`, as
//! services are configured for a primary that fails over, never writes to
//! the read-only standby, and writes to it once it is promoted, with every
//! row the standby had replayed.

use std::time::Duration;

use aia_testkit::{PgCluster, eventually, pg_failover_url};

async fn count(pool: &aia_store::Pool) -> Option<i64> {
    let client = pool.get().await.ok()?;
    let row = client
        .query_one("select count(*) from failover_probe", &[])
        .await
        .ok()?;
    Some(row.get(0))
}

#[tokio::test]
async fn a_pool_given_both_servers_moves_to_the_promoted_standby_with_what_it_replayed() {
    let primary = PgCluster::start().await;
    let standby = primary.standby().await;
    let url = pg_failover_url("aiagents", &[&primary, &standby]);
    let pool = aia_store::pool(&url, 2).unwrap();
    {
        let client = pool.get().await.unwrap();
        client
            .batch_execute(
                "create table failover_probe (n int primary key);
                 insert into failover_probe select generate_series(1, 100);",
            )
            .await
            .unwrap();
    }
    // The standby has replayed the rows (it is synchronous: every commit
    // is flushed there before the primary answers).
    let on_standby = aia_store::pool(
        &format!("postgres://aiagents@127.0.0.1:{}/aiagents", standby.port()),
        1,
    )
    .unwrap();
    eventually(
        "the standby replays the rows",
        Duration::from_secs(30),
        || {
            let on_standby = on_standby.clone();
            async move { (count(&on_standby).await == Some(100)).then_some(()) }
        },
    )
    .await;
    let read_only = on_standby
        .get()
        .await
        .unwrap()
        .batch_execute("insert into failover_probe values (0)")
        .await;
    assert!(read_only.is_err(), "a standby takes no writes");
    // An operator's command (migrations, re-encryption) given both servers,
    // the standby first and no session attributes, reaches the writable one.
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", standby.port(), primary.port());
    let operator = aia_store::connect(&format!("postgres://aiagents@{hosts}/aiagents"))
        .await
        .unwrap();
    operator
        .batch_execute(
            "insert into failover_probe values (0); delete from failover_probe where n = 0",
        )
        .await
        .expect("the operator's connection writes");
    // So does a services' pool given them in that order: the read-only
    // standby, first, is passed over for the writable primary.
    let standby_first =
        aia_store::pool(&format!("postgres://aiagents@{hosts}/aiagents"), 2).unwrap();
    let client = standby_first.get().await.unwrap();
    let in_recovery: bool = client
        .query_one("select pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!in_recovery, "the pool connected to the standby");
    client
        .batch_execute(
            "insert into failover_probe values (0); delete from failover_probe where n = 0",
        )
        .await
        .expect("the pool writes");
    drop(client);

    primary.kill();
    // Until the standby is promoted there is no server taking writes, and
    // the pool does not settle for the read-only one.
    let refused = match pool.get().await {
        Ok(client) => client
            .batch_execute("insert into failover_probe values (101)")
            .await
            .is_err(),
        Err(_) => true,
    };
    assert!(refused, "nothing is written while no server takes writes");

    standby.promote();
    let written = eventually(
        "the pool writes to the promoted standby",
        Duration::from_secs(30),
        || {
            let pool = pool.clone();
            async move {
                let client = pool.get().await.ok()?;
                client
                    .execute(
                        "insert into failover_probe values (101) on conflict do nothing",
                        &[],
                    )
                    .await
                    .ok()
            }
        },
    )
    .await;
    assert_eq!(written, 1);
    assert_eq!(count(&pool).await, Some(101));
}
