//! The window of a tenant's recent open tickets (`open_tickets`): written by
//! context-gatherer as it understands each new ticket, closed by the
//! incident correlator when the ticket's resolution arrives, read for
//! related open tickets. A cache of the stream, purged past the longest
//! window.

mod cache;

use std::sync::Arc;

use aia_events::{TenantId, TicketId};
use chrono::{DateTime, Utc};

use crate::{
    Client, GenericClient, Row, StoreError, tenant_query, tenant_query_unflushed,
    tenant_transaction_unflushed,
};

pub use cache::{DEFAULT_TENANTS, REFRESH, WindowCache, configured_tenants};

/// A unit vector as the window stores it: each component × 127, rounded,
/// one byte each — a quarter of the f32 bytes, which is what reading a
/// tenant's whole window costs; cosines move by about 0.005.
pub fn quantize(vector: &[f32]) -> Vec<u8> {
    vector
        .iter()
        .map(|v| (v * 127.0).round().clamp(-127.0, 127.0) as i8 as u8)
        .collect()
}

/// The unit vector of stored bytes (see [`quantize`]).
pub fn dequantize(bytes: &[u8]) -> Vec<f32> {
    let mut vector: Vec<f32> = bytes.iter().map(|b| f32::from(*b as i8) / 127.0).collect();
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm.is_finite() && norm > f32::EPSILON {
        vector.iter_mut().for_each(|v| *v /= norm);
    }
    vector
}

/// `vector` as it comes back from the window: what every comparison with
/// a stored ticket sees (the evaluation uses it to compare alike).
pub fn as_stored(vector: &[f32]) -> Vec<f32> {
    dequantize(&quantize(vector))
}

/// Most rows of one tenant's window read for one ticket: a tenant with more
/// open tickets in its window than this is compared with its latest ones.
/// The cost of the related source and of the correlator's decision grows
/// with the rows read (measured at 1,000 in `docs/benchmarks.md`); at 5,000
/// a flood of open tickets made the context stage the pipeline's largest
/// CPU cost. An outage's burst is recent, so the latest 1,000 hold it.
pub const MAX_WINDOW_ROWS: i64 = 1000;

/// An open ticket in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTicket {
    pub ticket_id: TicketId,
    pub subject: Option<String>,
    pub received_at: DateTime<Utc>,
    pub entities: Vec<String>,
    /// Its vector when made by the model asked for; `None` otherwise.
    pub vector: Option<Vec<f32>>,
}

/// A new ticket as it enters the window.
#[derive(Debug, Clone, Copy)]
pub struct NewOpenTicket<'a> {
    pub ticket_id: &'a TicketId,
    pub subject: Option<&'a str>,
    pub received_at: DateTime<Utc>,
    pub entities: &'a [String],
    /// The model and its vector of the ticket, when it could be embedded.
    pub vector: Option<(&'a str, &'a [f32])>,
}

/// The tenant's tickets received since `since` and not resolved (the
/// ticket itself left out), newest first, with the vectors of `model`, as
/// `cache` holds them; then records `ticket` in the window, in the same
/// transaction. Recording is an upsert by (tenant, ticket), so a redelivery
/// changes nothing, and it keeps a resolution that arrived first. With
/// `record` false (a dry run) the window is only read.
pub async fn window_and_record(
    client: &mut Client,
    cache: &WindowCache,
    tenant: &TenantId,
    since: DateTime<Utc>,
    ticket: NewOpenTicket<'_>,
    record: bool,
) -> Result<Vec<Arc<OpenTicket>>, StoreError> {
    let model = ticket.vector.map(|(model, _)| model);
    let vector = ticket.vector.map(|(_, vector)| quantize(vector));
    let params: [&(dyn crate::ToSql + Sync); 7] = [
        &tenant.as_str(),
        &ticket.ticket_id.as_str(),
        &ticket.received_at,
        &ticket.subject,
        &ticket.entities,
        &model,
        &vector,
    ];
    // Without a vector only a shared host, address or site relates two
    // tickets: just the rows that share one are read, and none at all when
    // the ticket names none — then recording is the one statement, sent
    // with its transaction in one round trip.
    if model.is_none() && ticket.entities.is_empty() {
        if record {
            tenant_query_unflushed(client, tenant, UPSERT, &params).await?;
        }
        return Ok(Vec::new());
    }
    // A cache: its commit need not wait for the WAL flush (a row lost in a
    // database crash only leaves that ticket out of incidents; it is
    // visible to others at commit either way).
    let tx = tenant_transaction_unflushed(client, tenant).await?;
    let window = match model {
        Some(_) => {
            cache
                .window(&tx, tenant, since, ticket.ticket_id, model)
                .await?
        }
        None => sharing(&tx, tenant, since, ticket.ticket_id, ticket.entities).await?,
    };
    if record {
        let upsert = tx.prepare_cached(UPSERT).await?;
        tx.execute(&upsert, &params).await?;
    }
    tx.commit().await?;
    Ok(window)
}

