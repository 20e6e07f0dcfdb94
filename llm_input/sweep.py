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
import math
import pathlib
import shlex

from llm_input import config as config_lib
from llm_input.errors import ConfigError, UserError
from llm_input.runs import RunFolder
from llm_input.train import sections as sections_lib


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

  def run_name(self, overrides: dict) -> str:
    parts = [f"{key.split('.')[-1]}-{value}" for key, value in overrides.items()]
    return "_".join(parts).replace("/", "-") or "base"

  def arms(self) -> list[tuple[str, dict, int | None]]:
    """(run name, overrides, seed) of every run: each arm once per seed (and per budget, the
    longest first)."""
    out = []
    for overrides in self.runs:
      for seed in self.seeds or [None]:
        for budget in sorted({int(b) for b in self.budgets}, reverse=True) or [None]:
          arm = overrides if budget is None else {**overrides, "train.steps": budget}
          name = self.run_name(arm) + (f"_seed-{seed}" if seed is not None else "")
          out.append((name, arm if seed is None else {**arm, "seed": seed}, seed))
    return out

  def branches(self) -> dict[str, str]:
    """{run folder of a shorter budget: run folder of the longest budget it branches from}."""
    if not self.budgets:
      return {}
    longest = max(int(b) for b in self.budgets)
    out = {}
    for name, overrides, _ in self.arms():
      if overrides["train.steps"] != longest:
        source = {**overrides, "train.steps": longest}
        seed = source.pop("seed", None)
        out[self._folder(name)] = self._folder(
            self.run_name(source) + (f"_seed-{seed}" if seed is not None else ""))
    return out

  def _folder(self, name: str) -> str:
    return str(pathlib.Path(self.root) / self.name / name)

  def _keep_steps(self, cfg) -> str | None:
    """checkpoint.keep_steps of the longest budget's run (`cfg`): every shorter budget's
    branch point."""
    from llm_input.train import branch  # noqa: PLC0415

    shorter = [int(b) for b in self.budgets if int(b) < cfg.train.steps]
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
        keep = self.budgets and self._folder(name) not in branches and self._keep_steps(cfg)
        if keep:
          items.append(keep)
          cfg = config_lib.load_like(cfg, [keep])
        if validate:
          sections_lib.validate(cfg)
          if self.budgets:
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


def aggregate(rows: list[dict], keys: tuple[str, ...] = ()) -> list[dict]:
  """One row per arm: the arm's own fields (`keys`, e.g. its overrides, and any non-numeric
  column), n (its seeds), and the mean and sample standard deviation (ddof=1; 0 for one seed)
  of every other numeric column."""
  arms: dict[str, list[dict]] = {}
  for row in rows:
    arms.setdefault(row["arm"], []).append(row)
  out = []
  for arm, members in arms.items():
    entry = {"arm": arm, "n": len(members)}
    columns = list(dict.fromkeys(k for r in members for k in r if k not in ("run", "arm", "seed")))
    for column in columns:
      values = [r.get(column) for r in members]
      numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
      if column in keys or not numeric:
        entry[column] = values[0]
        continue
      mean = sum(values) / len(values)
      var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
      entry[f"{column}_mean"], entry[f"{column}_std"] = mean, math.sqrt(var)
    out.append(entry)
  return out


def compare(a: list[float], b: list[float], alpha: float = 0.05) -> dict:
  """Welch's t-test on two arms' per-seed values (unpaired; `analysis.stats.compare` pairs
  them): is the difference of their means larger than their seed-to-seed spread explains?
  `distinguishable` needs >= 2 seeds each and p < alpha."""
  from llm_input.analysis import stats  # noqa: PLC0415

  return stats.compare(a, b, paired=False, alpha=alpha)


def verdict(a: list[float], b: list[float], names=("a", "b"), alpha: float = 0.05) -> str:
  """A sentence a README can quote: which arm is lower, or 'not distinguishable at this budget'."""
  c = compare(a, b, alpha)
  if not c["distinguishable"]:
    return (f"{names[0]} {c['mean_a']:.4f} vs {names[1]} {c['mean_b']:.4f}: not distinguishable at "
            f"this budget (n={c['n_a']}, {c['n_b']}" + (f", Welch p={c['p']:.2f})" if c["p"] is not None else ")"))
  lower = names[0] if c["diff"] < 0 else names[1]
  return (f"{lower} is lower: {names[0]} {c['mean_a']:.4f} vs {names[1]} {c['mean_b']:.4f} "
          f"(difference {c['diff']:+.4f}, Welch p={c['p']:.3g}, n={c['n_a']}, {c['n_b']})")


def pairwise(rows: list[dict], y: str = "val_bits_per_byte", alpha: float = 0.05) -> list[dict]:
  """Every pair of arms compared on `y` over seeds (`analysis.stats.pairwise`: paired t when
  both arms ran the same seeds, whose initialisation and data order they then share; Welch
  otherwise), with Holm's correction for making all those comparisons at once:
  `distinguishable` when the Holm-adjusted p-value is below alpha. Sorted by that p-value."""
  from llm_input.analysis import stats  # noqa: PLC0415

  values: dict[str, list[tuple]] = {}
  for row in rows:
    if row.get(y) is not None:
      values.setdefault(row["arm"], []).append((row.get("seed"), float(row[y])))
  return stats.pairwise(values, alpha)


