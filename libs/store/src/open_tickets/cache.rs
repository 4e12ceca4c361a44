//! A process's copy of its tenants' windows of open tickets, kept current
//! by reading only the rows written since its last read.
//!
//! Reading a whole window for every ticket (up to [`MAX_WINDOW_ROWS`] rows,
//! each with its vector) made the window the largest cost of the context
//! stage and of the database once tickets were embedded. Held here, a
//! ticket costs one read of what changed — about one row per ticket the
//! tenant received meanwhile.
//!
//! Why the changes read miss nothing: each row carries the id of the
//! transaction that last wrote it (`written_xid`, set by a trigger), and a
//! read also returns its snapshot's oldest running transaction. A version
//! the last read did not see was written by a transaction running or not
//! yet begun at its snapshot, whose id is at least that oldest one — so
//! the next read asks for `written_xid >= floor`. Reads of one tenant take
//! turns (a lock per tenant), so each sees a later snapshot than the one
//! before. Rows purged from the table are past every window; a full read
//! every [`REFRESH`] bounds anything else (a database restored or failed
//! over to a standby that never saw some ids: a floor that goes backwards
//! also forces a full read).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aia_events::{TenantId, TicketId};
use chrono::{DateTime, Utc};

use super::{MAX_WINDOW_ROWS, OpenTicket, open_ticket};
use crate::{GenericClient, Row, StoreError};

/// How often a held window is read in full again.
pub const REFRESH: Duration = Duration::from_secs(300);

/// Tenants a process holds by default. A held window has at most half
/// again as many rows as [`MAX_WINDOW_ROWS`] (1,500, about 1.8 kB each
/// with a 384-value vector), so the worst case — every tenant with a full
/// window — is about 2.7 MB per tenant; a tenant receiving a ticket every
/// few minutes holds a few dozen rows.
pub const DEFAULT_TENANTS: usize = 128;

/// The tenants a process holds, as the deployment sets them
/// (`AI_AGENTS_WINDOW_CACHE_TENANTS`, default [`DEFAULT_TENANTS`]; 0 reads
/// each window in full for every ticket): what every process reading
/// windows is configured with.
pub fn configured_tenants() -> Result<usize, aia_config::ConfigError> {
    aia_config::parsed("WINDOW_CACHE_TENANTS", DEFAULT_TENANTS)
}

/// Rows a full read takes beyond [`MAX_WINDOW_ROWS`] (so that tickets
/// resolving do not make the window short at once); past twice this
/// beyond it, the oldest held rows are dropped back to it.
const SLACK: usize = MAX_WINDOW_ROWS as usize / 4;

/// The windows of the tenants a process saw last (least recently used
/// ones dropped beyond its capacity).
pub struct WindowCache {
    capacity: usize,
    tenants: Mutex<HashMap<TenantId, (Instant, Slot)>>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Held>>>;

impl WindowCache {
    /// Holds the windows of at most `tenants` tenants; with 0 it holds
    /// none, and every read is a full read.
    pub fn new(tenants: usize) -> Self {
        Self {
            capacity: tenants,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's tickets received since `since` and not resolved
    /// (`except` left out), newest first, at most [`MAX_WINDOW_ROWS`], with
    /// their vectors of `model` — what a full read of the table returns at
    /// this moment. `client` is in the tenant's scope (a READ COMMITTED
    /// transaction, as every one here) and has not written the window.
    pub async fn window(
        &self,
        client: &impl GenericClient,
        tenant: &TenantId,
        since: DateTime<Utc>,
        except: &TicketId,
        model: Option<&str>,
    ) -> Result<Vec<Arc<OpenTicket>>, StoreError> {
        if self.capacity == 0 {
            // One more than a window: `except` may be among them.
            let limit = MAX_WINDOW_ROWS as usize + 1;
            let (_, tickets) = newest(client, tenant, since, limit).await?;
            return Ok(select(tickets.iter(), since, except, model));
        }
        let slot = self.slot(tenant);
        let mut held = slot.lock().await;
        let current = match held.as_mut() {
            Some(window) if window.covers(since) => window.catch_up(client, tenant).await?,
            _ => false,
        };
        if !current
            || held
                .as_ref()
                .is_some_and(|window| window.short(since, except))
        {
            *held = Some(Held::read(client, tenant, since).await?);
        }
        let window = held.as_ref().expect("a window was just read");
        Ok(window.select(since, except, model))
    }

    /// The tenant's slot, made (and the least recently used tenant dropped
    /// beyond the capacity) when it has none.
    fn slot(&self, tenant: &TenantId) -> Slot {
        let mut tenants = self.tenants.lock().expect("window cache lock");
        let now = Instant::now();
        if let Some((used, slot)) = tenants.get_mut(tenant) {
            *used = now;
            return slot.clone();
        }
        while tenants.len() >= self.capacity {
            let oldest = tenants
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(tenant, _)| tenant.clone());
            match oldest {
                Some(oldest) => tenants.remove(&oldest),
                None => break,
            };
        }
        let slot = Slot::default();
        tenants.insert(tenant.clone(), (now, slot.clone()));
        slot
    }
}

/// A held ticket and the model its vector was made by.
struct HeldTicket {
    ticket: Arc<OpenTicket>,
    model: Option<String>,
}

/// Where a ticket stands in a window, newest first: by when it was
/// received, then by its id (the order every read and answer uses).
type Place = (DateTime<Utc>, String);

impl HeldTicket {
    fn place(&self) -> Place {
        (
            self.ticket.received_at,
            self.ticket.ticket_id.as_str().to_owned(),
        )
    }

