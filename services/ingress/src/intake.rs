//! One run per ticket. A new ticket's webhook starts its run once: a
//! delivery of it again, however late (the help desk's retries, or signed
//! bytes replayed by someone who kept them), answers `202` with the
//! existing run's event id and publishes nothing. An update starts a run
//! only for a ticket without one — or, where the tenant re-enhances updates,
//! once its last run is older than the tenant's interval. A new ticket whose
//! `created_at` is older than the tenant accepts is refused as stale.

use std::time::Duration;

use aia_events::{Event, Payload, TicketChange};
use aia_http::ApiError;
use aia_store::Tenant;
use aia_store::intake::{self, Claim, Kind};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{Value, json};

use crate::accept::publish;
use crate::routes::AppState;

/// Publishes `event`, a `ticket.received`, if it starts the ticket's run.
pub async fn start_run(
    state: &AppState,
    tenant: &Tenant,
    event: &Event,
    msg_id: &str,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let Payload::TicketReceived(ticket) = &event.payload else {
        return publish(state, event, msg_id).await;
    };
    let settings = &tenant.settings;
    let kind = match ticket.change {
        TicketChange::Created => Kind::Created,
        TicketChange::Updated => Kind::Updated,
    };
    let max_age = settings.max_event_age();
    if kind == Kind::Created && ticket.created_at < Utc::now() - max_age {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "stale_event",
            format!(
                "the ticket was created more than {} hours ago; a new ticket's webhook must come within that",
                max_age.num_hours()
            ),
        ));
    }
    let reenhance_after = settings
        .reenhance_updates
        .then(|| settings.reenhance_interval());
    let unavailable = |err: aia_store::StoreError| {
        tracing::error!(error = %err, "Claiming the ticket's run failed");
        ApiError::unavailable("the ticket store is unavailable; retry later")
    };
    let mut client = state
        .tenants
        .db()
        .get()
        .await
        .map_err(|err| unavailable(err.into()))?;
    let claim = intake::claim(
        &mut client,
        &event.tenant_id,
        &event.ticket_id,
        kind,
        event.event_id,
        msg_id,
        &event.to_json(),
        reenhance_after,
    )
    .await
    .map_err(unavailable)?;
    drop(client);
    let (to_publish, msg_id) = match claim {
        Claim::New => (event.clone(), msg_id.to_owned()),
        Claim::Duplicate { event_id } => {
            tracing::info!(%event_id, "The ticket already has a run; nothing published");
            return Ok((
                StatusCode::ACCEPTED,
                axum::Json(json!({"status": "duplicate", "event_id": event_id, "duplicate": true})),
            ));
        }
        Claim::Unconfirmed {
            event_id,
            msg_id,
            event: stored,
        } => {
            tracing::info!(%event_id, "Publishing the ticket's claimed, unconfirmed run");
            let stored = Event::from_json(&stored).map_err(|err| {
                tracing::error!(error = %err, "A claimed event does not decode");
                ApiError::unavailable("the ticket store is inconsistent; retry later")
            })?;
            (stored, msg_id)
        }
    };
    let (status, mut answer) = publish(state, &to_publish, &msg_id).await?;
    // The event is in the stream: that is what the help desk is answered.
    // A confirmation that cannot be recorded now (the database failing
    // over) is tried again in the background for a few minutes, within
    // the stream's duplicate window: until then a retry of this webhook
    // publishes the same event under the same message id, deduplicated.
    let db = state.tenants.db().clone();
    let (tenant, ticket, event_id) = (
        to_publish.tenant_id.clone(),
        to_publish.ticket_id.clone(),
        to_publish.event_id,
    );
    let confirm = move || {
        let (db, tenant, ticket) = (db.clone(), tenant.clone(), ticket.clone());
        async move {
            let mut client = db.get().await?;
            intake::confirmed(&mut client, &tenant, &ticket, event_id).await
        }
    };
    if let Err(err) = confirm().await {
        tracing::warn!(error = %err, %event_id, "The run is published; marking its claim so failed, trying again");
        tokio::spawn(async move {
            for wait in [1, 5, 15, 30, 60, 120] {
                tokio::time::sleep(Duration::from_secs(wait)).await;
                match confirm().await {
                    Ok(()) => return,
                    Err(err) if wait == 120 => {
                        tracing::error!(error = %err, %event_id, "The run is published but its claim stays unconfirmed");
                    }
                    Err(_) => {}
                }
            }
        });
    }
    if to_publish.event_id != event.event_id {
        answer["duplicate"] = Value::Bool(true);
    }
    Ok((status, answer))
}
