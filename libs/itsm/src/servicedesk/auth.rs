//! How requests to ServiceDesk Plus are authorised: an `authtoken` header
//! (on-prem), or a Zoho OAuth access token (Cloud) obtained from the tenant's
//! refresh token at its region's accounts server and cached until it expires.

use aia_telemetry::http::TracedSend as _;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::TOOL;
use crate::{ItsmError, transport_error};

#[derive(Clone)]
pub(crate) enum Auth {
    AuthToken(String),
    Zoho(ZohoCredentials),
}

#[derive(Clone, Deserialize)]
pub(crate) struct ZohoCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// The region's accounts server, for example `https://accounts.zoho.eu`.
    #[serde(default = "default_accounts_url")]
    pub accounts_url: String,
}

fn default_accounts_url() -> String {
    "https://accounts.zoho.com".into()
}

/// Access tokens by (accounts server, client, refresh token), shared by every
/// client of this process.
static TOKENS: LazyLock<Mutex<HashMap<String, (String, Instant)>>> = LazyLock::new(Mutex::default);

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
}

impl ZohoCredentials {
    fn cache_key(&self) -> String {
        let digest = Sha256::digest(format!(
            "{}\n{}\n{}",
            self.accounts_url, self.client_id, self.refresh_token
        ));
        hex::encode(digest)
    }

    /// Forgets the cached token (it was refused).
    pub fn forget(&self) {
        TOKENS
            .lock()
            .expect("token cache")
            .remove(&self.cache_key());
    }

    /// A valid access token, refreshed when missing or about to expire.
    pub async fn access_token(&self, http: &reqwest::Client) -> Result<String, ItsmError> {
        let key = self.cache_key();
        if let Some((token, expires)) = TOKENS.lock().expect("token cache").get(&key)
            && Instant::now() + Duration::from_secs(60) < *expires
        {
            return Ok(token.clone());
        }
        let url = format!("{}/oauth/v2/token", self.accounts_url.trim_end_matches('/'));
        let response = http
            .post(&url)
            .query(&[
                ("refresh_token", self.refresh_token.as_str()),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("grant_type", "refresh_token"),
            ])
            .send_traced("zoho-accounts")
            .await
            .map_err(|err| transport_error("Zoho accounts", &err))?;
        let status = response.status();
        let answer: TokenAnswer = response.json().await.map_err(|_| ItsmError::Transient {
            reason: "Zoho accounts sent an unreadable answer".into(),
            http_status: Some(status.as_u16()),
            retry_after: None,
        })?;
        match (answer.access_token, answer.error) {
            (Some(token), None) => {
                let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
                TOKENS
                    .lock()
                    .expect("token cache")
                    .insert(key, (token.clone(), Instant::now() + lifetime));
                Ok(token)
            }
            (_, error) if status.is_server_error() => Err(ItsmError::Transient {
                reason: format!(
                    "Zoho accounts answered HTTP {} ({})",
                    status.as_u16(),
                    error.unwrap_or_default()
                ),
                http_status: Some(status.as_u16()),
                retry_after: None,
            }),
            (_, error) => Err(ItsmError::Permanent {
                reason: format!(
                    "{TOOL} Cloud refused the OAuth refresh token ({})",
                    error.unwrap_or_else(|| "no access token".into())
                ),
                http_status: Some(status.as_u16()),
            }),
        }
    }
}
