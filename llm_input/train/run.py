"""Reading a run folder back: its config, tokenizer and a checkpoint's parameters.

Used by `llm-input sample` and by the analysis; never trains.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import ml_collections
import orbax.checkpoint as ocp

from llm_input import config as config_lib
from llm_input import tokenizers
from llm_input.errors import CheckpointError
from llm_input.model.config import ModelConfig
from llm_input.train import sample as sample_lib
from llm_input.train import sharding as sharding_lib
from llm_input.train import step as step_lib


@dataclasses.dataclass
class Run:
  workdir: pathlib.Path
  config: ml_collections.ConfigDict
  tokenizer: tokenizers.Tokenizer
  model_cfg: ModelConfig
  params: dict
  step: int

  def model(self):
    from flax import nnx  # noqa: PLC0415

    from llm_input.model import transformer  # noqa: PLC0415

    graphdef, _ = nnx.split(transformer.abstract(self.model_cfg), nnx.Param)
    return nnx.merge(graphdef, self.params)

  def generate(self, prompt: str, max_new_tokens: int, **kw) -> str:
    ids = ([self.tokenizer.bos_id] if self.config.data.add_bos else []) + self.tokenizer.encode(prompt)
    new = sample_lib.Sampler(self.model_cfg, self.params).generate(
        ids, max_new_tokens, stop_id=self.tokenizer.eos_id, **kw)
    return self.tokenizer.decode(new)


def checkpoint_steps(workdir: str | pathlib.Path) -> list[int]:
  folder = pathlib.Path(workdir) / "checkpoints"
  if not folder.is_dir():
    return []
  return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


def load_config(workdir: str | pathlib.Path) -> ml_collections.ConfigDict:
  workdir = pathlib.Path(workdir)
  path = workdir / "config.json"
  if not workdir.is_dir():
    raise CheckpointError(f"run folder {str(workdir)!r} does not exist; train one with "
                          "`llm-input train --config configs/tiny.py --workdir DIR`")
  if not path.is_file():
    raise CheckpointError(f"{workdir} is not a run folder (no config.json)")
  return ml_collections.ConfigDict(json.loads(path.read_text(encoding="utf-8")))


def load_run(workdir: str | pathlib.Path, step: int | None = None) -> Run:
  """The run's config, tokenizer and the parameters at `step` (default: the latest)."""
  workdir = pathlib.Path(workdir)
  cfg = load_config(workdir)
  tokenizer = tokenizers.load(workdir / "tokenizer")
  model_cfg = config_lib.model_config(cfg, tokenizer.vocab_size)
  steps = checkpoint_steps(workdir)
  if not steps:
    raise CheckpointError(f"{workdir} has no checkpoints yet; train it first")
  if step is None:
    step = steps[-1]
  elif step not in steps:
    raise CheckpointError(f"{workdir} has no checkpoint at step {step}; it has {steps}")
  return Run(workdir, cfg, tokenizer, model_cfg, restore_params(workdir, model_cfg, cfg, step), step)


def restore_params(workdir: pathlib.Path, model_cfg: ModelConfig, cfg, step: int) -> dict:
  mesh = sharding_lib.make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
  trainer = step_lib.Trainer(model_cfg, step_lib.OptimConfig(total_steps=max(cfg.train.steps, 1)),
                             mesh, seed=cfg.seed)
  target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        trainer.abstract_state, trainer.state_shardings)
  manager = ocp.CheckpointManager((workdir / "checkpoints").resolve(),
                                  options=ocp.CheckpointManagerOptions(read_only=True))
  try:
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
  except Exception as err:  # noqa: BLE001
    raise CheckpointError(f"cannot read the checkpoint at step {step} in {workdir}: "
                          f"{str(err).splitlines()[0][:300]}") from None
  finally:
    manager.close()
  return restored["state"]["params"]
