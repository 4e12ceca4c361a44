//! `enhancement.generated` → `writeback.completed` | `writeback.failed`.

use std::sync::Arc;
use std::time::Duration;

use aia_bus::{Failure, Handled, Handler, HandlerError, TenantPolicy, Work};
use aia_events::{
    EnhancementGenerated, Event, ItsmKind, Payload, Stage, WritebackCompleted, WritebackFailed,
};
use aia_itsm::{Itsm, ItsmError};
use aia_store::{Pool, Tenant, TenantCache};
use tracing::Instrument;
use uuid::Uuid;

use crate::ledger::{self, Claim};
use crate::note::{self, Feedback};

pub struct Writeback {
    pub db: Pool,
    /// The tenants, each read at most once per TTL; its keyring signs
    /// the feedback links.
    pub tenants: Arc<TenantCache>,
    pub http: reqwest::Client,
    pub public_url: Option<String>,
    /// How long a delivery's claim on a run's write-back holds (see
    /// [`ledger`]): longer than one call to the help desk can take.
    pub lease: Duration,
}

impl Handler for Writeback {
    const NAME: &'static str = Stage::Writeback.as_str();
    const TENANTS: TenantPolicy = TenantPolicy::Active;
    type Input = EnhancementGenerated;

    fn tenants(&self) -> &TenantCache {
        &self.tenants
    }

    async fn handle(&self, work: Work<'_, EnhancementGenerated>) -> Result<Handled, HandlerError> {
        let Work {
            event,
            input: generated,
            tenant: cached,
            delivery,
            ..
        } = work;
        let last = delivery.is_last_attempt();
        let handled = self.write(event, generated, &cached, last).await?;
        if !is_failure(&handled) {
            return Ok(handled);
        }
        // Failing on a copy of the tenant an operator has since fixed (and
        // re-driven the ticket after) would be wrong: decide on the stored one.
        match self.tenants.fresh(&event.tenant_id).await? {
            Some(fresh) if fresh.active && fresh.updated_at != cached.updated_at => {
                self.write(event, generated, &fresh, last).await
            }
            _ => Ok(handled),
        }
    }

    fn failed(&self, event: &Event, failure: Failure<'_>) -> Option<Event> {
        let itsm = match &event.payload {
            Payload::EnhancementGenerated(generated) => generated.source,
            _ => ItsmKind::ServicedeskPlus,
        };
        Some(Event::caused_by(
            event,
            Payload::WritebackFailed(WritebackFailed {
                itsm,
                reason: failure.reason.to_owned(),
                http_status: None,
                attempts: failure.attempts,
                permanent: failure.permanent,
            }),
        ))
    }
}

/// Whether a note carrying `marker` is on the ticket (every page of its
/// notes read; an incomplete read is an error, never "not there").
async fn on_ticket(
    itsm: &Itsm,
    ticket: &aia_events::TicketId,
    marker: &str,
) -> Result<bool, ItsmError> {
    let notes = itsm.note_texts(ticket).await?;
    Ok(notes.iter().any(|text| text.contains(marker)))
}

/// How long the last delivery waits, after a post that got no answer,
/// before it looks for the note by its marker.
const LAST_LOOK_AFTER: Duration = Duration::from_secs(10);

/// Whether a failed call to the help desk was answered in a way that says
/// nothing was stored (a refusal, any 4xx, a 503) — not a timeout, a cut
/// connection or a gateway's 5xx, after which the note may be there.
fn answered(err: &ItsmError) -> bool {
    match err {
        ItsmError::Permanent { .. } => true,
        ItsmError::Transient { http_status, .. } => {
            matches!(http_status, Some(code) if *code < 500 || *code == 503)
        }
    }
}

/// Whether the handler's outcome ends the run without a note.
fn is_failure(handled: &Handled) -> bool {
    matches!(handled, Handled::Publish(events)
        if events.iter().any(|event| matches!(event.payload, Payload::WritebackFailed(_))))
}

