//! `context.gathered` and `ticket.resolved` → `incident.detected` /
//! `incident.updated`.
//!
//! Each decision runs in one transaction under the tenant's advisory lock:
//! read the tenant's live incidents, decide ([`crate::decide`]), fold the
//! resulting events into the tables and keep them in the outbox, commit;
//! then publish the tenant's outbox. A redelivered input finds its ticket
//! already decided and only publishes what is still unpublished, under the
//! same message ids, so the stream keeps one copy of each event.

use std::collections::HashSet;
use std::sync::Arc;

use aia_bus::{Failure, Handled, Handler, HandlerError, JetStream, TenantPolicy, Work};
use aia_events::{
    ContextGathered, Event, IncidentChange, IncidentDetected, IncidentStatus, IncidentTicket,
    IncidentUpdated, Payload, TenantId, TicketResolved,
};
use aia_store::{Pool, StoreError, Tenant, TenantCache, open_tickets};
use chrono::Utc;
use uuid::Uuid;

use crate::decide::{self, Decision, Rules};
use crate::metrics::IncidentMetrics;
use crate::{outbox, store};

pub struct IncidentCorrelator {
    pub db: Pool,
    pub jetstream: JetStream,
    pub tenants: Arc<TenantCache>,
    pub metrics: IncidentMetrics,
    /// The windows of open tickets this process holds.
    pub windows: open_tickets::WindowCache,
    /// The live incidents' centroids this process holds.
    pub centroids: crate::centroids::Centroids,
}

impl Handler for IncidentCorrelator {
    const NAME: &'static str = "incident-correlator";
    // Never sets events aside: a paused tenant produces no new contexts (the
    // context stage sets its tickets aside), and what it already produced
    // is correlated like its history is projected. Setting aside here would
    // republish a `context.gathered` on resume that the enhancer would see
    // a second time.
    const TENANTS: TenantPolicy = TenantPolicy::Existing;
    type Input = Payload;

    fn tenants(&self) -> &TenantCache {
        &self.tenants
    }

    async fn handle(&self, work: Work<'_, Payload>) -> Result<Handled, HandlerError> {
        let Work {
            event,
            input,
            tenant,
            ..
        } = work;
        // Whether the tenant's outbox may hold something to publish: this
        // decision's events, or (a redelivery) those of an earlier attempt.
        // Otherwise the outbox is not read: most tickets decide nothing, and
        // the sweep publishes any straggler within a minute.
        let publish = match input {
            Payload::ContextGathered(context) if tenant.settings.incidents.enabled => {
                self.metrics.seen(&event.tenant_id);
                self.arrived(event, context, &tenant).await?
            }
            Payload::TicketResolved(resolved) => self.resolved(event, resolved).await?,
            _ => return Ok(Handled::Nothing),
        };
        if !publish {
            return Ok(Handled::Nothing);
        }
        outbox::flush(&self.db, &self.jetstream, &event.tenant_id)
            .await
            .map_err(|err| HandlerError {
                reason: format!("publishing the tenant's incident events: {err}"),
                retry_after: None,
                source: Some(Box::new(err)),
            })?;
        Ok(Handled::Nothing)
    }

    fn failed(&self, event: &Event, failure: Failure<'_>) -> Option<Event> {
        // Incidents end no ticket's run, and no dead letter records this: a
        // ticket given up on is missing from its incident, and a resolution
        // given up on leaves the ticket open in the window until it ages
        // out (49 hours). Said loudly, for the operator to replay.
        tracing::error!(
            tenant_id = %event.tenant_id,
            ticket_id = %event.ticket_id,
            event_id = %event.event_id,
            event_type = event.event_type(),
            attempts = failure.attempts,
            reason = failure.reason,
            "The incident correlator gave up on an event; `aiagents replay` it once the cause is fixed"
        );
        None
    }
}

