"""The device mesh and the rules that map logical axis names to mesh axes.

Mesh axes: `data` (batch split, parameters replicated), `fsdp` (batch split and parameters
sharded along `embed`), `tensor` (heads, kv_heads, mlp and vocab split). One model file serves
all three: only the mesh shape in the config changes. The rules are a config field
(`mesh.rules`, one entry per logical axis). A dimension that its mesh axes do not divide is
replicated instead of failing, and `replication_notes` says which and why.

The same rules place activations (`activation_layout`) and the input batch
(`batch_sharding`): the batch stays split over the `batch` rule's axes (data x fsdp)
everywhere, the residual stream's d_model (`act_embed`) is whole on each device, and heads,
the MLP width and the vocabulary are split over `tensor`. So under FSDP only weights move
(ZeRO-3: all-gathered for the forward and again for the backward, gradients reduce-
scattered), and under tensor parallelism each block half is column- then row-parallel with
one all-reduce (Megatron). An axis is used once per array: `embed`'s fsdp is taken by the
batch in an activation, which is why activations have their own `act_embed`.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from flax import nnx
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from llm_input.errors import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")
# Logical axis -> mesh axis (or axes, or None = replicated). configs/base.py's `mesh.rules`
# carries the same table so a config can change it.
DEFAULT_RULES = {
    "batch": ("data", "fsdp"),
    "vocab": "tensor",
    "embed": "fsdp",
    "heads": "tensor",
    "kv_heads": "tensor",
    "mlp": "tensor",
    "head_dim": None,
    "layers": None,
    "length": None,
    "act_embed": None,
}


def rules_from_config(rules_cfg) -> dict:
  """The `mesh.rules` section as {logical: mesh axes}, checked against the mesh axes."""
  rules = dict(rules_cfg)  # a dict or the config's ConfigDict
  for logical, target in rules.items():
    axes = () if target is None else (target,) if isinstance(target, str) else tuple(target)
    bad = [a for a in axes if a not in MESH_AXES]
    if bad:
      raise ConfigError(f"mesh.rules.{logical}: {bad} are not mesh axes; use one of "
                        f"{', '.join(MESH_AXES)}, a tuple of them, or None (replicated)")
  missing = sorted(set(DEFAULT_RULES) - set(rules))
  if missing:
    raise ConfigError(f"mesh.rules: no rule for the logical axes {missing}")
  return rules


def mesh_sizes(mesh_cfg) -> dict[str, int]:
  """The config's `mesh` section (or a dict like it) as {axis: size}; -1 still unresolved."""
  return {a: int(mesh_cfg[a]) for a in MESH_AXES}


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
    shown = dict(zip(MESH_AXES, values))
    if fill:  # a -1 axis is set: the fixed sizes' product must divide the device count
      raise ConfigError(f"mesh {shown}: the fixed sizes' product {fixed} does not divide the "
                        f"{device_count} devices, so mesh.{fill[0]}=-1 cannot take the rest; "
                        f"choose sizes whose product divides {device_count}")
    raise ConfigError(f"mesh {shown} needs {fixed} devices but {device_count} are available; "
                      "set one axis to -1 (e.g. mesh.data=-1) to use all devices, or sizes whose "
                      f"product is {device_count}")
  if fill:
    values[MESH_AXES.index(fill[0])] = device_count // fixed
  return tuple(values)


def make_mesh(sizes: dict[str, int], devices=None) -> Mesh:
  """The one mesh builder (training, `params --compile` and `preflight` all call it): the
  config's axis sizes over `devices` (default: all of them), in the physical order jax's
  mesh_utils chooses for TPUs (torus neighbours along each axis). CPU and GPU devices, and TPU
  shapes it cannot map to the torus, keep the order they are listed in."""
  devices = list(jax.devices() if devices is None else devices)
  shape = mesh_shape(sizes, len(devices))
  try:
    array = mesh_utils.create_device_mesh(shape, devices)
  except (NotImplementedError, ValueError, AssertionError):  # no torus mapping for this shape
    array = np.asarray(devices).reshape(shape)
  return Mesh(array, MESH_AXES)


