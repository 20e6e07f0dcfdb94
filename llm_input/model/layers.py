"""Small shared pieces: parameters that carry logical axis names, and the dtype policy.

Every parameter is float32 and names its axes (`vocab`, `embed`, `heads`, `kv`, `mlp`,
`layers`); `llm_input.train.sharding` maps those names to mesh axes by rules.
"""

from __future__ import annotations

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
