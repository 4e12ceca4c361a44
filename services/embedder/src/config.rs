//! Configuration of the embedder service.

use std::net::SocketAddr;
use std::path::PathBuf;

use aia_bus::StageSettings;
use aia_config::{ConfigError, optional, parsed, required};

#[derive(Debug)]
pub struct Config {
    /// The indexer's servers, keys, concurrency and metrics; its tenant
    /// cache is not used (the indexer reads each tenant as stored, so a
    /// model change is followed at once).
    pub stage: StageSettings,
    /// Where the model's files are (`AI_AGENTS_MODEL_DIR`).
    pub model_dir: PathBuf,
    /// Where the embeddings API listens (`AI_AGENTS_EMBEDDER_ADDR`).
    pub addr: SocketAddr,
    /// A bearer token callers must present, if set
    /// (`AI_AGENTS_EMBEDDER_API_KEY`).
    pub api_key: Option<String>,
    /// Texts accepted in one request.
    pub max_inputs: usize,
    /// Batches run on the model at once; each takes a core.
    pub max_parallel: usize,
    /// Whether this instance also consumes `ticket.resolved` to embed new
    /// tickets (`AI_AGENTS_EMBEDDER_INDEXER`, default on).
    pub indexer: bool,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            stage: StageSettings::from_env()?,
            model_dir: PathBuf::from(required("MODEL_DIR")?),
            addr: parsed("EMBEDDER_ADDR", SocketAddr::from(([0, 0, 0, 0], 8085)))?,
            api_key: optional("EMBEDDER_API_KEY"),
            max_inputs: parsed("EMBEDDER_MAX_INPUTS", 256)?,
            max_parallel: parsed(
                "EMBEDDER_MAX_PARALLEL",
                std::thread::available_parallelism().map_or(1, usize::from),
            )?,
            indexer: parsed("EMBEDDER_INDEXER", true)?,
        })
    }
}
