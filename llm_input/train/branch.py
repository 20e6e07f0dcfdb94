"""Cooldown branches of a warmup-stable-decay run: one long run per arm and seed gives the
loss at several shorter budgets.

With `schedule.kind=wsd` and the warmup in steps, the learning rate up to a run's decay does
not depend on its length. A run of T steps is therefore the long run up to step
S = T - round(decay_fraction * T), then its own decay: `prepare_branch` starts the run folder
of the short run from the long run's checkpoint at S (parameters, optimizer, data position),
its tokenizer and its metrics up to S, and training resumes it like any run. The long run
must keep that checkpoint (`checkpoint.keep_steps`; `branch_steps` lists them).
"""

from __future__ import annotations

import json
import shutil

from llm_input import config as config_lib
from llm_input.errors import ConfigError
from llm_input.runs import RunFolder
from llm_input.train.optim import OptimConfig

# Sections and fields a branch may set differently from the run it branches from: none of
# them changes the computation before the branch point.
FREE = ("train.steps", "train.eval_every", "train.eval_batches", "train.log_every", "checkpoint.",
        "logging.", "sample.")


def branch_step(cfg) -> int:
  """The step where a wsd run of cfg's length leaves the stable phase (its branch point)."""
  if cfg.schedule.kind != "wsd":
    raise ConfigError(f"a cooldown branch needs schedule.kind=wsd (got {cfg.schedule.kind!r})")
  if cfg.schedule.get("warmup_fraction", 0.0) > 0:
    raise ConfigError("a cooldown branch needs the warmup in steps (schedule.warmup_steps), not "
                      "schedule.warmup_fraction: a share of each run's length would make the runs "
                      "differ before their decay")
  if cfg.train.flops_budget:
    raise ConfigError("a cooldown branch is given by train.steps; set train.flops_budget=0")
  return OptimConfig.from_config(cfg).decay_start


def branch_steps(cfg, budgets) -> list[int]:
  """The branch points of budgets (train.steps values) of cfg's wsd schedule: what the long
  run's checkpoint.keep_steps should hold."""
  out = []
  for steps in budgets:
    short = config_lib.load_like(cfg, [f"train.steps={int(steps)}"])
    out.append(branch_step(short))
  return sorted(set(out))


def prepare_branch(cfg, workdir, source, say=print) -> int:
  """Makes `workdir` the run of `cfg` branched from the run folder `source`; returns the step
  it starts from. A branch folder made before (a resumed branch) is left as it is."""
  run, src = RunFolder(workdir), RunFolder(source)
  step = branch_step(cfg)
  record = {"run": str(src.path.resolve()), "step": step}
  if run.has_config():
    if run.read_run_json().get("branched_from") == record:
      return step
    raise ConfigError(f"{run} already holds a run (config.json); a branch starts in a new --workdir")
  if run.path.exists() and any(run.path.iterdir()):
    raise ConfigError(f"--workdir {run} is not empty; a branch starts in a new folder")
  src_cfg = src.read_config()
  want, have = config_lib.flatten(json_dict(cfg)), config_lib.flatten(json_dict(src_cfg))
  differ = sorted(k for k in set(want) | set(have)
                  if want.get(k) != have.get(k) and not k.startswith(FREE))
  if differ:
    raise ConfigError(f"a branch may change only {', '.join(FREE)} of the run it branches from; "
                      f"{src} differs in {', '.join(differ[:6])}")
  if branch_step(src_cfg) < step:
    raise ConfigError(f"{src} decays from step {branch_step(src_cfg)}, before this branch's "
                      f"point {step}; branch from a longer run")
  if step not in src.checkpoint_steps():
    raise ConfigError(f"{src} has no checkpoint at step {step} (it has {src.checkpoint_steps()}); "
                      f"give the long run checkpoint.keep_steps={tuple(branch_steps(src_cfg, [cfg.train.steps]))}"
                      " (it saves and keeps those steps)")
  run.path.mkdir(parents=True, exist_ok=True)
  shutil.copytree(src.tokenizer_dir, run.tokenizer_dir)
  run.write_run_json({**src.read_run_json(), "branched_from": record})
  shutil.copytree(src.checkpoints_dir / str(step), run.checkpoints_dir / str(step))
  if src.metrics_path.exists():
    shutil.copyfile(src.metrics_path, run.metrics_path)
    run.truncate_metrics(step)
  run.write_config(cfg)
  say(f"branch: {run} starts from step {step} of {src} and decays to step {cfg.train.steps}")
  return step


def json_dict(cfg) -> dict:
  return json.loads(cfg.to_json_best_effort())
