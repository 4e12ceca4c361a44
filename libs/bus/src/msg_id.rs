//! Every `Nats-Msg-Id` the pipeline publishes under, in one place. The
//! stream drops a second publish of the same id within its duplicate
//! window, so each id names what makes two publishes the same event: the
//! same delivery of a webhook, the same input to a stage, the same rating.
//!
//! Operator actions are the exception by design: a re-drive or a replay is
//! a new event each time it is asked for (its id names the copy), and
//! relies on the stages' idempotency rather than on the stream.

use uuid::Uuid;

/// A webhook delivery: the tenant, the endpoint it came in by, and the
/// sender's delivery id or the body's digest.
pub fn webhook_delivery(tenant: &str, endpoint: &str, delivery: &str) -> String {
    format!("{tenant}:{endpoint}:{delivery}")
}

/// The `index`-th event a stage published for one input event: a
/// redelivered input republishes under the same id.
pub fn stage_output(input: Uuid, stage: &str, index: usize) -> String {
    if index == 0 {
        format!("{input}:{stage}")
    } else {
        format!("{input}:{stage}:{index}")
    }
}

/// A rating of a run, by the submission that sent it: the same form sent
/// twice is one event; every other rating is an event of its own (the
/// latest stands), even one that repeats an earlier choice.
pub fn rating(tenant: &str, run: Uuid, submission: &str) -> String {
    format!("feedback:{tenant}:{run}:{submission}")
}

/// A resolved ticket imported from a file or a help desk's API, by the
/// digest of its content: importing it again stores nothing new.
pub fn imported_resolved(tenant: &str, ticket_token: &str, digest_hex: &str) -> String {
    format!("resolved:{tenant}:{ticket_token}:{digest_hex}")
}

/// An event a paused tenant's stage set aside, published again on resume:
/// one per original and stage, however often resume runs.
pub fn resumed(original: Uuid, stage: &str) -> String {
    format!("resume:{original}:{stage}")
}

/// A dead letter's input, re-driven by an operator: once per failed input
/// (a re-drive whose publish seemed to fail and is tried again is the same
/// message within the stream's window; a run that fails again fails on the
/// re-driven copy, a new input).
pub fn redriven(input: Uuid) -> String {
    format!("redrive:{input}")
}

/// A ticket sent back into the pipeline at a stage by `aiagents replay
/// redrive` (a new copy each time).
pub fn replayed(input: Uuid, copy: Uuid) -> String {
    format!("replay:{input}:{copy}")
}

/// One version of an incident (`incident.detected` is version 1) as it was
/// decided: `incident:<tenant>:<incident>:v<version>:<digest>`, the digest
/// that of the decision (the payload). However often and by whom it is
/// published, replayed or re-driven, it is one message; a version decided
/// again with other content (a database restored ahead of the stream, then
/// rebuilt) is another message, never taken for a repeat of the first.
/// `None` for an event that is not an incident's.
pub fn incident(event: &aia_events::Event) -> Option<String> {
    use aia_events::Payload;
    use sha2::{Digest, Sha256};
    let (incident, version, decided) = match &event.payload {
        Payload::IncidentDetected(p) => (p.incident_id, p.version, serde_json::to_vec(p)),
        Payload::IncidentUpdated(p) => (p.incident_id, p.version, serde_json::to_vec(p)),
        _ => return None,
    };
    let decided = decided.expect("a payload is JSON");
    let digest = hex::encode(&Sha256::digest(&decided)[..8]);
    let tenant = event.tenant_id.as_str();
    Some(format!("incident:{tenant}:{incident}:v{version}:{digest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stages_first_output_keeps_the_historic_form_and_later_ones_are_numbered() {
        let input = Uuid::nil();
        assert_eq!(
            stage_output(input, "writeback", 0),
            "00000000-0000-0000-0000-000000000000:writeback"
        );
        assert_eq!(
            stage_output(input, "llm-enhancer", 1),
            "00000000-0000-0000-0000-000000000000:llm-enhancer:1"
        );
    }

    #[test]
    fn replays_differ_per_copy_and_redrives_and_resumes_do_not() {
        let input = Uuid::now_v7();
        assert_ne!(
            replayed(input, Uuid::now_v7()),
            replayed(input, Uuid::now_v7())
        );
        // A re-drive tried again (its publish seemed to fail) is one message.
        assert_eq!(redriven(input), redriven(input));
        assert_ne!(redriven(input), redriven(Uuid::now_v7()));
        assert_eq!(resumed(input, "writeback"), resumed(input, "writeback"));
        assert_ne!(resumed(input, "writeback"), resumed(input, "llm-enhancer"));
    }
}
