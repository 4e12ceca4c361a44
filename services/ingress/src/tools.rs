//! What differs between the help desks' webhooks once the common path has
//! found the tenant: how each authenticates (its own signature, or the
//! shared secret of a tool that cannot sign), and how a webhook that only
//! names a ticket is completed from the tool's API.

use aia_telemetry::http::TracedSend as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aia_events::{ItsmKind, TicketId};
use aia_http::ApiError;
use aia_itsm::inbound::{self, Inbound, Mentioned};
use aia_itsm::{ConnectWise, Itsm, ItsmError, connectwise};
use aia_store::Tenant;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use crate::auth::{self, AuthFailure, Scheme, Verified};
use crate::routes::AppState;

/// How long a ConnectWise signing key unused is kept in memory. A key is
/// trusted whatever its age while it verifies: a rotated one fails, and is
/// fetched again then.
const KEY_KEPT: Duration = Duration::from_secs(24 * 3600);
/// How long the ingress waits for a help desk's API (a mention's ticket, a
/// ConnectWise key).
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// How many signing-key fetches one tenant's callbacks may cause a minute.
/// A callback that does not verify with the cached key makes us call
/// ConnectWise as the tenant: without a bound, anyone who knows the
/// tenant's id could spend its API quota and hold our tasks for the
/// fetch's timeout, a hundred requests at once.
const FETCHES_PER_MINUTE: usize = 6;

