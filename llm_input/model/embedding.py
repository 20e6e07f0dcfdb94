"""Token ids -> vectors, and vectors -> next-token logits (tied to the table or separate).

Init: N(0, init_std^2) for every row (GPT-2 uses 0.02), so at step 0 two token vectors have
cosine ~ 0 +- 1/sqrt(d_model), the baseline the analysis reports compare against.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from llm_input.model.config import ModelConfig
from llm_input.model.layers import compute_dtype, constrain, normal, param


class Embedding(nnx.Module):
  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    self.table = param(rngs, normal(cfg.init_std), (cfg.vocab_size, cfg.d_model), ("vocab", "embed"))
    if not cfg.tie_embeddings:
      self.head = param(rngs, normal(cfg.init_std), (cfg.d_model, cfg.vocab_size), ("embed", "vocab"))

  @jax.named_scope("embedding")
  def __call__(self, ids_BxL: jnp.ndarray) -> jnp.ndarray:
    dtype = compute_dtype(self.cfg.dtype)
    # The lookup uses the table whole along d_model (under FSDP it is gathered, like any
    # weight), so the ids never leave their device; a vocabulary split over `tensor` is
    # looked up piecewise and summed.
    table_VxD = constrain(self.table[...], ("vocab", "act_embed"))
    x_BxLxD = jnp.take(table_VxD, ids_BxL, axis=0).astype(dtype)
    if self.cfg.scale_embeddings:
      x_BxLxD = x_BxLxD * jnp.asarray(math.sqrt(self.cfg.d_model), dtype)
    return constrain(x_BxLxD, ("batch", "length", "act_embed"))

  def output_matrix(self, dtype) -> jnp.ndarray:
    """The (D, V) matrix that turns a final vector into logits, in the compute `dtype`."""
    if self.cfg.tie_embeddings:
      # Laid out as for the lookup, so the tied table is gathered once and its two gradient
      # contributions are reduced once.
      return constrain(self.table[...], ("vocab", "act_embed")).astype(dtype).T
    return self.head[...].astype(dtype)

  @jax.named_scope("head")
  def logits(self, x_BxLxD: jnp.ndarray) -> jnp.ndarray:
    """Scores over the vocabulary, returned in float32 so the loss is computed in float32."""
    dtype = x_BxLxD.dtype
    batch, length, d = x_BxLxD.shape
    x_2d = x_BxLxD.reshape(batch * length, d)  # 2-D matmul: no layout copies in the backward
    x_2d = constrain(x_2d, ("batch", "act_embed"))
    logits = x_2d @ self.output_matrix(dtype)
    # Rows stay split over the batch axes and columns over the vocabulary's: no device ever
    # holds the whole batch's logits.
    logits = constrain(logits, ("batch", "vocab"))
    return constrain(logits.reshape(batch, length, -1).astype(jnp.float32), ("batch", "length", "vocab"))
