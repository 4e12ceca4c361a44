//! The BERT encoder of all-MiniLM-L6-v2, written for what the context
//! stage asks of it: one short ticket (or a small batch) on a CPU.
//!
//! It computes what Hugging Face's `BertModel` computes (post-norm layers,
//! exact erf GELU, LayerNorm eps from the config), with the arithmetic laid
//! out for small inputs: each dense layer's weight is stored transposed and
//! contiguous, so a multiplication reads it in the order the kernel wants;
//! the query, key and value projections are one multiplication of the
//! three weights side by side; the attention's `1/√d` is folded into the
//! query weights; every dense layer works on the batch's tokens as one
//! matrix; and GELU and the attention's softmax are each one vectorized
//! pass ([`crate::kernels`]; candle's generic `gelu_erf` took about a tenth
//! of the old model's time). The dense layers may be held in 8 bits
//! ([`Precision`]). `libs/embed/tests/local_model.rs` checks the vectors
//! against an independent float64 reference.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Module as _, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

use crate::kernels::{Gelu, Softmax};
use crate::precision::Precision;
use serde::Deserialize;

/// The fields of the model's `config.json` the encoder uses.
#[derive(Debug, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
}

/// A dense layer's f32 weights while the encoder is assembled: `Wᵀ`
/// (inputs × outputs, contiguous) and the bias.
struct Weights {
    weight_t: Tensor,
    bias: Tensor,
}

impl Weights {
    fn load(vb: VarBuilder, inputs: usize, outputs: usize) -> Result<Self> {
        let weight = vb.get((outputs, inputs), "weight")?;
        Ok(Self {
            weight_t: weight.t()?.contiguous()?,
            bias: vb.get(outputs, "bias")?,
        })
    }

    /// The layers' outputs side by side: one multiplication for all.
    fn side_by_side(parts: &[Self]) -> Result<Self> {
        let weights: Vec<&Tensor> = parts.iter().map(|part| &part.weight_t).collect();
        let biases: Vec<&Tensor> = parts.iter().map(|part| &part.bias).collect();
        Ok(Self {
            weight_t: Tensor::cat(&weights, 1)?,
            bias: Tensor::cat(&biases, 0)?,
        })
    }

    fn scaled(self, factor: f64) -> Result<Self> {
        Ok(Self {
            weight_t: (self.weight_t * factor)?,
            bias: (self.bias * factor)?,
        })
    }

    /// The layer as it runs, its weights held in `precision` (resolved)
    /// and nowhere else.
    fn dense(self, precision: Precision) -> Result<Dense> {
        let product = if precision == Precision::Int8 {
            let weight = self.weight_t.t()?.contiguous()?;
            let (_, inputs) = weight.dims2()?;
            let padded = inputs.div_ceil(256) * 256;
            let weight = weight.pad_with_zeros(1, 0, padded - inputs)?;
            Product::Int8 {
                matmul: QMatMul::from_qtensor(QTensor::quantize(&weight, GgmlDType::Q8_0)?)?,
                inputs,
                padded,
            }
        } else {
            Product::F32(self.weight_t)
        };
        Ok(Dense {
            product,
            bias: self.bias,
        })
    }
}

/// A dense layer: `x · Wᵀ + b`.
struct Dense {
    product: Product,
    bias: Tensor,
}

enum Product {
    /// `Wᵀ`, contiguous.
    F32(Tensor),
    /// `W` in 8-bit blocks, its inputs padded with zeros to whole
    /// 256-value blocks (what the VNNI kernels take).
    Int8 {
        matmul: QMatMul,
        inputs: usize,
        padded: usize,
    },
}

impl Dense {
    /// `x`: (tokens, inputs) → (tokens, outputs).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let product = match &self.product {
            Product::F32(weight_t) => x.matmul(weight_t)?,
            Product::Int8 {
                matmul,
                inputs,
                padded,
            } => matmul.forward(&x.pad_with_zeros(1, 0, padded - inputs)?)?,
        };
        product.broadcast_add(&self.bias)
    }
}

struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(size, "weight")?,
            bias: vb.get(size, "bias")?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    /// Query (pre-scaled by `1/√d`), key and value, side by side.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    up: Dense,
    down: Dense,
    out_norm: Norm,
}

/// The encoder: token ids and attention mask in, the last hidden state out.
pub struct Encoder {
    words: Embedding,
    positions: Tensor,
    token_type: Tensor,
    norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
}

