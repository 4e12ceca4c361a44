//! `aiagents rebuild` for incidents: `incidents` and `incident_tickets`
//! refolded from the stream's incident events and ticket resolutions, in
//! stream order, through [`crate::store::apply`] — the fold the stage
//! writes them with.
//!
//! The rebuild holds the tables against writes for its transaction, so a
//! correlator deciding meanwhile waits and then writes onto the rebuilt
//! rows. Events the correlator committed but has not published yet are in
//! its outbox, not the stream; they are folded last, as they will be
//! published.

use aia_bus::{JetStream, STREAM};
use aia_events::{Event, TenantId};
use anyhow::Context as _;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};

/// What a rebuild read and wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rebuilt {
    pub events: u64,
    pub incidents: i64,
    pub tickets: i64,
}

/// Rebuilds every tenant's incidents, or one tenant's.
pub async fn rebuild(
    jetstream: &JetStream,
    owner_url: &str,
    tenant: Option<&TenantId>,
) -> anyhow::Result<Rebuilt> {
    let pool = aia_store::pool(owner_url, 1)?;
    let mut client = pool
        .get()
        .await
        .context("connecting to the database as its owner")?;
    let tx = client.transaction().await?;
    // The outbox too: an event published (and marked) between reading the
    // stream's end and reading the outbox would be in neither.
    tx.batch_execute(
        "lock table incidents, incident_tickets, incident_outbox in share row exclusive mode",
    )
    .await?;
    let scope = tenant.map(TenantId::as_str);
    tx.execute(
        "delete from incidents where $1::text is null or tenant_id = $1",
        &[&scope],
    )
    .await?;

    let token = scope.unwrap_or("*");
    let (_, last) = aia_bus::stream_bounds(jetstream)
        .await
        .map_err(|err| anyhow::anyhow!("reading the stream's bounds: {err}"))?;
    let mut events = 0;
    // A resolution can precede, in the stream, the event that adds its
    // ticket to an incident (the outbox published late): those that found
    // no incident are applied again once every incident is in — kept as
    // (tenant, ticket, time), not whole events. Resolutions older than the
    // stream keeps incident events (imported history, kept for good) can
    // belong to no incident here and are passed over: millions of them
    // would otherwise each be a round trip, and held in memory.
    let horizon = chrono::Utc::now()
        - chrono::Duration::seconds(
            i64::try_from(aia_config::shared_or_default().event_ttl_secs).unwrap_or(i64::MAX / 2),
        )
        - chrono::Duration::days(2);
    let mut resolutions = Vec::new();
    if last > 0 {
        let consumer = aia_bus::patiently("Creating the rebuild's consumer", || async {
            let stream = jetstream.get_stream(STREAM).await?;
            stream
                .create_consumer(pull::OrderedConfig {
                    filter_subjects: vec![
                        format!("tickets.{token}.*.incident.>"),
                        format!("tickets.{token}.*.ticket.resolved"),
                    ],
                    deliver_policy: DeliverPolicy::All,
                    ..Default::default()
                })
                .await
                .map_err(async_nats::Error::from)
        })
        .await
        .map_err(|err| anyhow::anyhow!("creating the rebuild's consumer: {err}"))?;
        if consumer.cached_info().num_pending > 0 {
            let mut messages = aia_bus::read::ToEnd::new(consumer.messages().await?, last);
            while let Some((message, sequence)) = messages.next().await? {
                match Event::from_json(&message.payload) {
                    Ok(event) => {
                        match &event.payload {
                            aia_events::Payload::TicketResolved(resolved) => {
                                if resolved.resolved_at >= horizon
                                    && crate::store::resolve_ticket(
                                        &tx,
                                        &event.tenant_id,
                                        &event.ticket_id,
                                        resolved.resolved_at,
                                    )
                                    .await?
                                    .is_none()
                                {
                                    resolutions.push((
                                        event.tenant_id,
                                        event.ticket_id,
                                        resolved.resolved_at,
                                    ));
                                }
                            }
                            _ => crate::store::apply(&tx, &event).await?,
                        }
                        events += 1;
                    }
                    Err(err) if err.is_from_a_newer_build() => anyhow::bail!(
                        "stream sequence {sequence}: {err}, written by a newer build: rebuild with the upgraded `aiagents`"
                    ),
                    Err(err) => {
                        tracing::warn!(sequence, error = %err, "Skipping an undecodable event");
                    }
                }
            }
        }
    }
    // Decided, not yet published: they come after everything in the
    // stream.
    let unpublished = tx
        .query(
            "select event from incident_outbox
              where published_at is null and ($1::text is null or tenant_id = $1)
              order by seq",
            &[&scope],
        )
        .await?;
    for row in unpublished {
        let bytes: Vec<u8> = row.get(0);
        crate::store::apply(&tx, &Event::from_json(&bytes)?).await?;
        events += 1;
    }
    for (tenant, ticket, at) in &resolutions {
        crate::store::resolve_ticket(&tx, tenant, ticket, *at).await?;
    }
    let counts = tx
        .query_one(
            "select (select count(*) from incidents where $1::text is null or tenant_id = $1),
                    (select count(*) from incident_tickets where $1::text is null or tenant_id = $1)",
            &[&scope],
        )
        .await?;
    tx.commit().await?;
    Ok(Rebuilt {
        events,
        incidents: counts.get(0),
        tickets: counts.get(1),
    })
}
