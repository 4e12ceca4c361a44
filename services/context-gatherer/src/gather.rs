//! Each source of the context, run for one ticket: under its own timeout
//! and never past the stage's budget, reporting how it fared. A failing
//! source yields nothing and says why; it never fails the run.

use std::time::Duration;

use aia_events::{
    ContextSource, Event, KnowledgeArticle, MonitoringFinding, RelatedTicket, SimilarTicket,
    SourceReport, SourceStatus, SystemInfo, TicketLanguage, TicketReceived,
};
use aia_store::{MonitoringQuery, StoreError, Tenant};
use tracing::Instrument as _;

use crate::extract::Mentions;
use crate::handler::ContextGatherer;
use crate::query::QueryVector;
use crate::sources::{self, SourceError, inventory, knowledge, monitoring, related, similar};

/// One ticket as every source reads it.
pub(crate) struct Asked<'a> {
    pub event: &'a Event,
    pub ticket: &'a TicketReceived,
    pub tenant: &'a Tenant,
    /// Subject and description: what is embedded and sent to an external
    /// knowledge base.
    pub text: &'a str,
    /// The text with the LLM's terms, if any: what is searched by words.
    pub search_text: &'a str,
    pub language: &'a TicketLanguage,
    pub mentions: &'a Mentions,
    /// Set when the database could not serve a source for a passing reason.
    pub unavailable: &'a std::sync::atomic::AtomicBool,
    /// When the stage's budget for this ticket ends: every step after the
    /// query rewrite and the embedding gets what is left of it.
    pub deadline: tokio::time::Instant,
}

/// The ticket's embedding, or why there is none.
pub(crate) type Embedded = Result<QueryVector, String>;

/// A source's items and how it fared.
type Found<T> = (Vec<T>, SourceReport);

impl Asked<'_> {
    /// `timeout`, never past the ticket's deadline.
    pub(crate) fn within_budget(&self, timeout: Duration) -> Duration {
        timeout.min(
            self.deadline
                .saturating_duration_since(tokio::time::Instant::now()),
        )
    }
}

impl ContextGatherer {
    /// The tenant's resolved tickets most like this one: by meaning and
    /// words when the ticket could be embedded, else by words.
    pub(crate) async fn similar(
        &self,
        asked: &Asked<'_>,
        query: &Embedded,
    ) -> Found<SimilarTicket> {
        let enabled = asked.tenant.settings.similar_tickets_enabled;
        let tenant = &asked.event.tenant_id;
        let language = asked.language.language;
        let fell_back = std::sync::Mutex::new(None);
        let (items, mut report) = sources::run(
            asked.unavailable,
            ContextSource::SimilarTickets,
            enabled,
            asked.within_budget(self.source_timeout),
            async {
                // One connection at a time per search: a handler that held
                // one while asking for another could starve a full pool.
                let by_meaning = match query {
                    Ok(query) => Some(
                        similar::similar_tickets_by_meaning(
                            &self.db,
                            tenant,
                            asked.search_text,
                            language,
                            query.semantic(),
                            usize::try_from(self.max_similar_tickets).unwrap_or(5),
                        )
                        .await,
                    ),
                    Err(_) => None,
                };
                let mut found = match meaning_or_words(by_meaning, &fell_back)? {
                    Some(found) => found,
                    None => {
                        similar::similar_tickets(
                            &mut self.db.get().await.map_err(StoreError::from)?,
                            tenant,
                            asked.search_text,
                            language,
                            self.max_similar_tickets,
                        )
                        .await?
                    }
                };
                // A ticket gathered again once resolved (a replay, an
                // operator's dry run) is not its own similar ticket.
                found.retain(|similar| similar.ticket_id != asked.event.ticket_id);
                Ok(found)
            }
            .instrument(aia_telemetry::db_span("SELECT", "ticket_history")),
        )
        .await;
        if report.detail.is_none() && enabled {
            report.detail = fell_back
                .into_inner()
                .expect("fell back")
                .or_else(|| by_words_because(query));
        }
        (items, report)
    }

