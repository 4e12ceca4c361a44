//! `incident.detected` / `incident.updated` → a signed post to the tenant's
//! webhook.
//!
//! The body is Standard Webhooks' shape: `{"type", "timestamp", "data"}`
//! with the event's payload as `data` (and the tenant). `webhook-id` is the
//! incident version's message id (the version and the decision's digest),
//! the same on every retry, replay or re-drive, so a receiver that has it drops the repeat, and
//! never the id of another message. A 2xx is delivered; a 408, 429 or 5xx, a
//! timeout or a refused connection is retried on the consumer's backoff
//! (with `Retry-After` when given); any other answer is final. Out of
//! deliveries, the notification is marked failed with its last error.
//!
//! Versions of one incident go out in order: a version waits (up to two
//! minutes, the message kept alive meanwhile) until the one before it is
//! delivered or given up on, so a receiver is not told of an update to an
//! incident it has not heard of. Past the wait — the previous version is in
//! a long retry — it goes anyway; `data.incident.version` orders them.

use aia_telemetry::http::TracedSend as _;
use std::sync::Arc;

use aia_bus::{Failure, Handled, Handler, HandlerError, TenantPolicy, Work};
use aia_events::{Event, Payload};
use aia_store::{Pool, TenantCache};
use chrono::Utc;

use crate::ledger::{self, State};
use crate::metrics::NotifierMetrics;

pub struct IncidentNotifier {
    pub db: Pool,
    pub tenants: Arc<TenantCache>,
    pub http: reqwest::Client,
    pub metrics: NotifierMetrics,
}

/// How long a version waits for the one before it.
const ORDER_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The incident and version an incident event is.
fn version_of(event: &Event) -> Option<ledger::Version> {
    let (incident, version) = match &event.payload {
        Payload::IncidentDetected(p) => (p.incident_id, p.version),
        Payload::IncidentUpdated(p) => (p.incident_id, p.version),
        _ => return None,
    };
    Some(ledger::Version { incident, version })
}

/// The `webhook-id` of an incident event: its message id.
pub fn webhook_id(event: &Event) -> Option<String> {
    aia_bus::msg_id::incident(event)
}

/// The body posted for `event`.
pub fn body(event: &Event) -> Vec<u8> {
    let wire: serde_json::Value =
        serde_json::from_slice(&event.to_json()).expect("an event is JSON");
    serde_json::to_vec(&serde_json::json!({
        "type": event.event_type(),
        "timestamp": wire["occurred_at"],
        "data": {
            "tenant_id": event.tenant_id,
            "incident": wire["payload"],
        },
    }))
    .expect("JSON")
}

