//! `ticket.received` → `context.gathered`.
//!
//! The sources ([`crate::gather`]) run concurrently, each under its own
//! timeout and never past the stage's budget, and each reports how it
//! fared; a slow or broken source never fails the run. Only an unknown or
//! inactive tenant ends the run (`enhancement.failed`), and only an
//! unreachable database makes the ticket wait for a redelivery.

use std::sync::Arc;
use std::time::Duration;

use aia_bus::{Failure, Handled, Handler, HandlerError, TenantPolicy, Work};
use aia_events::{
    ContextGathered, EnhancementFailed, Event, Payload, Stage, TicketReceived, TicketText,
};
use aia_store::{Pool, TenantCache};
use futures::FutureExt as _;
use tracing::Instrument as _;

use crate::extract;
use crate::gather::Asked;
use crate::sources::{knowledge, related};

pub struct ContextGatherer {
    pub db: Pool,
    /// The tenants, each read at most once per TTL.
    pub tenants: Arc<TenantCache>,
    pub http: reqwest::Client,
    /// How this process reaches the local embedding model (the embedder
    /// service); `None` searches tenants on it by words only.
    pub local_embedder: Option<aia_embed::Embedder>,
    pub knowledge_cache: knowledge::ExternalCache,
    /// Timeout of each source that has none of its own.
    pub source_timeout: Duration,
    /// The whole stage's budget: no source runs longer.
    pub budget: Duration,
    pub monitoring_timeout: Duration,
    pub max_similar_tickets: i64,
    /// Source outcomes and latencies.
    pub metrics: crate::metrics::SourceMetrics,
    /// When two open tickets count as the same problem, and whether the
    /// ticket enters the tenant's window of open tickets.
    pub related: related::Related,
    /// Asks tenants' LLMs for their tickets' technical terms when they
    /// have `query_rewrite` on; `None` never asks (an operator's dry run).
    pub rewriter: Option<crate::rewrite::Rewriter>,
}

impl Handler for ContextGatherer {
    const NAME: &'static str = Stage::ContextGatherer.as_str();
    const TENANTS: TenantPolicy = TenantPolicy::Active;
    type Input = TicketReceived;

    fn tenants(&self) -> &TenantCache {
        &self.tenants
    }

    async fn handle(&self, work: Work<'_, TicketReceived>) -> Result<Handled, HandlerError> {
        let Work {
            event,
            input: ticket,
            tenant,
            delivery,
        } = work;
        let settings = &tenant.settings;
        let text = aia_embed::query_text(ticket.subject.as_deref(), &ticket.description);
        let mentions = extract::mentions(&text);
        // Its language sets the searches' stemming and the note's language.
        let language = settings
            .languages
            .ticket_language(&aia_events::language::ticket_text(
                ticket.subject.as_deref(),
                &ticket.description,
            ));
        // One budget for the whole ticket: the rewrite, the embedding and
        // the sources after them each get what is left of it.
        let deadline = tokio::time::Instant::now() + self.budget;
        let left = |timeout: Duration| {
            timeout.min(deadline.saturating_duration_since(tokio::time::Instant::now()))
        };

        // The LLM's terms, when the tenant wants them, go beside the ticket
        // in both local searches: embedded on their own, and as words.
        let searching = settings.similar_tickets_enabled || settings.knowledge_base_enabled;
        let query_rewrite = match &self.rewriter {
            Some(rewriter) if searching => {
                rewriter
                    .rewrite(
                        &self.db,
                        &self.http,
                        &tenant,
                        crate::rewrite::Ticket {
                            run: event.correlation_id,
                            text: &text,
                            language: language.language,
                        },
                        left(self.source_timeout),
                    )
                    .instrument(tracing::info_span!("rewrite query"))
                    .await
            }
            _ => None,
        };
        if let Some(rewrite) = &query_rewrite {
            self.metrics.record_rewrite(rewrite);
        }
        let terms = query_rewrite.as_ref().and_then(|r| r.terms.clone());
        let search_text = match &terms {
            // Terms first: the search reads the first thousand characters,
            // and on a long ticket the paid-for terms would be cut off.
            Some(terms) => format!("{terms}\n{text}"),
            None => text.clone(),
        };
        let unavailable = std::sync::atomic::AtomicBool::new(false);
        let asked = Asked {
            event,
            ticket,
            tenant: &tenant,
            text: &text,
            search_text: &search_text,
            language: &language,
            mentions: &mentions,
            unavailable: &unavailable,
            deadline,
        };

        // The ticket is embedded once, for both searches by meaning and the
        // related tickets; when that is impossible the searches go by words
        // and say why.
        let embedded = self
            .query_vector(&tenant, &text, terms.as_deref(), left(self.source_timeout))
            .instrument(tracing::info_span!("embed query"))
            .shared();
        let similar = async { self.similar(&asked, &embedded.clone().await).await };
        let knowledge = async { self.knowledge(&asked, &embedded.clone().await).await };
        // Monitoring and the related tickets need the inventory's answer.
        let around = async {
            let (systems, inventory_report) = self.systems(&asked).await;
            let related = async {
                let embedded = embedded.clone().await;
                self.related(&asked, &systems, &embedded).await
            };
            let (monitoring, related) = tokio::join!(self.monitoring(&asked, &systems), related);
            (systems, inventory_report, monitoring, related)
        };
        let (
            (similar_tickets, similar_report),
            (articles, knowledge_report),
            (
                systems,
                inventory_report,
                (findings, monitoring_report),
                (related_open, related_report),
            ),
        ) = tokio::join!(similar, knowledge, around);

        let sources = vec![
            similar_report,
            knowledge_report,
            inventory_report,
            monitoring_report,
            related_report,
        ];
        for report in &sources {
            self.metrics.record(report);
        }
        // A failover or restart under way: gather again rather than send a
        // context that merely looks empty — unless this is the last chance.
        if unavailable.into_inner() && !delivery.is_last_attempt() {
            return Err(HandlerError::transient(
                "the database could not serve a context source; gathering again",
            ));
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
            knowledge_articles: articles,
            systems,
            monitoring: findings,
            sources,
            query_rewrite,
            related_open,
            language: Some(language),
        };
        Ok(Handled::Publish(vec![Event::caused_by(
            event,
            Payload::ContextGathered(gathered),
        )]))
    }

    fn failed(&self, event: &Event, failure: Failure<'_>) -> Option<Event> {
        Some(Event::caused_by(
            event,
            Payload::EnhancementFailed(EnhancementFailed {
                stage: Stage::ContextGatherer,
                reason: failure.reason.to_owned(),
                attempts: failure.attempts,
            }),
        ))
    }
}