impl Writeback {
    /// Posts the note for `event` with what `tenant` says, once; `last`
    /// on the run's last delivery.
    async fn write(
        &self,
        event: &Event,
        generated: &EnhancementGenerated,
        tenant: &Tenant,
        last: bool,
    ) -> Result<Handled, HandlerError> {
        let itsm = match Itsm::for_tenant(
            self.http.clone(),
            tenant.itsm,
            &tenant.itsm_base_url,
            tenant.itsm_credentials.expose(),
        ) {
            Ok(itsm) => itsm,
            Err(err) => return Ok(self.failed_for_good(event, tenant.itsm, &err.0, None)),
        };
        let marker = note::marker(event.correlation_id);
        let note = note::compose(
            &tenant.settings,
            &generated.note_markdown,
            generated.note_language,
            &event.tenant_id,
            &event.ticket_id,
            event.correlation_id,
            self.public_url.as_deref().map(|public_url| Feedback {
                public_url,
                keyring: self.tenants.keyring(),
            }),
        );
        let completed = |note_id: Option<String>, already_present: bool| {
            Handled::Publish(vec![Event::caused_by(
                event,
                Payload::WritebackCompleted(WritebackCompleted {
                    itsm: itsm.kind(),
                    note_id,
                    attempts: 1,
                    already_present,
                    received_at: generated.received_at,
                    posted_markdown: Some(note.clone()),
                }),
            )])
        };
        let holder = Uuid::now_v7();
        let (mut client, claim) = self.claim(event, holder).await?;
        match claim {
            Claim::Posted { note_id } => return Ok(completed(note_id, true)),
            Claim::Held { for_ } => {
                return Err(HandlerError {
                    reason: "another delivery of this run is writing its note back".into(),
                    retry_after: Some(for_),
                    source: None,
                });
            }
            Claim::Uncertain => {
                // The search may read many pages of the help desk: no
                // connection is held meanwhile.
                drop(client);
                let found = on_ticket(&itsm, &event.ticket_id, &marker).await;
                client = self.db.get().await?;
                match found {
                    Ok(true) => {
                        ledger::mark_posted(
                            &mut client,
                            &event.tenant_id,
                            event.correlation_id,
                            None,
                        )
                        .await?;
                        return Ok(completed(None, true));
                    }
                    Ok(false) => {
                        let renewed = ledger::renew(
                            &mut client,
                            &event.tenant_id,
                            event.correlation_id,
                            holder,
                            self.lease,
                        )
                        .await?;
                        if !renewed {
                            // The search outlasted the lease and another
                            // delivery holds it now: it posts, not this one.
                            return Err(HandlerError {
                                reason: "another delivery of this run took over its write-back"
                                    .into(),
                                retry_after: Some(self.lease),
                                source: None,
                            });
                        }
                    }
                    Err(err) => {
                        drop(client);
                        return self.gave_up(event, itsm.kind(), holder, err).await;
                    }
                }
            }
            Claim::Fresh => {}
        }
        drop(client);
        let span = tracing::info_span!(
            "post note",
            otel.kind = "client",
            itsm = itsm.kind().as_str(),
            http.response.status_code = tracing::field::Empty,
        );
        let posted = itsm
            .post_note(
                &event.ticket_id,
                &note,
                tenant.settings.note_visible_to_requester,
            )
            .instrument(span)
            .await;
        match posted {
            Ok(posted) => {
                let mut client = self.db.get().await?;
                ledger::mark_posted(
                    &mut client,
                    &event.tenant_id,
                    event.correlation_id,
                    posted.note_id.as_deref(),
                )
                .await?;
                Ok(completed(posted.note_id, false))
            }
            // No answer on the last delivery: no attempt comes after this
            // one to find the note by its marker, so this one waits a
            // little (the help desk may store it late) and looks. Without
            // that, a note the help desk stored was recorded as a failure.
            Err(err) if last && !answered(&err) => {
                // Long enough for a help desk that answered late to have
                // stored the note; short enough that a stopping instance
                // finishes within its grace period.
                tokio::time::sleep(self.lease.min(LAST_LOOK_AFTER)).await;
                match on_ticket(&itsm, &event.ticket_id, &marker).await {
                    Ok(true) => {
                        let mut client = self.db.get().await?;
                        ledger::mark_posted(
                            &mut client,
                            &event.tenant_id,
                            event.correlation_id,
                            None,
                        )
                        .await?;
                        Ok(completed(None, true))
                    }
                    _ => self.gave_up(event, itsm.kind(), holder, err).await,
                }
            }
            Err(err) => self.gave_up(event, itsm.kind(), holder, err).await,
        }
    }

