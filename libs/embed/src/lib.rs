//! Sentence embeddings behind one interface.
//!
//! Two providers: the local all-MiniLM-L6-v2 model run in-process (feature
//! `local`, used by the embedder service and the CLI), and any
//! OpenAI-compatible `POST /v1/embeddings` endpoint — which is also how every
//! other service reaches the local model, through the embedder service.
//!
//! Vectors are L2-normalised when they are made, so cosine similarity is a
//! dot product, and each carries the id of the model that made it: vectors
//! of different models are never compared.

#[cfg(feature = "local")]
mod bert;
pub mod endpoint;
#[cfg(feature = "local")]
mod kernels;
#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "local")]
mod precision;
pub mod tenant;
mod vector;

pub use endpoint::{Endpoint, EndpointConfig, MAX_INPUT_CHARS};
pub use vector::Vector;

/// The id recorded with vectors of the local model.
pub const LOCAL_MODEL: &str = aia_store::LOCAL_EMBEDDING_MODEL;
/// The local model's dimension.
pub const LOCAL_DIM: usize = 384;

/// Why texts could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Worth another try later: timeout, 429, 5xx, connection refused.
    #[error("embeddings provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request (4xx other than 429).
    #[error("embeddings provider refused the request: {0}")]
    Refused(String),
    /// The provider answered something that is not a usable embedding.
    #[error("embeddings provider answered malformed data: {0}")]
    Malformed(String),
    /// Vectors of another model or dimension than the ones they would be
    /// compared with.
    #[error("embedding model mismatch: expected {expected}, got {actual}")]
    ModelMismatch { expected: String, actual: String },
    /// The local model failed.
    #[error("embedding model failed: {0}")]
    Model(String),
}

impl EmbedError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// One embeddings provider: the local model, or an endpoint.
#[derive(Clone, Debug)]
pub enum Embedder {
    #[cfg(feature = "local")]
    Local(std::sync::Arc<local::MiniLm>),
    Endpoint(Endpoint),
}

impl Embedder {
    /// The id of the model, recorded with each vector.
    pub fn model(&self) -> &str {
        match self {
            #[cfg(feature = "local")]
            Self::Local(model) => model.model_id(),
            Self::Endpoint(endpoint) => endpoint.model(),
        }
    }

    /// Embeds `texts`, in order. An empty text gets a vector too.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vector>, EmbedError> {
        match self {
            #[cfg(feature = "local")]
            Self::Local(model) => {
                let model = model.clone();
                let texts = texts.to_vec();
                tokio::task::spawn_blocking(move || model.embed(&texts))
                    .await
                    .map_err(|err| EmbedError::Model(err.to_string()))?
            }
            Self::Endpoint(endpoint) => endpoint.embed(texts).await,
        }
    }

    /// Embeds one text.
    pub async fn embed_one(&self, text: &str) -> Result<Vector, EmbedError> {
        let mut vectors = self.embed(&[text.to_owned()]).await?;
        vectors
            .pop()
            .ok_or_else(|| EmbedError::Malformed("no vector for the text".into()))
    }
}

/// The text of a resolved ticket that gets embedded: what a later ticket's
/// subject and description would resemble, plus the fix's own words.
pub fn ticket_text(subject: &str, description: &str, resolution: &str) -> String {
    format!("{subject}\n{description}\n{resolution}")
}

/// The text of a new ticket that gets embedded to search with: what the
/// context stage, the evaluations and the benchmarks all embed.
pub fn query_text(subject: Option<&str>, description: &str) -> String {
    match subject {
        Some(subject) => format!("{subject}\n{description}"),
        None => description.to_owned(),
    }
}

/// The text of a knowledge article that gets embedded.
pub fn article_text(title: &str, body: &str) -> String {
    format!("{title}\n{body}")
}

/// A digest of an embedded text, stored beside its vector so that a text
/// that did not change is not embedded again.
pub fn content_digest(text: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).into()
}
