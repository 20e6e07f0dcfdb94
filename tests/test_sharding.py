"""The sharding rules by hand: mesh sizes, logical axes -> PartitionSpecs, and the input batch
following the same `batch` rule as the activations. Fast (no compilation); the compiled
consequences are in test_train.py (sharded == single device) and test_hlo.py (what moves)."""

import math

import jax
import ml_collections
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from llm_input import config as config_lib
from llm_input.errors import ConfigError
from llm_input.model import transformer
from llm_input.model.config import ModelConfig
from llm_input.train import optim as optim_lib
from llm_input.train import sharding
from llm_input.train import step as step_lib
from llm_input.train import sections as sections_lib

from helpers import ROOT


def mesh(data, fsdp, tensor):
  return sharding.make_mesh(dict(data=data, fsdp=fsdp, tensor=tensor))


@pytest.mark.parametrize("sizes, devices, want", [
    (dict(data=2, fsdp=2, tensor=2), 8, (2, 2, 2)),
    (dict(data=-1, fsdp=2, tensor=1), 8, (4, 2, 1)),
    (dict(data=1, fsdp=-1, tensor=4), 8, (1, 2, 4)),
    (dict(data=1, fsdp=1, tensor=-1), 1, (1, 1, 1)),
    (dict(data=-1, fsdp=1, tensor=1), 6, (6, 1, 1)),
])
def test_mesh_shape_resolves_the_minus_one_axis(sizes, devices, want):
  assert sharding.mesh_shape(sizes, devices) == want


@pytest.mark.parametrize("sizes, devices, message", [
    (dict(data=-1, fsdp=-1, tensor=1), 8, "only one axis may be -1"),
    (dict(data=0, fsdp=1, tensor=8), 8, "must be positive or -1"),
    (dict(data=-2, fsdp=4, tensor=1), 8, "must be positive or -1"),
    (dict(data=4, fsdp=4, tensor=1), 8, r"needs 16 devices but 8 are available; set one axis to -1 "
                                        r"\(e.g. mesh.data=-1\) to use all devices, or sizes whose product is 8"),
    (dict(data=2, fsdp=2, tensor=1), 8, r"needs 4 devices but 8"),  # no -1 to fill the rest
    # data is already -1: the message must not recommend it, but say 3 does not divide 8
    (dict(data=-1, fsdp=3, tensor=1), 8, r"^mesh \{.*\}: the fixed sizes' product 3 does not divide the 8 "
                                         r"devices, so mesh.data=-1 cannot take the rest; choose sizes "
                                         r"whose product divides 8$"),
    (dict(data=-1, fsdp=16, tensor=1), 8, r"product 16 does not divide the 8 devices"),
])
def test_mesh_shape_refuses_what_the_devices_cannot_hold(sizes, devices, message):
  with pytest.raises(ConfigError, match=message):
    sharding.mesh_shape(sizes, devices)


def test_mesh_sizes_reads_the_config_section():
  cfg = config_lib.load(str(ROOT / "configs/tiny.py"), ["--config.mesh.data=1", "--config.mesh.fsdp=-1",
                                                         "--config.mesh.tensor=2"])
  assert sharding.mesh_sizes(cfg.mesh) == {"data": 1, "fsdp": -1, "tensor": 2}
  built = sharding.make_mesh(sharding.mesh_sizes(cfg.mesh))
  assert dict(built.shape) == {"data": 1, "fsdp": 4, "tensor": 2}
  assert built.axis_names == sharding.MESH_AXES


def test_rules_from_config_accepts_axes_tuples_and_none_and_names_a_bad_rule():
  rules = {**sharding.DEFAULT_RULES, "batch": ["data"], "mlp": None, "vocab": ("tensor", "fsdp")}
  got = sharding.rules_from_config(ml_collections.ConfigDict(rules))
  assert got["batch"] == ("data",) or got["batch"] == ["data"]
  assert got["mlp"] is None and tuple(got["vocab"]) == ("tensor", "fsdp")
  assert sharding.rules_from_config(sharding.DEFAULT_RULES) == sharding.DEFAULT_RULES
  with pytest.raises(ConfigError, match=r"mesh.rules.heads: \['model'\] are not mesh axes; use one of "
                                        r"data, fsdp, tensor, a tuple of them"):
    sharding.rules_from_config({**sharding.DEFAULT_RULES, "heads": "model"})
  with pytest.raises(ConfigError, match=r"mesh.rules.batch: \['pipe'\]"):
    sharding.rules_from_config({**sharding.DEFAULT_RULES, "batch": ("data", "pipe")})
  missing = {k: v for k, v in sharding.DEFAULT_RULES.items() if k not in ("length", "embed")}
  with pytest.raises(ConfigError, match=r"no rule for the logical axes \['embed', 'length'\]"):
    sharding.rules_from_config(missing)


