"""The optimizer room: its typed config, the learning-rate schedule, AdamW with a decay mask.

`OptimConfig.from_config(cfg)` reads the config's `optimizer` and `schedule` sections (and the
step count from `train`).
"""

from __future__ import annotations

import dataclasses

import jax
import optax

from llm_input.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  learning_rate: float = 6e-4  # the defaults equal configs/base.py's (tests/test_config_cli.py checks)
  b1: float = 0.9
  b2: float = 0.95
  eps: float = 1e-8
  weight_decay: float = 0.1
  decay_all: bool = False  # False: no decay on norms, biases and embeddings
  grad_clip_norm: float = 1.0  # 0 disables clipping
  z_loss: float = 0.0  # weight of log(Z)^2, keeps the softmax normaliser near 1
  grad_accum_steps: int = 1
  schedule: str = "cosine"  # cosine | linear | constant | wsd (each after linear warmup)
  warmup_steps: int = 100
  final_lr_fraction: float = 0.1  # cosine/linear/wsd decay to this fraction of the peak
  total_steps: int = 1000
  warmup_fraction: float = 0.0  # > 0: warmup = this share of total_steps (replaces warmup_steps)
  decay_fraction: float = 0.2  # wsd: the last share of total_steps decays linearly

  @property
  def warmup(self) -> int:
    """Warmup steps of this run: a share of its steps, or the fixed count."""
    if self.warmup_fraction > 0:
      return max(1, round(self.warmup_fraction * self.total_steps))
    return self.warmup_steps

  @property
  def decay_start(self) -> int:
    """The step where the learning rate starts to fall (wsd: after the stable phase)."""
    if self.schedule == "wsd":
      return self.total_steps - max(1, round(self.decay_fraction * self.total_steps))
    return self.warmup

  @classmethod
  def from_config(cls, cfg, total_steps: int | None = None) -> "OptimConfig":
    o, s = cfg.optimizer, cfg.schedule
    return cls(learning_rate=o.learning_rate, b1=o.b1, b2=o.b2, eps=o.eps,
               weight_decay=o.weight_decay, decay_all=o.decay_all,
               grad_clip_norm=o.grad_clip_norm, z_loss=o.z_loss,
               grad_accum_steps=o.grad_accum_steps, schedule=s.kind,
               warmup_steps=s.warmup_steps, final_lr_fraction=s.final_lr_fraction,
               total_steps=int(cfg.train.steps if total_steps is None else total_steps),
               warmup_fraction=s.get("warmup_fraction", 0.0), decay_fraction=s.get("decay_fraction", 0.2))

  def __post_init__(self):
    if self.schedule not in SCHEDULES:
      raise ConfigError(f"schedule.kind: unknown {self.schedule!r}; allowed: {', '.join(SCHEDULES)}")
    if self.learning_rate <= 0:
      raise ConfigError(f"optimizer.learning_rate must be > 0, got {self.learning_rate}")
    if self.grad_accum_steps < 1:
      raise ConfigError(f"optimizer.grad_accum_steps must be >= 1, got {self.grad_accum_steps}")
    if self.warmup_steps < 0 or self.total_steps < 1:
      raise ConfigError("schedule.warmup_steps must be >= 0 and train.steps >= 1 "
                        f"(got {self.warmup_steps}, {self.total_steps})")
    if not 0 <= self.final_lr_fraction <= 1:
      raise ConfigError(f"schedule.final_lr_fraction must be in [0, 1], got {self.final_lr_fraction}")
    if not 0 <= self.warmup_fraction < 1:
      raise ConfigError(f"schedule.warmup_fraction must be in [0, 1) (0 = use warmup_steps), got "
                        f"{self.warmup_fraction}")
    if not 0 < self.decay_fraction <= 1:
      raise ConfigError(f"schedule.decay_fraction must be in (0, 1], got {self.decay_fraction}")
    if self.schedule == "wsd" and self.decay_start < self.warmup:
      raise ConfigError(f"schedule: warmup ({self.warmup} steps) and the wsd decay "
                        f"({self.total_steps - self.decay_start} steps, decay_fraction="
                        f"{self.decay_fraction}) do not fit in {self.total_steps} steps; shorten one")


SCHEDULES = ("cosine", "linear", "constant", "wsd")


def learning_rate_schedule(cfg: OptimConfig) -> optax.Schedule:
  # Step 0 already trains at lr / warmup (a zero first step would waste a batch).
  warmup_steps = cfg.warmup
  warmup = optax.linear_schedule(cfg.learning_rate / max(warmup_steps, 1), cfg.learning_rate,
                                 max(warmup_steps, 1))
  decay_steps = max(cfg.total_steps - warmup_steps, 1)
  final = cfg.learning_rate * cfg.final_lr_fraction
  if cfg.schedule == "wsd":
    # Warmup, stable at the peak, then a linear decay over the last decay_fraction of the run.
    # Up to its decay the schedule does not depend on the run's length when the warmup is in
    # steps: a shorter budget's cooldown can branch from a longer run's checkpoint.
    decay = optax.linear_schedule(cfg.learning_rate, final, cfg.total_steps - cfg.decay_start)
    stable = optax.constant_schedule(cfg.learning_rate)
    return optax.join_schedules([warmup, stable, decay], [warmup_steps, cfg.decay_start])
  if cfg.schedule == "cosine":
    decay = optax.cosine_decay_schedule(cfg.learning_rate, decay_steps, alpha=cfg.final_lr_fraction)
  elif cfg.schedule == "linear":
    decay = optax.linear_schedule(cfg.learning_rate, final, decay_steps)
  else:
    decay = optax.constant_schedule(cfg.learning_rate)
  return optax.join_schedules([warmup, decay], [warmup_steps])


def decay_mask(params: dict) -> dict:
  """True for weight matrices of attention and MLP; False for norms, biases, embeddings."""

  def mask(path, leaf):
    names = [getattr(k, "key", getattr(k, "name", "")) for k in path]
    name = str(names[-1])
    return name.endswith("_kernel") and "embedding" not in names

  return jax.tree_util.tree_map_with_path(mask, params)


def make_optimizer(cfg: OptimConfig) -> optax.GradientTransformation:
  parts = []
  if cfg.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
  parts.append(optax.adamw(learning_rate_schedule(cfg), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                           weight_decay=cfg.weight_decay,
                           mask=None if cfg.decay_all else decay_mask))
  return optax.chain(*parts)

