"""Where position enters: none, a learned absolute table, fixed sinusoids, or rotary (RoPE).

Positions always come from the batch (per-document positions after packing), never from
`arange`, so every packed document starts at position 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from llm_input.model.config import ModelConfig
from llm_input.model.layers import constrain, normal, param


def sinusoidal(positions_BxL: jnp.ndarray, d_model: int) -> jnp.ndarray:
  """Vaswani et al. (2017): PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(same)."""
  i = jnp.arange(d_model // 2, dtype=jnp.float32)
  inv_freq = 1.0 / (10000.0 ** (2.0 * i / d_model))
  angle_BxLxF = positions_BxL[..., None].astype(jnp.float32) * inv_freq
  pe = jnp.stack([jnp.sin(angle_BxLxF), jnp.cos(angle_BxLxF)], axis=-1)  # interleave sin, cos
  pe_BxLxD = pe.reshape(*positions_BxL.shape, 2 * (d_model // 2))
  if d_model % 2:
    pe_BxLxD = jnp.pad(pe_BxLxD, ((0, 0), (0, 0), (0, 1)))
  return pe_BxLxD


def apply_rope(x_BxLxHxDh: jnp.ndarray, positions_BxL: jnp.ndarray, base: float) -> jnp.ndarray:
  """RoFormer rotary embedding: rotate each pair of dimensions by angle p * base^(-2i/Dh).

  Pairs are (i, i + Dh/2) (the "rotate half" layout), a fixed permutation of RoFormer's
  adjacent pairs with identical properties: q.k after rotation depends only on i - j.
  Computed in float32 and cast back.
  """
  d_head = x_BxLxHxDh.shape[-1]
  half = d_head // 2
  inv_freq = base ** (-jnp.arange(half, dtype=jnp.float32) * 2.0 / d_head)
  angle_BxLxF = positions_BxL[..., None].astype(jnp.float32) * inv_freq
  sin = jnp.sin(angle_BxLxF)[:, :, None, :]
  cos = jnp.cos(angle_BxLxF)[:, :, None, :]
  x = x_BxLxHxDh.astype(jnp.float32)
  x1, x2 = x[..., :half], x[..., half:]
  rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return rotated.astype(x_BxLxHxDh.dtype)


class AbsolutePositions(nnx.Module):
  """Adds a position vector to each token vector (learned or sinusoidal); `none` adds nothing.

  RoPE is applied inside attention instead, so here it is a no-op as well.
  """

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    if cfg.positions == "learned":
      # GPT-2 initialises its position table with std 0.01.
      self.table = param(rngs, normal(cfg.init_std / 2), (cfg.max_len, cfg.d_model), (None, "embed"))

  @jax.named_scope("positions")
  def __call__(self, x_BxLxD: jnp.ndarray, positions_BxL: jnp.ndarray) -> jnp.ndarray:
    kind = self.cfg.positions
    if kind == "learned":
      # Indices past max_len would be clamped by XLA; the config forbids seq_len > max_len.
      # Gathered along d_model like any weight, so the positions stay on their device.
      table_PxD = constrain(self.table[...], (None, "act_embed"))
      return x_BxLxD + jnp.take(table_PxD, positions_BxL, axis=0).astype(x_BxLxD.dtype)
    if kind == "sinusoidal":
      return x_BxLxD + sinusoidal(positions_BxL, self.cfg.d_model).astype(x_BxLxD.dtype)
    return x_BxLxD