impl IncidentCorrelator {
    /// A ticket the context stage understood: join it to an incident, open
    /// one, or leave it alone.
    async fn arrived(
        &self,
        event: &Event,
        context: &ContextGathered,
        tenant: &Tenant,
    ) -> Result<bool, StoreError> {
        let rules = Rules::from(&tenant.settings.incidents);
        let ticket = IncidentTicket {
            ticket_id: event.ticket_id.clone(),
            subject: context.ticket.subject.clone(),
            received_at: context.received_at,
        };
        let tenant_id = &event.tenant_id;
        let mut client = self.db.get().await?;
        let tx = store::locked_tenant_transaction(&mut client, tenant_id).await?;
        let assigned = store::assigned(&tx, tenant_id, &[event.ticket_id.as_str()]).await?;
        if !assigned.is_empty() {
            // Decided before (a redelivery): only the outbox is left to do.
            tx.commit().await?;
            return Ok(true);
        }
        // The ticket as the context stage entered it into the window, and
        // the window's tickets of the same model.
        let (me, model) = match open_tickets::state_of(&tx, tenant_id, &event.ticket_id).await? {
            // Resolved before its context was correlated: not an open
            // ticket of any outage.
            Some((_, _, true)) => {
                tx.commit().await?;
                return Ok(false);
            }
            Some((me, model, false)) => (Some(me), model),
            None => (None, None),
        };
        let me = me.as_ref();
        // Cosines mean something only at the thresholds calibrated for
        // their model; a ticket of any other model is grouped with none.
        let closeness = model
            .as_deref()
            .and_then(|model| decide::Closeness::for_model(&tenant.settings.embeddings, model));
        let arrival = decide::Arrival {
            ticket: &ticket,
            vector: me
                .and_then(|me| me.vector.as_deref())
                .filter(|_| closeness.is_some()),
            entities: me.map_or(&[][..], |me| me.entities.as_slice()),
        };
        let closeness = closeness.unwrap_or(decide::DEFAULT_CLOSENESS);
        let since = context.received_at - rules.window;
        // Only the window's tickets like this one can join a burst with it,
        // and only theirs are looked up (not the whole window's); without
        // its vector a ticket joins nothing.
        let mut window = Vec::new();
        if arrival.vector.is_some() {
            window = self
                .windows
                .window(&tx, tenant_id, since, &event.ticket_id, model.as_deref())
                .await?;
            window.retain(|open| arrival.links(open, &closeness).is_some());
        }
        let window_ids: Vec<&str> = window.iter().map(|o| o.ticket_id.as_str()).collect();
        let assigned = store::assigned(&tx, tenant_id, &window_ids).await?;
        let mut live = store::live(&tx, tenant_id).await?;
        if let Some(model) = &model {
            self.centroids
                .fill(&tx, tenant_id, model, &mut live)
                .await?;
        }
        // Quiet by the tickets' own time, as a replay of this ticket would
        // decide it.
        let quiet = decide::quiet(&live, context.received_at, &rules);
        let mut events = quiet_ends(tenant_id, &mut live, &quiet, Some(event.event_id));
        let live: Vec<decide::Live> = live.into_iter().filter(|i| i.status.is_live()).collect();
        let decision = decide::decide(arrival, &window, &live, &assigned, &rules, &closeness);
        match decision {
            Decision::Nothing => {}
            Decision::Join { incident } => {
                let joined = live
                    .iter()
                    .find(|i| i.id == incident)
                    .expect("decide joins a live incident");
                events.push(incident_event(
                    &event.tenant_id,
                    incident,
                    Some(event.event_id),
                    Payload::IncidentUpdated(IncidentUpdated {
                        incident_id: incident,
                        version: joined.version + 1,
                        change: IncidentChange::TicketAdded,
                        status: joined.status,
                        ticket: Some(ticket.clone()),
                        by: None,
                        ticket_count: joined.ticket_count.saturating_add(1),
                    }),
                ));
            }
            Decision::Open {
                tickets,
                shared_entities,
                summary,
            } => {
                let incident = Uuid::now_v7();
                events.push(incident_event(
                    &event.tenant_id,
                    incident,
                    Some(event.event_id),
                    Payload::IncidentDetected(IncidentDetected {
                        incident_id: incident,
                        version: 1,
                        tickets,
                        shared_entities,
                        summary,
                        detected_by: event.ticket_id.clone(),
                        threshold: rules.threshold,
                        window_minutes: u32::try_from(rules.window.num_minutes())
                            .unwrap_or(u32::MAX),
                    }),
                ));
            }
        }
        for decided in &events {
            store::apply(&tx, decided).await?;
            store::outbox_put(&tx, decided, &outbox::msg_id(decided)).await?;
        }
        tx.commit().await?;
        self.metrics.count(&event.tenant_id, &events);
        Ok(!events.is_empty())
    }

