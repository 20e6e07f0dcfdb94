"""The `sample` section's typed config: how `llm-input sample` and a finished run sample.

Its own module, importing no JAX, so the sample command checks its flags (and names the bad
one) before the heavy imports; `llm_input.train.sample` re-exports it.
"""

from __future__ import annotations

import dataclasses

from llm_input import config as config_lib
from llm_input.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class SampleConfig:
  """How to sample: the config's `sample` section, or `llm-input sample`'s flags."""

  prompts: tuple[str, ...] = ("ROMEO:", "The bank by the river", "Hello")  # as configs/base.py
  max_new_tokens: int = 200
  temperature: float = 0.8
  top_k: int = 0
  top_p: float = 0.95

  def __post_init__(self):
    if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
      raise ConfigError(f"sample.max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
    if not self.temperature >= 0:
      raise ConfigError(f"sample.temperature must be >= 0 (0 = greedy), got {self.temperature!r}")
    if not isinstance(self.top_k, int) or self.top_k < 0:
      raise ConfigError(f"sample.top_k must be an integer >= 0 (0 = all), got {self.top_k!r}")
    if not 0 < self.top_p <= 1:
      raise ConfigError(f"sample.top_p must be in (0, 1] (1 = all), got {self.top_p!r}")
    if any(not isinstance(p, str) for p in self.prompts):
      raise ConfigError(f"sample.prompts must be strings, got {list(self.prompts)!r}")

  @classmethod
  def from_config(cls, cfg) -> "SampleConfig":
    return config_lib.typed_section(cls, cfg.sample, "sample", prompts=tuple(cfg.sample.prompts))
