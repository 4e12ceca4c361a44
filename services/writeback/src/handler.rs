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

use crate::ledger::{self, Claim};
use crate::note::{self, Feedback};

pub struct Writeback {
    pub db: Pool,
    /// The tenants, each read at most once per TTL; its keyring signs
    /// the feedback links.
    pub tenants: Arc<TenantCache>,
    pub http: reqwest::Client,
    pub public_url: Option<String>,
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
            ..
        } = work;
        let handled = self.write(event, generated, &cached).await?;
        if !is_failure(&handled) {
            return Ok(handled);
        }
        // Failing on a copy of the tenant an operator has since fixed (and
        // re-driven the ticket after) would be wrong: decide on the stored one.
        match self.tenants.fresh(&event.tenant_id).await? {
            Some(fresh) if fresh.active && fresh.updated_at != cached.updated_at => {
                self.write(event, generated, &fresh).await
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

/// Whether the handler's outcome ends the run without a note.
fn is_failure(handled: &Handled) -> bool {
    matches!(handled, Handled::Publish(events)
        if events.iter().any(|event| matches!(event.payload, Payload::WritebackFailed(_))))
}

impl Writeback {
    /// Posts the note for `event` with what `tenant` says, once.
    async fn write(
        &self,
        event: &Event,
        generated: &EnhancementGenerated,
        tenant: &Tenant,
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
        let mut client = self.db.get().await?;
        let claim = ledger::claim(
            &mut client,
            &event.tenant_id,
            event.correlation_id,
            &event.ticket_id,
        )
        .instrument(aia_telemetry::db_span("UPSERT", "writeback_ledger"))
        .await?;
        match claim {
            Claim::Posted { note_id } => return Ok(completed(note_id, true)),
            Claim::Uncertain => match itsm.note_texts(&event.ticket_id).await {
                Ok(notes) if notes.iter().any(|text| text.contains(&marker)) => {
                    ledger::mark_posted(&mut client, &event.tenant_id, event.correlation_id, None)
                        .await?;
                    return Ok(completed(None, true));
                }
                Ok(_) => {}
                Err(err) => return self.itsm_error(event, itsm.kind(), err),
            },
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
            Err(err) => self.itsm_error(event, itsm.kind(), err),
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
