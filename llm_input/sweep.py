"""Sweeps: a base config plus a product or zip of overrides, run one after another.

A sweep file defines `get_sweep(arg) -> Sweep`. `llm-input sweep FILE` runs every run that
is not finished (an interrupted one resumes from its checkpoints), `--print` emits one
`llm-input train` command per run for a cluster, `--table` collects finished runs into
Markdown, CSV and a plot (`llm_input.analysis.sweep_tables`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import pathlib
import shlex

from llm_input import config as config_lib
from llm_input.errors import ConfigError, UserError
from llm_input.runs import RunFolder


# A loss-vs-compute curve's settings (issue 28), shared by the experiments that run one:
# warmup-stable-decay (the warmup in steps, so every budget's run equals the longest run up to
# its own decay, and a budget is a cooldown branch), three held-out plays of the default corpus
# (data.validation_percent=12: A Midsummer Night's Dream, Measure for Measure, Coriolanus, so a
# bootstrap over documents has documents to draw), no evaluation or checkpoint on the way.
CURVE_COMMON = {"schedule.kind": "wsd", "schedule.decay_fraction": 0.2, "schedule.warmup_steps": 50,
                "data.validation_percent": 12.0, "train.eval_every": 100000, "train.log_every": 25,
                "checkpoint.every_steps": 100000, "checkpoint.every_minutes": 0.0,
                "logging.progress_bar": False}


def product(*axes: tuple[str, list]) -> list[dict]:
  """All combinations: product(("model.d_model", [64, 128]), ("model.num_heads", [2, 4]))."""
  names = [name for name, _ in axes]
  return [dict(zip(names, values)) for values in itertools.product(*[v for _, v in axes])]


def zip_(*axes: tuple[str, list]) -> list[dict]:
  """Values taken together: zip_(("model.d_model", [768, 1024]), ("model.num_heads", [12, 16]))."""
  lengths = {len(v) for _, v in axes}
  if len(lengths) != 1:
    raise ConfigError(f"zip_ needs axes of equal length, got {sorted(lengths)}")
  names = [name for name, _ in axes]
  return [dict(zip(names, values)) for values in zip(*[v for _, v in axes])]


def step_flops(base: str, overrides: dict | None = None) -> float:
  """Analytic training FLOPs of one step of `base` with `overrides` (for equal-compute budgets:
  `train.flops_budget = step_flops(...) * steps`)."""
  from llm_input.train import metrics  # noqa: PLC0415
  from llm_input.train import sections as sections_lib  # noqa: PLC0415

  cfg = config_lib.load(base, [f"{k}={v}" for k, v in (overrides or {}).items()])
  return metrics.flops_per_step(sections_lib.model_config(cfg), cfg.data.batch_size, cfg.data.seq_len)


@dataclasses.dataclass
class Sweep:
  name: str
  base: str  # configs/x.py[:arg]
  runs: list[dict]  # one dict of overrides per run
  common: dict = dataclasses.field(default_factory=dict)  # overrides shared by every run
  root: str = "runs/sweeps"  # run folders: ROOT/NAME/RUN
  seeds: list = dataclasses.field(default_factory=list)  # [] = the config's seed, one run per arm
  # train.steps of each budget of a loss-vs-compute curve (schedule.kind=wsd): per arm and
  # seed the longest budget trains in full and keeps its branch points; each shorter budget is
  # a cooldown branch of it (llm_input/train/branch.py), so a curve costs one long run.
  budgets: list = dataclasses.field(default_factory=list)
  # The same in training FLOPs, for arms whose steps cost different FLOPs (tokenizers of
  # different vocabulary sizes): each arm's budget in steps is round(FLOPs / its analytic step
  # FLOPs, `step_flops`), as train.flops_budget rounds; rows of `collect` carry `budget_flops`.
  flops_budgets: list = dataclasses.field(default_factory=list)

  def __post_init__(self):
    if self.budgets and self.flops_budgets:
      raise ConfigError(f"sweep {self.name}: give budgets (steps) or flops_budgets, not both")
    self._steps_cache: dict = {}

  def has_budgets(self) -> bool:
    return bool(self.budgets or self.flops_budgets)

  def budget_steps(self, overrides: dict) -> dict[int, float]:
    """{train.steps: budget} of an arm (`overrides` without train.steps and seed), the
    budget being train.steps itself or, for `flops_budgets`, the FLOPs it stands for."""
    if self.budgets:
      return {int(b): int(b) for b in self.budgets}
    key = repr(sorted(overrides.items()))
    if key not in self._steps_cache:
      per_step = step_flops(self.base, {**self.common, **overrides})
      out = {}
      for budget in self.flops_budgets:
        steps = max(1, int(round(float(budget) / per_step)))
        if steps in out:
          raise ConfigError(f"sweep {self.name}: budgets {out[steps]:.3g} and {float(budget):.3g} FLOPs "
                            f"are both {steps} steps of {self.run_name(overrides)}; space them further apart")
        out[steps] = float(budget)
      self._steps_cache[key] = out
    return self._steps_cache[key]

  def run_name(self, overrides: dict) -> str:
    parts = [f"{key.split('.')[-1]}-{value}" for key, value in overrides.items()]
    return "_".join(parts).replace("/", "-") or "base"

  def arms(self) -> list[tuple[str, dict, int | None]]:
    """(run name, overrides, seed) of every run: each arm once per seed (and per budget, the
    longest first)."""
    out = []
    for overrides in self.runs:
      steps = sorted(self.budget_steps(overrides), reverse=True) if self.has_budgets() else []
      for seed in self.seeds or [None]:
        for budget in steps or [None]:
          arm = overrides if budget is None else {**overrides, "train.steps": budget}
          name = self.run_name(arm) + (f"_seed-{seed}" if seed is not None else "")
          out.append((name, arm if seed is None else {**arm, "seed": seed}, seed))
    return out

  def branches(self) -> dict[str, str]:
    """{run folder of a shorter budget: run folder of the longest budget it branches from}."""
    if not self.has_budgets():
      return {}
    out = {}
    for name, overrides, _ in self.arms():
      longest = max(self.budget_steps(_without_budget(overrides)))
      if overrides["train.steps"] != longest:
        source = {**overrides, "train.steps": longest}
        seed = source.pop("seed", None)
        out[self._folder(name)] = self._folder(
            self.run_name(source) + (f"_seed-{seed}" if seed is not None else ""))
    return out

  def _folder(self, name: str) -> str:
    return str(pathlib.Path(self.root) / self.name / name)

  def _keep_steps(self, cfg, overrides: dict) -> str | None:
    """checkpoint.keep_steps of the longest budget's run (`cfg`): every shorter budget's
    branch point."""
    from llm_input.train import branch  # noqa: PLC0415

    arm = _without_budget(overrides)
    shorter = [b for b in self.budget_steps(arm) if b < cfg.train.steps]
    return f"checkpoint.keep_steps={tuple(branch.branch_steps(cfg, shorter))}" if shorter else None

  def expand(self, shard: tuple[int, int] | None = None,
             validate: bool = True) -> list[tuple[str, list[str]]]:
    """(run folder, override strings) per run (only shard K of N's runs, if given). Every
    run's config is loaded and (unless `validate=False`, for readers of finished folders)
    validated as `train` validates it, so a bad arm is refused, by name, before the first arm
    trains."""
    out, seen = [], set()
    branches = self.branches()
    for name, overrides, _ in self.arms():
      values = {**self.common, **overrides}
      items = [f"{k}={v}" for k, v in values.items()]
      try:
        cfg = config_lib.load(self.base, items)
        keep = (self.has_budgets() and self._folder(name) not in branches
                and self._keep_steps(cfg, overrides))
        if keep:
          items.append(keep)
          cfg = config_lib.load_like(cfg, [keep])
        if validate:
          from llm_input.train import sections as sections_lib  # noqa: PLC0415 (JAX: not for readers)

          sections_lib.validate(cfg)
          if self.has_budgets():
            from llm_input.train import branch  # noqa: PLC0415

            branch.branch_step(cfg)  # wsd, warmup in steps, no flops budget
      except UserError as err:
        raise ConfigError(f"sweep {self.name}, run {name} ({' '.join(items)}): {err}; nothing "
                          "was trained: fix that arm and rerun") from None
      folder = self._folder(name)
      if folder in seen:
        raise ConfigError(f"sweep {self.name}: two runs share the folder {folder}")
      seen.add(folder)
      # a budget's branch goes to the shard of the long run it branches from
      shard_name = pathlib.Path(branches.get(folder, folder)).name
      if shard is None or in_shard(shard_name, *shard):
        out.append((folder, items))
    return out

  def commands(self, shard: tuple[int, int] | None = None) -> list[str]:
    """One `llm-input train` per run; a budget's branch (after the long run it branches from,
    which must have reached the branch point) with --branch-from."""
    branches = self.branches()
    return [" ".join(["llm-input", "train", "--config", shlex.quote(self.base), "--workdir",
                      shlex.quote(folder)] + [shlex.quote(f"--config.{i}") for i in items]
                     + (["--branch-from", shlex.quote(branches[folder])] if folder in branches else []))
            for folder, items in self.expand(shard)]


def _without_budget(overrides: dict) -> dict:
  """An arm's overrides as the sweep file gives them: without the budget's train.steps and the seed."""
  return {k: v for k, v in overrides.items() if k not in ("train.steps", "seed")}


def in_shard(run_name: str, k: int, n: int) -> bool:
  """Stable assignment of a run to shard k of n (1 <= k <= n) by a hash of its name, so
  every machine computes the same split without talking to the others."""
  return int(hashlib.sha256(run_name.encode()).hexdigest(), 16) % n == k - 1


def parse_shard(text: str | None) -> tuple[int, int] | None:
  """'K/N' -> (K, N) with 1 <= K <= N."""
  if text is None:
    return None
  try:
    k, n = (int(x) for x in text.split("/"))
  except ValueError:
    raise ConfigError(f"--shard {text!r} must look like K/N, e.g. 1/4") from None
  if not 1 <= k <= n:
    raise ConfigError(f"--shard {text}: K must be between 1 and N")
  return k, n


def load(path: str, arg: str | None = None, root: str | None = None) -> Sweep:
  file = pathlib.Path(path)
  if not file.is_file():
    raise ConfigError(f"sweep file {path!r} does not exist (e.g. experiments/granularity/sweep.py)")
  # Sweep files live in experiments/NAME/ and import `configs` from the repository root.
  module = config_lib.load_python_file(file, f"_llm_input_sweep_{file.parent.name}",
                                       file.resolve().parent.parent.parent)
  sweep = config_lib.call_in_file(file, module, "get_sweep", arg)
  if root:
    sweep.root = root
  return sweep


def run_all(sweep: Sweep, say=print, refresh: bool = False,
            shard: tuple[int, int] | None = None) -> list[dict]:
  """Trains every unfinished run (of shard K of N, if given); with `refresh`, also reopens
  finished ones (no training: their summary.json and samples are rewritten)."""
  from llm_input.train import loop  # noqa: PLC0415

  results = []
  branches = sweep.branches()
  for folder, items in sweep.expand(shard):
    if RunFolder(folder).finished() and not refresh:
      say(f"[{sweep.name}] {folder}: finished, skipped")
      continue
    say(f"[{sweep.name}] {folder}: training ({' '.join(items)})")
    cfg = config_lib.load(sweep.base, items)
    if folder in branches:
      from llm_input.train import branch  # noqa: PLC0415

      branch.prepare_branch(cfg, folder, branches[folder], say=say)
    results.append(loop.train(cfg, folder, say=say))
  return results


def collect(sweep: Sweep) -> list[dict]:
  """One row per finished run: its arm, seed, overrides and final metrics (summary.json)."""
  rows = []
  for (folder, _), (name, overrides, seed) in zip(sweep.expand(validate=False), sweep.arms()):
    run = RunFolder(folder)
    if not run.finished():
      continue
    arm = {k: v for k, v in overrides.items() if k != "seed"}
    row = {"run": run.name, "arm": sweep.run_name(arm), **arm}
    if sweep.flops_budgets:
      row["budget_flops"] = sweep.budget_steps(_without_budget(arm))[arm["train.steps"]]
    if seed is not None:
      row["seed"] = seed
    from llm_input.analysis.ngram import table_columns  # noqa: PLC0415

    rows.append({**row, **run.read_summary()["table"], **table_columns(run.read_baselines())})
  return rows


def missing(sweep: Sweep) -> list[str]:
  """'run: why' for every run of the sweep that is not in `collect` (not started, failed, or
  unfinished), so a table never passes off the finished arms as the whole sweep."""
  out = []
  for (folder, _), (name, _, _) in zip(sweep.expand(validate=False), sweep.arms()):
    run = RunFolder(folder)
    if run.finished():
      continue
    if not run.has_config():
      why = ("failed before its first step" if run.pending_config_path.exists() else "not started")
    else:
      steps = run.checkpoint_steps()
      why = (f"unfinished or failed: its last checkpoint is step {steps[-1]}" if steps
             else "unfinished or failed: no checkpoint")
    out.append(f"{name}: {why}")
  return out


def missing_note(sweep: Sweep) -> str:
  """A line for a table or page: which runs it leaves out and why ('' when none)."""
  gone = missing(sweep)
  if not gone:
    return ""
  return (f"Not in this table: {len(gone)} of {len(sweep.arms())} runs ({'; '.join(gone)}); "
          "rerun `llm-input sweep` to finish them.")