@pytest.mark.parametrize("sizes, shape, axes, want", [
    # the batch over both batch axes; d_model of an activation whole
    ((2, 2, 2), (16, 8, 32), ("batch", "length", "act_embed"), P(("data", "fsdp"), None, None)),
    # an embedding table: vocab over tensor, embed over fsdp
    ((2, 2, 2), (64, 32), ("vocab", "embed"), P("tensor", "fsdp")),
    # an axis of size 1 is left out, so a single remaining axis is named alone
    ((8, 1, 1), (16, 32), ("batch", "act_embed"), P("data", None)),
    ((1, 8, 1), (16, 32), ("batch", "act_embed"), P("fsdp", None)),
    ((8, 1, 1), (64, 32), ("vocab", "embed"), P(None, None)),
    # a mesh axis is used once per array: the second `embed` stays whole
    ((1, 8, 1), (32, 32), ("embed", "embed"), P("fsdp", None)),
    ((1, 2, 4), (16, 32, 4, 8), ("batch", "act_embed", "heads", "head_dim"), P("fsdp", None, "tensor", None)),
    # no logical axis (None) or one without a rule: replicated
    ((2, 2, 2), (64, 32), (None, "layers"), P(None, None)),
    # sizes the axes do not divide stay whole
    ((2, 2, 2), (61, 32), ("vocab", "embed"), P(None, "fsdp")),
    ((2, 2, 2), (6, 32), ("batch", "act_embed"), P(None, None)),
])
def test_logical_axes_to_partition_specs_by_hand(sizes, shape, axes, want):
  assert sharding.spec_for(shape, axes, mesh(*sizes)) == want


def test_a_logical_axis_without_a_rule_is_an_error_not_a_silent_replication():
  """Bug: a misspelt axis name in a model's constraint or parameter replicating that array."""
  with pytest.raises(ValueError, match=r"no sharding rule for the logical axis 'act_embd' \(rules exist for "
                                      r"act_embed, batch, embed, head_dim, heads, kv_heads, layers, length"):
    sharding.spec_for((16, 32), ("batch", "act_embd"), mesh(2, 2, 2))
  layout = sharding.activation_layout(mesh(8, 1, 1))
  with pytest.raises(ValueError, match="'bacth'"):
    layout((16, 32), ("bacth", "act_embed"))


def test_replication_notes_say_which_dimension_and_why():
  spec, notes = sharding._layout((61, 6, 32), ("vocab", "batch", "embed"), mesh(2, 2, 2), sharding.DEFAULT_RULES)
  assert spec == P(None, None, "fsdp")
  assert notes == ["vocab=61 is not divisible by tensor=2", "batch=6 is not divisible by dataxfsdp=4"]
  # size-1 axes are no sharding at all, so nothing to note
  assert sharding._layout((61,), ("vocab",), mesh(8, 1, 1), sharding.DEFAULT_RULES)[1] == []


def test_param_shardings_mirror_the_parameter_tree_and_follow_the_rules():
  cfg = ModelConfig(vocab_size=64, d_model=32, num_layers=2, num_heads=4, max_len=16,
                    positions="learned", tie_embeddings=False)
  abstract = transformer.abstract(cfg)
  devices_mesh = mesh(2, 2, 2)
  shardings = sharding.param_shardings(abstract, devices_mesh)
  pure = nnx.to_pure_dict(nnx.state(abstract, nnx.Param))
  assert jax.tree.structure(shardings) == jax.tree.structure(pure)
  for (path, shape, axes), leaf in zip(sharding._flat_params(abstract), jax.tree.leaves(shardings)):
    assert leaf.mesh is devices_mesh
    assert leaf.spec == sharding.spec_for(shape, axes, devices_mesh), path
  # spot checks against the model's own axis names: the scanned blocks keep layers whole
  up = shardings["blocks"]["mlp"]["up_kernel"].spec
  assert up == P(None, "fsdp", "tensor")
  rules = {**sharding.DEFAULT_RULES, "mlp": None, "embed": None}
  assert sharding.param_shardings(abstract, devices_mesh, rules)["blocks"]["mlp"]["up_kernel"].spec == P(None, None, None)
  assert sharding.replication_notes(abstract, devices_mesh) == []
  # two dimensions the mesh does not divide: one line for the parameter, both reasons
  odd = transformer.abstract(ModelConfig(vocab_size=61, d_model=30, num_layers=1, num_heads=3, max_len=16,
                                         positions="none"))
  notes = sharding.replication_notes(odd, sharding.make_mesh(dict(data=1, fsdp=4, tensor=2)))
  assert "blocks/attention/k_kernel replicated: embed=30 is not divisible by fsdp=4; kv_heads=3 is not " \
         "divisible by tensor=2" in notes


