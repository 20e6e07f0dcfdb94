"""Small shared pieces: parameters and activations that carry logical axis names, and the
dtype policy.

Every parameter is float32 and names its axes (`vocab`, `embed`, `heads`, `kv_heads`, `mlp`,
`head_dim`, `layers`); activations name theirs at the points that decide the partitioned
layout (`constrain`: `batch`, `length`, `act_embed`, `heads`, `kv_heads`, `head_dim`, `mlp`,
`vocab`). `llm_input.train.sharding` maps those names to mesh axes by rules. The model never
sees a mesh: the train step traces it inside `activation_layout(...)`, which turns each
`constrain` into a sharding constraint; outside it (sampling, analysis) `constrain` is a no-op.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx


def param(rngs: nnx.Rngs, init, shape: tuple[int, ...], axes: tuple[str | None, ...]) -> nnx.Param:
  """A float32 parameter initialised by `init` with logical axis names `axes`."""
  assert len(shape) == len(axes), (shape, axes)
  # eager_sharding=False: the model only names axes; the train step places arrays on the
  # mesh through jit out_shardings, so the model builds with or without a mesh.
  return nnx.Param(init(rngs.params(), shape, jnp.float32), out_sharding=axes,
                   eager_sharding=False)


def normal(std: float):
  return jax.nn.initializers.normal(stddev=std)


zeros = jax.nn.initializers.zeros
ones = jax.nn.initializers.ones


def compute_dtype(name: str):
  return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[name]


# (shape, logical axes) -> a jax.sharding.Sharding, set while the train step is traced.
_ACTIVATION_LAYOUT: contextvars.ContextVar[Callable | None] = contextvars.ContextVar(
    "activation_layout", default=None)


@contextlib.contextmanager
def activation_layout(layout: Callable | None):
  """Within this block, `constrain(x, axes)` pins x to `layout(x.shape, axes)`."""
  token = _ACTIVATION_LAYOUT.set(layout)
  try:
    yield
  finally:
    _ACTIVATION_LAYOUT.reset(token)


def constrain(x: jax.Array, axes: tuple[str | None, ...]) -> jax.Array:
  """Names x's dimensions for the partitioner. Without these, XLA is free to shard a
  matmul's contraction dimension and gather the whole batch's activations instead of the
  weights (see tests/test_hlo.py)."""
  layout = _ACTIVATION_LAYOUT.get()
  if layout is None:
    return x
  assert x.ndim == len(axes), (x.shape, axes)
  return jax.lax.with_sharding_constraint(x, layout(x.shape, axes))
