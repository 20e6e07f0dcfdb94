"""Sweeps: a base config plus a product or zip of overrides, run one after another.

A sweep file defines `get_sweep(arg) -> Sweep`. `llm-input sweep FILE` runs every run that
is not finished (an interrupted one resumes from its checkpoints), `--print` emits one
`llm-input train` command per run for a cluster, `--table` collects finished runs into
Markdown, CSV and a plot.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import pathlib
import shlex

from llm_input import config as config_lib
from llm_input.errors import ConfigError
from llm_input.runs import RunFolder


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

  cfg = config_lib.load(base, [f"{k}={v}" for k, v in (overrides or {}).items()])
  return metrics.flops_per_step(config_lib.model_config(cfg), cfg.data.batch_size, cfg.data.seq_len)


@dataclasses.dataclass
class Sweep:
  name: str
  base: str  # configs/x.py[:arg]
  runs: list[dict]  # one dict of overrides per run
  common: dict = dataclasses.field(default_factory=dict)  # overrides shared by every run
  root: str = "runs/sweeps"  # run folders: ROOT/NAME/RUN

  def run_name(self, overrides: dict) -> str:
    parts = [f"{key.split('.')[-1]}-{value}" for key, value in overrides.items()]
    return "_".join(parts).replace("/", "-") or "base"

  def expand(self, shard: tuple[int, int] | None = None) -> list[tuple[str, list[str]]]:
    """(run folder, override strings) per run (only shard K of N's runs, if given); each
    config is loaded to check it."""
    out, seen = [], set()
    for overrides in self.runs:
      values = {**self.common, **overrides}
      items = [f"{k}={v}" for k, v in values.items()]
      config_lib.load(self.base, items)  # fails here, not mid-sweep, on a bad override
      folder = str(pathlib.Path(self.root) / self.name / self.run_name(overrides))
      if folder in seen:
        raise ConfigError(f"sweep {self.name}: two runs share the folder {folder}")
      seen.add(folder)
      if shard is None or in_shard(self.run_name(overrides), *shard):
        out.append((folder, items))
    return out

  def commands(self, shard: tuple[int, int] | None = None) -> list[str]:
    return [" ".join(["llm-input", "train", "--config", shlex.quote(self.base), "--workdir",
                      shlex.quote(folder)] + [shlex.quote(f"--config.{i}") for i in items])
            for folder, items in self.expand(shard)]


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
  sweep = module.get_sweep(arg)
  if root:
    sweep.root = root
  return sweep


def run_all(sweep: Sweep, say=print, refresh: bool = False,
            shard: tuple[int, int] | None = None) -> list[dict]:
  """Trains every unfinished run (of shard K of N, if given); with `refresh`, also reopens
  finished ones (no training: their summary.json and samples are rewritten)."""
  from llm_input.train import loop  # noqa: PLC0415

  results = []
  for folder, items in sweep.expand(shard):
    if RunFolder(folder).finished() and not refresh:
      say(f"[{sweep.name}] {folder}: finished, skipped")
      continue
    say(f"[{sweep.name}] {folder}: training ({' '.join(items)})")
    results.append(loop.train(config_lib.load(sweep.base, items), folder, say=say))
  return results


def collect(sweep: Sweep) -> list[dict]:
  """One row per finished run: its overrides and final metrics (summary.json)."""
  rows = []
  for (folder, items), overrides in zip(sweep.expand(), sweep.runs):
    run = RunFolder(folder)
    if not run.finished():
      continue
    rows.append({"run": run.name, **overrides, **run.read_summary()["table"]})
  return rows


def write_table(sweep: Sweep, rows: list[dict], out_dir: str | pathlib.Path, x: str | None = None,
                y: str = "val_bits_per_byte") -> dict:
  """results.md, results.csv and results.png (y against x, or a bar per run)."""
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  if not rows:
    raise ConfigError(f"sweep {sweep.name}: no finished runs under {sweep.root}/{sweep.name}; run "
                      f"`llm-input sweep ...` first")
  columns = list(dict.fromkeys(k for r in rows for k in r))
  with (out / "results.csv").open("w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
  fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)  # noqa: E731
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
  (out / "results.md").write_text("\n".join(lines) + "\n")

  import matplotlib  # noqa: PLC0415

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
  labels = [str(r.get(x, r["run"])) if x else r["run"] for r in rows]
  ax.bar(range(len(rows)), [r.get(y, float("nan")) for r in rows], color="#4c72b0")
  ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right")
  ax.set_ylabel(y.replace("_", " "))
  ax.set_title(f"{sweep.name}: {y.replace('_', ' ')}")
  fig.tight_layout()
  fig.savefig(out / "results.png")
  plt.close(fig)
  return {"markdown": str(out / "results.md"), "csv": str(out / "results.csv"),
          "plot": str(out / "results.png")}
