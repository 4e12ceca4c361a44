//! What people do to incidents (from the console): acknowledge one (taking
//! it) or close it. Each is an `incident.updated` decided like every other
//! — under the tenant's lock, folded into the tables and kept in the
//! outbox in one transaction, then published — and the reads behind the
//! console's pages.

use aia_bus::JetStream;
use aia_events::{Event, IncidentChange, IncidentStatus, IncidentUpdated, Payload, TenantId};
use aia_store::{GenericClient, Pool, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{handler, outbox, store};

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    Close,
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("no such incident")]
    NotFound,
    #[error("the incident has ended")]
    Ended,
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error(
        "the incident changed but its event is not published yet (the correlator's sweep will): {0}"
    )]
    Publish(#[from] outbox::FlushError),
}

/// Acknowledges or closes `incident` as `by`. Acknowledging one already
/// acknowledged changes nothing (and returns `None`).
pub async fn act(
    db: &Pool,
    jetstream: &JetStream,
    tenant: &TenantId,
    incident: Uuid,
    action: Action,
    by: &str,
) -> Result<Option<Event>, OperatorError> {
    let mut client = db.get().await.map_err(StoreError::from)?;
    let tx = store::locked_tenant_transaction(&mut client, tenant).await?;
    let row = tx
        .query_opt(
            "select status, version,
                    (select count(*) from incident_tickets t
                      where t.tenant_id = i.tenant_id and t.incident_id = i.incident_id)::int4
               from incidents i where tenant_id = $1 and incident_id = $2",
            &[&tenant.as_str(), &incident],
        )
        .await
        .map_err(StoreError::from)?
        .ok_or(OperatorError::NotFound)?;
    let status: String = row.get(0);
    let status = IncidentStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("incident status {status:?}")))?;
    let version = u32::try_from(row.get::<_, i32>(1)).unwrap_or(0);
    let tickets = u32::try_from(row.get::<_, i32>(2)).unwrap_or(0);
    if !status.is_live() {
        return Err(OperatorError::Ended);
    }
    if action == Action::Acknowledge && status == IncidentStatus::Acknowledged {
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(None);
    }
    let (change, status) = match action {
        Action::Acknowledge => (IncidentChange::Acknowledged, IncidentStatus::Acknowledged),
        Action::Close => (IncidentChange::Closed, IncidentStatus::Ended),
    };
    let event = handler::incident_event(
        tenant,
        incident,
        None,
        Payload::IncidentUpdated(IncidentUpdated {
            incident_id: incident,
            version: version + 1,
            change,
            status,
            ticket: None,
            by: Some(by.to_owned()),
            ticket_count: tickets,
        }),
    );
    store::apply(&tx, &event).await?;
    store::outbox_put(&tx, &event, &outbox::msg_id(&event)).await?;
    tx.commit().await.map_err(StoreError::from)?;
    // The connection goes back before the flush takes one: operators
    // acting at once on a small pool would each hold one and wait for
    // another for ever.
    drop(client);
    outbox::flush(db, jetstream, tenant).await?;
    Ok(Some(event))
}

/// An incident as the console lists it.
#[derive(Debug, Clone)]
pub struct IncidentRow {
    pub tenant_id: String,
    pub incident_id: Uuid,
    pub status: String,
    pub summary: String,
    pub shared_entities: Vec<String>,
    pub tickets: i64,
    pub open_tickets: i64,
    pub first_ticket_at: DateTime<Utc>,
    pub last_ticket_at: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_change: Option<String>,
    pub acknowledged_by: Option<String>,
    pub closed_by: Option<String>,
}

/// A ticket of an incident.
#[derive(Debug, Clone)]
pub struct TicketRow {
    pub ticket_id: String,
    pub subject: Option<String>,
    pub received_at: DateTime<Utc>,
    pub joined_version: i32,
    pub resolved_at: Option<DateTime<Utc>>,
}

const INCIDENT_COLUMNS: &str = "i.tenant_id, i.incident_id, i.status, i.summary, i.shared_entities,
    (select count(*) from incident_tickets t where t.tenant_id = i.tenant_id and t.incident_id = i.incident_id),
    (select count(*) from incident_tickets t where t.tenant_id = i.tenant_id and t.incident_id = i.incident_id
        and t.resolved_at is null),
    i.first_ticket_at, i.last_ticket_at, i.detected_at, i.ended_at, i.end_change, i.acknowledged_by,
    i.closed_by";

fn incident_row(row: &aia_store::Row) -> IncidentRow {
    IncidentRow {
        tenant_id: row.get(0),
        incident_id: row.get(1),
        status: row.get(2),
        summary: row.get(3),
        shared_entities: row.get(4),
        tickets: row.get(5),
        open_tickets: row.get(6),
        first_ticket_at: row.get(7),
        last_ticket_at: row.get(8),
        detected_at: row.get(9),
        ended_at: row.get(10),
        end_change: row.get(11),
        acknowledged_by: row.get(12),
        closed_by: row.get(13),
    }
}

/// Incidents, newest first: live ones only unless `ended` too, of one
/// tenant or all (the caller's role decides what it may read).
pub async fn list(
    client: &impl GenericClient,
    tenant: Option<&str>,
    ended: bool,
    limit: i64,
) -> Result<Vec<IncidentRow>, StoreError> {
    let rows = client
        .query(
            &format!(
                "select {INCIDENT_COLUMNS} from incidents i
                  where ($1::text is null or i.tenant_id = $1) and ($2 or i.status <> 'ended')
                  order by i.detected_at desc limit $3"
            ),
            &[&tenant, &ended, &limit],
        )
        .await?;
    Ok(rows.iter().map(incident_row).collect())
}

/// One incident and its tickets, oldest first.
pub async fn one(
    client: &impl GenericClient,
    tenant: &str,
    incident: Uuid,
) -> Result<Option<(IncidentRow, Vec<TicketRow>)>, StoreError> {
    let Some(row) = client
        .query_opt(
            &format!(
                "select {INCIDENT_COLUMNS} from incidents i
                  where i.tenant_id = $1 and i.incident_id = $2"
            ),
            &[&tenant, &incident],
        )
        .await?
    else {
        return Ok(None);
    };
    let tickets = client
        .query(
            "select ticket_id, subject, received_at, joined_version, resolved_at
               from incident_tickets where tenant_id = $1 and incident_id = $2
              order by received_at, ticket_id",
            &[&tenant, &incident],
        )
        .await?
        .iter()
        .map(|row| TicketRow {
            ticket_id: row.get(0),
            subject: row.get(1),
            received_at: row.get(2),
            joined_version: row.get(3),
            resolved_at: row.get(4),
        })
        .collect();
    Ok(Some((incident_row(&row), tickets)))
}
