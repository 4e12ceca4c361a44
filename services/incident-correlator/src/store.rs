//! The correlator's tables: incidents and their tickets as the incident
//! events left them, and the outbox of events decided but not yet
//! published. [`apply`] folds one event into the tables; the stage calls it
//! in the transaction that decides the event, `aiagents rebuild` calls it
//! for every incident event in the stream.

use std::collections::HashSet;

use aia_events::{
    Event, IncidentChange, IncidentStatus, IncidentTicket, Payload, TenantId, TicketId,
};
use aia_store::{Client, GenericClient, StoreError, Transaction};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::decide::Live;

/// Starts a transaction that sees only `tenant`'s rows (as
/// [`aia_store::tenant_transaction`]) and is the tenant's only decider until
/// it ends: two instances handling two tickets of one burst decide one
/// after the other. The tenant and the lock are one statement.
pub async fn locked_tenant_transaction<'a>(
    client: &'a mut Client,
    tenant: &TenantId,
) -> Result<Transaction<'a>, StoreError> {
    let tx = client.transaction().await?;
    let statement = tx
        .prepare_cached(
            "select set_config('app.tenant_id', $1, true),
                    pg_advisory_xact_lock(hashtextextended('incidents:' || $1, 0))",
        )
        .await?;
    tx.execute(&statement, &[&tenant.as_str()]).await?;
    Ok(tx)
}

/// The tenant's incidents tickets may still join, earliest detected first,
/// without their centroids ([`crate::centroids::Centroids`] sets them).
/// Their members are counted (from the index alone), not read: a
/// decision reads no member it already holds
/// ([`crate::centroids::Centroids`]).
pub async fn live(tx: &impl GenericClient, tenant: &TenantId) -> Result<Vec<Live>, StoreError> {
    let statement = tx
        .prepare_cached(
            "select i.incident_id, i.version, i.status, i.last_ticket_at, i.shared_entities,
                    (select count(*) from incident_tickets t
                      where t.tenant_id = i.tenant_id and t.incident_id = i.incident_id)
               from incidents i
              where i.tenant_id = $1 and i.status <> 'ended'
              order by i.detected_at, i.incident_id",
        )
        .await?;
    tx.query(&statement, &[&tenant.as_str()])
        .await?
        .into_iter()
        .map(|row| {
            let status: String = row.get(2);
            Ok(Live {
                id: row.get(0),
                version: u32::try_from(row.get::<_, i32>(1)).unwrap_or(0),
                status: IncidentStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("incident status {status:?}")))?,
                ticket_count: u32::try_from(row.get::<_, i64>(5)).unwrap_or(u32::MAX),
                last_ticket_at: row.get(3),
                centroid: None,
                centroid_members: 0,
                shared_entities: row.get(4),
            })
        })
        .collect()
}

/// The members of each of `incidents` that joined it after the first
/// version given with it and at or before the second (an incident's
/// tickets join it at a version of their own, [`apply`]), as (incident,
/// ticket). The upper bound keeps a sum exactly "complete to" the version
/// it records, even if a writer that does not take the tenant's lock
/// committed between the reads.
pub async fn members_since(
    tx: &impl GenericClient,
    tenant: &TenantId,
    incidents: &[(Uuid, u32, u32)],
) -> Result<Vec<(Uuid, TicketId)>, StoreError> {
    if incidents.is_empty() {
        return Ok(Vec::new());
    }
    let version = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let ids: Vec<Uuid> = incidents.iter().map(|(id, _, _)| *id).collect();
    let since: Vec<i32> = incidents.iter().map(|(_, s, _)| version(*s)).collect();
    let upto: Vec<i32> = incidents.iter().map(|(_, _, u)| version(*u)).collect();
    let statement = tx
        .prepare_cached(
            "select t.incident_id, t.ticket_id
               from unnest($2::uuid[], $3::int[], $4::int[]) as h(incident_id, since, upto)
               join incident_tickets t
                 on t.tenant_id = $1 and t.incident_id = h.incident_id
                and t.joined_version > h.since and t.joined_version <= h.upto",
        )
        .await?;
    Ok(tx
        .query(&statement, &[&tenant.as_str(), &ids, &since, &upto])
        .await?
        .iter()
        .filter_map(|row| Some((row.get(0), TicketId::parse(row.get(1)).ok()?)))
        .collect())
}

