#!/usr/bin/env python3
"""Reference sentence embeddings for sentence-transformers/all-MiniLM-L6-v2.

Self-contained numpy BERT forward pass + sentence-transformers' mean pooling
and L2 normalisation, deliberately INDEPENDENT of the Rust (candle) code in
libs/embed: it shares only the model files. Its output
(libs/embed/tests/reference_vectors.json) lets the Rust test check token ids
and vectors (cosine >= 0.999). Pipeline: tokenize ([CLS] .. [SEP], truncated to
max_seq_length=256) -> BERT (6 layers, 12 heads, exact erf GELU, LayerNorm eps
1e-12) -> masked mean pooling -> L2 normalise. Maths in float64.

Run (needs only numpy + tokenizers, no torch):
  python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install numpy tokenizers
  /tmp/refvenv/bin/python scripts/embedding_reference.py \
      /path/to/all_minilm_l6_v2/model libs/embed/tests/reference_vectors.json
"""
import json
import math
import os
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length
SENTENCES = [
    "Outlook keeps asking for my password",
    "Outlook Need Password prompt loops; re-register the AAD broker plugin",
    "The printer on the second floor is jammed again",
    "VPN disconnects every few minutes when working from home",
    "GlobalProtect tunnel drops; MTU set to 1400 on the gateway fixed it",
    "Disk C: is full on FS01 and users cannot save files",
    "How do I reset my password?",
    "The yellow bar in my mail says sign in but nothing opens",
    "SQL Server service fails to start after Windows update KB5034441",
    "Excel crashes when opening large spreadsheets",
    "",  # empty string: tokenizes to just [CLS] [SEP]
    "Ünïcödé têxt with émojis 🚀 and a very long tail "
    + " ".join(["word%d" % i for i in range(400)]),  # > 256 tokens: truncated
]


def load_safetensors(path):
    """Minimal safetensors reader: u64 LE header length, JSON header, raw bytes."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        arr = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]])
        name = name[len("bert."):] if name.startswith("bert.") else name  # either layout
        out[name] = arr.reshape(info["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)  # biased variance, as torch
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x):  # exact (erf-based) GELU, HF "gelu"
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def linear(x, W, prefix):  # torch Linear: y = x W^T + b
    return x @ W[prefix + ".weight"].T + W[prefix + ".bias"]


def bert_embed(W, cfg, ids, mask):
    """ids, mask: [batch, seq] int arrays (right-padded). Returns [batch, 384]."""
    eps, H = cfg["layer_norm_eps"], cfg["num_attention_heads"]
    B, T = ids.shape
    x = (W["embeddings.word_embeddings.weight"][ids]
         + W["embeddings.position_embeddings.weight"][np.arange(T)][None]
         + W["embeddings.token_type_embeddings.weight"][0])  # token_type_ids = 0
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    D = x.shape[-1]
    dh = D // H
    # Additive attention bias: 0 for real keys, large negative for padded keys.
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9)  # [B, 1, 1, T]
    heads = lambda t: t.reshape(B, T, H, dh).transpose(0, 2, 1, 3)  # -> [B, H, T, dh]
    for i in range(cfg["num_hidden_layers"]):
        p = "encoder.layer.%d." % i
        q = heads(linear(x, W, p + "attention.self.query"))
        k = heads(linear(x, W, p + "attention.self.key"))
        v = heads(linear(x, W, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + bias
        scores -= scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(B, T, D)
        x = layer_norm(linear(ctx, W, p + "attention.output.dense") + x,
                       W[p + "attention.output.LayerNorm.weight"],
                       W[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu(linear(x, W, p + "intermediate.dense"))
        x = layer_norm(linear(h, W, p + "output.dense") + x,
                       W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    # Mean pooling over real tokens, then L2 normalisation (sentence-transformers).
    m = mask[:, :, None].astype(np.float64)
    pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


def load_model(model_dir):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    W = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()  # tokenizer.json ships fixed padding to 128; we pad ourselves
    tok.enable_truncation(max_length=MAX_TOKENS)  # and truncation at 128; ST uses 256
    return cfg, W, tok


def embed(cfg, W, tok, texts):
    encs = tok.encode_batch(texts, add_special_tokens=True)
    T = max(len(e.ids) for e in encs)
    ids = np.zeros((len(texts), T), dtype=np.int64)  # pad id 0
    mask = np.zeros((len(texts), T), dtype=np.int64)
    for r, e in enumerate(encs):
        ids[r, :len(e.ids)], mask[r, :len(e.ids)] = e.ids, 1
    return [list(e.ids) for e in encs], bert_embed(W, cfg, ids, mask)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: embedding_reference.py MODEL_DIR OUTPUT_JSON")
    model_dir, out_path = sys.argv[1], sys.argv[2]
    cfg, W, tok = load_model(model_dir)
    token_ids, vecs = embed(cfg, W, tok, SENTENCES)
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": "scripts/embedding_reference.py (numpy, independent of the Rust code)",
        "max_tokens": MAX_TOKENS,
        "sentences": [
            {"text": t, "token_ids": ids, "vector": [float("%.7g" % x) for x in v]}
            for t, ids, v in zip(SENTENCES, token_ids, vecs)
        ],
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %d vectors (dim %d) to %s" % (len(vecs), vecs.shape[1], out_path))


if __name__ == "__main__":
    main()