    /// Its place, borrowed.
    fn key(&self) -> (DateTime<Utc>, &str) {
        (self.ticket.received_at, self.ticket.ticket_id.as_str())
    }

    fn at_or_above(&self, place: &Place) -> bool {
        self.key() >= (place.0, place.1.as_str())
    }
}

/// One tenant's window as last read.
struct Held {
    /// The oldest transaction running at the last read's snapshot.
    floor: i64,
    /// Rows received before this are not held.
    since: DateTime<Utc>,
    /// When the full read stopped at its limit (or the oldest rows were
    /// dropped): every open ticket at or above this place is held, those
    /// below it may not be.
    complete_from: Option<Place>,
    read_at: Instant,
    /// The open tickets, by id.
    rows: HashMap<String, HeldTicket>,
}

impl Held {
    /// The newest open tickets received since `since`: a quarter more
    /// than a window needs, so that tickets resolving do not make it short
    /// at once.
    async fn read(
        client: &impl GenericClient,
        tenant: &TenantId,
        since: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let limit = MAX_WINDOW_ROWS as usize + SLACK;
        let (floor, tickets) = newest(client, tenant, since, limit).await?;
        let complete_from = if tickets.len() == limit {
            tickets.iter().map(HeldTicket::place).min()
        } else {
            None
        };
        let rows = tickets
            .into_iter()
            .map(|held| (held.ticket.ticket_id.as_str().to_owned(), held))
            .collect();
        Ok(Self {
            floor,
            since,
            complete_from,
            read_at: Instant::now(),
            rows,
        })
    }

    /// Whether the held rows can answer for a window since `since`.
    fn covers(&self, since: DateTime<Utc>) -> bool {
        since >= self.since && self.read_at.elapsed() < REFRESH
    }

    /// Whether rows the window since `since` (without `except`) needs may
    /// be missing: not all open tickets are held, and fewer than a window
    /// are held above where the held ones are complete (tickets resolved
    /// since).
    fn short(&self, since: DateTime<Utc>, except: &TicketId) -> bool {
        let Some(complete_from) = &self.complete_from else {
            return false;
        };
        since <= complete_from.0
            && self
                .rows
                .values()
                .filter(|held| held.ticket.ticket_id != *except && held.at_or_above(complete_from))
                .count()
                < MAX_WINDOW_ROWS as usize
    }

    /// Reads the rows written since the last read. `false` when the window
    /// must be read in full instead: the database's transaction ids went
    /// backwards (it is not the one read before), or more rows changed than
    /// a full read returns (a long transaction anywhere on the server holds
    /// the floor back, and each read would ask for ever more).
    async fn catch_up(
        &mut self,
        client: &impl GenericClient,
        tenant: &TenantId,
    ) -> Result<bool, StoreError> {
        let limit = MAX_WINDOW_ROWS as usize + SLACK;
        let select = client
            .prepare_cached(
                "select t.ticket_id, t.subject, t.received_at, t.entities, t.vector, s.floor,
                        t.model, t.resolved
                   from (select pg_snapshot_xmin(pg_current_snapshot())::text::bigint as floor) s
                   left join lateral (
                        select ticket_id, subject, received_at, entities, model, vector,
                               resolved_at is not null as resolved
                          from open_tickets
                         where tenant_id = $1 and written_xid >= $2::bigint::text::xid8
                           and written_xid is distinct from pg_current_xact_id_if_assigned()
                         limit $3) t
                     on true",
            )
            .await?;
        let rows = client
            .query(
                &select,
                &[&tenant.as_str(), &self.floor, &(limit as i64 + 1)],
            )
            .await?;
        let floor = floor(&rows)?;
        if floor < self.floor || rows.len() > limit {
            return Ok(false);
        }
        let changes = rows
            .iter()
            .filter_map(|row| changed(row).transpose())
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.floor = floor;
        for (ticket, resolved) in changes {
            let id = ticket.ticket.ticket_id.as_str().to_owned();
            if resolved || ticket.ticket.received_at < self.since {
                self.rows.remove(&id);
            } else {
                self.rows.insert(id, ticket);
            }
        }
        self.keep_newest();
        Ok(true)
    }