impl IncidentNotifier {
    /// Returns once the version `previous` is delivered, given up on or
    /// skipped, or after [`ORDER_WAIT`]. No connection is held while
    /// waiting.
    async fn wait_for(
        &self,
        event: &Event,
        previous: &ledger::Version,
    ) -> Result<(), aia_store::StoreError> {
        let started = std::time::Instant::now();
        loop {
            let settled = {
                let mut client = self.db.get().await?;
                ledger::settled(&mut client, &event.tenant_id, previous).await?
            };
            if settled {
                return Ok(());
            }
            if started.elapsed() >= ORDER_WAIT {
                tracing::warn!(tenant_id = %event.tenant_id, incident_id = %previous.incident, version = previous.version, "An incident's previous version is still not delivered; posting this one anyway");
                self.metrics.count("out_of_order");
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

impl Handler for IncidentNotifier {
    const NAME: &'static str = "incident-notifier";
    // A paused tenant's notifications wait with its other work.
    const TENANTS: TenantPolicy = TenantPolicy::Active;
    type Input = Payload;

    fn tenants(&self) -> &TenantCache {
        &self.tenants
    }

    async fn handle(&self, work: Work<'_, Payload>) -> Result<Handled, HandlerError> {
        let Work {
            event,
            tenant,
            delivery,
            ..
        } = work;
        let (Some(id), Some(version)) = (webhook_id(event), version_of(event)) else {
            return Ok(Handled::Nothing);
        };
        let (Some(url), Some(secret)) = (
            tenant.integrations.incident_webhook(&tenant.settings),
            tenant.integrations.incident_webhook_secret.as_deref(),
        ) else {
            // Settled, so that once a webhook is set its first version does
            // not wait for this one.
            let mut client = self.db.get().await?;
            ledger::skip(
                &mut client,
                &event.tenant_id,
                &id,
                &version,
                event.event_type(),
            )
            .await?;
            self.metrics.count("no_webhook");
            return Ok(Handled::Nothing);
        };
        // Waited for on the first delivery only: a later one has waited
        // already. A receiver down for an hour otherwise cost each later
        // version two minutes of a worker on every delivery, and the
        // workers are every tenant's.
        if let Some(previous) = version.previous()
            && delivery.attempt <= 1
        {
            self.wait_for(event, &previous).await?;
        }
        let mut client = self.db.get().await?;
        match ledger::attempt(
            &mut client,
            &event.tenant_id,
            &id,
            &version,
            event.event_type(),
        )
        .await?
        {
            State::Delivered | State::Failed | State::Skipped => {
                self.metrics.count("already_delivered");
                return Ok(Handled::Nothing);
            }
            State::Pending => {}
        }
        let body = body(event);
        let timestamp = Utc::now().timestamp();
        let Some(signature) = crate::sign::signature(secret, &id, timestamp, &body) else {
            let reason = "the webhook secret is not base64 after whsec_; set it again";
            tracing::warn!(tenant_id = %event.tenant_id, webhook_id = %id, reason, "Incident notification failed for good");
            ledger::finish(
                &mut client,
                &event.tenant_id,
                &id,
                State::Failed,
                Some(reason),
                None,
            )
            .await?;
            self.metrics.count("failed");
            return Ok(Handled::Nothing);
        };
        // No connection is held while the receiver takes its time: a few
        // slow receivers would otherwise hold the pool every other
        // notification (and tenant lookup) needs.
        drop(client);
        let sent = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send_traced("incident-webhook")
            .await;
        let mut client = self.db.get().await?;
        let (retry, reason, status, retry_after) = match sent {
            Ok(answer) if answer.status().is_success() => {
                ledger::finish(
                    &mut client,
                    &event.tenant_id,
                    &id,
                    State::Delivered,
                    None,
                    Some(answer.status().as_u16()),
                )
                .await?;
                self.metrics.count("delivered");
                return Ok(Handled::Nothing);
            }
            Ok(answer) => {
                let status = answer.status();
                let retry_after = aia_http::retry_after(answer.headers());
                let retry = status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                (
                    retry,
                    format!("the webhook answered {status}"),
                    Some(status.as_u16()),
                    retry_after,
                )
            }
            // Neither the URL (a chat tool's carries its token in the
            // path) nor the secret.
            Err(err) => (
                true,
                format!("posting failed: {}", err.without_url()),
                None,
                None,
            ),
        };
        if retry && !delivery.is_last_attempt() {
            ledger::finish(
                &mut client,
                &event.tenant_id,
                &id,
                State::Pending,
                Some(&reason),
                status,
            )
            .await?;
            self.metrics.count("retrying");
            return Err(HandlerError {
                reason,
                retry_after,
                source: None,
            });
        }
        tracing::warn!(tenant_id = %event.tenant_id, webhook_id = %id, %reason, "Incident notification failed for good");
        ledger::finish(
            &mut client,
            &event.tenant_id,
            &id,
            State::Failed,
            Some(&reason),
            status,
        )
        .await?;
        self.metrics.count("failed");
        Ok(Handled::Nothing)
    }

    fn failed(&self, _event: &Event, _failure: Failure<'_>) -> Option<Event> {
        // The ledger records a notification given up on; no ticket's run
        // ends here.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aia_events::examples;

    #[test]
    fn the_body_is_standard_webhooks_shape_with_the_incident_as_data() {
        let event = examples::all()
            .into_iter()
            .find(|e| matches!(e.payload, Payload::IncidentDetected(_)))
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body(&event)).unwrap();
        assert_eq!(body["type"], "incident.detected");
        assert_eq!(body["data"]["tenant_id"], "acme-msp");
        assert_eq!(body["data"]["incident"]["version"], 1);
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        let id = webhook_id(&event).unwrap();
        assert!(
            id.starts_with("incident:acme-msp:019abcde-0000-7000-8000-0000000000a1:v1:"),
            "{id}"
        );
        // A copy is the same message; another decision of the version is not.
        assert_eq!(webhook_id(&Event::republished(&event)), Some(id.clone()));
        let mut again = event.clone();
        if let Payload::IncidentDetected(detected) = &mut again.payload {
            detected.summary.push_str(" (decided again)");
        }
        assert_ne!(webhook_id(&again), Some(id));
    }
}
