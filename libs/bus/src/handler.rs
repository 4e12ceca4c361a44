//! What a stage's handler is given and answers: the contract between the
//! consumer loop ([`crate::stage`]) and each stage's own work. A handler
//! turns one input event of its tenant into the events that follow;
//! [`dispatch`] picks the input out of the payload and checks the tenant
//! first, so every stage meets paused, inactive and unknown tenants alike.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aia_events::{Event, FromPayload};
use aia_store::parking::{Hold, tenant_for};
use aia_store::{StoreError, Tenant, TenantCache};

/// Where a message stands in its delivery history.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// 1 for the first delivery.
    pub attempt: u32,
    /// The consumer's limit; `None` when unlimited.
    pub max_deliver: Option<u32>,
    pub stream_sequence: u64,
}

impl Delivery {
    pub fn is_last_attempt(&self) -> bool {
        self.max_deliver.is_some_and(|max| self.attempt >= max)
    }
}

/// What a handler made of one input event.
#[derive(Debug)]
pub enum Handled {
    /// Publish these events (usually one), then ack.
    Publish(Vec<Event>),
    /// Nothing follows from this input; ack it.
    Nothing,
}

/// A failure that may go away: the message is redelivered later.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct HandlerError {
    /// What failed, in a sentence; recorded as the run's failure reason
    /// when the deliveries run out.
    pub reason: String,
    /// A delay the far end asked for (for example `Retry-After`).
    pub retry_after: Option<Duration>,
    /// The error behind it, when there is one.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl HandlerError {
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            retry_after: None,
            source: None,
        }
    }
}

impl From<StoreError> for HandlerError {
    /// The database is what failed: whatever the statement, the ticket
    /// waits for a redelivery rather than ending on a database's hiccup.
    fn from(err: StoreError) -> Self {
        Self {
            reason: format!("database: {err}"),
            retry_after: None,
            source: Some(Box::new(err)),
        }
    }
}

impl From<aia_store::PoolError> for HandlerError {
    fn from(err: aia_store::PoolError) -> Self {
        StoreError::from(err).into()
    }
}

/// How a consumer meets the tenant of the event it is handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantPolicy {
    /// A stage of a ticket's run: a paused tenant's event is set aside
    /// (and acked); a tenant that does not exist or is inactive ends the
    /// run with the handler's failure event. Each is decided on the tenant
    /// as stored, not on a cached copy.
    Active,
    /// Any tenant that exists, paused or inactive (the embedding indexer:
    /// vectors are data, kept like the history they index). An unknown
    /// tenant's event ends with the handler's failure event, if it has one.
    Existing,
}

/// Why a handler's input ends without the stage's work.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub reason: &'a str,
    pub attempts: u32,
    /// Trying again cannot help (the tenant is gone, the far end refused
    /// for good); false when the deliveries ran out on transient failures.
    pub permanent: bool,
}

/// One input, its tenant and its delivery: what a handler works from.
#[derive(Debug)]
pub struct Work<'a, I> {
    pub event: &'a Event,
    /// The stage's own payload of `event`.
    pub input: &'a I,
    pub tenant: Arc<Tenant>,
    pub delivery: Delivery,
}

/// One stage's work: an input event in, the next events out.
pub trait Handler: Send + Sync + 'static {
    /// The stage's name: its durable consumer, where its set-aside events
    /// are recorded, its logs' `stage`.
    const NAME: &'static str;
    /// How the tenant of each input is checked before [`Handler::handle`].
    const TENANTS: TenantPolicy;
    /// The payload this stage consumes; events of other types are acked
    /// untouched.
    type Input: FromPayload + Sync;

    /// Where the tenants come from.
    fn tenants(&self) -> &TenantCache;

    /// Turns one input into what follows from it. Permanent failures are
    /// outcomes (a `*.failed` event); only transient ones are errors.
    fn handle(
        &self,
        work: Work<'_, Self::Input>,
    ) -> impl Future<Output = Result<Handled, HandlerError>> + Send;

    /// The event that ends the run when the stage gives up on `event`
    /// (its tenant refused, or its last delivery failed); `None` for a
    /// consumer whose failures end no run (the embedding indexer, whose
    /// gaps `aiagents reembed` fills).
    fn failed(&self, event: &Event, failure: Failure<'_>) -> Option<Event>;
}

/// Runs `handler` on one delivered event: picks its input out of the
/// payload, checks its tenant by the handler's [`TenantPolicy`], and hands
/// both over. The consumer loop, dry-runs and tests all come through here.
pub async fn dispatch<H: Handler>(
    handler: &H,
    event: &Event,
    delivery: Delivery,
) -> Result<Handled, HandlerError> {
    let Some(input) = H::Input::from_payload(&event.payload) else {
        return Ok(Handled::Nothing);
    };
    let tenants = handler.tenants();
    let refused = |reason: &str| {
        Handled::Publish(
            handler
                .failed(
                    event,
                    Failure {
                        reason,
                        attempts: 1,
                        permanent: true,
                    },
                )
                .into_iter()
                .collect(),
        )
    };
    let tenant = match H::TENANTS {
        TenantPolicy::Active => {
            match tenant_for(tenants, H::NAME, event, delivery.stream_sequence).await? {
                Hold::SetAside => return Ok(Handled::Nothing),
                Hold::Proceed(Some(tenant)) if tenant.active => tenant,
                Hold::Proceed(Some(_)) => return Ok(refused(TENANT_INACTIVE)),
                Hold::Proceed(None) => return Ok(refused(TENANT_UNKNOWN)),
            }
        }
        TenantPolicy::Existing => match tenants.get(&event.tenant_id).await? {
            Some(tenant) => tenant,
            None => match tenants.fresh(&event.tenant_id).await? {
                Some(tenant) => tenant,
                None => {
                    tracing::warn!(tenant_id = %event.tenant_id, "Event of an unknown tenant");
                    return Ok(refused(TENANT_UNKNOWN));
                }
            },
        },
    };
    handler
        .handle(Work {
            event,
            input,
            tenant,
            delivery,
        })
        .await
}

/// The failure reason of a run whose tenant does not exist.
pub const TENANT_UNKNOWN: &str = "tenant does not exist";
/// The failure reason of a run whose tenant is inactive.
pub const TENANT_INACTIVE: &str = "tenant is inactive";
