//! `ticket.received` → `context.gathered`.
//!
//! Every source runs under its own timeout and reports its status; a slow or
//! broken source never fails the run. Only an unknown or deleted tenant
//! ends the run (`enhancement.failed`), and only an unreachable database
//! makes the ticket wait for a redelivery.

use std::time::{Duration, Instant};

use aia_bus::{Delivery, Handled, Handler, HandlerError};
use aia_events::{
    ContextGathered, ContextSource, EnhancementFailed, Event, Payload, SimilarTicket, SourceReport,
    SourceStatus, Stage, TicketReceived, TicketText,
};
use aia_store::{Pool, StoreError, TenantSettings, tenants};

use crate::search;

pub struct ContextGatherer {
    pub db: Pool,
    pub source_timeout: Duration,
    pub max_similar_tickets: i64,
}

fn transient(err: StoreError) -> HandlerError {
    HandlerError::transient(format!("database: {err}"))
}

impl Handler for ContextGatherer {
    async fn handle(&self, event: Event, _delivery: Delivery) -> Result<Handled, HandlerError> {
        let Payload::TicketReceived(ticket) = &event.payload else {
            return Ok(Handled::Nothing);
        };
        let mut client = self.db.get().await.map_err(|err| transient(err.into()))?;
        let settings = tenants::settings(&mut client, &event.tenant_id)
            .await
            .map_err(transient)?;
        let settings = match settings {
            Some((settings, true)) => settings,
            Some((_, false)) => return Ok(self.failed(&event, "tenant is inactive")),
            None => return Ok(self.failed(&event, "tenant does not exist")),
        };
        drop(client);
        let (similar_tickets, similar_report) = self.similar(&event, ticket, &settings).await?;
        let mut sources = vec![similar_report];
        for (source, enabled) in [
            (
                ContextSource::KnowledgeBase,
                settings.knowledge_base_enabled,
            ),
            (ContextSource::Inventory, settings.inventory_enabled),
            (ContextSource::Monitoring, settings.monitoring_enabled),
        ] {
            sources.push(SourceReport {
                source,
                status: SourceStatus::Disabled,
                latency_ms: 0,
                items: 0,
                detail: Some(if enabled {
                    "source is not available in this version".into()
                } else {
                    "turned off for this tenant".into()
                }),
            });
        }
        let gathered = ContextGathered {
            ticket: TicketText {
                source: ticket.source,
                subject: ticket.subject.clone(),
                description: ticket.description.clone(),
                priority: ticket.priority,
            },
            received_at: event.occurred_at,
            similar_tickets,
            knowledge_articles: vec![],
            systems: vec![],
            monitoring: vec![],
            sources,
        };
        Ok(Handled::Publish(vec![Event::caused_by(
            &event,
            Payload::ContextGathered(gathered),
        )]))
    }

    fn gave_up(&self, event: &Event, reason: &str, attempts: u32) -> Event {
        Event::caused_by(
            event,
            Payload::EnhancementFailed(EnhancementFailed {
                stage: Stage::ContextGatherer,
                reason: reason.to_owned(),
                attempts,
            }),
        )
    }
}

impl ContextGatherer {
    fn failed(&self, event: &Event, reason: &str) -> Handled {
        Handled::Publish(vec![self.gave_up(event, reason, 1)])
    }

    async fn similar(
        &self,
        event: &Event,
        ticket: &TicketReceived,
        settings: &TenantSettings,
    ) -> Result<(Vec<SimilarTicket>, SourceReport), HandlerError> {
        let report =
            |status, started: Instant, items: usize, detail: Option<String>| SourceReport {
                source: ContextSource::SimilarTickets,
                status,
                latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                items: u32::try_from(items).unwrap_or(u32::MAX),
                detail,
            };
        let started = Instant::now();
        if !settings.similar_tickets_enabled {
            let detail = Some("turned off for this tenant".into());
            return Ok((vec![], report(SourceStatus::Disabled, started, 0, detail)));
        }
        let text = match &ticket.subject {
            Some(subject) => format!("{subject}\n{}", ticket.description),
            None => ticket.description.clone(),
        };
        let search = async {
            let mut client = self.db.get().await.map_err(StoreError::from)?;
            search::similar_tickets(
                &mut client,
                &event.tenant_id,
                &text,
                self.max_similar_tickets,
            )
            .await
        };
        match tokio::time::timeout(self.source_timeout, search).await {
            Ok(Ok(hits)) if hits.is_empty() => {
                Ok((hits, report(SourceStatus::Empty, started, 0, None)))
            }
            Ok(Ok(hits)) => {
                let n_hits = hits.len();
                Ok((hits, report(SourceStatus::Ok, started, n_hits, None)))
            }
            Ok(Err(err)) if err.is_transient() => Err(transient(err)),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "Similar-ticket search failed");
                let detail = Some("search failed".into());
                Ok((vec![], report(SourceStatus::Error, started, 0, detail)))
            }
            Err(_) => {
                let detail = Some(format!("no answer within {:?}", self.source_timeout));
                Ok((vec![], report(SourceStatus::Timeout, started, 0, detail)))
            }
        }
    }
}
