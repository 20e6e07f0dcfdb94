"""Reading a run back: its config, tokenizer and a checkpoint's parameters, and sampling.

Used by `llm-input sample` and by the analysis. Never builds a trainer or an optimizer: the
parameters are restored on their own, so any optimizer setting of the run can be read back.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import ml_collections
from flax import nnx

from llm_input import tokenizers
from llm_input.model import transformer
from llm_input.model.config import ModelConfig, context_length
from llm_input.runs import RunFolder
from llm_input.train import checkpoint as checkpoint_lib
from llm_input.train import sample as sample_lib
from llm_input.train import sharding as sharding_lib
from llm_input.train import sections as sections_lib


@dataclasses.dataclass
class Run:
  folder: RunFolder
  config: ml_collections.ConfigDict
  tokenizer: tokenizers.Tokenizer
  model_cfg: ModelConfig
  params: dict
  step: int

  @property
  def workdir(self):
    return self.folder.path

  def model(self):
    graphdef, _ = nnx.split(transformer.abstract(self.model_cfg), nnx.Param)
    return nnx.merge(graphdef, self.params)

  @functools.cached_property
  def sampler(self) -> sample_lib.Sampler:
    return sample_lib.Sampler(self.model_cfg, self.params,
                              context_length(self.model_cfg, self.config.data.seq_len))

  def prompt_ids(self, prompt: str) -> list[int]:
    return self.tokenizer.prompt_ids(prompt, bool(self.config.data.add_bos))

  def generate(self, prompt: str, max_new_tokens: int, **kw) -> str:
    new = self.sampler.generate(self.prompt_ids(prompt), max_new_tokens,
                                stop_id=self.tokenizer.eos_id, **kw)
    return self.tokenizer.decode(new)


def load_run(workdir, step: int | None = None) -> Run:
  """The run's config, tokenizer and the parameters at `step` (default: the latest)."""
  folder = RunFolder(workdir)
  step = folder.readable_step(step)
  cfg = folder.read_config()
  tokenizer = tokenizers.load(folder.tokenizer_dir)
  model_cfg = sections_lib.model_config(cfg, tokenizer.vocab_size)
  return Run(folder, cfg, tokenizer, model_cfg, restore_params(folder, model_cfg, step), step)


def restore_params(folder: RunFolder, model_cfg: ModelConfig, step: int) -> dict:
  """The parameters at `step`, on one device."""
  mesh = sharding_lib.make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
  abstract = transformer.abstract(model_cfg)
  abstract_params = nnx.to_pure_dict(nnx.state(abstract, nnx.Param))
  shardings = sharding_lib.param_shardings(abstract, mesh)
  return checkpoint_lib.restore_params(folder.checkpoints_dir, step, abstract_params, shardings)
