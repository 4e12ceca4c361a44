//! The JetStream topology on a three-node cluster (three nats-server
//! processes with routes, `aia_testkit::NatsCluster`): `nats apply
//! --replicas 3` makes the stream and every consumer R3 and refuses R3 on a
//! single server; a client given every node carries on when its node dies;
//! and an event whose publish was acknowledged survives the stream
//! leader's death.

use std::time::Duration;

use aia_bus::topology::Applied;
use aia_testkit::{NatsCluster, NatsServer, eventually};
use aiagents::ops::apply_nats_replicated;
use async_nats::jetstream;

const STAGES: [&str; 7] = [
    "context-gatherer",
    "llm-enhancer",
    "writeback",
    "history-projector",
    "embedding-indexer",
    "incident-correlator",
    "incident-notifier",
];

#[tokio::test]
async fn replicas_three_makes_the_stream_and_every_consumer_r3_and_a_second_apply_changes_nothing()
{
    let cluster = NatsCluster::start().await;

    let first = apply_nats_replicated(&cluster.urls(), Some(3))
        .await
        .unwrap();
    assert_eq!(first.len(), 8, "{first:?}");
    assert!(
        first.iter().all(|a| matches!(a, Applied::Created { .. })),
        "{first:?}"
    );
    let (_client, js) = aia_bus::connect(&cluster.urls(), "test").await.unwrap();
    let mut stream = js.get_stream("TICKETS").await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    let placement = info.cluster.clone().expect("a clustered stream");
    assert!(placement.leader.is_some());
    assert_eq!(placement.replicas.len(), 2, "a leader and two followers");
    for stage in STAGES {
        let consumer = stream.consumer_info(stage).await.unwrap();
        assert_eq!(consumer.config.num_replicas, 3, "{stage}");
    }

    let second = apply_nats_replicated(&cluster.urls(), Some(3))
        .await
        .unwrap();
    assert!(
        second
            .iter()
            .all(|a| matches!(a, Applied::Unchanged { .. })),
        "{second:?}"
    );

    // A consumer scaled down by hand is drift, reported and repaired.
    let mut config = stream
        .consumer_info("writeback")
        .await
        .unwrap()
        .config
        .clone();
    config.num_replicas = 1;
    stream.update_consumer(config).await.unwrap();
    let third = apply_nats_replicated(&cluster.urls(), Some(3))
        .await
        .unwrap();
    let drift: Vec<&Applied> = third
        .iter()
        .filter(|a| !matches!(a, Applied::Unchanged { .. }))
        .collect();
    assert_eq!(drift.len(), 1, "{third:?}");
    let Applied::Updated { name, changes } = drift[0] else {
        panic!("{drift:?}")
    };
    assert_eq!(name, "consumer writeback");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].field, "num_replicas");
    assert_eq!(changes[0].server, serde_json::json!(1));
    assert_eq!(
        stream
            .consumer_info("writeback")
            .await
            .unwrap()
            .config
            .num_replicas,
        3
    );

    // Applied again without --replicas (a restore by hand): nothing is
    // scaled down.
    let unsaid = apply_nats_replicated(&cluster.urls(), None).await.unwrap();
    assert!(
        unsaid
            .iter()
            .all(|a| matches!(a, Applied::Unchanged { .. })),
        "{unsaid:?}"
    );
    assert_eq!(stream.info().await.unwrap().config.num_replicas, 3);
}

#[tokio::test]
async fn replicas_three_on_a_single_server_is_refused_and_creates_nothing() {
    let nats = NatsServer::start().await;

    let err = apply_nats_replicated(&nats.url(), Some(3))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not clustered"), "{err}");
    assert!(err.contains("3 replicas"), "{err}");

    let (_client, js) = aia_bus::connect(&nats.url(), "test").await.unwrap();
    assert!(js.get_stream("TICKETS").await.is_err(), "nothing created");
    // One replica is what a single server holds.
    apply_nats_replicated(&nats.url(), Some(1)).await.unwrap();
}

