//! Sends ServiceDesk Plus webhooks the way a configured SDP instance does,
//! signed with the tenant's secret. Used by the demo and by tests.

use chrono::Utc;
use serde_json::{Value, json};

use crate::dataset::Query;

/// The body ServiceDesk Plus sends for a new ticket.
pub fn servicedesk_body(query: &Query) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event": "ticket_created",
        "ticket_id": query.ticket_id,
        "tenant_id": query.tenant_id,
        "subject": query.subject,
        "description": query.description,
        "priority": query.priority,
        "created_at": Utc::now().to_rfc3339(),
    }))
    .expect("JSON body")
}

/// Posts a signed body to `/webhook/servicedesk`; returns the status and
/// the JSON answer.
pub async fn send_servicedesk(
    http: &reqwest::Client,
    ingress_url: &str,
    secret: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, Value)> {
    let signature = ingress::auth::sign::hex(secret, &body);
    let response = http
        .post(format!("{ingress_url}/webhook/servicedesk"))
        .header("content-type", "application/json")
        .header("x-servicedesk-signature", signature)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let answer = aia_http::answer::json(response)
        .await
        .unwrap_or(Value::Null);
    Ok((status, answer))
}