    /// The tenant's own articles (by meaning and words, or by words), then
    /// its external knowledge base's, if it has one.
    pub(crate) async fn knowledge(
        &self,
        asked: &Asked<'_>,
        query: &Embedded,
    ) -> Found<KnowledgeArticle> {
        let settings = &asked.tenant.settings;
        let tenant = &asked.event.tenant_id;
        let language = asked.language.language;
        let kb_timeout =
            Duration::from_secs(u64::from(settings.knowledge_base_timeout_secs.clamp(1, 60)));
        let fell_back = std::sync::Mutex::new(None);
        let (items, mut report) = sources::run(
            asked.unavailable,
            ContextSource::KnowledgeBase,
            settings.knowledge_base_enabled,
            asked.within_budget(kb_timeout.max(self.source_timeout)),
            async {
                let local = async {
                    let by_meaning = match query {
                        Ok(query) => Some(
                            knowledge::local_by_meaning(
                                &self.db,
                                tenant,
                                asked.search_text,
                                language,
                                query.semantic(),
                                3,
                            )
                            .await,
                        ),
                        Err(_) => None,
                    };
                    match meaning_or_words(by_meaning, &fell_back)? {
                        Some(found) => Ok(found),
                        None => {
                            let mut client = self.db.get().await.map_err(StoreError::from)?;
                            knowledge::local(&mut client, tenant, asked.search_text, language, 3)
                                .await
                        }
                    }
                }
                .instrument(aia_telemetry::db_span("SELECT", "knowledge_articles"));
                let external = async {
                    // The ticket leaves for someone else's service: masked
                    // as it would be for the LLM.
                    let text = if settings.redact_personal_data {
                        aia_llm::redact::redact(asked.text)
                    } else {
                        asked.text.to_owned()
                    };
                    match &settings.knowledge_base_url {
                        Some(url) => knowledge::external(
                            &self.http,
                            &self.knowledge_cache,
                            tenant,
                            url,
                            asked.tenant.integrations.knowledge_base_token.as_deref(),
                            &text,
                            asked.within_budget(kb_timeout),
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
            report.detail = fell_back
                .into_inner()
                .expect("fell back")
                .or_else(|| by_words_because(query));
        }
        (items, report)
    }

    /// The inventory entries of the hosts and addresses the ticket names.
    pub(crate) async fn systems(&self, asked: &Asked<'_>) -> Found<SystemInfo> {
        sources::run(
            asked.unavailable,
            ContextSource::Inventory,
            asked.tenant.settings.inventory_enabled,
            asked.within_budget(self.source_timeout),
            async {
                let mut client = self.db.get().await.map_err(StoreError::from)?;
                inventory::lookup(&mut client, &asked.event.tenant_id, asked.mentions).await
            }
            .instrument(aia_telemetry::db_span("SELECT", "system_inventory")),
        )
        .await
    }

    /// What the tenant's monitoring says about the `systems` found.
    pub(crate) async fn monitoring(
        &self,
        asked: &Asked<'_>,
        systems: &[SystemInfo],
    ) -> Found<MonitoringFinding> {
        let settings = &asked.tenant.settings;
        let hosts = monitored_hosts(systems);
        let queries = if settings.monitoring_queries.is_empty() {
            MonitoringQuery::defaults()
        } else {
            settings.monitoring_queries.clone()
        };
        let enabled = settings.monitoring_enabled && settings.monitoring_url.is_some();
        // The source keeps the answers in by its end; the run's own
        // timeout, a little later, is only the backstop.
        let window = asked.within_budget(self.monitoring_timeout);
        sources::run(
            asked.unavailable,
            ContextSource::Monitoring,
            enabled,
            window + Duration::from_millis(500),
            async {
                let url = settings.monitoring_url.as_deref().unwrap_or_default();
                let token = asked.tenant.integrations.monitoring_token.as_deref();
                // Worded in the language the note will be written in: the
                // raw-context note quotes the findings as they are.
                let language = settings
                    .languages
                    .note_language(Some(asked.language.language));
                monitoring::check(
                    &self.http,
                    url,
                    token,
                    monitoring::Asked {
                        hosts: &hosts,
                        queries: &queries,
                        language,
                    },
                    window,
                )
                .await
            },
        )
        .await
    }

    /// The tenant's other open tickets about the same problem; the ticket
    /// enters the window of open tickets on the way.
    pub(crate) async fn related(
        &self,
        asked: &Asked<'_>,
        systems: &[SystemInfo],
        query: &Embedded,
    ) -> Found<RelatedTicket> {
        let settings = &asked.tenant.settings;
        let entities = related::entities(asked.mentions, systems);
        let ticket = aia_store::open_tickets::NewOpenTicket {
            ticket_id: &asked.event.ticket_id,
            subject: asked.ticket.subject.as_deref(),
            received_at: asked.event.occurred_at,
            entities: &entities,
            vector: query
                .as_ref()
                .ok()
                .map(|query| (&*query.model, query.vector.as_slice())),
        };
        let found = sources::run(
            asked.unavailable,
            ContextSource::RelatedTickets,
            settings.incidents.enabled,
            asked.within_budget(self.source_timeout),
            related::related_open(
                &self.db,
                &asked.event.tenant_id,
                ticket,
                settings.incidents.related_window_minutes,
                &self.related,
                &settings.embeddings,
            )
            .instrument(aia_telemetry::db_span("SELECT", "open_tickets")),
        )
        .await;
        let finished = matches!(found.1.status, SourceStatus::Ok | SourceStatus::Empty);
        if settings.incidents.enabled && self.related.record && !finished {
            self.record_alone(asked, ticket).await;
        }
        found
    }

    /// Enters the ticket into the window when reading the window did not
    /// finish (timed out, failed): the correlator decides from the row, and
    /// without it an outage's ticket would be left out of its incident for
    /// good. If the row cannot be written either, the stage tries the
    /// ticket again (the database is away).
    async fn record_alone(
        &self,
        asked: &Asked<'_>,
        ticket: aia_store::open_tickets::NewOpenTicket<'_>,
    ) {
        // One upsert: longer than this, the database is in trouble.
        const RECORD_WITHIN: Duration = Duration::from_secs(5);
        let recorded = tokio::time::timeout(RECORD_WITHIN, async {
            let mut client = self.db.get().await.map_err(StoreError::from)?;
            aia_store::open_tickets::record(&mut client, &asked.event.tenant_id, ticket).await
        })
        .await;
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "The ticket could not enter the window of open tickets");
                // Gathered again only for a passing cause: one that would
                // fail the same way is reported, as the source's failure.
                if err.is_transient() {
                    asked
                        .unavailable
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Err(_) => {
                tracing::warn!("The ticket could not enter the window of open tickets in time");
                asked
                    .unavailable
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// Why a search ran by words although the tenant searches by meaning.
fn by_words_because(query: &Embedded) -> Option<String> {
    match query {
        Ok(_) => None,
        Err(reason) => Some(format!("by words only: {reason}")),
    }
}

/// Local articles first, then external ones not already listed. A failing
/// external knowledge base is an error only when nothing was found locally.
fn merge_articles(
    local: Result<Vec<KnowledgeArticle>, SourceError>,
    external: Result<Option<Vec<KnowledgeArticle>>, SourceError>,
) -> Result<Vec<KnowledgeArticle>, SourceError> {
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

/// What a search by meaning found, or `None` when words must search
/// instead: the ticket could not be embedded, or meaning could not search
/// (no vectors yet, another model's) — that reason kept in `fell_back` for
/// the source's report. A database that is unavailable stays an error.
fn meaning_or_words<T>(
    by_meaning: Option<Result<Vec<T>, SourceError>>,
    fell_back: &std::sync::Mutex<Option<String>>,
) -> Result<Option<Vec<T>>, SourceError> {
    match by_meaning {
        Some(Ok(found)) => Ok(Some(found)),
        Some(Err(SourceError::Unavailable(reason))) => Err(SourceError::Unavailable(reason)),
        Some(Err(why)) => {
            *fell_back.lock().expect("fell back") = Some(format!("by words only: {why}"));
            Ok(None)
        }
        None => Ok(None),
    }
}
