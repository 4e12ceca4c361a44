//! The end every chaos test checks: every run terminal, exactly one note on
//! every written-back ticket and none elsewhere, projections equal to a
//! rebuild from the stream.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_testkit::eventually;

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
    let (completed, failed) =
        eventually("every run terminal", Duration::from_secs(600), || async {
            let row = owner
                .query_one(
                    "select count(*) filter (where status = 'completed'),
                        count(*) filter (where status = 'failed' and error is not null),
                        count(*)
                   from enhancement_history",
                    &[],
                )
                .await
                .ok()?;
            let (completed, failed, all): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            (all == tickets as i64 && completed + failed == all).then_some((completed, failed))
        })
        .await;
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