def _mesh_axes_for(logical: str | None, rules: dict) -> tuple[str, ...]:
  if logical is None:
    return ()
  if logical not in rules:  # a misspelt axis name would otherwise replicate silently
    raise ValueError(f"no sharding rule for the logical axis {logical!r} (rules exist for "
                     f"{', '.join(sorted(rules))}); add it to mesh.rules and sharding.DEFAULT_RULES")
  target = rules[logical]
  if target is None:
    return ()
  return (target,) if isinstance(target, str) else tuple(target)


def _layout(shape, logical_axes, mesh: Mesh, rules) -> tuple[PartitionSpec, list[str]]:
  """PartitionSpec for an array whose dimensions carry `logical_axes`, and a note for every
  dimension that its rule would shard but whose size the mesh axes do not divide."""
  rules = dict(rules)
  used: set[str] = set()
  spec, notes = [], []
  for size, logical in zip(shape, logical_axes):
    axes = tuple(a for a in _mesh_axes_for(logical, rules) if a not in used and mesh.shape[a] > 1)
    ways = math.prod(mesh.shape[a] for a in axes)  # 1 for no axes
    if axes and size % ways == 0:
      used.update(axes)
      spec.append(axes[0] if len(axes) == 1 else axes)
    else:
      if axes:
        notes.append(f"{logical}={size} is not divisible by {'x'.join(axes)}={ways}")
      spec.append(None)
  return PartitionSpec(*spec), notes


def spec_for(shape, logical_axes, mesh: Mesh, rules=DEFAULT_RULES) -> PartitionSpec:
  """PartitionSpec for an array whose dimensions carry `logical_axes`."""
  return _layout(shape, logical_axes, mesh, rules)[0]


def _flat_params(abstract_model):
  state = nnx.state(abstract_model, nnx.Param)
  for path, var in nnx.to_flat_state(state):
    shape = var.get_value().shape
    yield path, shape, var.get_metadata().get("out_sharding") or (None,) * len(shape)


def param_shardings(abstract_model, mesh: Mesh, rules=DEFAULT_RULES) -> dict:
  """NamedShardings for the model's parameters, as a pure dict like `nnx.to_pure_dict`."""
  out: dict = {}
  for path, shape, axes in _flat_params(abstract_model):
    node = out
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = NamedSharding(mesh, spec_for(shape, axes, mesh, rules))
  return out


def replication_notes(abstract_model, mesh: Mesh, rules=DEFAULT_RULES) -> list[str]:
  """One line per parameter that its rules would shard but that stays replicated, with why
  (e.g. grouped-query K/V with fewer kv_heads than the tensor axis)."""
  out = []
  for path, shape, axes in _flat_params(abstract_model):
    notes = _layout(shape, axes, mesh, rules)[1]
    if notes:
      out.append(f"{'/'.join(map(str, path))} replicated: {'; '.join(notes)}")
  return out


def activation_layout(mesh: Mesh, rules=DEFAULT_RULES):
  """(shape, logical axes) -> NamedSharding, for `model.layers.activation_layout`."""
  rules = dict(rules)

  def layout(shape, logical_axes) -> NamedSharding:
    return NamedSharding(mesh, spec_for(shape, logical_axes, mesh, rules))

  return layout


def batch_axes(mesh: Mesh, rules=DEFAULT_RULES) -> tuple[str, ...]:
  """The mesh axes that split the batch: the `batch` rule's, as the activations use them."""
  return tuple(a for a in _mesh_axes_for("batch", dict(rules)) if mesh.shape[a] > 1)


def batch_sharding(mesh: Mesh, rules=DEFAULT_RULES) -> NamedSharding:
  """The input batch's (B, L) sharding: rows split over the `batch` rule's axes (the same
  layout the model's activations are constrained to, so the step starts without a reshard)."""
  axes = batch_axes(mesh, rules)
  return NamedSharding(mesh, PartitionSpec(axes or None, None))


def data_parallel_size(mesh: Mesh, rules=DEFAULT_RULES) -> int:
  """How many ways the batch is split (the global batch must divide by it)."""
  return math.prod(mesh.shape[a] for a in batch_axes(mesh, rules))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())
