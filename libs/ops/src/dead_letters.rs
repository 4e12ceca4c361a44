//! Dead letters: ticket runs that ended failed (a permanent error, or
//! deliveries exhausted), listed with tenant, ticket, stage, reason, attempts
//! and time, and re-driven after the cause is fixed. A re-drive publishes a
//! copy of the failing stage's input event (linked to it by causation); the
//! stages' idempotency means it can never post a second note.

use std::time::Duration;
use tracing::Instrument as _;

use aia_bus::{JetStream, STREAM};
use aia_events::{Event, Stage, TenantId, subject};
use aia_store::{Pool, StoreError};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use uuid::Uuid;

use crate::tenants::AdminError;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeadLetter {
    pub tenant_id: String,
    pub ticket_id: String,
    pub correlation_id: Uuid,
    pub stage: Option<String>,
    pub reason: Option<String>,
    pub attempts: Option<i32>,
    pub failed_at: Option<DateTime<Utc>>,
}

/// What makes a run a dead letter: it failed; or, over its tenant's
/// budget, its raw-context note failed to post (its status stays
/// `failed_budget`, and the technician has no note). The partial index
/// `enhancement_history_dead` (migration 0028) has this predicate.
pub const DEAD: &str = "(status = 'failed'
     or (status = 'failed_budget' and failed_at is not null and written_back_at is null))";

/// What makes a run one whose ticket got a note: completed; or, over its
/// tenant's budget, its raw-context note posted.
pub const NOTED: &str = "(status = 'completed'
     or (status = 'failed_budget' and written_back_at is not null))";

/// The newest dead letters, of one tenant or of all.
pub async fn list(
    admin: &Pool,
    tenant: Option<&str>,
    limit: i64,
) -> Result<Vec<DeadLetter>, AdminError> {
    let client = admin.get().await.map_err(StoreError::from)?;
    let rows = client
        .query(
            &format!(
                "select tenant_id, ticket_id, correlation_id, failed_stage, error, failed_attempts, failed_at
                   from enhancement_history
                  where {DEAD} and ($1::text is null or tenant_id = $1)
                  order by failed_at desc nulls last
                  limit $2"
            ),
            &[&tenant, &limit.clamp(1, 1000)],
        )
        .await
        .map_err(StoreError::from)?;
    Ok(rows
        .iter()
        .map(|row| DeadLetter {
            tenant_id: row.get(0),
            ticket_id: row.get(1),
            correlation_id: row.get(2),
            stage: row.get(3),
            reason: row.get(4),
            attempts: row.get(5),
            failed_at: row.get(6),
        })
        .collect())
}

/// The event type a stage consumes.
fn input_type(stage: &str) -> Option<&'static str> {
    match stage {
        s if s == Stage::ContextGatherer.as_str() => Some("ticket.received"),
        s if s == Stage::LlmEnhancer.as_str() => Some("context.gathered"),
        s if s == Stage::Writeback.as_str() => Some("enhancement.generated"),
        _ => None,
    }
}

