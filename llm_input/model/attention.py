"""Multi-head attention: each token asks (Q), advertises (K) and offers (V), per head.

scores = Q K^T / sqrt(d_head) (unscaled with model.attention_scale="none"), masked so a token sees only earlier tokens of its own document
(causal + segment mask), softmax in float32, weighted sum of V, heads concatenated, projected.
`num_kv_heads < num_heads` shares K/V between groups of query heads (GQA; 1 = multi-query).

`reference_attention` is the textbook computation with one full L x S score matrix (used by
the analysis, which reads the weights). The model's training path, `blocked_attention`, is
the same einsums split into query blocks: with a causal mask, block i only needs the keys of
blocks 0..i, so the wholly masked upper-right blocks are never computed (at L=256 with 128-
query blocks that skips a quarter of the score and weighted-sum work). The softmax's backward
is written out (p * (g - sum(g * p))), which XLA:CPU runs as one fused pass.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from llm_input.model.config import ModelConfig
from llm_input.model.layers import compute_dtype, constrain, normal, param, zeros
from llm_input.model.positions import apply_rope


def attention_mask(segment_ids_BxL: jnp.ndarray, causal: bool) -> jnp.ndarray:
  """Boolean (B, 1, L, L): query i may look at key j. Same document, and j <= i if causal."""
  mask_BxLxL = segment_ids_BxL[:, :, None] == segment_ids_BxL[:, None, :]
  if causal:
    length = segment_ids_BxL.shape[1]
    mask_BxLxL = mask_BxLxL & jnp.tril(jnp.ones((length, length), dtype=bool))[None]
  return mask_BxLxL[:, None]


@jax.custom_vjp
def masked_softmax(scores, mask):
  """Softmax over the last axis of the scores where `mask` holds (0 elsewhere), max-subtracted,
  with its backward written out. Every row needs one visible key (a causal row sees itself)."""
  scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
  shifted = scores - jnp.max(scores, axis=-1, keepdims=True)
  exp = jnp.exp(shifted)
  return exp / jnp.sum(exp, axis=-1, keepdims=True)


def _softmax_fwd(scores, mask):
  weights = masked_softmax(scores, mask)
  return weights, weights


def _softmax_bwd(weights, grad):
  # d softmax: p * (g - <g, p>) per row; jax.nn.softmax's autodiff costs ~2x more on CPU. The
  # masked entries' weights are exactly 0, so their gradient is too: the mask's select is not
  # repeated over the gradient (autodiff of jnp.where would make that pass).
  return weights * (grad - jnp.sum(grad * weights, axis=-1, keepdims=True)), None


masked_softmax.defvjp(_softmax_fwd, _softmax_bwd)


def _default_scale(q_BxLxHxDh, scale):
  return 1.0 / math.sqrt(q_BxLxHxDh.shape[-1]) if scale is None else scale  # d_head, not d_model


@jax.named_scope("attention_core")
def _attend(q_BxLxHxDh, k_BxSxKxDh, v_BxSxKxDh, mask_Bx1xLxS, scale=None):
  batch, length, heads, d_head = q_BxLxHxDh.shape
  kv_heads = k_BxSxKxDh.shape[2]
  groups = heads // kv_heads
  scale = _default_scale(q_BxLxHxDh, scale)
  # In float32, scaling q (L x Dh numbers) rather than the scores (L x S) saves a pass over
  # the scores; a bfloat16 q would be rounded once more, so there the float32 scores are scaled.
  if q_BxLxHxDh.dtype == jnp.float32 and scale != 1.0:
    q_BxLxHxDh, scale = q_BxLxHxDh * scale, 1.0
  if groups == 1:
    # Plain multi-head attention in 4-D einsums: XLA:CPU runs them and their backward ~2.4x
    # faster than the grouped 5-D form below with a group axis of 1 (2-core AVX-512 CPU).
    q, mask = q_BxLxHxDh, mask_Bx1xLxS
    equations = "blhd,bshd->bhls", "bhls,bshd->blhd"
  else:
    q = q_BxLxHxDh.reshape(batch, length, kv_heads, groups, d_head)
    mask = mask_Bx1xLxS[:, :, None]  # broadcast over kv heads and groups
    equations = "blkgd,bskd->bkgls", "bkgls,bskd->blkgd"
  scores = jnp.einsum(equations[0], q, k_BxSxKxDh, preferred_element_type=jnp.float32)
  if scale != 1.0:
    scores = scores * scale
  weights = masked_softmax(scores, mask)
  out = jnp.einsum(equations[1], weights.astype(v_BxSxKxDh.dtype), v_BxSxKxDh)
  return out.reshape(batch, length, heads, d_head), weights.reshape(batch, heads, length, -1)


def reference_attention(q_BxLxHxDh, k_BxSxKxDh, v_BxSxKxDh, mask_Bx1xLxS, scale=None):
  """The textbook computation with explicit weights; returns (out_BxLxHxDh, weights_BxHxLxS).

  `scale` multiplies the scores (None: 1/sqrt(d_head); every function here takes it)."""
  return _attend(q_BxLxHxDh, k_BxSxKxDh, v_BxSxKxDh, mask_Bx1xLxS, scale)


def blocked_attention(q_BxLxHxDh, k_BxLxKxDh, v_BxLxKxDh, mask_Bx1xLxL, block: int, scale=None):
  """Causal self-attention in query blocks of `block`: block i attends to keys [0, (i+1)*block).

  Equal to `reference_attention` when the mask is causal (keys past the block's last query
  are masked anyway); `mask` still carries the diagonal blocks and the document boundaries.
  Falls back to one block when `block` does not split L.
  """
  length = q_BxLxHxDh.shape[1]
  if block <= 0 or block >= length or length % block:
    return _attend(q_BxLxHxDh, k_BxLxKxDh, v_BxLxKxDh, mask_Bx1xLxL, scale)[0]
  outs = []
  for start in range(0, length, block):
    end = start + block
    outs.append(_attend(q_BxLxHxDh[:, start:end], k_BxLxKxDh[:, :end], v_BxLxKxDh[:, :end],
                        mask_Bx1xLxL[:, :, start:end, :end], scale)[0])
  return jnp.concatenate(outs, axis=1)


@jax.named_scope("attention_core")
def fused_attention(q_BxLxHxDh, k_BxSxKxDh, v_BxSxKxDh, mask_Bx1xLxS, scale=None):
  """`jax.nn.dot_product_attention`: the backend's fused kernel where it has one."""
  return jax.nn.dot_product_attention(q_BxLxHxDh, k_BxSxKxDh, v_BxSxKxDh, mask=mask_Bx1xLxS,
                                      scale=_default_scale(q_BxLxHxDh, scale))


