//! Which LLM serves a tenant: its own providers in fallback order, else the
//! deployment's; and the deployment's provider and prices from the
//! environment.

use std::time::Duration;

use aia_config::{ConfigError, optional, parsed};
use aia_store::Tenant;

use crate::cost::PriceTable;
use crate::{Provider, ProviderKind};

/// The tenant's providers, in fallback order, with their keys; the
/// deployment's `default` when the tenant names none.
pub fn providers(tenant: &Tenant, default: Option<&Provider>) -> Vec<Provider> {
    if tenant.settings.llm_providers.is_empty() {
        return default.into_iter().cloned().collect();
    }
    tenant
        .settings
        .llm_providers
        .iter()
        .map(|settings| Provider {
            name: settings.name.clone(),
            kind: match (settings.kind.as_str(), &settings.api_version) {
                ("azure", Some(api_version)) => ProviderKind::Azure {
                    api_version: api_version.clone(),
                },
                ("azure", None) => ProviderKind::Azure {
                    api_version: "2024-10-21".into(),
                },
                _ => ProviderKind::OpenAi,
            },
            base_url: settings.base_url.clone(),
            api_key: tenant.integrations.llm_keys.get(&settings.name).cloned(),
            model: settings.model.clone(),
            timeout: Duration::from_secs(u64::from(settings.timeout_secs.clamp(1, 300))),
        })
        .collect()
}

/// The provider named by `AI_AGENTS_LLM_*`, or `None` when
/// `AI_AGENTS_LLM_BASE_URL` is unset. `AI_AGENTS_LLM_AZURE_API_VERSION`
/// makes it an Azure OpenAI deployment.
pub fn provider_from_env() -> Result<Option<Provider>, ConfigError> {
    optional("LLM_BASE_URL")
        .map(|base_url| -> Result<Provider, ConfigError> {
            Ok(Provider {
                name: optional("LLM_PROVIDER_NAME").unwrap_or_else(|| "default".into()),
                kind: match optional("LLM_AZURE_API_VERSION") {
                    Some(api_version) => ProviderKind::Azure { api_version },
                    None => ProviderKind::OpenAi,
                },
                base_url,
                api_key: optional("LLM_API_KEY"),
                model: optional("LLM_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
                timeout: Duration::from_secs(parsed("LLM_TIMEOUT_SECS", 30)?),
            })
        })
        .transpose()
}

/// The price table: the defaults with `AI_AGENTS_LLM_PRICES` added.
pub fn prices_from_env() -> Result<PriceTable, ConfigError> {
    match optional("LLM_PRICES") {
        Some(json) => PriceTable::from_json(&json).map_err(|reason| ConfigError::Invalid {
            name: "AI_AGENTS_LLM_PRICES".into(),
            reason,
        }),
        None => Ok(PriceTable::default()),
    }
}
