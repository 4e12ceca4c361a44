//! A tenant's embedders, from its settings: the deployment's local model
//! unless the tenant names an endpoint of its own.

use std::time::Duration;

use aia_llm::ProviderKind;
use aia_store::{EmbeddingSettings, Integrations, TenantSettings};

use crate::{Embedder, Endpoint, EndpointConfig};

/// What a tenant's settings resolve to.
#[derive(Debug, Clone)]
pub struct TenantEmbedders {
    /// The model search answers from.
    pub active: Embedder,
    /// A model the corpus is being re-embedded with, if any.
    pub next: Option<Embedder>,
}

/// Resolves the tenant's embedders. `local` is how this process reaches the
/// local model (in-process, or the embedder service); `None` when this
/// process has no way to, in which case a tenant on the local model has no
/// embedder.
pub fn embedders(
    settings: &TenantSettings,
    integrations: &Integrations,
    local: Option<&Embedder>,
    http: &reqwest::Client,
) -> Result<TenantEmbedders, String> {
    let resolve = |choice: &EmbeddingSettings| -> Result<Embedder, String> {
        match choice {
            EmbeddingSettings::Local => local.cloned().ok_or_else(|| {
                "the local embedding model is not configured here (AI_AGENTS_EMBEDDINGS_URL)"
                    .to_owned()
            }),
            EmbeddingSettings::Endpoint(endpoint) => {
                let kind = match (endpoint.kind.as_str(), &endpoint.api_version) {
                    ("azure", Some(version)) => ProviderKind::Azure {
                        api_version: version.clone(),
                    },
                    ("azure", None) => {
                        return Err(format!(
                            "embeddings endpoint {:?}: azure needs api_version",
                            endpoint.name
                        ));
                    }
                    _ => ProviderKind::OpenAi,
                };
                let mut config = EndpointConfig::new(&endpoint.base_url, &endpoint.model);
                config.kind = kind;
                config.api_key = integrations.embedding_keys.get(&endpoint.name).cloned();
                config.timeout =
                    Duration::from_secs(u64::from(endpoint.timeout_secs.clamp(1, 120)));
                Ok(Embedder::Endpoint(Endpoint::new(http.clone(), config)))
            }
        }
    };
    Ok(TenantEmbedders {
        active: resolve(&settings.embeddings)?,
        next: settings.embeddings_next.as_ref().map(resolve).transpose()?,
    })
}