def pairwise_markdown(rows: list[dict], y: str = "val_bits_per_byte", alpha: float = 0.05) -> str:
  from llm_input.analysis import stats  # noqa: PLC0415

  lines = [f"| {y}: arm a | arm b | mean a - mean b | 95% CI | effect size | test | p | Wilcoxon p "
           "| Holm p | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
  fmt = lambda v, spec=".2g": "" if v is None else format(v, spec)  # noqa: E731
  for r in pairwise(rows, y, alpha):
    ci = "" if r["ci_low"] is None else f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
    lines.append(f"| {r['a']} | {r['b']} | {r['diff']:+.4f} | {ci} | {fmt(r['effect_size'], '.2f')} | "
                 f"{r['test'] or ''} | {fmt(r['p'])} | {fmt(r['p_wilcoxon'])} | {fmt(r['p_holm'])} | "
                 f"{stats.describe(r)} |")
  lines.append(f"\nPer pair over seeds: paired t-test (and Wilcoxon's signed-rank test) when both arms "
               f"ran the same seeds, Welch's t-test otherwise; effect size d_z (paired) or Cohen's d; "
               f"Holm's correction over the {len(lines) - 2} pairs; distinguishable when the Holm p < "
               f"{alpha}; a difference not detected comes with the smallest one this design detects "
               "with 80% power.")
  return "\n".join(lines) + "\n"


def _write_csv(path: pathlib.Path, rows: list[dict]) -> None:
  columns = list(dict.fromkeys(k for r in rows for k in r))
  with path.open("w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)


def _fmt(value) -> str:
  return f"{value:.4g}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def arm_table(sweep: Sweep, rows: list[dict]) -> tuple[list[dict], list[str], list[list[str]]]:
  """The per-arm aggregate of seeded rows, its column names, and one row of cells per arm:
  mean ± std for what the seeds change, one value for what they do not (vocabulary,
  parameters, steps; up to float noise in averages such as tokens per word, 1e-9 relative)."""
  keys = tuple(dict.fromkeys(k for overrides in sweep.runs for k in overrides))
  arms = aggregate(rows, keys)
  metrics = [c[:-5] for c in dict.fromkeys(k for a in arms for k in a) if c.endswith("_mean")]
  constant = {c for c in metrics
              if all(a.get(c + "_std", 0.0) <= 1e-9 * abs(a.get(c + "_mean", 0.0)) for a in arms)}

  def cell(a, c):
    if c + "_mean" not in a:
      return _fmt(a.get(c, ""))
    if c in constant:
      return _fmt(a[c + "_mean"])
    return f"{a[c + '_mean']:.4g} ± {a[c + '_std']:.2g}"

  columns = ["arm", "n", *keys, *metrics]
  return arms, columns, [[cell(a, c) for c in columns] for a in arms]


def write_table(sweep: Sweep, rows: list[dict], out_dir: str | pathlib.Path, x: str | None = None,
                y: str = "val_bits_per_byte") -> dict:
  """results.md, results.csv and results.png (y against x, or a bar per run). With seeds:
  results.md has one row per arm, mean ± std (n) of every numeric column, results_by_arm.csv
  the same numbers, results.csv every seed's row, and the plot error bars plus each seed."""
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  if not rows:
    raise ConfigError(f"sweep {sweep.name}: no finished runs under {sweep.root}/{sweep.name}; run "
                      f"`llm-input sweep ...` first")
  seeded = any("seed" in r for r in rows)
  gone = missing_note(sweep)
  gone = f"\n**{gone}**\n" if gone else ""
  if not seeded:
    rows = [{k: v for k, v in r.items() if k != "arm"} for r in rows]
  _write_csv(out / "results.csv", rows)
  paths = {"markdown": str(out / "results.md"), "csv": str(out / "results.csv"),
           "plot": str(out / "results.png")}
  if seeded:
    arms, columns, cells = arm_table(sweep, rows)
    _write_csv(out / "results_by_arm.csv", arms)
    paths["by_arm"] = str(out / "results_by_arm.csv")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    note = f"\nmean ± sample standard deviation over n seeds ({', '.join(map(str, sweep.seeds))})\n"
    (out / "results.md").write_text("\n".join(lines) + "\n" + gone + note + "\n" + pairwise_markdown(rows, y))
  else:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n" + gone)

  import matplotlib  # noqa: PLC0415

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
  if seeded:
    labels = [str(a.get(x, a["arm"])) if x else a["arm"] for a in arms]
    if len(set(labels)) < len(labels):  # x does not tell the arms apart
      labels = [a["arm"] for a in arms]
    ax.bar(range(len(arms)), [a.get(f"{y}_mean", float("nan")) for a in arms],
           yerr=[a.get(f"{y}_std", 0.0) for a in arms], color="#4c72b0", alpha=0.7, capsize=4)
    for i, a in enumerate(arms):  # every seed as a dot
      values = [r.get(y) for r in rows if r["arm"] == a["arm"] and r.get(y) is not None]
      ax.scatter([i] * len(values), values, color="black", s=10, zorder=3)
  else:
    labels = [str(r.get(x, r["run"])) if x else r["run"] for r in rows]
    ax.bar(range(len(rows)), [r.get(y, float("nan")) for r in rows], color="#4c72b0")
  ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
  ax.set_ylabel(y.replace("_", " "))
  ax.set_title(f"{sweep.name}: {y.replace('_', ' ')}" + (" (mean ± std, dots: seeds)" if seeded else ""))
  fig.tight_layout()
  fig.savefig(out / "results.png")
  plt.close(fig)
  return paths