/// The tenant's live incidents with no ticket since `cutoff`, by the
/// tickets' times or by the clock of their detection and of each ticket's
/// joining (a correlator catching up on a backlog decides long after the
/// tickets came): an acknowledgement is no ticket, and keeps no incident
/// open.
pub async fn quiet_since(
    tx: &impl GenericClient,
    tenant: &TenantId,
    cutoff: DateTime<Utc>,
) -> Result<Vec<Uuid>, StoreError> {
    let statement = tx
        .prepare_cached(
            "select incident_id from incidents
              where tenant_id = $1 and status <> 'ended'
                and greatest(last_ticket_at, detected_at, last_joined_at) < $2",
        )
        .await?;
    Ok(tx
        .query(&statement, &[&tenant.as_str(), &cutoff])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// Which of `tickets` already belong to an incident (live or ended).
///
/// The ids are joined as a set, not matched with `= any($2)`: under a
/// generic plan made when the tenant's rows were few, PostgreSQL scanned
/// every incident ticket of the tenant and compared each with every id in
/// turn (18 ms for 3,000 rows and 250 ids, against 1 ms joined; with
/// search by meaning on, 6 ms of each ticket's 14 ms of statements).
pub async fn assigned(
    tx: &impl GenericClient,
    tenant: &TenantId,
    tickets: &[&str],
) -> Result<HashSet<TicketId>, StoreError> {
    if tickets.is_empty() {
        return Ok(HashSet::new());
    }
    let statement = tx
        .prepare_cached(
            "select t.ticket_id
               from unnest($2::text[]) as a(ticket_id)
               join incident_tickets t on t.tenant_id = $1 and t.ticket_id = a.ticket_id",
        )
        .await?;
    Ok(tx
        .query(&statement, &[&tenant.as_str(), &tickets])
        .await?
        .iter()
        .filter_map(|row| TicketId::parse(row.get(0)).ok())
        .collect())
}

/// A resolved ticket's incident, after marking the ticket resolved: its
/// id, whether it is live, its tickets and how many are still open.
pub struct ResolvedIn {
    pub incident: Uuid,
    pub version: u32,
    pub live: bool,
    pub tickets: u32,
    pub open: u32,
}

/// Marks `ticket` resolved in its incident, if it is in one.
pub async fn resolve_ticket(
    tx: &impl GenericClient,
    tenant: &TenantId,
    ticket: &TicketId,
    at: DateTime<Utc>,
) -> Result<Option<ResolvedIn>, StoreError> {
    let statement = tx
        .prepare_cached(
            "with marked as (
               update incident_tickets set resolved_at = coalesce(resolved_at, $3)
                where tenant_id = $1 and ticket_id = $2
               returning incident_id)
             select i.incident_id, i.version, i.status <> 'ended',
                    (select count(*) from incident_tickets t
                      where t.tenant_id = $1 and t.incident_id = i.incident_id)::int4,
                    (select count(*) from incident_tickets t
                      where t.tenant_id = $1 and t.incident_id = i.incident_id
                        and t.resolved_at is null and t.ticket_id <> $2)::int4
               from incidents i join marked m on m.incident_id = i.incident_id
              where i.tenant_id = $1",
        )
        .await?;
    let row = tx
        .query_opt(&statement, &[&tenant.as_str(), &ticket.as_str(), &at])
        .await?;
    Ok(row.map(|row| ResolvedIn {
        incident: row.get(0),
        version: u32::try_from(row.get::<_, i32>(1)).unwrap_or(0),
        live: row.get(2),
        tickets: u32::try_from(row.get::<_, i32>(3)).unwrap_or(0),
        open: u32::try_from(row.get::<_, i32>(4)).unwrap_or(0),
    }))
}

/// Folds one incident event (or a ticket's resolution) into the tables.
/// Idempotent: an event at or below the incident's version changes
/// nothing, a ticket already in an incident stays where it is.
pub async fn apply(tx: &impl GenericClient, event: &Event) -> Result<(), StoreError> {
    let tenant = event.tenant_id.as_str();
    match &event.payload {
        Payload::IncidentDetected(detected) => {
            let first = detected.tickets.iter().map(|t| t.received_at).min();
            let last = detected.tickets.iter().map(|t| t.received_at).max();
            let (Some(first), Some(last)) = (first, last) else {
                return Ok(());
            };
            let statement = tx
                .prepare_cached(
                    "insert into incidents
                       (tenant_id, incident_id, version, status, summary, shared_entities,
                        first_ticket_at, last_ticket_at, detected_at, detected_by, updated_at)
                     values ($1, $2, 1, 'open', $3, $4, $5, $6, $7, $8, $7)
                     on conflict (tenant_id, incident_id) do nothing",
                )
                .await?;
            let inserted = tx
                .execute(
                    &statement,
                    &[
                        &tenant,
                        &detected.incident_id,
                        &detected.summary,
                        &detected.shared_entities,
                        &first,
                        &last,
                        &event.occurred_at,
                        &detected.detected_by.as_str(),
                    ],
                )
                .await?;
            if inserted == 1 {
                for ticket in &detected.tickets {
                    add_ticket(tx, tenant, detected.incident_id, ticket, 1).await?;
                }
            }
        }
        Payload::IncidentUpdated(updated) => {
            let version = i32::try_from(updated.version).unwrap_or(i32::MAX);
            let end_change = match updated.change {
                IncidentChange::Resolved => Some("resolved"),
                IncidentChange::Closed => Some("closed"),
                IncidentChange::Quiet => Some("quiet"),
                IncidentChange::TicketAdded | IncidentChange::Acknowledged => None,
            };
            let ticket_at = updated.ticket.as_ref().map(|t| t.received_at);
            // Who acted is who acknowledged, or who closed: a close does
            // not write over the acknowledgement.
            let acknowledged_by = updated
                .by
                .as_ref()
                .filter(|_| updated.change == IncidentChange::Acknowledged);
            let closed_by = updated
                .by
                .as_ref()
                .filter(|_| updated.change == IncidentChange::Closed);
            let statement = tx
                .prepare_cached(
                    "update incidents
                        set version = $3, status = $4, updated_at = $5,
                            ended_at = case when $4 = 'ended' then coalesce(ended_at, $5) end,
                            end_change = coalesce($6, end_change),
                            acknowledged_by = coalesce($7, acknowledged_by),
                            closed_by = coalesce($9, closed_by),
                            last_ticket_at = greatest(last_ticket_at, coalesce($8, last_ticket_at)),
                            last_joined_at = case when $8::timestamptz is null then last_joined_at
                                                  else $5 end
                      where tenant_id = $1 and incident_id = $2 and version < $3",
                )
                .await?;
            let changed = tx
                .execute(
                    &statement,
                    &[
                        &tenant,
                        &updated.incident_id,
                        &version,
                        &updated.status.as_str(),
                        &event.occurred_at,
                        &end_change,
                        &acknowledged_by,
                        &ticket_at,
                        &closed_by,
                    ],
                )
                .await?;
            if changed == 1
                && updated.change == IncidentChange::TicketAdded
                && let Some(ticket) = &updated.ticket
            {
                add_ticket(tx, tenant, updated.incident_id, ticket, version).await?;
            }
        }
        Payload::TicketResolved(resolved) => {
            resolve_ticket(tx, &event.tenant_id, &event.ticket_id, resolved.resolved_at).await?;
        }
        _ => {}
    }
    Ok(())
}

async fn add_ticket(
    tx: &impl GenericClient,
    tenant: &str,
    incident: Uuid,
    ticket: &IncidentTicket,
    version: i32,
) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(
            "insert into incident_tickets
               (tenant_id, ticket_id, incident_id, subject, received_at, joined_version,
                resolved_at)
             values ($1, $2, $3, $4, $5, $6,
                     (select resolved_at from open_tickets
                       where tenant_id = $1 and ticket_id = $2))
             on conflict (tenant_id, ticket_id) do nothing",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &tenant,
            &ticket.ticket_id.as_str(),
            &incident,
            &ticket.subject,
            &ticket.received_at,
            &version,
        ],
    )
    .await?;
    Ok(())
}

