//! Events folded into their runs in memory, then written once per run.
//!
//! A run's events mostly arrive close together, so a batch often holds
//! several of them: each run is read (and locked) once, changed in memory by
//! every event of the batch in stream order, and written once; a day's
//! counters likewise (read once, added to event by event in stream order —
//! the order a rebuild adds them in, so even the floating-point cost sums
//! come out the same — and written once). The runs of the events handed
//! over are read with one query per tenant ([`Fold::prefetch`]); a run met
//! only through an event filled in from a gap, and each day, with one query
//! when first met. Rows are written in one pipeline per tenant. The effect
//! of each event is still reported on its own, for the metrics.

use std::collections::BTreeMap;

use aia_events::{Event, Payload};
use aia_store::{GenericClient, StoreError};
use chrono::NaiveDate;
use uuid::Uuid;

use crate::model::{Counters, RunRow, TicketRow, concerns_a_run};
use crate::projection::Effect;
use crate::rows::{self, Tables};

/// A run as read from the table (or absent there) and folded since.
struct Slot {
    row: Option<RunRow>,
    changed: bool,
}

pub struct Fold<'a> {
    tables: Tables<'a>,
    /// The tenant row-level security is set to in this transaction.
    tenant: Option<String>,
    runs: BTreeMap<(String, Uuid), Slot>,
    daily: BTreeMap<(String, NaiveDate), Counters>,
}

impl<'a> Fold<'a> {
    pub fn new(tables: Tables<'a>) -> Self {
        Self {
            tables,
            tenant: None,
            runs: BTreeMap::new(),
            daily: BTreeMap::new(),
        }
    }

    /// Reads and locks the runs `events` concern, one query per tenant, so
    /// that [`Fold::add`] rarely goes to the database.
    pub async fn prefetch<'e>(
        &mut self,
        client: &impl GenericClient,
        events: impl Iterator<Item = &'e Event>,
    ) -> Result<(), StoreError> {
        let mut wanted: BTreeMap<&str, Vec<Uuid>> = BTreeMap::new();
        for event in events {
            let key = (event.tenant_id.to_string(), event.correlation_id);
            if concerns_a_run(&event.payload) && !self.runs.contains_key(&key) {
                wanted
                    .entry(event.tenant_id.as_str())
                    .or_default()
                    .push(event.correlation_id);
            }
        }
        for (tenant, mut ids) in wanted {
            ids.sort_unstable();
            ids.dedup();
            self.load(client, tenant, &ids).await?;
        }
        Ok(())
    }

    async fn load(
        &mut self,
        client: &impl GenericClient,
        tenant: &str,
        ids: &[Uuid],
    ) -> Result<(), StoreError> {
        set_tenant(&mut self.tenant, client, tenant).await?;
        for id in ids {
            self.runs.insert(
                (tenant.to_owned(), *id),
                Slot {
                    row: None,
                    changed: false,
                },
            );
        }
        for row in rows::load_runs(client, self.tables, tenant, ids).await? {
            let key = (row.tenant_id.clone(), row.correlation_id);
            if let Some(slot) = self.runs.get_mut(&key) {
                slot.row = Some(row);
            }
        }
        Ok(())
    }

    /// Applies one event (after those added before it) and returns what it
    /// changed. A resolved ticket is written at once; runs and counters wait
    /// for [`Fold::write`].
    pub async fn add(
        &mut self,
        client: &impl GenericClient,
        event: &Event,
    ) -> Result<Effect, StoreError> {
        let tenant = event.tenant_id.as_str();
        if let Some(ticket) = TicketRow::from_event(event) {
            set_tenant(&mut self.tenant, client, tenant).await?;
            rows::upsert_ticket(client, self.tables, &ticket).await?;
            return Ok(Effect {
                ticket_stored: true,
                ..Effect::default()
            });
        }
        if !concerns_a_run(&event.payload) {
            return Ok(Effect::default());
        }
        let key = (tenant.to_owned(), event.correlation_id);
        if !self.runs.contains_key(&key) {
            self.load(client, tenant, &[event.correlation_id]).await?;
        }
        let slot = self.runs.get_mut(&key).expect("loaded above");
        if slot.row.is_none() && matches!(event.payload, Payload::EnhancementRated(_)) {
            return Ok(Effect::default()); // a rating for a run we do not have
        }
        let row = slot.row.get_or_insert_with(|| RunRow::new(event));
        let counters = row.apply(event).unwrap_or_default();
        let day = row.day(event);
        slot.changed = true;
        if !counters.is_zero() {
            let key = (key.0, day);
            if !self.daily.contains_key(&key) {
                set_tenant(&mut self.tenant, client, tenant).await?;
                let stored = rows::load_days(client, self.tables, tenant, &[day]).await?;
                let current = stored.into_iter().next().map(|(_, counters)| counters);
                self.daily.insert(key.clone(), current.unwrap_or_default());
            }
            self.daily
                .get_mut(&key)
                .expect("loaded above")
                .add(&counters);
        }
        Ok(Effect {
            ticket_stored: false,
            counters,
            filled: Vec::new(),
        })
    }

    /// Writes every run the events changed and adds up the days' counters,
    /// tenant by tenant.
    pub async fn write(mut self, client: &impl GenericClient) -> Result<(), StoreError> {
        let mut by_tenant: BTreeMap<&str, TenantWrites<'_>> = BTreeMap::new();
        for ((tenant, _), slot) in &self.runs {
            if let (true, Some(row)) = (slot.changed, &slot.row) {
                by_tenant.entry(tenant).or_default().0.push(row);
            }
        }
        for ((tenant, day), counters) in &self.daily {
            by_tenant
                .entry(tenant)
                .or_default()
                .1
                .push((*day, counters));
        }
        for (tenant, (runs, days)) in by_tenant {
            set_tenant(&mut self.tenant, client, tenant).await?;
            rows::upsert_runs(client, self.tables, &runs).await?;
            rows::store_days(client, self.tables, tenant, &days).await?;
        }
        Ok(())
    }
}

/// What one tenant's part of a batch writes: runs, and days' counters.
type TenantWrites<'a> = (Vec<&'a RunRow>, Vec<(NaiveDate, &'a Counters)>);

/// Points row-level security at `tenant` for the rest of the transaction,
/// unless it already is.
async fn set_tenant(
    current: &mut Option<String>,
    client: &impl GenericClient,
    tenant: &str,
) -> Result<(), StoreError> {
    if current.as_deref() != Some(tenant) {
        aia_store::set_tenant(client, tenant).await?;
        *current = Some(tenant.to_owned());
    }
    Ok(())
}
