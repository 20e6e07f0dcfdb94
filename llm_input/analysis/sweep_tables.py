"""Sweep tables and their statistics: one row per arm (mean ± standard deviation over seeds),
every pair of arms compared (`analysis.stats`: paired tests where arms share seeds, Holm over
the pairs), and `write_table`'s results.md/.csv/.png. Reads finished runs (`sweep.collect`),
never trains.
"""

from __future__ import annotations

import csv
import math
import pathlib

from llm_input.analysis import stats
from llm_input.errors import ConfigError
from llm_input.sweep import Sweep, missing_note


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
  values: dict[str, list[tuple]] = {}
  for row in rows:
    if row.get(y) is not None:
      values.setdefault(row["arm"], []).append((row.get("seed"), float(row[y])))
  return stats.pairwise(values, alpha)


def pairwise_markdown(rows: list[dict], y: str = "val_bits_per_byte", alpha: float = 0.05) -> str:
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