    /// Claims the run's write-back as `holder`. While another delivery
    /// holds the lease (its call may land any moment), waits for it here —
    /// the stage keeps the message ours meanwhile — and claims again, up to
    /// one lease long: a delivery that gave up at once would spend a
    /// delivery, and on the last one end the run as failed while the
    /// holder posts its note.
    async fn claim(
        &self,
        event: &Event,
        holder: Uuid,
    ) -> Result<(aia_store::Client, Claim), HandlerError> {
        let deadline = tokio::time::Instant::now() + self.lease + Duration::from_secs(5);
        loop {
            let mut client = self.db.get().await?;
            let claim = ledger::claim(
                &mut client,
                &event.tenant_id,
                event.correlation_id,
                &event.ticket_id,
                holder,
                self.lease,
            )
            .instrument(aia_telemetry::db_span("UPSERT", "writeback_ledger"))
            .await?;
            match claim {
                Claim::Held { for_ } if tokio::time::Instant::now() < deadline => {
                    drop(client);
                    tokio::time::sleep(for_.min(Duration::from_secs(1))).await;
                }
                claim => return Ok((client, claim)),
            }
        }
    }

    /// A call to the help desk failed. A refusal that says nothing was
    /// stored (any 4xx, a 503) lets the lease go, so the next attempt may
    /// go at once. No answer (a timeout, a cut connection) or a gateway's
    /// 5xx may mean the note is stored and its answer lost: the lease
    /// stays, and the next attempt comes when it ends, to find the note by
    /// its marker.
    async fn gave_up(
        &self,
        event: &Event,
        itsm: ItsmKind,
        holder: Uuid,
        err: ItsmError,
    ) -> Result<Handled, HandlerError> {
        if answered(&err) {
            let mut client = self.db.get().await?;
            ledger::release(&mut client, &event.tenant_id, event.correlation_id, holder).await?;
            return self.itsm_error(event, itsm, err);
        }
        match self.itsm_error(event, itsm, err) {
            Err(mut retry) => {
                retry.retry_after = Some(retry.retry_after.unwrap_or_default().max(self.lease));
                Err(retry)
            }
            handled => handled,
        }
    }
    fn failed_for_good(
        &self,
        event: &Event,
        itsm: ItsmKind,
        reason: &str,
        http_status: Option<u16>,
    ) -> Handled {
        Handled::Publish(vec![Event::caused_by(
            event,
            Payload::WritebackFailed(WritebackFailed {
                itsm,
                reason: reason.to_owned(),
                http_status,
                attempts: 1,
                permanent: true,
            }),
        )])
    }

    fn itsm_error(
        &self,
        event: &Event,
        itsm: ItsmKind,
        err: ItsmError,
    ) -> Result<Handled, HandlerError> {
        match err {
            ItsmError::Permanent {
                reason,
                http_status,
            } => {
                tracing::warn!(reason = %reason, "Write-back failed for good");
                Ok(self.failed_for_good(event, itsm, &reason, http_status))
            }
            ItsmError::Transient {
                reason,
                retry_after,
                ..
            } => Err(HandlerError {
                reason,
                retry_after: retry_after.map(|delay| delay.max(Duration::from_millis(100))),
                source: None,
            }),
        }
    }
}
