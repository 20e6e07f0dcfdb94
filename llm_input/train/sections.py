"""Every section of a config as its room's typed config, and the one `validate`.

`validate(cfg)` builds each room's typed config once from its own section (`ModelConfig`,
`PipelineConfig`, `OptimConfig`, `TokenizerOptions`, `CheckpointConfig`, `SampleConfig`, and
here `TrainConfig` and `LoggingConfig`) and checks what needs no data and no compilation, before
a run folder is touched. The loop reads only these typed sections. Their defaults equal
`configs/base.py` (tests/test_config_cli.py checks), which is where defaults are written.

The model's vocabulary and the run's step count can depend on the tokenizer (`model.vocab_size
= 0` follows it; `train.flops_budget` divides by FLOPs that include the output head), which
only exists once trained: `Sections.for_vocab_size` resolves both in one place.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections

from llm_input import config as config_lib
from llm_input import tokenizers
from llm_input.data import corpora
from llm_input.data.pipeline import PipelineConfig
from llm_input.errors import ConfigError
from llm_input.model.config import ModelConfig, check_context
from llm_input.train import metrics
from llm_input.train import sharding as sharding_lib
from llm_input.train.checkpoint import CheckpointConfig
from llm_input.train.optim import OptimConfig
from llm_input.train.sample_config import SampleConfig

ON_NONFINITE = ("stop", "rollback")  # train.on_nonfinite: what a diverged step does


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """The `train` section: how long, how often to evaluate and log, what a divergence does."""

  steps: int = 1000  # the defaults equal configs/base.py's (tests/test_config_cli.py checks)
  flops_budget: float = 0.0  # > 0: steps = budget / analytic FLOPs per step
  eval_every: int = 200
  eval_batches: int = 0  # 0 = the whole validation split
  log_every: int = 10
  on_nonfinite: str = "stop"
  loss_spike_factor: float = 0.0  # > 1: a loss above this x the recent median diverges

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict) -> "TrainConfig":
    return config_lib.typed_section(cls, cfg.train, "train")

  def __post_init__(self):
    for name in ("steps", "eval_every", "log_every"):
      if getattr(self, name) < 1:
        raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
    if self.eval_batches < 0 or self.flops_budget < 0:
      raise ConfigError("train.eval_batches and train.flops_budget must be >= 0 "
                        f"(got {self.eval_batches}, {self.flops_budget})")
    if self.on_nonfinite not in ON_NONFINITE:
      raise ConfigError(f"train.on_nonfinite: unknown {self.on_nonfinite!r}; allowed: "
                        f"{', '.join(ON_NONFINITE)}")
    if self.loss_spike_factor != 0 and self.loss_spike_factor <= 1:
      raise ConfigError(f"train.loss_spike_factor must be 0 (off) or > 1, got {self.loss_spike_factor}")

  def total_steps(self, flops_per_step: float) -> int:
    """`steps`, or the steps that spend `flops_budget` (equal-compute comparisons)."""
    if self.flops_budget > 0:
      return max(1, int(round(self.flops_budget / flops_per_step)))
    return int(self.steps)


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
  """The `logging` section."""

  tensorboard: bool = True
  progress_bar: bool = True

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict) -> "LoggingConfig":
    return config_lib.typed_section(cls, cfg.logging, "logging")


def _check_kind(kind) -> None:
  if kind not in tokenizers.KINDS:
    raise ConfigError(f"tokenizer.kind: unknown {kind!r}; allowed: {', '.join(tokenizers.KINDS)}")


def _check_fits(model_vocab: int, tokenizer_vocab: int) -> None:
  if model_vocab < tokenizer_vocab:
    raise ConfigError(f"model.vocab_size={model_vocab} is smaller than the tokenizer's "
                      f"{tokenizer_vocab} ids; set model.vocab_size=0 to follow the tokenizer")


@dataclasses.dataclass(frozen=True)
class TokenizerSection:
  """The `tokenizer` section: which tokenizer the run trains (or `path`: uses) and its options."""

  kind: str
  vocab_size: int
  path: str  # "" = train `kind` on the corpus
  options: tokenizers.TokenizerOptions

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict) -> "TokenizerSection":
    t = cfg.tokenizer
    _check_kind(t.kind)
    if not isinstance(t.vocab_size, int) or t.vocab_size < 1:
      raise ConfigError(f"tokenizer.vocab_size must be a positive integer, got {t.vocab_size!r}")
    options = tokenizers.TokenizerOptions.from_config(t, cfg.seed)
    options.validate()
    return cls(kind=t.kind, vocab_size=int(t.vocab_size), path=str(t.get("path", "")), options=options)


def model_config(cfg: ml_collections.ConfigDict, vocab_size: int | None = None) -> ModelConfig:
  """The typed model config of the `model` section.

  `model.vocab_size = 0` takes the tokenizer's size: `vocab_size` when a trained tokenizer is
  known, else what `tokenizer.kind/vocab_size` will produce (fixed for byte).
  """
  _check_kind(cfg.tokenizer.kind)
  values = cfg.model.to_dict()
  tokenizer_size = vocab_size
  if tokenizer_size is None and cfg.tokenizer.path:  # a given tokenizer: its size is known now
    vocab_size = tokenizer_size = int(tokenizers.read_metadata(cfg.tokenizer.path)["vocab_size"])
  if tokenizer_size is None:
    fixed = tokenizers.tokenizer_class(cfg.tokenizer.kind).fixed_vocab_size
    tokenizer_size = fixed if fixed is not None else int(cfg.tokenizer.vocab_size)
  if values["vocab_size"] == 0:
    values["vocab_size"] = tokenizer_size
  elif vocab_size is not None:
    _check_fits(values["vocab_size"], vocab_size)
  return ModelConfig.from_dict(values)


@dataclasses.dataclass(frozen=True)
class Sections:
  """Every section of a config, typed and checked (see `validate`)."""

  mesh: jax.sharding.Mesh
  rules: dict
  model: ModelConfig
  pipeline: PipelineConfig
  optim: OptimConfig
  tokenizer: TokenizerSection
  checkpoint: CheckpointConfig
  sample: SampleConfig
  train: TrainConfig
  logging: LoggingConfig
  seed: int
  follows_tokenizer: bool  # model.vocab_size = 0: the model takes the trained tokenizer's size

  @property
  def flops_per_step(self) -> float:
    return metrics.flops_per_step(self.model, self.pipeline.batch_size, self.pipeline.seq_len)

  def for_vocab_size(self, vocab_size: int) -> "Sections":
    """These sections for a trained tokenizer of `vocab_size` ids: the model's vocabulary (when
    it follows the tokenizer) and the step count of a FLOPs budget, which depends on it."""
    model = self.model
    if self.follows_tokenizer:
      model = dataclasses.replace(model, vocab_size=vocab_size)
    else:
      _check_fits(model.vocab_size, vocab_size)
    resolved = dataclasses.replace(self, model=model)
    total = self.train.total_steps(resolved.flops_per_step)
    if total != self.optim.total_steps:
      resolved = dataclasses.replace(resolved, optim=dataclasses.replace(self.optim, total_steps=total))
    return resolved


def validate(cfg: ml_collections.ConfigDict, device_count: int | None = None) -> Sections:
  """Checks every section that needs no data and no compilation; raises ConfigError (or the
  room's own UserError) naming the field. Called before a run folder is touched."""
  devices = jax.devices()
  mesh = sharding_lib.make_mesh(sharding_lib.mesh_sizes(cfg.mesh),
                                devices[:device_count] if device_count else None)
  rules = sharding_lib.rules_from_config(cfg.mesh.rules)
  data_parallel = sharding_lib.data_parallel_size(mesh, rules)
  processes = jax.process_count()
  if data_parallel % processes:
    raise ConfigError(f"mesh.rules.batch splits the batch {data_parallel} ways on this mesh, which "
                      f"does not divide over the {processes} processes (each reads its own rows); "
                      "put the batch on mesh axes that span the processes (data or fsdp)")
  pipe = PipelineConfig.from_config(cfg)
  pipe.validate(data_parallel, processes)
  if pipe.corpus.startswith("tfds:") and pipe.validation_percent != corpora.VALIDATION_PERCENT:
    raise ConfigError(f"data.validation_percent={pipe.validation_percent} splits text: and "
                      f"shakespeare only; {pipe.corpus} has its own validation split "
                      "(data.validation_split), so the setting would be ignored: remove it")
  train = TrainConfig.from_config(cfg)
  model = model_config(cfg)  # the model section, with the configured tokenizer size
  check_context(model, pipe.seq_len)
  optim = OptimConfig.from_config(
      cfg, train.total_steps(metrics.flops_per_step(model, pipe.batch_size, pipe.seq_len)))
  accum = optim.grad_accum_steps
  if pipe.batch_size % accum or (pipe.batch_size // accum) % data_parallel:
    raise ConfigError(f"data.batch_size={pipe.batch_size} must split into "
                      f"optimizer.grad_accum_steps={accum} micro-batches that each divide over "
                      f"{data_parallel} data-parallel devices")
  tokenizer = TokenizerSection.from_config(cfg)
  return Sections(mesh=mesh, rules=rules, model=model, pipeline=pipe, optim=optim,
                  tokenizer=tokenizer, checkpoint=CheckpointConfig.from_config(cfg),
                  sample=SampleConfig.from_config(cfg), train=train,
                  logging=LoggingConfig.from_config(cfg), seed=int(cfg.seed),
                  follows_tokenizer=cfg.model.vocab_size == 0)