impl Encoder {
    /// Loads the encoder, its dense layers in `precision` (already
    /// resolved: `Auto` is taken for f32).
    pub fn load(vb: VarBuilder, config: &Config, precision: Precision) -> Result<Self> {
        if config.hidden_act != "gelu" {
            candle_core::bail!(
                "hidden_act {:?} is not supported (this encoder computes the exact erf GELU)",
                config.hidden_act
            );
        }
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            candle_core::bail!("{hidden} hidden units do not split into {heads} heads");
        }
        let eps = config.layer_norm_eps;
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let embeddings = vb.pp("embeddings");
        let words = Embedding::new(
            embeddings.get((config.vocab_size, hidden), "word_embeddings.weight")?,
            hidden,
        );
        let positions = embeddings.get(
            (config.max_position_embeddings, hidden),
            "position_embeddings.weight",
        )?;
        // Every token is of type 0 (one segment).
        let token_type = embeddings
            .get(
                (config.type_vocab_size, hidden),
                "token_type_embeddings.weight",
            )?
            .get(0)?;
        let norm = Norm::load(embeddings.pp("LayerNorm"), hidden, eps)?;
        let scale = 1.0 / ((hidden / heads) as f64).sqrt();
        let layers = (0..config.num_hidden_layers)
            .map(|index| {
                let layer = vb.pp(format!("encoder.layer.{index}"));
                let attention = layer.pp("attention");
                let own = attention.pp("self");
                let query = Weights::load(own.pp("query"), hidden, hidden)?.scaled(scale)?;
                let key = Weights::load(own.pp("key"), hidden, hidden)?;
                let value = Weights::load(own.pp("value"), hidden, hidden)?;
                Ok(Layer {
                    qkv: Weights::side_by_side(&[query, key, value])?.dense(precision)?,
                    attention_out: Weights::load(attention.pp("output.dense"), hidden, hidden)?
                        .dense(precision)?,
                    attention_norm: Norm::load(attention.pp("output.LayerNorm"), hidden, eps)?,
                    up: Weights::load(
                        layer.pp("intermediate.dense"),
                        hidden,
                        config.intermediate_size,
                    )?
                    .dense(precision)?,
                    down: Weights::load(
                        layer.pp("output.dense"),
                        config.intermediate_size,
                        hidden,
                    )?
                    .dense(precision)?,
                    out_norm: Norm::load(layer.pp("output.LayerNorm"), hidden, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            words,
            positions,
            token_type,
            norm,
            layers,
            heads,
            hidden,
        })
    }

    /// `ids` and `mask`: (batch, tokens), u32. Returns (batch, tokens, hidden).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, tokens) = ids.dims2()?;
        let hidden = self.hidden;
        let positions = self.positions.narrow(0, 0, tokens)?;
        let x = self
            .words
            .forward(ids)?
            .broadcast_add(&positions.broadcast_add(&self.token_type)?)?
            .reshape((batch * tokens, hidden))?;
        let mut x = self.norm.forward(&x)?;
        // 0 where a token is real, the lowest float where it is padding:
        // added to the attention scores, padding gets no weight.
        let padding = mask
            .to_dtype(DType::F32)?
            .affine(f64::from(f32::MAX), f64::from(f32::MIN))?
            .reshape((batch, 1, 1, tokens))?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &padding, batch, tokens)?;
        }
        x.reshape((batch, tokens, hidden))
    }

    fn layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        padding: &Tensor,
        batch: usize,
        tokens: usize,
    ) -> Result<Tensor> {
        let hidden = self.hidden;
        let head = hidden / self.heads;
        let qkv = layer.qkv.forward(x)?;
        // (batch·tokens, 3·hidden) → three (batch, heads, tokens, head).
        let split = |part: usize| {
            qkv.narrow(1, part * hidden, hidden)?
                .reshape((batch, tokens, self.heads, head))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (query, key, value) = (split(0)?, split(1)?, split(2)?);
        let scores = query.matmul(&key.t()?)?.broadcast_add(padding)?;
        let weights = scores.apply_op1_no_bwd(&Softmax)?;
        let context = weights
            .matmul(&value)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((batch * tokens, hidden))?;
        let attended = layer
            .attention_norm
            .forward(&(layer.attention_out.forward(&context)? + x)?)?;
        let inner = layer.up.forward(&attended)?.apply_op1_no_bwd(&Gelu)?;
        layer
            .out_norm
            .forward(&(layer.down.forward(&inner)? + attended)?)
    }
}