/// Publishes `payload` to the stream and waits for its acknowledgement,
/// retrying while the cluster elects a leader.
async fn publish_acked(js: &jetstream::Context, subject: &str, id: &str) -> u64 {
    eventually(
        "the publish is acknowledged",
        Duration::from_secs(30),
        || {
            let js = js.clone();
            let subject = subject.to_owned();
            let id = id.to_owned();
            async move {
                let headers = {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("Nats-Msg-Id", id.as_str());
                    headers
                };
                let ack = js
                    .publish_with_headers(subject, headers, id.clone().into())
                    .await
                    .ok()?;
                ack.await.ok().map(|ack| ack.sequence)
            }
        },
    )
    .await
}

/// Every message id in the stream, read through `js`.
async fn stored_ids(js: &jetstream::Context) -> Vec<String> {
    let stream = js.get_stream("TICKETS").await.ok();
    let Some(stream) = stream else {
        return Vec::new();
    };
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ack_policy: jetstream::consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await;
    let Ok(consumer) = consumer else {
        return Vec::new();
    };
    let Ok(mut batch) = consumer
        .fetch()
        .max_messages(1000)
        .expires(Duration::from_secs(2))
        .messages()
        .await
    else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    use futures::StreamExt as _;
    while let Some(Ok(message)) = batch.next().await {
        ids.push(String::from_utf8_lossy(&message.payload).into_owned());
    }
    ids.sort();
    ids
}

#[tokio::test]
async fn an_event_acknowledged_before_the_stream_leader_dies_is_delivered_after() {
    let mut cluster = NatsCluster::start().await;
    apply_nats_replicated(&cluster.urls(), Some(3))
        .await
        .unwrap();
    let (_client, js) = aia_bus::connect(&cluster.urls(), "test").await.unwrap();
    let mut expected = Vec::new();
    for n in 0..20 {
        let id = format!("before-{n:02}");
        publish_acked(&js, "tickets.acme.T-1.ticket.received", &id).await;
        expected.push(id);
    }

    let leader = js
        .get_stream("TICKETS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .cluster
        .clone()
        .and_then(|cluster| cluster.leader)
        .expect("the stream has a leader");
    let index = cluster.index_of(&leader).expect("a node of this cluster");
    cluster.kill(index);

    // The two survivors elect a new leader; everything acknowledged is
    // there, and the stream takes more.
    for n in 0..5 {
        let id = format!("after-{n:02}");
        publish_acked(&js, "tickets.acme.T-1.ticket.received", &id).await;
        expected.push(id);
    }
    expected.sort();
    let stored = eventually(
        "every acknowledged event is stored",
        Duration::from_secs(30),
        || {
            let js = js.clone();
            let expected = expected.clone();
            async move {
                let stored = stored_ids(&js).await;
                (stored == expected).then_some(stored)
            }
        },
    )
    .await;
    assert_eq!(stored.len(), 25);

    // The old leader comes back as a follower and catches up.
    cluster.restart(index).await;
    let (_client, alone) = aia_bus::connect(&cluster.url(index), "test").await.unwrap();
    let expected_again = expected.clone();
    eventually(
        "the restarted node serves every event",
        Duration::from_secs(30),
        || {
            let alone = alone.clone();
            let expected = expected_again.clone();
            async move { (stored_ids(&alone).await == expected).then_some(()) }
        },
    )
    .await;
}

#[tokio::test]
async fn a_client_given_every_node_carries_on_when_its_node_dies() {
    let mut cluster = NatsCluster::start().await;
    apply_nats_replicated(&cluster.urls(), Some(3))
        .await
        .unwrap();
    let (client, js) = aia_bus::connect(&cluster.urls(), "test").await.unwrap();
    publish_acked(&js, "tickets.acme.T-2.ticket.received", "first").await;
    client.flush().await.unwrap();

    let connected = cluster
        .index_of_port(client.server_info().port)
        .expect("connected to a node of this cluster");
    cluster.kill(connected);

    publish_acked(&js, "tickets.acme.T-2.ticket.received", "second").await;
    let now = cluster
        .index_of_port(client.server_info().port)
        .expect("reconnected to a node of this cluster");
    assert_ne!(now, connected, "the client moved to a surviving node");
    let stored = eventually("both events are stored", Duration::from_secs(30), || {
        let js = js.clone();
        async move {
            let stored = stored_ids(&js).await;
            (stored.len() == 2).then_some(stored)
        }
    })
    .await;
    assert_eq!(stored, ["first", "second"]);
}
