//! `ticket.received` → `context.gathered`.
//!
//! The sources run concurrently, each under its own timeout and never past
//! the stage's budget, and each reports how it fared; a slow or broken
//! source never fails the run. Only an unknown or inactive tenant ends the
//! run (`enhancement.failed`), and only an unreachable database makes the
//! ticket wait for a redelivery.

use std::time::Duration;
use tracing::Instrument as _;

use aia_bus::{Failure, Handled, Handler, HandlerError, TenantPolicy, Work};
use aia_events::{
    ContextGathered, ContextSource, EnhancementFailed, Event, Payload, Stage, SystemInfo,
    TicketReceived, TicketText,
};
use aia_store::{MonitoringQuery, Pool, StoreError, TenantCache};

use std::sync::Arc;

use futures::FutureExt as _;

use crate::extract;
use crate::sources::fusion::{self, Fusion};
use crate::sources::similar::Semantic;
use crate::sources::{self, SourceError, inventory, knowledge, monitoring, related, similar};

/// The fusion's thresholds for a tenant's model: the local model's
/// defaults, or what the tenant calibrated for its endpoint.
fn fusion_for(settings: &aia_store::EmbeddingSettings) -> Fusion {
    match settings {
        aia_store::EmbeddingSettings::Local => fusion::DEFAULT,
        aia_store::EmbeddingSettings::Endpoint(endpoint) => {
            let threshold = endpoint.min_similarity.unwrap_or(fusion::DEFAULT.threshold);
            let likely = endpoint.likely_similarity.unwrap_or(fusion::DEFAULT.likely);
            Fusion {
                threshold,
                likely,
                lexical_weight: endpoint
                    .lexical_weight
                    .unwrap_or(fusion::DEFAULT.lexical_weight),
                feedback_weight: fusion::feedback_weight_for(
                    fusion::DEFAULT.feedback_weight,
                    threshold,
                    likely,
                ),
                ..fusion::DEFAULT
            }
        }
    }
}

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
            ..
        } = work;
        let settings = &tenant.settings;
        let text = aia_embed::query_text(ticket.subject.as_deref(), &ticket.description);
        let mentions = extract::mentions(&text);
        // Its language sets the searches' stemming and the note's language.
        let language = settings.languages.ticket_language(&text);
        let within_budget = |timeout: Duration| timeout.min(self.budget);

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
                        &text,
                        language.language,
                        within_budget(self.source_timeout),
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
            Some(terms) => format!("{text}\n{terms}"),
            None => text.clone(),
        };
        let search_text = search_text.as_str();

        // The ticket is embedded once, for both searches by meaning; when
        // that is impossible both search by words and say why.
        let semantic = self
            .query_vector(
                &tenant,
                &text,
                terms.as_deref(),
                within_budget(self.source_timeout),
            )
            .instrument(tracing::info_span!("embed query"))
            .shared();
        let by_words_because = |semantic: &Result<QueryVector, String>| match semantic {
            Ok(_) => None,
            Err(reason) => Some(format!("by words only: {reason}")),
        };

        let similar = async {
            let query = semantic.clone().await;
            let (items, mut report) = sources::run(
                ContextSource::SimilarTickets,
                settings.similar_tickets_enabled,
                within_budget(self.source_timeout),
                async {
                    // One connection at a time per search: a handler that held
                    // one while asking for another could starve a full pool.
                    match &query {
                        Ok(query) => {
                            similar::similar_tickets_by_meaning(
                                &self.db,
                                &event.tenant_id,
                                search_text,
                                language.language,
                                query.semantic(),
                                usize::try_from(self.max_similar_tickets).unwrap_or(5),
                            )
                            .await
                        }
                        Err(_) => Ok(similar::similar_tickets(
                            &mut self.db.get().await.map_err(StoreError::from)?,
                            &event.tenant_id,
                            search_text,
                            language.language,
                            self.max_similar_tickets,
                        )
                        .await?),
                    }
                }
                .instrument(aia_telemetry::db_span("SELECT", "ticket_history")),
            )
            .await;
            if report.detail.is_none() && settings.similar_tickets_enabled {
                report.detail = by_words_because(&query);
            }
            (items, report)
        };
        let kb_timeout =
            Duration::from_secs(u64::from(settings.knowledge_base_timeout_secs.clamp(1, 60)));
        let knowledge = async {
            let query = semantic.clone().await;
            let (items, mut report) = sources::run(
                ContextSource::KnowledgeBase,
                settings.knowledge_base_enabled,
                within_budget(kb_timeout.max(self.source_timeout)),
                async {
                    let local = async {
                        match &query {
                            Ok(query) => {
                                knowledge::local_by_meaning(
                                    &self.db,
                                    &event.tenant_id,
                                    search_text,
                                    language.language,
                                    query.semantic(),
                                    3,
                                )
                                .await
                            }
                            Err(_) => {
                                let mut client = self.db.get().await.map_err(StoreError::from)?;
                                knowledge::local(
                                    &mut client,
                                    &event.tenant_id,
                                    search_text,
                                    language.language,
                                    3,
                                )
                                .await
                            }
                        }
                    }
                    .instrument(aia_telemetry::db_span("SELECT", "knowledge_articles"));
                    let external = async {
                        match &settings.knowledge_base_url {
                            Some(url) => knowledge::external(
                                &self.http,
                                &self.knowledge_cache,
                                &event.tenant_id,
                                url,
                                tenant.integrations.knowledge_base_token.as_deref(),
                                &text,
                                within_budget(kb_timeout),
                            )
                            .await
                            .map(Some),
                            None => Ok(None),
                        }
                    };
                    let (local, external) = tokio::join!(local, external);
                    merge_articles(local, external)
                },
            )
            .await;
            if report.detail.is_none() && settings.knowledge_base_enabled {
                report.detail = by_words_because(&query);
            }
            (items, report)
        };
        let systems_and_monitoring = async {
            let (systems, inventory_report) = sources::run(
                ContextSource::Inventory,
                settings.inventory_enabled,
                within_budget(self.source_timeout),
                async {
                    let mut client = self.db.get().await.map_err(StoreError::from)?;
                    inventory::lookup(&mut client, &event.tenant_id, &mentions).await
                }
                .instrument(aia_telemetry::db_span("SELECT", "system_inventory")),
            )
            .await;
            let hosts = monitored_hosts(&systems);
            let queries = if settings.monitoring_queries.is_empty() {
                MonitoringQuery::defaults()
            } else {
                settings.monitoring_queries.clone()
            };
            let monitoring_on = settings.monitoring_enabled && settings.monitoring_url.is_some();
            let monitoring = sources::run(
                ContextSource::Monitoring,
                monitoring_on,
                within_budget(self.monitoring_timeout),
                async {
                    let url = settings.monitoring_url.as_deref().unwrap_or_default();
                    let token = tenant.integrations.monitoring_token.as_deref();
                    monitoring::check(
                        &self.http,
                        url,
                        token,
                        &hosts,
                        &queries,
                        self.monitoring_timeout,
                    )
                    .await
                },
            );
            let related = async {
                let query = semantic.clone().await;
                let entities = related::entities(&mentions, &systems);
                sources::run(
                    ContextSource::RelatedTickets,
                    settings.incidents.enabled,
                    within_budget(self.source_timeout),
                    related::related_open(
                        &self.db,
                        &event.tenant_id,
                        aia_store::open_tickets::NewOpenTicket {
                            ticket_id: &event.ticket_id,
                            subject: ticket.subject.as_deref(),
                            received_at: event.occurred_at,
                            entities: &entities,
                            vector: query
                                .as_ref()
                                .ok()
                                .map(|query| (&*query.model, query.vector.as_slice())),
                        },
                        settings.incidents.related_window_minutes,
                        &self.related,
                        &settings.embeddings,
                    )
                    .instrument(aia_telemetry::db_span("SELECT", "open_tickets")),
                )
                .await
            };
            let ((findings, monitoring_report), (related_open, related_report)) =
                tokio::join!(monitoring, related);
            (
                systems,
                inventory_report,
                findings,
                monitoring_report,
                related_open,
                related_report,
            )
        };
        let (
            (similar_tickets, similar_report),
            (articles, knowledge_report),
            (systems, inventory_report, findings, monitoring_report, related_open, related_report),
        ) = tokio::join!(similar, knowledge, systems_and_monitoring);

        for report in [
            &similar_report,
            &knowledge_report,
            &inventory_report,
            &monitoring_report,
            &related_report,
        ] {
            self.metrics.record(report);
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
            sources: vec![
                similar_report,
                knowledge_report,
                inventory_report,
                monitoring_report,
                related_report,
            ],
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

/// The ticket's embedding and what it may be compared with.
#[derive(Clone)]
struct QueryVector {
    model: Arc<str>,
    vector: Arc<aia_embed::Vector>,
    /// The embedding of the LLM's terms for the ticket, if it gave any.
    rewrite: Option<Arc<aia_embed::Vector>>,
    fusion: Fusion,
}

impl QueryVector {
    fn semantic(&self) -> Semantic<'_> {
        Semantic {
            model: &self.model,
            vector: self.vector.as_slice(),
            rewrite: self.rewrite.as_deref().map(aia_embed::Vector::as_slice),
            fusion: self.fusion,
        }
    }
}

