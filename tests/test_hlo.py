"""What the partitioned train step moves, read from the compiled HLO on 8 simulated devices.

Numerical equality of sharded and single-device steps (test_train.py) cannot see a step that
gathers the whole batch's activations instead of the weights: the numbers are the same, only
memory and communication differ. These tests compile the real step ahead of time for a
2-layer model with GPT-2 small's shapes (768 wide, 12 heads, MLP 3072) and read every
collective (`llm_input.train.compiled`).

Global batch 16 x 128 = 2048 tokens: no parameter dimension equals 16 or 2048, so a
collective with such a dimension carries the whole batch's activations or logits. The learned
position table has 512 rows (not 1024), so that no parameter is as big as 1024 local tokens'
d_model vectors either.
"""

import importlib.util
import json
import math

import jax
import pytest

from llm_input import config as config_lib
from llm_input.errors import ConfigError
from llm_input.model import transformer
from llm_input.train import compiled, sharding
from llm_input.train.optim import OptimConfig
from llm_input.train.step import Trainer
from llm_input.train import sections as sections_lib

BATCH, LENGTH, LAYERS = 16, 128, 2
_CACHE: dict = {}


def analyze(mesh_sizes: dict, batch=BATCH, length=LENGTH, overrides=(), devices=None) -> dict:
  """Compiled step of the 2-layer GPT-2-small-shaped model on a mesh (cached per module)."""
  key = (tuple(sorted(mesh_sizes.items())), batch, length, tuple(overrides), devices)
  if key not in _CACHE:
    cfg = config_lib.load("configs/gpt2_small.py", [f"model.num_layers={LAYERS}",
                                                    f"data.batch_size={batch}",
                                                    f"data.seq_len={length}", "model.max_len=512",
                                                    *overrides])
    model_cfg = sections_lib.model_config(cfg)
    mesh = sharding.make_mesh(mesh_sizes, jax.devices()[:devices] if devices else None)
    trainer = Trainer(model_cfg, OptimConfig.from_config(cfg), mesh,
                      rules=sharding.rules_from_config(cfg.mesh.rules))
    result = compiled.analyze_step(trainer, batch, length)
    result["model"] = model_cfg
    # Bytes of every weight (one layer's slice of a stacked one), whole or split 2, 4 or 8 ways.
    result["weight_sizes"] = {4 * math.prod(shape[1:] if axes and axes[0] == "layers" else shape)
                              for _, shape, axes, _ in transformer.param_table(model_cfg)}
    result["param_sizes"] = {size // k for size in result["weight_sizes"] for k in (1, 2, 4, 8)}
    result["param_bytes"] = 4 * transformer.count_params(model_cfg)
    _CACHE[key] = result
  return _CACHE[key]


BATCH_SHARDED = {
    "data8": {"data": 8, "fsdp": 1, "tensor": 1},
    "fsdp8": {"data": 1, "fsdp": 8, "tensor": 1},
    "fsdp2_tensor4": {"data": 1, "fsdp": 2, "tensor": 4},
    "data2_tensor4": {"data": 2, "fsdp": 1, "tensor": 4},
    "data2_fsdp2_tensor2": {"data": 2, "fsdp": 2, "tensor": 2},
}


@pytest.mark.parametrize("name", list(BATCH_SHARDED))
def test_no_collective_carries_the_global_batch(name):
  result = analyze(BATCH_SHARDED[name])
  bad = [c for c in result["collectives"] if BATCH in c["shape"] or BATCH * LENGTH in c["shape"]]
  assert not bad, f"{name}: collectives over the whole batch: {bad}"


def test_fsdp_moves_only_weights_and_at_most_three_times_their_bytes():
  """ZeRO-3: each weight is all-gathered for the forward and again for the backward, and its
  gradient reduced once: 3 x the float32 parameter bytes (the tied embedding: one gather,
  kept for the head's backward, and two gradient reductions, lookup and head; the learned
  position table: one gather, one reduction). Everything else is scalar bookkeeping."""
  result = analyze(BATCH_SHARDED["fsdp8"])
  for c in result["collectives"]:
    assert c["bytes"] <= 8 or c["bytes"] in result["weight_sizes"], f"not a whole weight: {c}"
  ratio = result["communication_bytes_per_step"] / result["param_bytes"]
  assert ratio <= 3.01, ratio
  assert ratio >= 2.5, ratio  # the weights do move (the test is not vacuous)


def test_data_parallel_reduces_each_gradient_once():
  result = analyze(BATCH_SHARDED["data8"])
  assert {c["op"] for c in result["collectives"] if c["bytes"] > 8} == {"all-reduce"}
  ratio = result["communication_bytes_per_step"] / result["param_bytes"]
  # Every gradient once, the tied table twice (lookup and head reduced separately).
  table = 4 * result["model"].vocab_size * result["model"].d_model
  assert ratio == pytest.approx(1 + table / result["param_bytes"], abs=0.01)


def test_tensor_parallel_is_megatron():
  """Column-parallel Q/K/V and MLP-in, row-parallel out: activations cross devices only as
  all-reduces of the local tokens' d_model vectors: 2 per layer forward (one per block half)
  and at most 4 backward (XLA:CPU reduces Q, K and V's input gradients separately; XLA:TPU
  reassociates them), plus one for the vocabulary-parallel lookup and one for the head's
  input gradient. The head's logits stay split over the vocabulary (padded to 50304 so that
  4 divides it), so only per-position sums over it (log Z, max, target) are reduced."""
  result = analyze({"data": 2, "fsdp": 1, "tensor": 4}, overrides=("model.vocab_size=50304",))
  local_tokens, d = BATCH // 2 * LENGTH, result["model"].d_model
  activations = [c for c in result["collectives"] if c["bytes"] > 8 and not c["bytes"] in result["param_sizes"]]
  by_shape = {tuple(c["shape"]): c for c in activations}
  megatron = by_shape.pop((local_tokens, d))
  assert megatron["op"] == "all-reduce"
  assert 2 * LAYERS + 2 <= megatron["count"] <= 6 * LAYERS + 2
  lookup = by_shape.pop((BATCH // 2, LENGTH, d), None)
  assert lookup is None or lookup["count"] == 1
  # What is left: the loss's per-position reductions over the vocabulary shards.
  assert all(tuple(c["shape"]) == (BATCH // 2, LENGTH) for c in by_shape.values()), by_shape
  assert not [c for c in result["collectives"] if 50304 in c["shape"]]


def test_fsdp_temporaries_close_to_one_device_with_the_local_batch():
  """Per-device temporaries under fsdp=8 vs one device compiling the same local batch: the
  extra is the gathered weights of one layer and the tied table (measured 1.10x at
  16 x 512 on XLA:CPU; before activation constraints, 3x)."""
  length = 512
  sharded = analyze({"data": 1, "fsdp": 8, "tensor": 1}, length=length)
  single = analyze({"data": 1, "fsdp": 1, "tensor": 1}, batch=BATCH // 8, length=length, devices=1)
  ratio = sharded["memory"]["temp_bytes"] / single["memory"]["temp_bytes"]
  assert ratio <= 1.25, ratio
  # Arguments: the state split 8 ways (up to replicated scalars and biases).
  assert sharded["memory"]["argument_bytes"] <= single["memory"]["argument_bytes"] / 8 * 1.05


def test_collectives_parser_counts_loop_bodies_and_tuples():
  hlo = """HloModule m

%body (p: (s32[], f32[4,8])) -> (s32[], f32[4,8]) {
  %p = (s32[], f32[4,8]{1,0}) parameter(0)
  %x = f32[1,8]{1,0} get-tuple-element(%p), index=1
  %g = f32[4,8]{1,0} all-gather(%x), dimensions={0}
  %r = (f32[4,8]{1,0}, f32[1,8]{1,0}) all-reduce(%g, %x), to_apply=%add
  ROOT %t = (s32[], f32[4,8]{1,0}) tuple(%g)
}

%cond (p: (s32[], f32[4,8])) -> pred[] {
  %p = (s32[], f32[4,8]{1,0}) parameter(0)
  ROOT %c = pred[] constant(true)
}

ENTRY %main (a: f32[4,8]) -> f32[4,8] {
  %a = f32[4,8]{1,0} parameter(0)
  %s = f32[1,8]{1,0} reduce-scatter(%a), dimensions={0}
  %w = (s32[], f32[4,8]{1,0}) while(%t0), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"3"}}
  ROOT %o = f32[4,8]{1,0} all-reduce-start(%a), to_apply=%add
}
"""
  rows = {(r["op"], tuple(r["shape"]), r["dtype"]): r for r in compiled.collectives(hlo)}
  assert rows[("all-gather", (4, 8), "f32")]["count"] == 3
  assert rows[("all-gather", (4, 8), "f32")]["bytes"] == 128
  assert rows[("all-reduce", (4, 8), "f32")]["count"] == 3 + 1  # 3 in the loop + the async one
  assert rows[("all-reduce", (1, 8), "f32")]["count"] == 3  # a tuple: one row per array
  assert rows[("reduce-scatter", (4, 8), "f32")]["count"] == 1  # the operand: the whole array
  assert ("all-reduce", (), "s32") not in rows


def test_collectives_parser_reads_tpu_loop_bounds():
  """XLA:TPU's text has no known_trip_count: the bound comes from the loop condition."""
  hlo = """HloModule m

%body (p: (s32[], f32[4,8])) -> (s32[], f32[4,8]) {
  %p = (s32[]{:T(128)}, f32[4,8]{1,0:T(8,128)}) parameter(0)
  %x = f32[4,8]{1,0:T(8,128)} get-tuple-element(%p), index=1
  %r = f32[4,8]{1,0:T(8,128)S(1)} all-reduce(%x), to_apply=%add
  ROOT %t = (s32[], f32[4,8]{1,0}) tuple(%r)
}

%cond (p: (s32[], f32[4,8])) -> pred[] {
  %constant.518 = s32[]{:T(128)} constant(7)
  %p = (s32[]{:T(128)}, f32[4,8]{1,0}) parameter(0)
  %i = s32[]{:T(128)} get-tuple-element(%p), index=0
  ROOT %lt = pred[]{:T(512)} compare(%i, %constant.518), direction=LT
}

ENTRY %main (a: f32[4,8]) -> f32[4,8] {
  %a = f32[4,8]{1,0} parameter(0)
  ROOT %w = (s32[], f32[4,8]{1,0}) while(%t0), condition=%cond, body=%body
}
"""
  (row,) = compiled.collectives(hlo)
  assert (row["op"], row["shape"], row["count"]) == ("all-reduce", [4, 8], 7)


def test_params_compile_json(capsys):
  from llm_input import cli

  code = cli.main(["params", "--config", "configs/tiny.py", "--devices", "8", "--compile", "--json",
                   "--config.mesh.data=1", "--config.mesh.fsdp=8", "--config.data.batch_size=16",
                   "--config.model.scan_layers=True"])  # the preset unrolls its 4 layers
  assert code == 0
  report = json.loads(capsys.readouterr().out)
  assert set(report["memory"]) >= {"argument_bytes", "temp_bytes", "output_bytes"}
  assert set(report["estimate"]) >= {"total_bytes", "state_bytes", "activation_bytes", "logits_bytes"}
  assert report["param_bytes"] == 4 * report["params"]
  assert report["communication_bytes_per_step"] == sum(c["bytes"] * c["count"] for c in report["collectives"])
  assert {"op", "dtype", "shape", "bytes", "count"} <= set(report["collectives"][0])
  # FSDP over 8: the 4 scanned layers' weights are gathered in the loop (count = 4 x ...).
  ratio = report["communication_bytes_per_step"] / report["param_bytes"]
  assert 2.5 <= ratio <= 3.01, ratio
  assert max(c["count"] for c in report["collectives"]) >= 4


needs_libtpu = pytest.mark.skipif(importlib.util.find_spec("libtpu") is None,
                                  reason="XLA:TPU (libtpu) not installed: pip install -e '.[tpu]'")


@needs_libtpu
def test_preflight_tiny_fits_a_v5e_slice(capsys):
  from llm_input import cli

  code = cli.main(["preflight", "--config", "configs/tiny.py", "--topology", "v5e:2x2",
                   "--mesh", "1,-1,1", "--json"])
  report = json.loads(capsys.readouterr().out)
  assert code == 0 and report["fits"], report
  assert report["tpu_devices"] == 4 and report["device_kind"] == "TPU v5 lite"
  assert report["mesh"] == {"data": 1, "fsdp": 4, "tensor": 1}
  assert 0 < report["hbm_used"] < 0.1
  assert report["collectives"] and report["memory"]["argument_bytes"] > 0
  # The 2x2 torus's ring, not the listed order: neighbours sit next to each other on fsdp.
  assert report["device_ids"] == [0, 1, 3, 2]


@needs_libtpu
def test_the_trainer_lays_out_a_topology_as_the_preflight_does(monkeypatch):
  """One mesh builder: the mesh `validate` builds for training over a slice's devices has the
  pre-flight's device order (a trainer reshaping the device list would put 3 before 2)."""
  from llm_input import config as config_lib
  from llm_input.train import sections

  cfg = config_lib.load("configs/tiny.py", ["--config.mesh.data=1", "--config.mesh.fsdp=-1"])
  devices = compiled.topology_devices("v5e:2x4")
  preflight_ids = [int(d.id) for d in sharding.make_mesh(sharding.mesh_sizes(cfg.mesh), devices).devices.ravel()]
  monkeypatch.setattr(jax, "devices", lambda *a: devices)
  trainer_ids = [int(d.id) for d in sections.validate(cfg).mesh.devices.ravel()]
  assert trainer_ids == preflight_ids == [0, 1, 2, 3, 7, 6, 5, 4]


@needs_libtpu
def test_preflight_that_does_not_fit_says_by_how_much_and_what_to_try(capsys):
  from llm_input import cli

  code = cli.main(["preflight", "--config", "configs/tiny.py", "--topology", "v5e:2x2",
                   "--config.data.batch_size=8192"])
  out = capsys.readouterr().out
  assert code == 1
  assert "DOES NOT FIT" in out and "exceeds available HBM (15.75G)" in out
  assert "model.remat=full" in out and "grad_accum_steps" in out


def test_preflight_without_libtpu_says_how_to_install(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "libtpu" else real(name, *a))
  with pytest.raises(ConfigError, match=r"pip install -e '\.\[tpu\]'"):
    compiled.topology_devices("v5e:2x2")


def test_preflight_bad_topology_and_mesh_are_config_errors():
  with pytest.raises(ConfigError, match="data,fsdp,tensor"):
    compiled.parse_mesh("8,1")
  if importlib.util.find_spec("libtpu") is not None:
    with pytest.raises(ConfigError, match="v5p:8x8x4"):
      compiled.topology_devices("v9z:1x1")


@pytest.mark.parametrize("name", ["data8", "fsdp8", "fsdp2_tensor4"])
def test_memory_estimate_agrees_with_xla(name):
  """The analytic estimate (`llm-input params --devices N`) against XLA:CPU's compiled peak
  per device (arguments + temporaries + outputs that are not donated inputs)."""
  result = analyze(BATCH_SHARDED[name], length=512)
  from llm_input.train import metrics

  estimate = metrics.estimate_memory(result["model"], BATCH, 512, BATCH_SHARDED[name], 8)
  ratio = result["memory"]["peak_bytes"] / estimate["total_bytes"]
  assert 0.8 <= ratio <= 1.25, (name, ratio)


# The presets on the slices they are meant for, compiled by XLA:TPU (25-30 s each on an idle
# 2-core machine, ~3 min for d4096; the compile time barely depends on depth, since the layers
# are scanned): `make test-slow`, to keep `make test` under 10 minutes.
PRESET_SLICES = [("configs/gpt2_small.py", "v4:2x2x1"), ("configs/d1024.py", "v4:2x2x1")]


def _check_preflight(report: dict, cfg) -> None:
  assert report["fits"], report.get("error")
  assert report["hbm_used"] <= 0.85, report["hbm_used"]  # at least 15% of HBM to spare
  ratio = report["memory"]["peak_bytes"] / report["estimate"]["total_bytes"]
  assert 0.75 <= ratio <= 1.25, ratio
  tokens = cfg.data.batch_size * cfg.data.seq_len
  assert not [c for c in report["collectives"]
              if cfg.data.batch_size in c["shape"] or tokens in c["shape"]]


@needs_libtpu
@pytest.mark.slow  # 25-30 s each with XLA:TPU; `make test` keeps the tiny and Megatron compiles
@pytest.mark.parametrize("path,topology", PRESET_SLICES)
def test_preset_fits_its_slice(path, topology):
  cfg = config_lib.load(path)
  _check_preflight(compiled.preflight(cfg, topology), cfg)


@needs_libtpu
@pytest.mark.slow
def test_d4096_fits_a_v5p_256_chip_slice():
  """configs/d4096.py as shipped (32 layers, 256 x 2048, FSDP over 256 chips, no remat):
  measured 39.38 GiB of 95.74 GiB per chip (41%); ~3 min to compile on 2 cores."""
  cfg = config_lib.load("configs/d4096.py")
  report = compiled.preflight(cfg, "v5p:8x8x4")
  _check_preflight(report, cfg)
  assert report["mesh"] == {"data": 1, "fsdp": 256, "tensor": 1}


@needs_libtpu
def test_tensor_parallel_is_exactly_megatron_under_xla_tpu():
  """The same 2-layer step compiled by XLA:TPU for v4:2x2x1 (8 devices, data 2 x tensor 4):
  per layer exactly 2 forward and 2 backward all-reduces of the local tokens' d_model vectors
  (XLA:TPU adds Q, K and V's input gradients before reducing them), plus one for the head's
  input gradient, plus the vocabulary-parallel lookup's one; nothing of vocabulary width."""
  cfg = config_lib.load("configs/gpt2_small.py", [f"model.num_layers={LAYERS}", f"data.batch_size={BATCH}",
                                                  f"data.seq_len={LENGTH}", "model.max_len=512",
                                                  "model.vocab_size=50304"])
  report = compiled.preflight(cfg, "v4:2x2x1", {"data": 2, "fsdp": 1, "tensor": 4})
  assert report["fits"]
  local_tokens, d = BATCH // 2 * LENGTH, 768
  counts = {tuple(c["shape"]): c["count"] for c in report["collectives"] if c["op"] == "all-reduce"}
  assert counts[(local_tokens, d)] == 4 * LAYERS + 1
  assert counts.get((BATCH // 2, LENGTH, d), 0) == 1
  assert not [c for c in report["collectives"] if 50304 in c["shape"] or BATCH * LENGTH in c["shape"]]
