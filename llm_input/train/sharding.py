"""The device mesh and the rules that map logical axis names to mesh axes.

Mesh axes: `data` (batch split, parameters replicated), `fsdp` (batch split and parameters
sharded along `embed`), `tensor` (heads, mlp and vocab split). One model file serves all three:
only the mesh shape in the config changes. A dimension that a mesh axis does not divide is
replicated instead of failing.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from llm_input.model.config import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")
DEFAULT_RULES = (
    ("batch", ("data", "fsdp")),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("mlp", "tensor"),
    ("kv", None),
    ("layers", None),
)


def mesh_shape(sizes: dict[str, int], device_count: int) -> tuple[int, ...]:
  """Resolves the config's axis sizes; one -1 takes the remaining devices."""
  values = [int(sizes[a]) for a in MESH_AXES]
  fill = [a for a, v in zip(MESH_AXES, values) if v == -1]
  if len(fill) > 1:
    raise ConfigError(f"mesh: only one axis may be -1, got {dict(zip(MESH_AXES, values))}")
  if any(v == 0 or v < -1 for v in values):
    raise ConfigError(f"mesh: sizes must be positive or -1, got {dict(zip(MESH_AXES, values))}")
  fixed = math.prod(v for v in values if v != -1)
  if fixed > device_count or (not fill and fixed != device_count) or device_count % fixed:
    raise ConfigError(f"mesh {dict(zip(MESH_AXES, values))} needs {fixed} devices"
                      f"{' (times the -1 axis)' if fill else ''} but {device_count} are available;"
                      " set mesh.data=-1 to use all devices, or sizes whose product divides "
                      f"{device_count}")
  if fill:
    values[MESH_AXES.index(fill[0])] = device_count // fixed
  return tuple(values)


def make_mesh(sizes: dict[str, int], devices=None) -> Mesh:
  devices = list(jax.devices() if devices is None else devices)
  shape = mesh_shape(sizes, len(devices))
  return Mesh(np.asarray(devices).reshape(shape), MESH_AXES)


def _mesh_axes_for(logical: str | None, rules: dict) -> tuple[str, ...]:
  if logical is None:
    return ()
  target = rules.get(logical)
  if target is None:
    return ()
  return (target,) if isinstance(target, str) else tuple(target)


def spec_for(shape, logical_axes, mesh: Mesh, rules=DEFAULT_RULES) -> PartitionSpec:
  """PartitionSpec for an array whose dimensions carry `logical_axes`."""
  rules = dict(rules)
  used: set[str] = set()
  spec = []
  for size, logical in zip(shape, logical_axes):
    axes = tuple(a for a in _mesh_axes_for(logical, rules) if a not in used and mesh.shape[a] > 1)
    if axes and size % math.prod(mesh.shape[a] for a in axes) == 0:
      used.update(axes)
      spec.append(axes[0] if len(axes) == 1 else axes)
    else:
      spec.append(None)
  return PartitionSpec(*spec)


def param_shardings(abstract_model, mesh: Mesh, rules=DEFAULT_RULES) -> dict:
  """NamedShardings for the model's parameters, as a pure dict like `nnx.to_pure_dict`."""
  state = nnx.state(abstract_model, nnx.Param)
  out: dict = {}
  for path, var in nnx.to_flat_state(state):
    axes = var.get_metadata().get("out_sharding") or (None,) * len(var.get_value().shape)
    node = out
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = NamedSharding(mesh, spec_for(var.get_value().shape, axes, mesh, rules))
  return out


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(BATCH_AXES, None))


def data_parallel_size(mesh: Mesh) -> int:
  return math.prod(mesh.shape[a] for a in BATCH_AXES)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def memory_per_device(model_cfg, batch_size: int, seq_len: int, mesh_sizes: dict[str, int],
                      device_count: int) -> dict[str, float]:
  """An estimate of training memory per device, in bytes, before anything is allocated.

  Parameters, gradients and AdamW's two moments are float32 (16 bytes per parameter), split
  over the fsdp x tensor shards. Activations kept for the backward pass follow Korthikanti et
  al. (2022): per layer s*b*d*(34 + 5*heads*s/d) bytes at 16-bit (doubled for float32); with
  full remat only each block's input (2*s*b*d at 16-bit) is kept. Batch is split over
  data x fsdp, activations also over tensor. Logits (b*s*vocab, float32, twice for the loss
  and its gradient) are added once.
  """
  from llm_input.model import transformer  # noqa: PLC0415

  data, fsdp, tensor = mesh_shape(mesh_sizes, device_count)
  params = transformer.count_params(model_cfg)
  state = 16 * params / (fsdp * tensor)
  local_batch = batch_size / (data * fsdp)
  width = 2 if model_cfg.dtype == "bfloat16" else 4
  s, d, heads = seq_len, model_cfg.d_model, model_cfg.num_heads
  if model_cfg.remat == "full":
    per_layer = 2 * s * local_batch * d * width / 2
  else:
    per_layer = s * local_batch * d * (34 + 5 * heads * s / d) * width / 2
  activations = model_cfg.num_layers * per_layer / tensor
  logits = 2 * 4 * local_batch * s * model_cfg.vocab_size / tensor
  return {"params": params, "mesh": dict(zip(MESH_AXES, (data, fsdp, tensor))),
          "state_bytes": state, "activation_bytes": activations, "logits_bytes": logits,
          "total_bytes": state + activations + logits}