impl ContextGatherer {
    /// Embeds the ticket, and the LLM's `terms` for it, with the tenant's
    /// active model, in one call.
    async fn query_vector(
        &self,
        tenant: &aia_store::Tenant,
        text: &str,
        terms: Option<&str>,
        timeout: Duration,
    ) -> Result<QueryVector, String> {
        let settings = &tenant.settings;
        if !(settings.similar_tickets_enabled || settings.knowledge_base_enabled) {
            return Err("both searches are off".into());
        }
        let embedders = aia_embed::tenant::embedders(
            settings,
            &tenant.integrations,
            self.local_embedder.as_ref(),
            &self.http,
        )?;
        let mut queries: Vec<String> = vec![text.chars().take(2000).collect()];
        queries.extend(terms.map(str::to_owned));
        let mut vectors = tokio::time::timeout(timeout, embedders.active.embed(&queries))
            .await
            .map_err(|_| {
                format!(
                    "the embeddings provider did not answer within {} ms",
                    timeout.as_millis()
                )
            })?
            .map_err(|err| err.to_string())?
            .into_iter()
            .map(Arc::new);
        let vector = vectors
            .next()
            .ok_or("the embeddings provider returned no vector")?;
        Ok(QueryVector {
            model: Arc::from(embedders.active.model()),
            vector,
            rewrite: vectors.next(),
            fusion: fusion_for(&settings.embeddings),
        })
    }
}

