"""Config files, overrides and the `llm-input params` command."""

import dataclasses
import pathlib
import subprocess
import sys

import pytest

from llm_input import cli
from llm_input import config as config_lib
from llm_input.model import transformer
from llm_input.model.config import ConfigError
from llm_input.train import sections as sections_lib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_params_command_prints_gpt2_small_count(capsys):
  assert cli.main(["params", "--config", str(ROOT / "configs/gpt2_small.py")]) == 0
  assert "parameters: 124,439,808" in capsys.readouterr().out


def test_params_console_script_in_a_subprocess():
  out = subprocess.run([sys.executable, "-m", "llm_input.cli", "params", "--config",
                        "configs/d4096.py"], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  count = int(out.stdout.strip().splitlines()[-1].split(":")[1].replace(",", ""))
  assert count > 6_000_000_000


def test_overrides_are_typed_and_checked():
  cfg = config_lib.load(str(ROOT / "configs/tiny.py"),
                        ["--config.model.d_model=256", "--config.model.positions=rope",
                         "--config.model.num_kv_heads=2", "--config.model.use_bias=false"])
  assert cfg.model.d_model == 256 and cfg.model.positions == "rope"
  assert cfg.model.num_kv_heads == 2 and cfg.model.use_bias is False
  with pytest.raises(ConfigError, match="unknown config field 'model.d_modle'.*d_model"):
    config_lib.load(str(ROOT / "configs/tiny.py"), ["--config.model.d_modle=3"])
  with pytest.raises(ConfigError, match="model.d_model.*int"):
    config_lib.load(str(ROOT / "configs/tiny.py"), ["--config.model.d_model=wide"])
  with pytest.raises(ConfigError, match="does not exist"):
    config_lib.load("configs/nope.py")


def test_inconsistent_override_fails_with_field_name(capsys):
  code = cli.main(["params", "--config", str(ROOT / "configs/tiny.py"), "--config.model.num_heads=3"])
  assert code == 2
  assert "model.num_heads" in capsys.readouterr().err


CONFIG_FILES = sorted(p for p in (ROOT / "configs").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_every_config_file_parses_and_sizes(path):
  from llm_input.train import metrics
  cfg = config_lib.load(str(path))
  model_cfg = sections_lib.model_config(cfg)
  count = transformer.count_params(model_cfg)
  assert count > 0
  devices = 256 if model_cfg.d_model >= 4096 else 8  # the big preset is sized for a TPU slice
  memory = metrics.estimate_memory(model_cfg, cfg.data.batch_size, cfg.data.seq_len,
                                      cfg.mesh.to_dict(), devices)
  assert memory["state_bytes"] > 0 and memory["total_bytes"] > memory["state_bytes"]
  if path.name == "d4096.py":
    # 32 blocks of (4 x 4096^2 attention, 3 x 4096 x 11008 SwiGLU, two 4096 RMSNorm scales;
    # no biases) plus 50257 x 4096 embeddings and an untied head of the same size, a final
    # norm, and no position table (RoPE):
    block = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096
    by_hand = 32 * block + 2 * 50257 * 4096 + 4096
    assert by_hand == 6_887_976_960
    assert count == by_hand
    # fsdp over the slice: float32 params, grads and two Adam moments (16 bytes) split 256 ways
    assert memory["state_bytes"] == 16 * by_hand / 256


def test_memory_estimate_by_hand():
  from llm_input.model.config import ModelConfig
  from llm_input.train import metrics
  cfg = ModelConfig(vocab_size=1000, d_model=64, num_layers=2, num_heads=4, max_len=32)
  params = transformer.count_params(cfg)
  mem = metrics.estimate_memory(cfg, 8, 32, {"data": 2, "fsdp": 2, "tensor": 2}, 8)
  assert mem["state_bytes"] == 16 * params / 4
  # local batch 2, float32; tensor 2 splits 24 of the 34 and the scores
  per_layer = 32 * 2 * 64 * (10 + 24 / 2 + 5 * 4 * 32 / 64 / 2) * 4 / 2
  assert mem["activation_bytes"] == pytest.approx(2 * per_layer)
  assert mem["logits_bytes"] == pytest.approx(2 * 4 * 2 * 32 * 1000 / 2)
  # A vocabulary that tensor 2 does not divide stays whole on each device.
  odd = metrics.estimate_memory(dataclasses.replace(cfg, vocab_size=1001), 8, 32,
                                  {"data": 2, "fsdp": 2, "tensor": 2}, 8)
  assert odd["logits_bytes"] == pytest.approx(2 * 4 * 2 * 32 * 1001)
  # Sharded parameters (fsdp 2): the larger of one layer gathered twice (float32 compute:
  # 4 bytes each) plus its float32 gradient, and the tied table gathered with its gradient;
  # split over tensor 2. Here the layer (~51k weights, 12 bytes each) is the larger.
  table = 1000 * 64
  layer = (params - table) / 2
  assert mem["gathered_bytes"] == pytest.approx(layer * 12 / 2)
  assert layer * 12 / 2 > table * 8 / 2
  assert mem["total_bytes"] == pytest.approx(sum(mem[k] for k in ("state_bytes", "activation_bytes",
                                                                   "logits_bytes", "gathered_bytes")))
  # Full remat: each block's input kept (2*s*b*d bytes at 16-bit) and one block rebuilt.
  remat = metrics.estimate_memory(dataclasses.replace(cfg, remat="full"), 8, 32,
                                    {"data": 2, "fsdp": 2, "tensor": 2}, 8)
  kept = 2 * 32 * 2 * 64 * 4 / 2
  assert remat["activation_bytes"] == pytest.approx(2 * kept + per_layer)
  # Data parallel only: nothing is gathered.
  assert metrics.estimate_memory(cfg, 8, 32, {"data": 8, "fsdp": 1, "tensor": 1}, 8)["gathered_bytes"] == 0


def test_typed_config_defaults_are_the_defaults_of_configs_base_py():
  """A room's typed config built from configs/base.py equals its dataclass defaults, so code
  that builds one directly (a notebook, a command) means what a config file means."""
  import dataclasses  # noqa: PLC0415

  from llm_input.data.pipeline import PipelineConfig  # noqa: PLC0415
  from llm_input.model.config import ModelConfig  # noqa: PLC0415
  from llm_input.tokenizers.options import TokenizerOptions  # noqa: PLC0415
  from llm_input.train.checkpoint import CheckpointConfig  # noqa: PLC0415
  from llm_input.train.optim import OptimConfig  # noqa: PLC0415
  from llm_input.train.sample import SampleConfig  # noqa: PLC0415

  base = config_lib.load(str(ROOT / "configs/base.py"))
  built = {PipelineConfig: PipelineConfig.from_config(base), OptimConfig: OptimConfig.from_config(base),
           CheckpointConfig: CheckpointConfig.from_config(base), SampleConfig: SampleConfig.from_config(base),
           TokenizerOptions: TokenizerOptions.from_config(base.tokenizer, base.seed),
           sections_lib.TrainConfig: sections_lib.TrainConfig.from_config(base),
           sections_lib.LoggingConfig: sections_lib.LoggingConfig.from_config(base)}
  differ = [f"{cls.__name__}.{f.name}: {getattr(cls(), f.name)!r} vs base.py {getattr(value, f.name)!r}"
            for cls, value in built.items() for f in dataclasses.fields(cls)
            if getattr(cls(), f.name) != getattr(value, f.name)]
  model = base.model.to_dict()
  differ += [f"ModelConfig.{f.name}: {f.default!r} vs base.py {model[f.name]!r}"
             for f in dataclasses.fields(ModelConfig)
             if f.default is not dataclasses.MISSING and f.name in model and f.default != model[f.name]]
  assert not differ, differ


PRESETS = sorted(p for p in (ROOT / "configs").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_every_preset_and_its_arguments_validate(path):
  """Each preset, plain and with each `:ARG` it accepts, passes `validate` on one device and on
  the 8 simulated ones (the typed sections a run would train with)."""
  module = config_lib.load_python_file(path, f"_preset_{path.stem}", ROOT)
  for arg in (None, *getattr(module, "ARGS", ())):
    spec = f"{path}:{arg}" if arg else str(path)
    for devices in (1, 8):
      s = sections_lib.validate(config_lib.load(spec), device_count=devices)
      assert s.mesh.devices.size == devices, spec
      assert s.optim.total_steps == s.train.total_steps(s.flops_per_step), spec


def test_sections_for_a_trained_tokenizer_resolve_the_vocabulary_and_a_flops_budget():
  """model.vocab_size=0 follows the trained tokenizer, and a FLOPs budget's step count is taken
  with the model that vocabulary gives (a char tokenizer may come out smaller than asked)."""
  cfg = config_lib.load(str(ROOT / "configs/tiny.py"), ["tokenizer.kind=char", "tokenizer.vocab_size=300",
                                                        "train.flops_budget=1e12"])
  s = sections_lib.validate(cfg, device_count=1)
  assert s.model.vocab_size == 300
  small = s.for_vocab_size(80)
  assert small.model.vocab_size == 80 and s.model.vocab_size == 300
  assert small.optim.total_steps == round(1e12 / small.flops_per_step) > s.optim.total_steps
  fixed = sections_lib.validate(config_lib.load_like(cfg, ["model.vocab_size=128"]), device_count=1)
  assert fixed.for_vocab_size(80).model.vocab_size == 128
  with pytest.raises(ConfigError, match="model.vocab_size=128 is smaller than the tokenizer's 200"):
    fixed.for_vocab_size(200)


def test_a_section_field_no_typed_config_reads_is_refused_by_name():
  """Typed configs are built from their sections by field name (no hand-written lists): a
  field a preset adds that nothing reads is an error naming it, and the others are all read."""
  cfg = config_lib.load(str(ROOT / "configs/tiny.py"))
  s = sections_lib.validate(cfg, device_count=1)
  assert (s.pipeline.seq_len, s.pipeline.batch_size, s.pipeline.seed) == (256, 16, cfg.seed)
  assert s.checkpoint.every_minutes == 2.0 and s.train.log_every == 10 and s.logging.progress_bar
  for section in ("data", "checkpoint", "sample", "train", "logging"):
    broken = config_lib.load(str(ROOT / "configs/tiny.py"))
    broken[section].unused_knob = 1  # ml_collections lets a preset add fields
    with pytest.raises(ConfigError, match=rf"{section}: field\(s\) \['unused_knob'\] are read by nothing"):
      sections_lib.validate(broken, device_count=1)


def test_a_validation_percent_the_corpus_would_ignore_is_refused():
  """tfds: corpora have their own validation split: a share held out by hash applies to text:
  and shakespeare only, and was silently ignored (the heads sweep of 2026-12-02 asked for 20%
  and got the one play, before shakespeare honoured it)."""
  cfg = config_lib.load(str(ROOT / "configs/tiny.py"), ["data.corpus=tfds:lm1b", "data.validation_percent=20"])
  with pytest.raises(ConfigError, match="data.validation_percent=20.0 splits text: and shakespeare only; tfds:lm1b"):
    sections_lib.validate(cfg, device_count=1)
  for corpus in ("text:notes/*.txt", "shakespeare"):
    held = config_lib.load(str(ROOT / "configs/tiny.py"), [f"data.corpus={corpus}", "data.validation_percent=20"])
    assert sections_lib.validate(held, device_count=1).pipeline.validation_percent == 20.0
  sections_lib.validate(config_lib.load(str(ROOT / "configs/tiny.py")), device_count=1)  # the default: fine