/// Keeps `event` to be published under `msg_id`, in the deciding
/// transaction.
pub async fn outbox_put(
    tx: &impl GenericClient,
    event: &Event,
    msg_id: &str,
) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(
            "insert into incident_outbox (tenant_id, msg_id, event) values ($1, $2, $3)
             on conflict (tenant_id, msg_id) do nothing",
        )
        .await?;
    tx.execute(
        &statement,
        &[&event.tenant_id.as_str(), &msg_id, &event.to_json()],
    )
    .await?;
    Ok(())
}

/// The tenant's events not yet published, oldest first.
pub async fn outbox_pending(
    tx: &impl GenericClient,
    tenant: &TenantId,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let statement = tx
        .prepare_cached(
            "select msg_id, event from incident_outbox
              where tenant_id = $1 and published_at is null
              order by seq",
        )
        .await?;
    Ok(tx
        .query(&statement, &[&tenant.as_str()])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// Marks an event JetStream acknowledged.
pub async fn outbox_published(
    tx: &impl GenericClient,
    tenant: &TenantId,
    msg_id: &str,
) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(
            "update incident_outbox set published_at = now()
              where tenant_id = $1 and msg_id = $2 and published_at is null",
        )
        .await?;
    tx.execute(&statement, &[&tenant.as_str(), &msg_id]).await?;
    Ok(())
}
