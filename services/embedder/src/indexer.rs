//! The embedding indexer: for each `ticket.resolved`, embeds the ticket
//! with the tenant's model (and with the model it is moving to, if any) and
//! stores the vector, once: a redelivered or replayed event whose text is
//! already embedded costs one lookup.

use aia_bus::{Delivery, Handled, Handler, HandlerError};
use aia_embed::tenant::embedders;
use aia_embed::{Embedder, content_digest, ticket_text};
use aia_events::{Event, Payload};
use aia_store::embeddings::{self, Corpus, NewVector};
use aia_store::{Keyring, Pool, StoreError, tenant_transaction, tenants};

pub struct Indexer {
    pub db: Pool,
    pub keyring: Keyring,
    pub http: reqwest::Client,
    /// The model, in-process.
    pub local: Embedder,
}

fn transient(err: StoreError) -> HandlerError {
    HandlerError::transient(format!("database: {err}"))
}

impl Handler for Indexer {
    async fn handle(&self, event: Event, delivery: Delivery) -> Result<Handled, HandlerError> {
        let Payload::TicketResolved(ticket) = &event.payload else {
            return Ok(Handled::Nothing);
        };
        let mut client = self.db.get().await.map_err(|err| transient(err.into()))?;
        let Some(tenant) = tenants::get(&mut client, &self.keyring, &event.tenant_id)
            .await
            .map_err(transient)?
        else {
            tracing::warn!(tenant_id = %event.tenant_id, "Resolved ticket of an unknown tenant; not embedded");
            return Ok(Handled::Nothing);
        };
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
                let tx = tenant_transaction(&mut client, &event.tenant_id)
                    .await
                    .map_err(transient)?;
                let row = tx
                    .query_opt(
                        "select content_sha256 from ticket_embeddings
                          where tenant_id = $1 and model = $2 and ticket_id = $3",
                        &[&event.tenant_id.as_str(), &embedder.model(), &ticket_id],
                    )
                    .await
                    .map_err(|err| transient(err.into()))?;
                tx.commit().await.map_err(|err| transient(err.into()))?;
                row.map(|row| row.get::<_, Vec<u8>>(0))
            };
            if current.as_deref() == Some(digest.as_slice()) {
                continue;
            }
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
                    transient(err)
                } else {
                    HandlerError::transient(format!("storing the vector: {err}"))
                }
            })?;
        }
        Ok(Handled::Nothing)
    }

    fn gave_up(&self, event: &Event, reason: &str, attempts: u32) -> Option<Event> {
        tracing::error!(tenant_id = %event.tenant_id, ticket_id = %event.ticket_id, attempts, reason,
            "Gave up embedding a resolved ticket; `aiagents reembed` will embed it");
        None
    }
}
