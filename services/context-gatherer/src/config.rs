//! Configuration of the context-gatherer.

use std::time::Duration;

use aia_bus::StageSettings;
use aia_config::{ConfigError, optional, parsed};
use aia_store::Keyring;

/// The local model as the embedder service at `url` serves it.
pub fn embedder_service(
    http: &reqwest::Client,
    url: &str,
    api_key: Option<String>,
) -> aia_embed::Embedder {
    let mut config = aia_embed::EndpointConfig::new(url, aia_embed::LOCAL_MODEL);
    config.api_key = api_key;
    aia_embed::Embedder::Endpoint(aia_embed::Endpoint::new(http.clone(), config))
}

/// Each source's timeout when it has none of its own.
pub const DEFAULT_SOURCE_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole stage's budget.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);
pub const DEFAULT_MONITORING_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_MAX_SIMILAR_TICKETS: i64 = 5;

#[derive(Debug)]
pub struct Config {
    /// Servers, keys (they decrypt the tenants' knowledge-base and
    /// monitoring tokens), tenant cache, concurrency and metrics.
    pub stage: StageSettings,
    /// Timeout of each source without one of its own (default 10 s).
    pub source_timeout: Duration,
    /// The stage's overall budget (default 30 s).
    pub budget: Duration,
    /// Timeout of the monitoring source (default 15 s).
    pub monitoring_timeout: Duration,
    /// Similar resolved tickets put into the context (default 5).
    pub max_similar_tickets: i64,
    /// The embedder service's OpenAI-compatible API root (for example
    /// `http://embedder:8085/v1`), through which tenants on the local model
    /// are searched by meaning. Without it they are searched by words.
    pub embeddings_url: Option<String>,
    /// The embedder service's bearer token, if it requires one.
    pub embeddings_api_key: Option<String>,
    /// The deployment's LLM (`AI_AGENTS_LLM_*`, as the llm-enhancer reads
    /// it), for the query rewrites of tenants without providers of their own.
    pub llm_provider: Option<aia_llm::Provider>,
    pub llm_prices: aia_llm::cost::PriceTable,
    /// Tenants whose windows of open tickets the process holds (default
    /// 128; 0 reads each window in full for every ticket).
    pub window_tenants: usize,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            stage: StageSettings::from_env()?,
            source_timeout: Duration::from_secs(parsed(
                "CONTEXT_SOURCE_TIMEOUT_SECS",
                DEFAULT_SOURCE_TIMEOUT.as_secs(),
            )?),
            budget: Duration::from_secs(parsed("CONTEXT_BUDGET_SECS", DEFAULT_BUDGET.as_secs())?),
            monitoring_timeout: Duration::from_secs(parsed(
                "CONTEXT_MONITORING_TIMEOUT_SECS",
                DEFAULT_MONITORING_TIMEOUT.as_secs(),
            )?),
            max_similar_tickets: parsed(
                "CONTEXT_MAX_SIMILAR_TICKETS",
                DEFAULT_MAX_SIMILAR_TICKETS,
            )?,
            embeddings_url: optional("EMBEDDINGS_URL"),
            embeddings_api_key: optional("EMBEDDER_API_KEY"),
            llm_provider: aia_llm::tenant::provider_from_env()?,
            llm_prices: aia_llm::tenant::prices_from_env()?,
            window_tenants: aia_store::open_tickets::configured_tenants()?,
        })
    }

    /// Defaults for everything but the servers and keys.
    pub fn new(nats_url: String, database_url: String, keyring: Keyring) -> Self {
        Self {
            stage: StageSettings::new(nats_url, database_url, keyring),
            source_timeout: DEFAULT_SOURCE_TIMEOUT,
            budget: DEFAULT_BUDGET,
            monitoring_timeout: DEFAULT_MONITORING_TIMEOUT,
            max_similar_tickets: DEFAULT_MAX_SIMILAR_TICKETS,
            embeddings_url: None,
            embeddings_api_key: None,
            llm_provider: None,
            llm_prices: Default::default(),
            window_tenants: aia_store::open_tickets::DEFAULT_TENANTS,
        }
    }
}
