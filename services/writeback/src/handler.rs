//! `enhancement.generated` → `writeback.completed` | `writeback.failed`.

use std::time::Duration;

use aia_bus::{Delivery, Handled, Handler, HandlerError};
use aia_events::{Event, ItsmKind, Payload, Stage, WritebackCompleted, WritebackFailed};
use aia_itsm::{Itsm, ItsmError};
use std::sync::Arc;

use aia_store::parking::{Hold, tenant_for};
use aia_store::{Pool, StoreError, Tenant, TenantCache};
use tracing::Instrument;
use uuid::Uuid;

use crate::ledger::{self, Claim};

pub struct Writeback {
    pub db: Pool,
    /// The tenants, each read at most once per TTL; its keyring signs
    /// the feedback links.
    pub tenants: Arc<TenantCache>,
    pub http: reqwest::Client,
    pub public_url: Option<String>,
}

/// The line that ends every note and identifies its run, so a note posted
/// before a crash is recognised on the ticket.
pub fn marker(correlation_id: Uuid) -> String {
    format!("ai-agents-ref:{correlation_id}")
}

fn transient(err: StoreError) -> HandlerError {
    HandlerError::transient(format!("database: {err}"))
}

impl Handler for Writeback {
    async fn handle(&self, event: Event, delivery: Delivery) -> Result<Handled, HandlerError> {
        let Payload::EnhancementGenerated(generated) = &event.payload else {
            return Ok(Handled::Nothing);
        };
        let stage = Stage::Writeback.as_str();
        let cached = match tenant_for(&self.tenants, stage, &event, delivery.stream_sequence)
            .await
            .map_err(transient)?
        {
            Hold::SetAside => return Ok(Handled::Nothing),
            Hold::Proceed(tenant) => tenant,
        };
        let handled = self.write(&event, generated, cached.clone()).await?;
        if !is_failure(&handled) {
            return Ok(handled);
        }
        // Failing on a copy of the tenant an operator has since fixed (and
        // re-driven the ticket after) would be wrong: decide on the stored one.
        let fresh = self
            .tenants
            .fresh(&event.tenant_id)
            .await
            .map_err(transient)?;
        let changed = match (&cached, &fresh) {
            (Some(cached), Some(fresh)) => cached.updated_at != fresh.updated_at,
            (None, None) => false,
            _ => true,
        };
        if changed {
            self.write(&event, generated, fresh).await
        } else {
            Ok(handled)
        }
    }

    fn gave_up(&self, event: &Event, reason: &str, attempts: u32) -> Option<Event> {
        let itsm = match &event.payload {
            Payload::EnhancementGenerated(generated) => generated.source,
            _ => ItsmKind::ServicedeskPlus,
        };
        Some(Event::caused_by(
            event,
            Payload::WritebackFailed(WritebackFailed {
                itsm,
                reason: reason.to_owned(),
                http_status: None,
                attempts,
                permanent: false,
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
        generated: &aia_events::EnhancementGenerated,
        tenant: Option<Arc<Tenant>>,
    ) -> Result<Handled, HandlerError> {
        let mut client = self.db.get().await.map_err(|err| transient(err.into()))?;
        let Some(tenant) = tenant.filter(|tenant| tenant.active) else {
            return Ok(self.failed(
                event,
                generated.source,
                "tenant does not exist or is inactive",
                None,
            ));
        };
        let itsm = match Itsm::for_tenant(
            self.http.clone(),
            tenant.itsm,
            &tenant.itsm_base_url,
            tenant.itsm_credentials.expose(),
        ) {
            Ok(itsm) => itsm,
            Err(err) => return Ok(self.failed(event, tenant.itsm, &err.0, None)),
        };
        let marker = marker(event.correlation_id);
        let completed = |note_id: Option<String>, already_present: bool, attempts: u32| {
            Handled::Publish(vec![Event::caused_by(
                event,
                Payload::WritebackCompleted(WritebackCompleted {
                    itsm: itsm.kind(),
                    note_id,
                    attempts,
                    already_present,
                    received_at: generated.received_at,
                }),
            )])
        };
        let claim = ledger::claim(
            &mut client,
            &event.tenant_id,
            event.correlation_id,
            &event.ticket_id,
        )
        .instrument(aia_telemetry::db_span("UPSERT", "writeback_ledger"))
        .await
        .map_err(transient)?;
        match claim {
            Claim::Posted { note_id } => return Ok(completed(note_id, true, 1)),
            Claim::Uncertain => {
                let notes = itsm.note_texts(&event.ticket_id).await;
                match notes {
                    Ok(notes) if notes.iter().any(|text| text.contains(&marker)) => {
                        ledger::mark_posted(
                            &mut client,
                            &event.tenant_id,
                            event.correlation_id,
                            None,
                        )
                        .await
                        .map_err(transient)?;
                        return Ok(completed(None, true, 1));
                    }
                    Ok(_) => {}
                    Err(err) => return self.itsm_error(event, itsm.kind(), err),
                }
            }
            Claim::Fresh => {}
        }
        drop(client);
        let feedback = match &self.public_url {
            Some(base) if tenant.settings.feedback_links => self.feedback_line(base, event),
            _ => String::new(),
        };
        let header = tenant
            .settings
            .note_header
            .as_deref()
            .map(|line| format!("{}\n\n", line.trim()))
            .unwrap_or_default();
        let footer = tenant
            .settings
            .note_footer
            .as_deref()
            .map(|line| format!("{}\n\n", line.trim()))
            .unwrap_or_default();
        let note = format!(
            "{header}{}\n\n---\n\n{footer}{feedback}_{marker}_\n",
            generated.note_markdown.trim_end()
        );
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
                let mut client = self.db.get().await.map_err(|err| transient(err.into()))?;
                ledger::mark_posted(
                    &mut client,
                    &event.tenant_id,
                    event.correlation_id,
                    posted.note_id.as_deref(),
                )
                .await
                .map_err(transient)?;
                Ok(completed(posted.note_id, false, 1))
            }
            Err(err) => self.itsm_error(event, itsm.kind(), err),
        }
    }

    /// "Was this note helpful?" with signed one-click links.
    fn feedback_line(&self, base: &str, event: &Event) -> String {
        let Ok(mut url) = reqwest::Url::parse(base) else {
            return String::new();
        };
        let token = aia_store::feedback::token(
            self.tenants.keyring(),
            event.tenant_id.as_str(),
            event.ticket_id.as_str(),
            event.correlation_id,
        );
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend([
                "feedback",
                event.tenant_id.as_str(),
                event.ticket_id.as_str(),
                &event.correlation_id.to_string(),
                &token,
            ]);
        } else {
            return String::new();
        }
        format!("Was this note helpful? [Yes]({url}?rating=up) · [No]({url}?rating=down)\n\n")
    }

    fn failed(
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
                Ok(self.failed(event, itsm, &reason, http_status))
            }
            ItsmError::Transient {
                reason,
                retry_after,
                ..
            } => Err(HandlerError {
                reason,
                retry_after: retry_after.map(|delay| delay.max(Duration::from_millis(100))),
            }),
        }
    }
}