    /// Drops the oldest rows once more than the limit and twice its slack
    /// are held (a tenant receiving faster than its tickets resolve),
    /// keeping as many as a full read would.
    fn keep_newest(&mut self) {
        let keep = MAX_WINDOW_ROWS as usize + SLACK;
        if self.rows.len() <= keep + SLACK {
            return;
        }
        let mut places: Vec<Place> = self.rows.values().map(HeldTicket::place).collect();
        places.sort_unstable_by(|a, b| b.cmp(a));
        let last_kept = places.swap_remove(keep - 1);
        self.rows.retain(|_, held| held.at_or_above(&last_kept));
        self.complete_from = Some(match self.complete_from.take() {
            Some(before) => before.max(last_kept),
            None => last_kept,
        });
    }

    fn select(
        &self,
        since: DateTime<Utc>,
        except: &TicketId,
        model: Option<&str>,
    ) -> Vec<Arc<OpenTicket>> {
        select(self.rows.values(), since, except, model)
    }
}

/// The window since `since` of `held`: `except` left out, newest first, at
/// most [`MAX_WINDOW_ROWS`], vectors of `model` only.
fn select<'a>(
    held: impl Iterator<Item = &'a HeldTicket>,
    since: DateTime<Utc>,
    except: &TicketId,
    model: Option<&str>,
) -> Vec<Arc<OpenTicket>> {
    let mut window: Vec<&HeldTicket> = held
        .filter(|held| held.ticket.received_at >= since && held.ticket.ticket_id != *except)
        .collect();
    // Newest first, as every read orders them.
    window.sort_by(|a, b| b.key().cmp(&a.key()));
    window.truncate(MAX_WINDOW_ROWS as usize);
    window
        .into_iter()
        .map(|held| {
            if held.ticket.vector.is_none() || held.model.as_deref() == model {
                held.ticket.clone()
            } else {
                Arc::new(OpenTicket {
                    vector: None,
                    ..OpenTicket::clone(&held.ticket)
                })
            }
        })
        .collect()
}

/// The snapshot's floor and the newest `limit` open tickets of the tenant
/// received since `since`.
async fn newest(
    client: &impl GenericClient,
    tenant: &TenantId,
    since: DateTime<Utc>,
    limit: usize,
) -> Result<(i64, Vec<HeldTicket>), StoreError> {
    let select = client
        .prepare_cached(
            "select t.ticket_id, t.subject, t.received_at, t.entities, t.vector, s.floor,
                    t.model, false
               from (select pg_snapshot_xmin(pg_current_snapshot())::text::bigint as floor) s
               left join lateral (
                    select ticket_id, subject, received_at, entities, model, vector
                      from open_tickets
                     where tenant_id = $1 and received_at >= $2 and resolved_at is null
                       and written_xid is distinct from pg_current_xact_id_if_assigned()
                     order by received_at desc, ticket_id desc
                     limit $3) t on true",
        )
        .await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(&select, &[&tenant.as_str(), &since, &limit])
        .await?;
    let mut tickets = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some((ticket, _)) = changed(row)? {
            tickets.push(ticket);
        }
    }
    Ok((floor(&rows)?, tickets))
}

fn floor(rows: &[Row]) -> Result<i64, StoreError> {
    rows.first()
        .map(|row| row.get(5))
        .ok_or_else(|| StoreError::Corrupt("a window read returned no snapshot".into()))
}

/// A row of a window read (the ticket's columns as [`open_ticket`] reads
/// them, then the snapshot's floor, the model and whether it was resolved):
/// the ticket and whether it was resolved; `None` for the row that only
/// carries the snapshot.
fn changed(row: &Row) -> Result<Option<(HeldTicket, bool)>, StoreError> {
    if row.get::<_, Option<&str>>(0).is_none() {
        return Ok(None);
    }
    Ok(Some((
        HeldTicket {
            ticket: Arc::new(open_ticket(row)?),
            model: row.get(6),
        },
        row.get(7),
    )))
}