/// Enters `ticket` into the window without reading it: for a ticket whose
/// reading of the window did not finish in time, so that the correlator
/// still finds it (with its vector) and later tickets relate to it.
pub async fn record(
    client: &mut Client,
    tenant: &TenantId,
    ticket: NewOpenTicket<'_>,
) -> Result<(), StoreError> {
    let model = ticket.vector.map(|(model, _)| model);
    let vector = ticket.vector.map(|(_, vector)| quantize(vector));
    tenant_query_unflushed(
        client,
        tenant,
        UPSERT,
        &[
            &tenant.as_str(),
            &ticket.ticket_id.as_str(),
            &ticket.received_at,
            &ticket.subject,
            &ticket.entities,
            &model,
            &vector,
        ],
    )
    .await?;
    Ok(())
}

/// Enters a ticket into the window; a redelivery changes nothing but the
/// row's details, and a resolution that arrived first is kept.
const UPSERT: &str = "insert into open_tickets
        (tenant_id, ticket_id, received_at, subject, entities, model, vector)
 values ($1, $2, $3, $4, $5, $6, $7)
 on conflict (tenant_id, ticket_id) do update
    set received_at = excluded.received_at, subject = excluded.subject,
        entities = excluded.entities, model = excluded.model,
        vector = excluded.vector, updated_at = now()";

/// The window's tickets that name one of `entities`, newest first, without
/// their vectors.
async fn sharing(
    client: &impl GenericClient,
    tenant: &TenantId,
    since: DateTime<Utc>,
    except: &TicketId,
    entities: &[String],
) -> Result<Vec<Arc<OpenTicket>>, StoreError> {
    let select = client
        .prepare_cached(
            "select ticket_id, subject, received_at, entities, null::bytea
               from open_tickets
              where tenant_id = $1 and received_at >= $2 and resolved_at is null
                and ticket_id <> $3 and entities && $4
              order by received_at desc, ticket_id desc
              limit $5",
        )
        .await?;
    let rows = client
        .query(
            &select,
            &[
                &tenant.as_str(),
                &since,
                &except.as_str(),
                &entities,
                &MAX_WINDOW_ROWS,
            ],
        )
        .await?;
    rows.iter()
        .map(|row| open_ticket(row).map(Arc::new))
        .collect()
}

/// Some of the tenant's tickets (open or not), with their vectors of
/// `model`: an incident's members, one ticket itself.
pub async fn some(
    client: &impl GenericClient,
    tenant: &TenantId,
    tickets: &[&str],
    model: Option<&str>,
) -> Result<Vec<OpenTicket>, StoreError> {
    let select = client
        .prepare_cached(
            // Joined as a set, not `= any($2)`: a stale generic plan runs
            // that as every row of the tenant against every id
            // (incident-correlator's `store::assigned` measured it).
            "select t.ticket_id, t.subject, t.received_at, t.entities,
                    case when t.model = $3 or $3 is null then t.vector end
               from unnest($2::text[]) as a(ticket_id)
               join open_tickets t on t.tenant_id = $1 and t.ticket_id = a.ticket_id",
        )
        .await?;
    let rows = client
        .query(&select, &[&tenant.as_str(), &tickets, &model])
        .await?;
    rows.iter().map(open_ticket).collect()
}

/// A ticket as the window holds it (its vector, whatever its model), the
/// model its vector was made by, and whether it was resolved; `None` when
/// it is not there.
pub async fn state_of(
    client: &impl GenericClient,
    tenant: &TenantId,
    ticket: &TicketId,
) -> Result<Option<(OpenTicket, Option<String>, bool)>, StoreError> {
    let select = client
        .prepare_cached(
            "select ticket_id, subject, received_at, entities, vector, model,
                    resolved_at is not null
               from open_tickets
              where tenant_id = $1 and ticket_id = $2",
        )
        .await?;
    client
        .query_opt(&select, &[&tenant.as_str(), &ticket.as_str()])
        .await?
        .map(|row| Ok((open_ticket(&row)?, row.get(5), row.get(6))))
        .transpose()
}

/// An open ticket of a row whose first five columns are its id, subject,
/// received time, entities and stored vector.
fn open_ticket(row: &Row) -> Result<OpenTicket, StoreError> {
    let id: String = row.get(0);
    Ok(OpenTicket {
        ticket_id: TicketId::parse(&id)
            .map_err(|_| StoreError::Corrupt(format!("open ticket id {id:?}")))?,
        subject: row.get(1),
        received_at: row.get(2),
        entities: row.get(3),
        vector: row.get::<_, Option<&[u8]>>(4).map(dequantize),
    })
}

/// Takes a resolved ticket out of the window. A recent resolution of a
/// ticket not in it yet is remembered, so the ticket never enters as open;
/// an old one (an imported history) leaves nothing behind.
pub async fn resolve(
    client: &mut Client,
    tenant: &TenantId,
    ticket: &TicketId,
    resolved_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tenant_query(
        client,
        tenant,
        "with marked as (
           update open_tickets set resolved_at = coalesce(resolved_at, $3), updated_at = now()
            where tenant_id = $1 and ticket_id = $2
           returning 1)
         insert into open_tickets (tenant_id, ticket_id, received_at, resolved_at)
         select $1, $2, $3, $3
          where not exists (select 1 from marked) and $3 > now() - interval '2 days'
         on conflict (tenant_id, ticket_id) do update
            set resolved_at = coalesce(open_tickets.resolved_at, excluded.resolved_at),
                updated_at = now()",
        &[&tenant.as_str(), &ticket.as_str(), &resolved_at],
    )
    .await?;
    Ok(())
}