    /// A ticket was resolved: it leaves the window of open tickets, and
    /// its incident ends when it was the last open one there.
    async fn resolved(&self, event: &Event, resolved: &TicketResolved) -> Result<bool, StoreError> {
        let mut client = self.db.get().await?;
        open_tickets::resolve(
            &mut client,
            &event.tenant_id,
            &event.ticket_id,
            resolved.resolved_at,
        )
        .await?;
        let tx = store::locked_tenant_transaction(&mut client, &event.tenant_id).await?;
        let Some(incident) = store::resolve_ticket(
            &tx,
            &event.tenant_id,
            &event.ticket_id,
            resolved.resolved_at,
        )
        .await?
        else {
            tx.commit().await?;
            return Ok(false);
        };
        let mut events = Vec::new();
        if incident.live && incident.open == 0 {
            events.push(incident_event(
                &event.tenant_id,
                incident.incident,
                Some(event.event_id),
                Payload::IncidentUpdated(IncidentUpdated {
                    incident_id: incident.incident,
                    version: incident.version + 1,
                    change: IncidentChange::Resolved,
                    status: IncidentStatus::Ended,
                    ticket: None,
                    by: None,
                    ticket_count: incident.tickets,
                }),
            ));
        }
        for decided in &events {
            store::apply(&tx, decided).await?;
            store::outbox_put(&tx, decided, &outbox::msg_id(decided)).await?;
        }
        tx.commit().await?;
        self.metrics.count(&event.tenant_id, &events);
        // Flushed even when nothing was decided now: a redelivery after a
        // crash between commit and publish finds its end already decided.
        Ok(true)
    }
}

/// `incident.updated` (quiet) for each of `live` in `quiet`, marking them
/// ended in `live`.
pub fn quiet_ends(
    tenant: &TenantId,
    live: &mut [decide::Live],
    quiet: &[Uuid],
    cause: Option<Uuid>,
) -> Vec<Event> {
    let quiet: HashSet<Uuid> = quiet.iter().copied().collect();
    live.iter_mut()
        .filter(|incident| quiet.contains(&incident.id))
        .map(|incident| {
            incident.status = IncidentStatus::Ended;
            incident_event(
                tenant,
                incident.id,
                cause,
                Payload::IncidentUpdated(IncidentUpdated {
                    incident_id: incident.id,
                    version: incident.version + 1,
                    change: IncidentChange::Quiet,
                    status: IncidentStatus::Ended,
                    ticket: None,
                    by: None,
                    ticket_count: incident.ticket_count,
                }),
            )
        })
        .collect()
}

/// An event of `incident`: on the tenant's subjects with the incident in
/// the ticket's place, all of one incident's events in one correlation.
pub fn incident_event(
    tenant: &TenantId,
    incident: Uuid,
    cause: Option<Uuid>,
    payload: Payload,
) -> Event {
    Event {
        event_id: Uuid::now_v7(),
        tenant_id: tenant.clone(),
        ticket_id: aia_events::incident::incident_subject_id(incident),
        occurred_at: Utc::now(),
        correlation_id: incident,
        causation_id: cause,
        payload,
    }
}