def test_a_parameter_without_logical_axes_is_replicated():
  class Plain(nnx.Module):
    def __init__(self):
      self.w = nnx.Param(jax.numpy.ones((8, 4)))

  assert sharding.param_shardings(Plain(), mesh(2, 2, 2))["w"].spec == P(None, None)


@pytest.mark.parametrize("batch_rule, sizes, want_ways", [
    (("data", "fsdp"), (2, 2, 2), 4),
    (("data",), (2, 2, 2), 2),
    (("fsdp",), (2, 4, 1), 4),
    (None, (1, 1, 8), 1),
    (("data", "fsdp"), (1, 1, 8), 1),
])
def test_input_batch_follows_the_batch_rule_like_the_activations(batch_rule, sizes, want_ways):
  """Bug: the input split over fixed axes while the activations follow `mesh.rules.batch`
  (the step would start by resharding its whole batch)."""
  rules = {**sharding.DEFAULT_RULES, "batch": batch_rule}
  m = mesh(*sizes)
  assert sharding.data_parallel_size(m, rules) == want_ways
  inputs = sharding.batch_sharding(m, rules)
  activations = sharding.activation_layout(m, rules)((8, 16), ("batch", "length"))
  assert inputs.is_equivalent_to(activations, 2)
  # each device holds 8 / ways rows and every column
  assert inputs.shard_shape((8, 16)) == (8 // want_ways, 16)


def test_a_batch_split_fewer_ways_than_the_processes_is_refused(monkeypatch):
  cfg = config_lib.load(str(ROOT / "configs/tiny.py"), ["--config.mesh.data=1", "--config.mesh.tensor=8",
                                                      "--config.data.batch_size=8"])
  sections_lib.validate(cfg)  # one process: fine
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  with pytest.raises(ConfigError, match=r"splits the batch 1 ways .* over the 2 processes"):
    sections_lib.validate(cfg)


def test_the_trainer_places_parameters_and_the_batch_by_the_config_rules():
  """Bug: the trainer building its shardings from the default rules, not the config's."""
  cfg = ModelConfig(vocab_size=64, d_model=32, num_layers=2, num_heads=4, max_len=16)
  m = mesh(2, 2, 2)
  rules = {**sharding.DEFAULT_RULES, "kv_heads": None, "batch": ("data",)}
  trainer = step_lib.Trainer(cfg, optim_lib.OptimConfig(), m, rules=rules)
  attention = trainer.state_shardings["params"]["blocks"]["attention"]
  assert attention["k_kernel"].spec == P(None, "fsdp", None, None)  # kv_heads kept whole
  assert attention["q_kernel"].spec == P(None, "fsdp", "tensor", None)
  assert trainer.batch_sharding.is_equivalent_to(sharding.batch_sharding(m, rules), 2)
  assert trainer.batch_sharding.shard_shape((8, 16)) == (4, 16)
  assert trainer.data_parallel == 2
  # the activations follow the same rules: kv heads whole, the batch over data only
  kv_BxLxKxDh = trainer.activation_layout((8, 16, 4, 8), ("batch", "length", "kv_heads", "head_dim"))
  assert kv_BxLxKxDh.is_equivalent_to(NamedSharding(m, P("data", None, None, None)), 4)
  # and the initial state is built in place, each array already split as its sharding says
  state = trainer.init_state()
  for array, want in zip(jax.tree.leaves(state), jax.tree.leaves(trainer.state_shardings), strict=True):
    assert array.sharding.is_equivalent_to(want, array.ndim)
  # Adam's two moments are split exactly like the parameters: per device, the optimizer state
  # holds twice the parameters' local elements (plus its scalar step counters)
  shapes, shardings = trainer.abstract_state, trainer.state_shardings
  local = lambda part: [math.prod(s.shard_shape(a.shape)) for a, s in
                        zip(jax.tree.leaves(shapes[part]), jax.tree.leaves(shardings[part]), strict=True)]
  scalars = sum(a.ndim == 0 for a in jax.tree.leaves(shapes["opt_state"]))
  assert sum(local("opt_state")) - scalars == 2 * sum(local("params")) < 2 * transformer.count_params(cfg)
  default = step_lib.Trainer(cfg, optim_lib.OptimConfig(), m)
  assert default.state_shardings["params"]["blocks"]["attention"]["k_kernel"].spec == P(None, "fsdp", "tensor", None)
  assert default.data_parallel == 4
