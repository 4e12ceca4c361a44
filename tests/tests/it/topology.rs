//! The JetStream definitions of `nats/` apply idempotently and drift is
//! reported and repaired.

use std::time::Duration;

use aia_bus::topology::{Applied, Topology};
use aia_testkit::NatsServer;

#[tokio::test]
async fn applying_twice_creates_once_then_reports_everything_unchanged() {
    let nats = NatsServer::start().await;
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let topology = Topology::builtin().unwrap();

    let first = topology.apply(&jetstream).await.unwrap();
    // The stream, a consumer per stage, the embedding indexer's and the
    // incident stages'.
    assert_eq!(first.len(), 8);
    assert!(
        first
            .iter()
            .all(|applied| matches!(applied, Applied::Created { .. })),
        "{first:?}"
    );

    let second = topology.apply(&jetstream).await.unwrap();
    assert!(
        second
            .iter()
            .all(|applied| matches!(applied, Applied::Unchanged { .. })),
        "{second:?}"
    );

    let mut stream = jetstream.get_stream("TICKETS").await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(
        config.storage,
        async_nats::jetstream::stream::StorageType::File
    );
    // Ten minutes: longer than a signed webhook timestamp is accepted.
    assert_eq!(config.duplicate_window, Duration::from_secs(600));
    assert!(config.duplicate_window >= aia_bus::WEBHOOK_MAX_AGE + aia_bus::WEBHOOK_MAX_FUTURE);
    // No stream-wide age: run events carry their own TTL, resolved tickets
    // none (see `retention.rs`).
    assert_eq!(config.max_age, Duration::ZERO);
    assert!(config.allow_message_ttl);
}

#[tokio::test]
async fn a_definition_changed_on_the_server_is_reported_field_by_field_and_restored() {
    let nats = NatsServer::start().await;
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let topology = Topology::builtin().unwrap();
    topology.apply(&jetstream).await.unwrap();

    // Someone edits a consumer and the stream by hand.
    let stream = jetstream.get_stream("TICKETS").await.unwrap();
    let mut consumer_config = stream
        .consumer_info("writeback")
        .await
        .unwrap()
        .config
        .clone();
    consumer_config.max_deliver = 2;
    consumer_config.backoff = vec![Duration::from_secs(1)];
    stream.update_consumer(consumer_config).await.unwrap();
    let mut stream_config = stream.cached_info().config.clone();
    stream_config.duplicate_window = Duration::from_secs(30);
    jetstream.update_stream(stream_config).await.unwrap();

    let report = topology.apply(&jetstream).await.unwrap();
    let updated: Vec<(&str, Vec<&str>)> = report
        .iter()
        .filter_map(|applied| match applied {
            Applied::Updated { name, changes } => Some((
                name.as_str(),
                changes.iter().map(|change| change.field.as_str()).collect(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        updated,
        [
            ("stream TICKETS", vec!["duplicate_window"]),
            (
                "consumer writeback",
                vec!["ack_wait", "backoff", "max_deliver"]
            ),
        ]
    );
    let after = topology.apply(&jetstream).await.unwrap();
    assert!(
        after
            .iter()
            .all(|applied| matches!(applied, Applied::Unchanged { .. })),
        "{after:?}"
    );
}

#[tokio::test]
async fn applying_changed_definitions_keeps_a_paused_stage_paused() {
    let nats = NatsServer::start().await;
    let (_client, jetstream) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    let topology = Topology::builtin().unwrap();
    topology.apply(&jetstream).await.unwrap();
    aia_ops::pause::pause_stage(&jetstream, "writeback")
        .await
        .unwrap();

    // The definition drifts (as after an upgrade), and is applied again.
    let stream = jetstream.get_stream("TICKETS").await.unwrap();
    let mut config = stream
        .consumer_info("writeback")
        .await
        .unwrap()
        .config
        .clone();
    config.max_ack_pending = 10;
    stream.update_consumer(config).await.unwrap();
    let report = topology.apply(&jetstream).await.unwrap();
    assert!(report.iter().any(
        |applied| matches!(applied, Applied::Updated { name, .. } if name == "consumer writeback")
    ));

    let info = stream.consumer_info("writeback").await.unwrap().clone();
    assert!(info.paused, "the update resumed a paused stage");
    aia_ops::pause::resume_stage(&jetstream, "writeback")
        .await
        .unwrap();
    assert!(!stream.consumer_info("writeback").await.unwrap().paused);
}

/// A NATS that admits only named users (as the compose deployment's does)
/// is reached with the credentials in the URL, `user:password@host`, as
/// nats-server's own tools take them; a client without them is refused.
#[tokio::test]
async fn a_nats_url_carrying_a_user_and_password_signs_in_with_them() {
    let nats = NatsServer::start_with_password("pipeline", "p@ss:w/rd").await;
    let plain = nats.url();
    let refused = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(plain.as_str())
        .await;
    assert!(refused.is_err(), "the server must require a password");

    let signed = plain.replacen("nats://", "nats://pipeline:p%40ss%3Aw%2Frd@", 1);
    let (client, jetstream) =
        tokio::time::timeout(Duration::from_secs(10), aia_bus::connect(&signed, "test"))
            .await
            .expect("signed in within 10 s")
            .unwrap();
    Topology::builtin()
        .unwrap()
        .apply(&jetstream)
        .await
        .unwrap();
    client.flush().await.unwrap();
}
