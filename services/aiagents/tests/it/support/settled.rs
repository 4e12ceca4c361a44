//! The end every chaos test checks: every run terminal, exactly one note on
//! every written-back ticket and none elsewhere, projections equal to a
//! rebuild from the stream.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aia_standins::servicedesk::ServiceDeskStandIn;

/// Waits until all `tickets` runs are terminal and checks the notes and
/// the projections; returns how many were written back, how many failed
/// (dead letters with a reason), and when the last run became terminal.
pub async fn assert_settled(
    owner: &tokio_postgres::Client,
    tickets: usize,
    sdp: &ServiceDeskStandIn,
    nats_url: &str,
    owner_url: &str,
) -> (i64, i64, Instant) {
    // Polled here rather than with `eventually`, so that a run that never
    // settles says where it stands: the runs by status and every
    // consumer's backlog, every 30 s and in the panic.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut reported = Instant::now();
    let (completed, failed) = loop {
        if let Ok(row) = owner
            .query_one(
                "select count(*) filter (where status = 'completed'),
                        count(*) filter (where status = 'failed' and error is not null),
                        count(*)
                   from enhancement_history",
                &[],
            )
            .await
        {
            let (completed, failed, all): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            if all == tickets as i64 && completed + failed == all {
                break (completed, failed);
            }
        }
        if Instant::now() >= deadline {
            panic!(
                "not every run terminal after 600 s: {}",
                where_it_stands(owner, nats_url).await
            );
        }
        if reported.elapsed() >= Duration::from_secs(30) {
            eprintln!("settling: {}", where_it_stands(owner, nats_url).await);
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let terminal = Instant::now();

    // Exactly one note on every written-back ticket, none anywhere else.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let written: Vec<String> = owner
        .query(
            "select ticket_id from enhancement_history where status = 'completed'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let notes = sdp.all_notes();
    let mut per_ticket: HashMap<&str, usize> = HashMap::new();
    for note in &notes {
        *per_ticket.entry(note.request_id.as_str()).or_default() += 1;
    }
    for ticket in &written {
        assert_eq!(
            per_ticket.get(ticket.as_str()),
            Some(&1),
            "notes on {ticket}"
        );
    }
    assert_eq!(
        notes.len(),
        written.len(),
        "a note on a ticket that was not written back"
    );

    // The projections equal a rebuild from the stream.
    let before = aia_testkit::projection_snapshot(owner).await;
    let rebuilt = std::process::Command::new(env!("CARGO_BIN_EXE_aiagents"))
        .arg("rebuild")
        .env("AI_AGENTS_NATS_URL", nats_url)
        .env("AI_AGENTS_OWNER_DATABASE_URL", owner_url)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert_eq!(
        aia_testkit::projection_snapshot(owner).await,
        before,
        "the projections differ from a rebuild"
    );
    (completed, failed, terminal)
}

/// The runs by status and every consumer's backlog, for a run that has not
/// settled.
async fn where_it_stands(owner: &tokio_postgres::Client, nats_url: &str) -> String {
    let runs = match owner
        .query(
            "select status, count(*) from enhancement_history group by status order by status",
            &[],
        )
        .await
    {
        Ok(rows) => rows
            .iter()
            .map(|row| format!("{} {}", row.get::<_, String>(0), row.get::<_, i64>(1)))
            .collect::<Vec<_>>()
            .join(", "),
        Err(error) => format!("unreadable ({error})"),
    };
    let mut consumers = Vec::new();
    if let Ok((_client, js)) = aia_bus::connect(nats_url, "settled").await
        && let Ok(stream) = js.get_stream("TICKETS").await
    {
        for durable in super::STAGES {
            consumers.push(match stream.consumer_info(durable).await {
                Ok(info) => format!(
                    "{durable}: pending {}, ack pending {}, redelivered {}, leader {:?}",
                    info.num_pending,
                    info.num_ack_pending,
                    info.num_redelivered,
                    info.cluster.as_ref().and_then(|c| c.leader.clone()),
                ),
                Err(error) => format!("{durable}: unreadable ({error})"),
            });
        }
    }
    format!("runs: {runs}; consumers: {}", consumers.join("; "))
}
