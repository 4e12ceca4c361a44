//! The embedding indexer: for each `ticket.resolved`, embeds the ticket
//! with the tenant's model (and with the model it is moving to, if any) and
//! stores the vector, once: a redelivered or replayed event whose text is
//! already embedded costs one lookup.

use std::sync::Arc;

use aia_bus::{Failure, Handled, Handler, HandlerError, TenantPolicy, Work};
use aia_embed::tenant::embedders;
use aia_embed::{Embedder, content_digest, ticket_text};
use aia_events::{Event, TicketResolved};
use aia_store::embeddings::{self, Corpus, NewVector};
use aia_store::{Pool, TenantCache, tenant_transaction};

pub struct Indexer {
    pub db: Pool,
    /// Read as stored for every event (no TTL), so a tenant's move to a
    /// new model is followed from the next ticket on.
    pub tenants: Arc<TenantCache>,
    pub http: reqwest::Client,
    /// The model, in-process.
    pub local: Embedder,
    /// The API's permits: a history import's passes take turns with the
    /// queries' on the same cores.
    pub permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Handler for Indexer {
    const NAME: &'static str = crate::INDEXER;
    const TENANTS: TenantPolicy = TenantPolicy::Existing;
    type Input = TicketResolved;

    fn tenants(&self) -> &TenantCache {
        &self.tenants
    }

    async fn handle(&self, work: Work<'_, TicketResolved>) -> Result<Handled, HandlerError> {
        let Work {
            event,
            input: ticket,
            tenant,
            delivery,
        } = work;
        let mut client = self.db.get().await?;
        let models = embedders(
            &tenant.settings,
            &tenant.integrations,
            Some(&self.local),
            &self.http,
        )
        .map_err(|reason| HandlerError::transient(format!("embedder settings: {reason}")))?;
        let text = ticket_text(&ticket.subject, &ticket.description, &ticket.resolution);
        let digest = content_digest(&text);
        let ticket_id = event.ticket_id.as_str();
        for embedder in std::iter::once(&models.active).chain(models.next.as_ref()) {
            let current = {
                let tx = tenant_transaction(&mut client, &event.tenant_id).await?;
                let row = tx
                    .query_opt(
                        "select content_sha256 from ticket_embeddings
                          where tenant_id = $1 and model = $2 and ticket_id = $3",
                        &[&event.tenant_id.as_str(), &embedder.model(), &ticket_id],
                    )
                    .await
                    .map_err(aia_store::StoreError::from)?;
                tx.commit().await.map_err(aia_store::StoreError::from)?;
                row.map(|row| row.get::<_, Vec<u8>>(0))
            };
            if current.as_deref() == Some(digest.as_slice()) {
                continue;
            }
            let _turn = match embedder {
                Embedder::Local(_) => self.permits.acquire().await.ok(),
                Embedder::Endpoint(_) => None,
            };
            let vector = match embedder.embed_one(&text).await {
                Ok(vector) => vector,
                Err(err) if err.is_transient() && !delivery.is_last_attempt() => {
                    return Err(HandlerError::transient(err.to_string()));
                }
                Err(err) => {
                    // `aiagents reembed` embeds whatever is still missing.
                    tracing::error!(tenant_id = %event.tenant_id, model = embedder.model(), error = %err,
                        "Resolved ticket not embedded");
                    continue;
                }
            };
            embeddings::upsert(
                &mut client,
                &event.tenant_id,
                Corpus::Tickets,
                &[NewVector {
                    id: ticket_id,
                    model: embedder.model(),
                    vector: vector.as_slice(),
                    content_sha256: &digest,
                }],
            )
            .await
            .map_err(|err| {
                if err.is_transient() {
                    HandlerError::from(err)
                } else {
                    HandlerError::transient(format!("storing the vector: {err}"))
                }
            })?;
        }
        Ok(Handled::Nothing)
    }

    fn failed(&self, event: &Event, failure: Failure<'_>) -> Option<Event> {
        tracing::error!(tenant_id = %event.tenant_id, ticket_id = %event.ticket_id,
            attempts = failure.attempts, reason = failure.reason,
            "Gave up embedding a resolved ticket; `aiagents reembed` will embed it");
        None
    }
}
