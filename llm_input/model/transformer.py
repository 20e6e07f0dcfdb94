"""The decoder: embed, add positions, a stack of pre-norm blocks, final norm, logits.

block(x) = x + attention(norm(x)); x + mlp(norm(x)). The blocks' parameters are stacked
along a leading `layers` axis and run with `jax.lax.scan`, so compile time does not grow
with depth; `scan_layers=False` runs the same stacked parameters in an unrolled Python loop.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from llm_input.model.attention import Attention
from llm_input.model.config import ModelConfig
from llm_input.model.embedding import Embedding
from llm_input.model.layers import compute_dtype, constrain, ones, param, zeros
from llm_input.model.mlp import MLP
from llm_input.model.positions import AbsolutePositions


class Norm(nnx.Module):
  """LayerNorm (scale and bias) or RMSNorm (scale only), computed in float32."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.kind, self.eps = cfg.norm, cfg.norm_eps
    self.scale = param(rngs, ones, (cfg.d_model,), ("embed",))
    if cfg.norm == "layernorm":
      self.bias = param(rngs, zeros, (cfg.d_model,), ("embed",))

  @jax.named_scope("norm")
  def __call__(self, x_BxLxD: jnp.ndarray) -> jnp.ndarray:
    x = x_BxLxD.astype(jnp.float32)
    if self.kind == "layernorm":
      x = x - jnp.mean(x, axis=-1, keepdims=True)
    x = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + self.eps)
    x = x * self.scale[...]
    if self.kind == "layernorm":
      x = x + self.bias[...]
    return x.astype(x_BxLxD.dtype)


class Block(nnx.Module):
  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.attention_norm = Norm(cfg, rngs=rngs)
    self.attention = Attention(cfg, rngs=rngs)
    self.mlp_norm = Norm(cfg, rngs=rngs)
    self.mlp = MLP(cfg, rngs=rngs)

  def __call__(self, x_BxLxD, positions_BxL, segment_ids_BxL, *, return_weights=False, cache=None):
    attended, weights, cache = self.attention(self.attention_norm(x_BxLxD), positions_BxL,
                                              segment_ids_BxL, return_weights=return_weights,
                                              cache=cache)
    x_BxLxD = x_BxLxD + attended
    x_BxLxD = x_BxLxD + self.mlp(self.mlp_norm(x_BxLxD))
    return x_BxLxD, weights, cache


_ACT = ("batch", "length", "act_embed")  # the residual stream's logical axes

_REMAT_POLICIES = {
    "full": None,  # save nothing, recompute the block in the backward pass
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class Transformer(nnx.Module):
  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    self.embedding = Embedding(cfg, rngs=rngs)
    self.positions = AbsolutePositions(cfg, rngs=rngs)

    @nnx.split_rngs(splits=cfg.num_layers)
    @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
    def make_blocks(rngs):
      return Block(cfg, rngs=rngs)

    self.blocks = make_blocks(rngs)
    self.final_norm = Norm(cfg, rngs=rngs)

  def __call__(self, ids_BxL, positions_BxL=None, segment_ids_BxL=None, *,
               return_attention: bool = False, cache=None, features: bool = False):
    """Next-token logits (B, L, V) in float32.

    `positions_BxL` and `segment_ids_BxL` come from the packed batch; when omitted, the input
    is one document per row starting at position 0. With `return_attention`, also returns the
    attention weights of every layer, (layers, B, H, L, L). With `cache` (see `init_cache`),
    returns (logits, updated cache). With `features`, the final-normed vectors (B, L, D) instead
    of logits.
    """
    cfg = self.cfg
    if positions_BxL is None:
      positions_BxL = jnp.broadcast_to(jnp.arange(ids_BxL.shape[1]), ids_BxL.shape)
    if segment_ids_BxL is None:
      segment_ids_BxL = jnp.ones(ids_BxL.shape, jnp.int32)
    x_BxLxD = constrain(self.positions(self.embedding(ids_BxL), positions_BxL), _ACT)

    graphdef, stacked = nnx.split(self.blocks)

    def run_block(x, layer_state, layer_cache):
      block = nnx.merge(graphdef, layer_state)
      x, weights, layer_cache = block(constrain(x, _ACT), positions_BxL, segment_ids_BxL,
                                      return_weights=return_attention, cache=layer_cache)
      return constrain(x, _ACT), (weights, layer_cache)

    if cfg.remat != "none":
      run_block = jax.checkpoint(run_block, policy=_REMAT_POLICIES[cfg.remat])

    if cfg.scan_layers:
      x_BxLxD, (weights, cache) = jax.lax.scan(
          lambda x, layer: run_block(x, *layer), x_BxLxD, (stacked, cache))
    else:
      outputs = []
      for i in range(cfg.num_layers):
        take = lambda tree: jax.tree.map(lambda a: a[i], tree)  # noqa: E731
        x_BxLxD, out = run_block(x_BxLxD, take(stacked), None if cache is None else take(cache))
        outputs.append(out)
      weights, cache = jax.tree.map(lambda *xs: jnp.stack(xs), *outputs) if outputs else (None, None)

    if features:  # the final vectors, before the output head (the train step's fused loss)
      return self.final_norm(x_BxLxD)
    logits_BxLxV = self.embedding.logits(self.final_norm(x_BxLxD))
    if cache is not None:
      return logits_BxLxV, cache
    if return_attention:
      return logits_BxLxV, weights
    return logits_BxLxV

  def init_cache(self, batch: int, max_len: int):
    """An empty KV cache for `max_len` positions, stacked over layers."""
    cfg = self.cfg
    shape = (cfg.num_layers, batch, max_len, cfg.kv_heads, cfg.d_head)
    dtype = compute_dtype(cfg.dtype)
    return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype),
            "index": jnp.zeros((cfg.num_layers,), jnp.int32)}


def create(cfg: ModelConfig, seed: int = 0) -> Transformer:
  return Transformer(cfg, rngs=nnx.Rngs(params=seed))


def abstract(cfg: ModelConfig) -> Transformer:
  """The model with shapes only (`jax.eval_shape`): nothing is allocated."""
  return nnx.eval_shape(lambda: create(cfg))


def count_params(model_or_cfg) -> int:
  model = abstract(model_or_cfg) if isinstance(model_or_cfg, ModelConfig) else model_or_cfg
  return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def param_table(model_or_cfg) -> list[tuple[str, tuple[int, ...], tuple, int]]:
  """(path, shape, logical axes, count) for every parameter, in a stable order."""
  model = abstract(model_or_cfg) if isinstance(model_or_cfg, ModelConfig) else model_or_cfg
  rows = []
  for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
    name = ".".join(str(p) for p in path)
    axes = tuple(var.get_metadata().get("out_sharding") or ())
    shape = tuple(var.get_value().shape)
    rows.append((name, shape, axes, int(math.prod(shape))))
  return rows
