//! How requests to ServiceDesk Plus are authorised: an `authtoken` header
//! (on-prem), or a Zoho OAuth access token (Cloud) obtained from the tenant's
//! refresh token at its region's accounts server and cached until it expires.

use aia_telemetry::http::TracedSend as _;
use serde::Deserialize;

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

impl ZohoCredentials {
    fn cache_key(&self) -> String {
        crate::oauth::key(&[&self.accounts_url, &self.client_id, &self.refresh_token])
    }

    /// Forgets the cached token if it is still `refused`.
    pub fn forget(&self, refused: &str) {
        crate::oauth::forget(&self.cache_key(), refused);
    }

    /// A valid access token, refreshed when missing or about to expire.
    pub async fn access_token(&self, http: &reqwest::Client) -> Result<String, ItsmError> {
        crate::oauth::token(&self.cache_key(), async {
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
            crate::oauth::read_answer(response, &format!("{TOOL} Cloud"), "refresh token").await
        })
        .await
    }
}