/// ConnectWise signing keys by tenant and `key_url`, the fetches each
/// tenant's callbacks caused in the last minute, and one fetch at a time
/// per tenant (a burst of genuine callbacks with no key yet makes one
/// fetch, the rest verify with what it brought).
#[derive(Default)]
pub struct SigningKeys {
    keys: Mutex<HashMap<String, (String, Instant)>>,
    fetches: Mutex<HashMap<String, Vec<Instant>>>,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl SigningKeys {
    fn get(&self, key_url: &str) -> Option<String> {
        let mut keys = self.keys.lock().expect("signing keys");
        keys.get_mut(key_url).map(|(key, used)| {
            *used = Instant::now();
            key.clone()
        })
    }

    fn put(&self, key_url: &str, key: String) {
        let mut keys = self.keys.lock().expect("signing keys");
        if keys.len() > 10_000 {
            keys.retain(|_, (_, used)| used.elapsed() < KEY_KEPT);
        }
        keys.insert(key_url.to_owned(), (key, Instant::now()));
    }

    /// The lock a tenant's key fetches take one at a time.
    fn flight(&self, tenant: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().expect("signing key flights");
        if flights.len() > 10_000 {
            flights.retain(|_, flight| Arc::strong_count(flight) > 1);
        }
        flights.entry(tenant.to_owned()).or_default().clone()
    }

    /// Takes one of `tenant`'s fetches for this minute, if one is left:
    /// checked and taken under one lock, so a hundred callbacks at once
    /// take no more than the budget.
    fn take_fetch(&self, tenant: &str) -> bool {
        let minute = Duration::from_secs(60);
        let mut fetches = self.fetches.lock().expect("signing key fetches");
        if fetches.len() > 10_000 {
            fetches.retain(|_, times| times.iter().any(|at| at.elapsed() < minute));
        }
        let times = fetches.entry(tenant.to_owned()).or_default();
        times.retain(|at| at.elapsed() < minute);
        if times.len() >= FETCHES_PER_MINUTE {
            return false;
        }
        times.push(Instant::now());
        true
    }
}

/// Whom a webhook naming an unknown tenant is checked against: a tenant of
/// the route's tool that no signature can match, so that the answer, and
/// the work before it, are those a wrong signature for a real tenant gets
/// — each tool's own header and its timestamp checked as for a real one —
/// and do not tell which tenants exist. ConnectWise's decoy fails its
/// signature before anything is fetched (a real tenant's cached key
/// answers as fast; a fetch is rate-limited per tenant).
pub fn decoy(kind: ItsmKind, tenant_id: aia_events::TenantId) -> Tenant {
    let secret = auth::decoy_secret().clone();
    let zendesk = serde_json::json!({"webhook_signing_secret": secret.expose()}).to_string();
    Tenant {
        tenant_id,
        name: String::new(),
        itsm: match kind {
            ItsmKind::Connectwise => ItsmKind::ServicedeskPlus,
            kind => kind,
        },
        itsm_base_url: String::new(),
        itsm_credentials: aia_store::Secret::new(zendesk),
        webhook_secrets: vec![secret],
        settings: Default::default(),
        active: true,
        integrations: Default::default(),
        updated_at: Utc::now(),
        paused: false,
    }
}

/// Authenticates a webhook of `kind` for `tenant`.
pub async fn authenticate(
    state: &AppState,
    kind: ItsmKind,
    tenant: &Tenant,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Verified, AuthFailure> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let common = |allow_static| {
        auth::verify(
            headers,
            body,
            &tenant.webhook_secrets,
            now.timestamp(),
            allow_static,
        )
    };
    match kind {
        ItsmKind::Zendesk => match header("x-zendesk-webhook-signature") {
            Some(signature) => zendesk(tenant, headers, signature, body, now),
            None => common(tenant.settings.allow_static_secret),
        },
        // They cannot sign: the secret itself is how they authenticate —
        // for a tenant on that tool. A tenant on another tool that refuses
        // the raw secret is not let in by a tool it does not use.
        ItsmKind::Freshservice | ItsmKind::Servicenow | ItsmKind::Halopsa => {
            common(tenant.itsm == kind || tenant.settings.allow_static_secret)
        }
        ItsmKind::Connectwise => match header(connectwise::webhook::SIGNATURE_HEADER) {
            Some(signature) => connectwise_signature(state, tenant, signature, body).await,
            None => common(tenant.settings.allow_static_secret),
        },
        ItsmKind::Autotask => match header(aia_itsm::autotask::webhook::SIGNATURE_HEADER) {
            Some(signature) => {
                let secrets = &tenant.webhook_secrets;
                let valid = auth::padded(secrets)
                    .enumerate()
                    .fold(false, |found, (n, secret)| {
                        let ok =
                            aia_itsm::autotask::webhook::verify(secret.expose(), body, signature);
                        found | (ok & (n < secrets.len()))
                    });
                if valid {
                    Ok(Verified {
                        scheme: Scheme::AutotaskSignature,
                        delivery_id: None,
                    })
                } else {
                    Err(AuthFailure::Invalid)
                }
            }
            None => common(tenant.settings.allow_static_secret),
        },
        ItsmKind::ServicedeskPlus | ItsmKind::Jira => common(tenant.settings.allow_static_secret),
    }
}

/// `X-Zendesk-Webhook-Signature`: base64(HMAC-SHA256(timestamp + body))
/// keyed by the webhook's signing secret (as text), the timestamp
/// (`X-Zendesk-Webhook-Signature-Timestamp`, ISO 8601) within the window
/// every signed delivery is held to.
fn zendesk(
    tenant: &Tenant,
    headers: &HeaderMap,
    signature: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Verified, AuthFailure> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let timestamp = header("x-zendesk-webhook-signature-timestamp").ok_or(AuthFailure::Invalid)?;
    let at: DateTime<Utc> = timestamp.trim().parse().map_err(|_| AuthFailure::Invalid)?;
    let age = (now - at).num_seconds();
    if age > auth::MAX_AGE_SECS || -age > auth::MAX_FUTURE_SECS {
        return Err(AuthFailure::Stale);
    }
    let credentials: Option<aia_itsm::zendesk::Credentials> =
        serde_json::from_str(tenant.itsm_credentials.expose()).ok();
    // A tenant without a signing secret is checked against the decoy's,
    // which nothing can match, so that it takes the time a real check does.
    let secret = credentials
        .and_then(|credentials| credentials.webhook_signing_secret)
        .filter(|secret| !secret.is_empty());
    let key = secret
        .as_deref()
        .unwrap_or_else(|| auth::decoy_secret().expose());
    let matches: bool = zendesk_signature(key, timestamp, body)
        .as_bytes()
        .ct_eq(signature.trim().as_bytes())
        .into();
    if matches && secret.is_some() {
        Ok(Verified {
            scheme: Scheme::ZendeskSignature,
            delivery_id: header("x-zendesk-webhook-invocation-id").map(str::to_owned),
        })
    } else {
        Err(AuthFailure::Invalid)
    }
}

/// What Zendesk sends in `X-Zendesk-Webhook-Signature`.
pub fn zendesk_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A ConnectWise callback's signature, with the key its `key_url` serves —
/// fetched only from the tenant's own ConnectWise site, as the tenant's API
/// member, and only for a callback of the tenant's own company (cloud sites
/// are shared by every customer of a region).
async fn connectwise_signature(
    state: &AppState,
    tenant: &Tenant,
    signature: &str,
    body: &[u8],
) -> Result<Verified, AuthFailure> {
    let key_url = connectwise::webhook::key_url(body).ok_or(AuthFailure::Invalid)?;
    if tenant.itsm != ItsmKind::Connectwise {
        return Err(AuthFailure::Invalid);
    }
    let Ok(site) = ConnectWise::new(
        state.http.clone(),
        &tenant.itsm_base_url,
        tenant.itsm_credentials.expose(),
    ) else {
        return Err(AuthFailure::Invalid);
    };
    if !site.key_url_allowed(&key_url) {
        tracing::warn!(tenant_id = %tenant.tenant_id, "ConnectWise callback names a key URL off the tenant's site; nothing fetched");
        return Err(AuthFailure::Invalid);
    }
    if !site.callback_is_for_company(body, &key_url) {
        tracing::warn!(tenant_id = %tenant.tenant_id, "ConnectWise callback of another company; nothing fetched");
        return Err(AuthFailure::Invalid);
    }
    let verified = || Verified {
        scheme: Scheme::ConnectWiseSignature,
        delivery_id: None,
    };
    // Keys are held per tenant: one tenant's fetch never vouches for
    // another's callbacks.
    let cached = format!("{}\n{key_url}", tenant.tenant_id);
    if let Some(key) = state.signing_keys.get(&cached)
        && connectwise::webhook::verify(&key, body, signature)
    {
        return Ok(verified());
    }
    // Not cached, or a rotated key: fetched (again), one fetch at a time
    // per tenant — a callback that waited for another's fetch tries the
    // key it brought first — and within the tenant's budget.
    let flight = state.signing_keys.flight(tenant.tenant_id.as_str());
    let _one_at_a_time = flight.lock().await;
    if let Some(key) = state.signing_keys.get(&cached)
        && connectwise::webhook::verify(&key, body, signature)
    {
        return Ok(verified());
    }
    if !state.signing_keys.take_fetch(tenant.tenant_id.as_str()) {
        tracing::warn!(tenant_id = %tenant.tenant_id, "ConnectWise callbacks that fail their signature keep asking for keys; not fetched this minute");
        return Err(AuthFailure::Invalid);
    }
    let key = fetch_signing_key(&site, &key_url).await?;
    state.signing_keys.put(&cached, key.clone());
    if connectwise::webhook::verify(&key, body, signature) {
        Ok(verified())
    } else {
        Err(AuthFailure::Invalid)
    }
}

async fn fetch_signing_key(site: &ConnectWise, key_url: &str) -> Result<String, AuthFailure> {
    let answer = site
        .signing_key_request(key_url)
        .timeout(TOOL_TIMEOUT)
        .send_traced("connectwise")
        .await;
    let bytes = match answer {
        Ok(response) if response.status().is_success() => {
            aia_http::answer::bytes_within(response, 64 * 1024)
                .await
                .ok()
        }
        Ok(response) => {
            tracing::warn!(
                status = response.status().as_u16(),
                "ConnectWise key URL refused"
            );
            None
        }
        Err(err) => {
            tracing::warn!(error = %err, "ConnectWise key URL unreachable");
            None
        }
    };
    bytes
        .and_then(|bytes| connectwise::webhook::signing_key(&bytes))
        .ok_or(AuthFailure::Invalid)
}

/// A mention made whole: the ticket read from the tenant's tool.
pub async fn complete_mention(
    state: &AppState,
    tenant: &Tenant,
    ticket_id: TicketId,
    change: Mentioned,
    now: DateTime<Utc>,
) -> Result<Inbound, ApiError> {
    let itsm = Itsm::for_tenant(
        state.http.clone(),
        tenant.itsm,
        &tenant.itsm_base_url,
        tenant.itsm_credentials.expose(),
    )
    .map_err(|err| refused(&err.0))?;
    let fetched = tokio::time::timeout(TOOL_TIMEOUT, itsm.fetch_ticket(&ticket_id)).await;
    let ticket = match fetched {
        Ok(Ok(ticket)) => ticket,
        Ok(Err(ItsmError::Permanent { reason, .. })) => return Err(refused(&reason)),
        Ok(Err(ItsmError::Transient { reason, .. })) => {
            tracing::warn!(reason = %reason, "Help desk unavailable for a mentioned ticket");
            return Err(ApiError::unavailable(format!(
                "the help desk could not be read ({reason}); retry later"
            )));
        }
        Err(_) => {
            return Err(ApiError::unavailable(
                "the help desk did not answer in time; retry later",
            ));
        }
    };
    inbound::complete(tenant.itsm, ticket_id, change, ticket, now).map_err(|err| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_payload",
            format!("the help desk's ticket: {err}"),
        )
    })
}

/// The help desk refused what the ingress asked of it (credentials, a
/// ticket it does not know): nothing will change on a retry until someone
/// fixes it.
fn refused(reason: &str) -> ApiError {
    tracing::warn!(reason, "Help desk refused to give the mentioned ticket");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "help_desk_refused",
        format!("the help desk refused to give the ticket: {reason}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zendesk_signs_the_timestamp_then_the_body_with_the_secret_as_text() {
        // Computed independently with Python's hmac: base64(HMAC-SHA256(
        // timestamp + body)), the key the secret's text (Zendesk's
        // "Verifying webhook authenticity"; its builder's test secret).
        assert_eq!(
            zendesk_signature(
                "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==",
                "2021-07-25T10:00:00Z",
                br#"{"say": "hello"}"#
            ),
            "gf3v0LzLRHPUnIdhbvwRDVEvzSb07/QN0GYjSNlkBT0="
        );
    }
}