/// Local articles first, then external ones not already listed. A failing
/// external knowledge base is an error only when nothing was found locally.
fn merge_articles(
    local: Result<Vec<aia_events::KnowledgeArticle>, SourceError>,
    external: Result<Option<Vec<aia_events::KnowledgeArticle>>, SourceError>,
) -> Result<Vec<aia_events::KnowledgeArticle>, SourceError> {
    match (local, external) {
        (Ok(mut articles), Ok(external)) => {
            for article in external.into_iter().flatten() {
                let duplicate = articles.iter().any(|known| {
                    known.title == article.title
                        || (known.url.is_some() && known.url == article.url)
                });
                if !duplicate {
                    articles.push(article);
                }
            }
            Ok(articles)
        }
        (Ok(articles), Err(err)) if !articles.is_empty() => {
            tracing::warn!(error = %err, "External knowledge base failed; using local articles");
            Ok(articles)
        }
        (Err(err), _) | (Ok(_), Err(err)) => Err(err),
    }
}

/// The names monitoring knows hosts by: inventory host names first, else
/// what the ticket said.
fn monitored_hosts(systems: &[SystemInfo]) -> Vec<String> {
    let mut hosts: Vec<String> = systems
        .iter()
        .map(|system| {
            system
                .hostname
                .clone()
                .unwrap_or_else(|| system.matched.clone())
        })
        .filter(|host| !host.is_empty())
        .collect();
    hosts.dedup();
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_model_searches_with_the_thresholds_and_word_weight_the_tenant_set() {
        assert_eq!(
            fusion_for(&aia_store::EmbeddingSettings::Local),
            fusion::DEFAULT
        );
        let mut endpoint = aia_store::EmbeddingEndpointSettings {
            name: "e5".into(),
            kind: "openai".into(),
            base_url: "http://e5.internal:8090/v1".into(),
            model: "multilingual-e5-small-q4".into(),
            api_version: None,
            timeout_secs: 10,
            min_similarity: Some(0.75),
            likely_similarity: Some(0.90),
            lexical_weight: Some(0.0),
            incidents: None,
        };
        let calibrated = fusion_for(&aia_store::EmbeddingSettings::Endpoint(endpoint.clone()));
        assert_eq!(
            (
                calibrated.threshold,
                calibrated.likely,
                calibrated.lexical_weight
            ),
            (0.75, 0.90, 0.0)
        );
        // Ratings weigh as much of e5's narrower band as of the local
        // model's: 0.10 × 0.15 / 0.44.
        assert!(
            (calibrated.feedback_weight - 0.10 * 0.15 / 0.44).abs() < 1e-4,
            "{}",
            calibrated.feedback_weight
        );
        endpoint.lexical_weight = None;
        let unset = fusion_for(&aia_store::EmbeddingSettings::Endpoint(endpoint));
        assert_eq!(unset.lexical_weight, fusion::DEFAULT.lexical_weight);
    }
}
