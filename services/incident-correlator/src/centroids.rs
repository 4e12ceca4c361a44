//! The live incidents' centroids, held per process. A decision compares
//! the new ticket with the centroid of every live incident of its tenant;
//! reading every member's vector for that made a large outage cost its
//! size in every decision (at 3,000 tickets in the tenant's live
//! incidents, PostgreSQL's CPU per ticket quadrupled). Members only ever
//! join an incident, each at a version of the incident's own, so the sum
//! of their vectors is kept with the version it is complete to, and each
//! decision reads only the members that joined after it (in this process
//! or another) — neither their vectors nor their ids are read again. Held
//! sums are read afresh every [`open_tickets::REFRESH`] (a member
//! re-embedded by another model; and what bounds any other drift, such as
//! a restored database whose incidents have since passed the held
//! version again), at once when their incident's version is below theirs
//! (a restored database), and dropped when their incident is no longer
//! live.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use aia_events::{TenantId, TicketId};
use aia_store::{GenericClient, StoreError, open_tickets};
use uuid::Uuid;

use crate::decide::{Live, unit};
use crate::store;

/// The held sums, by tenant and incident.
#[derive(Default)]
pub struct Centroids {
    held: Mutex<HashMap<(TenantId, Uuid), Sum>>,
}

/// The sum of the vectors made by `model` of the incident's members that
/// joined it up to `version`.
struct Sum {
    model: String,
    version: u32,
    sum: Option<Vec<f32>>,
    /// How many members' vectors are in `sum`.
    summed: usize,
    read_at: Instant,
}

impl Sum {
    fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            version: 0,
            sum: None,
            summed: 0,
            read_at: Instant::now(),
        }
    }

    fn add(&mut self, vector: &[f32]) {
        match &mut self.sum {
            Some(sum) if sum.len() == vector.len() => {
                sum.iter_mut().zip(vector).for_each(|(s, v)| *s += v);
            }
            Some(_) => return,
            None => self.sum = Some(vector.to_vec()),
        }
        self.summed += 1;
    }
}

impl Centroids {
    /// Sets each of the tenant's `live` incidents' centroid: the unit mean
    /// of its members' vectors of `model`. The caller holds the tenant's
    /// lock ([`crate::store::locked_tenant_transaction`]), so no other decision of the
    /// tenant runs meanwhile.
    pub async fn fill(
        &self,
        tx: &impl GenericClient,
        tenant: &TenantId,
        model: &str,
        live: &mut [Live],
    ) -> Result<(), StoreError> {
        let mut sums: Vec<Sum> = {
            let mut held = self.held.lock().expect("centroids lock");
            // What is no longer live, or was read too long ago, is not held
            // (nor, so, a tenant's incidents once it is quiet).
            let ids: HashSet<Uuid> = live.iter().map(|incident| incident.id).collect();
            held.retain(|(of, incident), sum| {
                (of != tenant || ids.contains(incident))
                    && sum.read_at.elapsed() < open_tickets::REFRESH
            });
            live.iter()
                .map(|incident| {
                    held.remove(&(tenant.clone(), incident.id))
                        .filter(|sum| sum.model == model && sum.version <= incident.version)
                        .unwrap_or_else(|| Sum::new(model))
                })
                .collect()
        };
        let since: Vec<(Uuid, u32, u32)> = live
            .iter()
            .zip(&sums)
            .filter(|(incident, sum)| incident.version > sum.version)
            .map(|(incident, sum)| (incident.id, sum.version, incident.version))
            .collect();
        let joined = store::members_since(tx, tenant, &since).await?;
        let vectors: HashMap<TicketId, Vec<f32>> = if joined.is_empty() {
            HashMap::new()
        } else {
            let ids: Vec<&str> = joined.iter().map(|(_, ticket)| ticket.as_str()).collect();
            open_tickets::some(tx, tenant, &ids, Some(model))
                .await?
                .into_iter()
                .filter_map(|open| Some((open.ticket_id, open.vector?)))
                .collect()
        };
        for (incident, sum) in live.iter_mut().zip(&mut sums) {
            // Members without a vector of the model count for none, now
            // and later: the version moves past them all the same.
            for (_, ticket) in joined.iter().filter(|(of, _)| *of == incident.id) {
                if let Some(vector) = vectors.get(ticket) {
                    sum.add(vector);
                }
            }
            sum.version = incident.version;
            incident.centroid = sum.sum.clone().and_then(unit);
            incident.centroid_members = if incident.centroid.is_some() {
                sum.summed
            } else {
                0
            };
        }
        let mut held = self.held.lock().expect("centroids lock");
        for (incident, sum) in live.iter().zip(sums) {
            held.insert((tenant.clone(), incident.id), sum);
        }
        Ok(())
    }
}
