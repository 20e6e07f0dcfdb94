"""The per-token feed-forward block: GELU (GPT-2) or SwiGLU (Shazeer 2020)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from llm_input.model.config import ModelConfig
from llm_input.model.layers import compute_dtype, constrain, normal, param, zeros


class MLP(nnx.Module):
  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    d, f = cfg.d_model, cfg.mlp_width
    init = normal(cfg.init_std)
    out_init = normal(cfg.init_std / math.sqrt(2 * cfg.num_layers))
    self.up_kernel = param(rngs, init, (d, f), ("embed", "mlp"))
    if cfg.mlp == "swiglu":
      self.gate_kernel = param(rngs, init, (d, f), ("embed", "mlp"))
    self.down_kernel = param(rngs, out_init, (f, d), ("mlp", "embed"))
    if cfg.use_bias:
      self.up_bias = param(rngs, zeros, (f,), ("mlp",))
      if cfg.mlp == "swiglu":
        self.gate_bias = param(rngs, zeros, (f,), ("mlp",))
      self.down_bias = param(rngs, zeros, (d,), ("embed",))

  @jax.named_scope("mlp")
  def __call__(self, x_BxLxD: jnp.ndarray) -> jnp.ndarray:
    cfg = self.cfg
    dtype = compute_dtype(cfg.dtype)
    batch, length, _ = x_BxLxD.shape
    # 2-D matmuls ((B*L) x D): XLA:CPU runs their backward without layout copies
    # Megatron: column-parallel in (hidden split over `mlp`), row-parallel out (one reduction).
    x = constrain(x_BxLxD.astype(dtype).reshape(batch * length, -1), ("batch", "act_embed"))
    up_BxLxF = constrain(x @ self.up_kernel[...].astype(dtype), ("batch", "mlp"))
    if cfg.use_bias:
      up_BxLxF = up_BxLxF + self.up_bias[...].astype(dtype)
    if cfg.mlp == "gelu":
      # tanh approximation, as GPT-2 ("gelu_new").
      hidden_BxLxF = jax.nn.gelu(up_BxLxF, approximate=True)
    else:
      gate_BxLxF = constrain(x @ self.gate_kernel[...].astype(dtype), ("batch", "mlp"))
      if cfg.use_bias:
        gate_BxLxF = gate_BxLxF + self.gate_bias[...].astype(dtype)
      hidden_BxLxF = jax.nn.silu(gate_BxLxF) * up_BxLxF
    hidden_BxLxF = constrain(hidden_BxLxF, ("batch", "mlp"))
    out_BxLxD = constrain(hidden_BxLxF @ self.down_kernel[...].astype(dtype), ("batch", "act_embed"))
    if cfg.use_bias:
      out_BxLxD = out_BxLxD + self.down_bias[...].astype(dtype)
    return out_BxLxD.reshape(batch, length, -1)