/// Publishes the failed stage's input again; returns the new event's id.
pub async fn redrive(
    admin: &Pool,
    jetstream: &JetStream,
    tenant: &str,
    correlation_id: Uuid,
) -> Result<Uuid, AdminError> {
    let tenant_id =
        TenantId::parse(tenant).map_err(|err| AdminError::Invalid(format!("tenant_id: {err}")))?;
    let client = admin.get().await.map_err(StoreError::from)?;
    let row = client
        .query_opt(
            &format!(
                "select ticket_id, failed_stage, failed_input_event_id,
                        exists (select 1 from enhancement_history later
                                 where later.tenant_id = e.tenant_id and later.ticket_id = e.ticket_id
                                   and later.received_at > e.received_at
                                   and later.written_back_at is not null)
                   from enhancement_history e
                  where tenant_id = $1 and correlation_id = $2 and {DEAD}"
            ),
            &[&tenant_id.as_str(), &correlation_id],
        )
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| {
            AdminError::Missing(format!("dead letter {correlation_id} of {tenant_id}"))
        })?;
    let ticket: String = row.get(0);
    let stage: Option<String> = row.get(1);
    let input_id: Option<Uuid> = row.get(2);
    let superseded: bool = row.get(3);
    if superseded {
        // Its note would land under the later run's, older and second.
        return Err(AdminError::Invalid(format!(
            "a later run of ticket {ticket} already posted its note; this older one is not re-driven"
        )));
    }
    let (Some(stage), Some(input_id)) = (stage, input_id) else {
        return Err(AdminError::Invalid(
            "this failure records no input event to re-drive".into(),
        ));
    };
    let input_type = input_type(&stage)
        .ok_or_else(|| AdminError::Invalid(format!("stage {stage} cannot be re-driven")))?;
    let ticket_id =
        aia_events::TicketId::parse(&ticket).map_err(|err| AdminError::Invalid(err.to_string()))?;
    let filter = format!(
        "{}.{tenant_id}.{}.{input_type}",
        subject::DEFAULT_PREFIX,
        ticket_id.subject_token()
    );
    let (input, headers) = find_event(jetstream, &filter, input_id)
        .await?
        .ok_or_else(|| {
            AdminError::Invalid("the failed stage's input is no longer in the stream".into())
        })?;
    // Once per failure: a second re-drive while the first is in flight
    // finds it recorded.
    let recorded = client
        .execute(
            "insert into dead_letter_redrives (tenant_id, correlation_id, input_event_id)
             values ($1, $2, $3) on conflict do nothing",
            &[&tenant_id.as_str(), &correlation_id, &input_id],
        )
        .await
        .map_err(StoreError::from)?;
    if recorded == 0 {
        return Err(AdminError::Invalid(
            "this dead letter was already re-driven; its run is still in flight".into(),
        ));
    }
    let copy = Event::republished(&input);
    let msg_id = aia_bus::msg_id::redriven(input_id);
    // In the ticket's trace: the re-driven stage's work follows the input
    // it failed on, not a trace of its own.
    let span = tracing::info_span!("redrive", otel.kind = "producer", stage = %stage);
    aia_telemetry::set_parent_from(&span, headers.as_ref());
    let published = aia_bus::publish_event(jetstream, &copy, &msg_id)
        .instrument(span)
        .await;
    if let Err(err) = published {
        // Not re-driven after all: it may be tried again.
        if let Err(forgotten) = client
            .execute(
                "delete from dead_letter_redrives
                  where tenant_id = $1 and correlation_id = $2 and input_event_id = $3",
                &[&tenant_id.as_str(), &correlation_id, &input_id],
            )
            .await
        {
            tracing::error!(
                tenant_id = %tenant_id,
                correlation_id = %correlation_id,
                error = %forgotten,
                "The failed re-drive is still recorded; delete its dead_letter_redrives row to allow another"
            );
        }
        return Err(AdminError::nats("publishing the re-drive", err));
    }
    tracing::info!(tenant_id = %tenant_id, ticket_id = %ticket, stage, "Dead letter re-driven");
    Ok(copy.event_id)
}

/// The event `event_id` among those `filter` matches, with its message's
/// headers (its trace context).
async fn find_event(
    jetstream: &JetStream,
    filter: &str,
    event_id: Uuid,
) -> Result<Option<(Event, Option<async_nats::HeaderMap>)>, AdminError> {
    let stream = jetstream
        .get_stream(STREAM)
        .await
        .map_err(|err| AdminError::nats("reading the stream", err))?;
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: filter.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(|err| AdminError::nats("reading the stream", err))?;
    // Every stored message the filter matches is read before the event is
    // called gone: a fetch that stops short (an election, a slow leader)
    // is "try again", never "no longer in the stream".
    let mut left = consumer.cached_info().num_pending;
    while left > 0 {
        let mut batch = consumer
            .fetch()
            .max_messages(usize::try_from(left.min(1000)).unwrap_or(1000))
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|err| AdminError::nats("reading the stream", err))?;
        let mut read = 0;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|err| AdminError::nats("reading the stream", err))?;
            read += 1;
            if let Ok(event) = Event::from_json(&message.payload)
                && event.event_id == event_id
            {
                return Ok(Some((event, message.headers.clone())));
            }
        }
        if read == 0 {
            return Err(AdminError::nats(
                "reading the run's events",
                "the stream delivered none of them in time",
            ));
        }
        left = left.saturating_sub(read);
    }
    Ok(None)
}

/// What re-driving every dead letter of a tenant did.
#[derive(Debug, Default)]
pub struct RedriveAll {
    /// Each run re-driven, with the event it was re-driven as.
    pub redriven: Vec<(Uuid, Uuid)>,
    /// Each run that could not go again, and why.
    pub refused: Vec<(Uuid, String)>,
    /// Whether more letters wait than were listed (`limit`).
    pub more: bool,
}

/// Re-drives the tenant's dead letters, newest first, at most `limit`. One
/// that cannot go again (its run still in flight, its event gone from the
/// stream) is reported and does not hold back the others.
pub async fn redrive_all(
    admin: &Pool,
    jetstream: &JetStream,
    tenant: &str,
    limit: i64,
) -> Result<RedriveAll, AdminError> {
    let letters = list(admin, Some(tenant), limit).await?;
    let mut done = RedriveAll {
        more: letters.len() as i64 == limit,
        ..RedriveAll::default()
    };
    for letter in letters {
        let run = letter.correlation_id;
        match redrive(admin, jetstream, tenant, run).await {
            Ok(event_id) => done.redriven.push((run, event_id)),
            Err(err) => done.refused.push((run, err.to_string())),
        }
    }
    Ok(done)
}