class Attention(nnx.Module):
  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    d, h, k, dh = cfg.d_model, cfg.num_heads, cfg.kv_heads, cfg.d_head
    init = normal(cfg.init_std)
    # GPT-2 scales the residual-branch output init by 1/sqrt(2 * num_layers).
    out_init = normal(cfg.init_std / math.sqrt(2 * cfg.num_layers))
    # K/V have their own head axis (kv_heads): with grouped-query attention there are fewer
    # of them, and a tensor-parallel mesh must divide them separately from the query heads.
    self.q_kernel = param(rngs, init, (d, h, dh), ("embed", "heads", "head_dim"))
    self.k_kernel = param(rngs, init, (d, k, dh), ("embed", "kv_heads", "head_dim"))
    self.v_kernel = param(rngs, init, (d, k, dh), ("embed", "kv_heads", "head_dim"))
    self.o_kernel = param(rngs, out_init, (h, dh, d), ("heads", "head_dim", "embed"))
    if cfg.has_qkv_bias:
      self.q_bias = param(rngs, zeros, (h, dh), ("heads", "head_dim"))
      self.k_bias = param(rngs, zeros, (k, dh), ("kv_heads", "head_dim"))
      self.v_bias = param(rngs, zeros, (k, dh), ("kv_heads", "head_dim"))
    if cfg.use_bias:
      self.o_bias = param(rngs, zeros, (d,), ("embed",))

  @jax.named_scope("attention")
  def __call__(self, x_BxLxD, positions_BxL, segment_ids_BxL, *, return_weights: bool = False,
               cache=None):
    """Returns out_BxLxD, and the weights (B, H, L, S) when `return_weights`.

    `cache` (used by the sampler; see `Transformer.init_cache`) is a dict with `k`, `v` of
    shape (B, S, K, Dh) in the compute dtype and `index` (the number of positions already
    filled); it is returned updated.
    """
    cfg = self.cfg
    dtype = compute_dtype(cfg.dtype)
    x = x_BxLxD.astype(dtype)
    batch, length, _ = x.shape
    x_2d = constrain(x.reshape(batch * length, -1), ("batch", "act_embed"))

    def project(kernel_DxHxDh, head_axis):
      # One 2-D matmul per projection: XLA:CPU runs its backward without layout copies.
      # Megatron: column-parallel (each tensor shard computes its own heads).
      d, heads, d_head = kernel_DxHxDh.shape
      out = x_2d @ kernel_DxHxDh.astype(dtype).reshape(d, heads * d_head)
      return constrain(out.reshape(batch, length, heads, d_head), ("batch", "length", head_axis, "head_dim"))

    q_BxLxHxDh = project(self.q_kernel[...], "heads")
    k_BxLxKxDh = project(self.k_kernel[...], "kv_heads")
    v_BxLxKxDh = project(self.v_kernel[...], "kv_heads")
    if cfg.has_qkv_bias:
      q_BxLxHxDh = q_BxLxHxDh + self.q_bias[...].astype(dtype)
      k_BxLxKxDh = k_BxLxKxDh + self.k_bias[...].astype(dtype)
      v_BxLxKxDh = v_BxLxKxDh + self.v_bias[...].astype(dtype)
    if cfg.positions == "rope":
      q_BxLxHxDh = apply_rope(q_BxLxHxDh, positions_BxL, cfg.rope_base)
      k_BxLxKxDh = apply_rope(k_BxLxKxDh, positions_BxL, cfg.rope_base)

    if cache is None:
      mask = attention_mask(segment_ids_BxL, cfg.causal)
      keys, values = k_BxLxKxDh, v_BxLxKxDh
    else:
      # Write the new positions into the cache, then attend over every filled slot.
      index = cache["index"]
      keys = jax.lax.dynamic_update_slice_in_dim(cache["k"], k_BxLxKxDh, index, axis=1)
      values = jax.lax.dynamic_update_slice_in_dim(cache["v"], v_BxLxKxDh, index, axis=1)
      length, slots = x.shape[1], keys.shape[1]
      query_pos = index + jnp.arange(length)
      visible_LxS = jnp.arange(slots)[None, :] <= query_pos[:, None]
      mask = jnp.broadcast_to(visible_LxS, (x.shape[0], 1, length, slots))
      cache = {"k": keys, "v": values, "index": index + length}

    weights = None
    if cfg.attention_impl == "fused" and not return_weights:
      out_BxLxHxDh = fused_attention(q_BxLxHxDh, keys, values, mask, cfg.score_scale)
    elif cfg.attention_impl == "blocked" and cache is None and cfg.causal and not return_weights:
      out_BxLxHxDh = blocked_attention(q_BxLxHxDh, keys, values, mask, cfg.attention_block,
                                       cfg.score_scale)
    else:
      out_BxLxHxDh, weights = reference_attention(q_BxLxHxDh, keys, values, mask, cfg.score_scale)
    heads, d_head, d = self.o_kernel.shape
    out_BxLxHxDh = constrain(out_BxLxHxDh, ("batch", "length", "heads", "head_dim"))
    # Row-parallel output projection: one reduction over the tensor axis.
    out_BxLxD = constrain(out_BxLxHxDh.reshape(batch * length, heads * d_head)
                          @ self.o_kernel[...].astype(dtype).reshape(heads * d_head, d),
                          ("batch", "act_embed")).reshape(batch, length, d)
    if cfg.use_bias:
      out_BxLxD = out_BxLxD + self.o_bias[...].astype(dtype)
    return out_BxLxD, weights, cache
