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


def bootstrap_markdown(rows: list[dict], records: dict[str, dict], alpha: float = 0.05,
                       resamples: int = 10000) -> str:
  """Every pair of arms over the seeds both ran, with a bootstrap interval over seeds and held-out
  documents (`stats.bootstrap_difference`; `records`: {run name: its val_documents.json}).
  Empty when some run of the sweep has no per-document record."""
  by_arm: dict[str, dict] = {}
  for row in rows:
    by_arm.setdefault(row["arm"], {})[row.get("seed")] = records.get(row["run"])
  if not rows or any(r is None for arm in by_arm.values() for r in arm.values()):
    return ""
  names = list(by_arm)
  pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
  wide = alpha / max(len(pairs), 1)  # Bonferroni: every interval of the table at once
  lines = [f"| arm a | arm b | seeds | documents | a - b (bits per byte) | 95% interval | "
           f"{100 * (1 - wide):.4g}% interval (all {len(pairs)} pairs at once) | verdict |",
           "|---|---|---|---|---|---|---|---|"]
  for a, b in pairs:
    seeds = sorted(set(by_arm[a]) & set(by_arm[b]), key=lambda s: (s is None, s))
    if not seeds:
      continue
    loss_a, bytes_a = stats.document_arrays([by_arm[a][s] for s in seeds])
    loss_b, bytes_b = stats.document_arrays([by_arm[b][s] for s in seeds])
    if loss_a.shape != loss_b.shape:
      continue  # different validation splits: not comparable document by document
    r95 = stats.bootstrap_difference(loss_a, bytes_a, loss_b, bytes_b, resamples, alpha)
    rall = stats.bootstrap_difference(loss_a, bytes_a, loss_b, bytes_b, resamples, wide)
    verdict = (f"{a if rall['diff'] < 0 else b} lower" if rall["excludes_zero"] else "not detected")
    lines.append(f"| {a} | {b} | {len(seeds)} | {loss_a.shape[1]} | {r95['diff']:+.4f} | "
                 f"[{r95['ci_low']:+.4f}, {r95['ci_high']:+.4f}] | [{rall['ci_low']:+.4f}, "
                 f"{rall['ci_high']:+.4f}] | {verdict} |")
  lines.append(f"\nPercentile bootstrap ({resamples:,} resamples) over seeds (paired: the same draw "
               "for both arms) and held-out documents (the same documents for both), so the "
               "intervals include how the difference varies with the text; a verdict needs the "
               "simultaneous interval to exclude 0.")
  return "\n".join(lines) + "\n"


def _curve_name(row: dict) -> str:
  """A budget run's arm without its budget (`Sweep.run_name` puts train.steps last)."""
  steps = f"steps-{row['train.steps']}"
  return row["arm"].removesuffix("_" + steps).removesuffix(steps) or "base"


def budget_curves(rows: list[dict], y: str = "val_bits_per_byte") -> dict:
  """{arm without its budget: [(train FLOPs, mean y, std y, n seeds, train.steps)] by budget}
  from a budget sweep's rows (`Sweep.budgets`: one arm per budget, each run named ..._steps-N)."""
  arms = aggregate([r for r in rows if r.get(y) is not None], keys=("train.steps", "train_flops"))
  out: dict[str, list] = {}
  for a in sorted(arms, key=lambda a: (_curve_name(a), int(a["train.steps"]))):
    out.setdefault(_curve_name(a), []).append(
        (float(a["train_flops"]), a[f"{y}_mean"], a[f"{y}_std"], a["n"], int(a["train.steps"])))
  return out


def budget_figure(rows: list[dict], y: str = "val_bits_per_byte", title: str = ""):
  """y against training FLOPs, one line per arm (mean ± std over seeds at each budget), with
  each arm's Kneser-Ney unigram and best-order baselines (from --baselines) as dotted lines."""
  import matplotlib.pyplot as plt  # noqa: PLC0415

  curves = budget_curves(rows, y)
  fig, ax = plt.subplots(figsize=(6.5, 4), dpi=120)
  drawn = set()
  # arms on different tokens (a granularity sweep) have baselines of their own: drawn in the
  # arm's colour and named by it; arms on the same tokens share one grey line per baseline
  shared = len({round(float(r["kn_best_bits_per_byte"]), 4) for r in rows
                if r.get("kn_best_bits_per_byte") is not None}) <= 1
  for i, (curve, points) in enumerate(curves.items()):
    color = f"C{i}"
    x, mean, std = [p[0] for p in points], [p[1] for p in points], [p[2] for p in points]
    ax.errorbar(x, mean, yerr=std, marker="o", ms=4, capsize=3, color=color, label=curve)
    for key, style in (("kn1_bits_per_byte", ":"), ("kn_best_bits_per_byte", "--")):
      own = [r for r in rows if r.get(key) is not None and _curve_name(r) == curve]
      base = [float(r[key]) for r in own]
      if base and y == "val_bits_per_byte" and (key, round(base[0], 4)) not in drawn:
        drawn.add((key, round(base[0], 4)))  # arms with the same tokens share one line
        order = own[0].get("kn_best_order")
        label = "KN unigram" if key == "kn1_bits_per_byte" else f"KN best (order {order})"
        label = label if shared else f"{curve}: {label}"
        ax.axhline(base[0], ls=style, lw=1, color="0.45" if shared else color, alpha=1.0 if shared else 0.6)
        ax.annotate(label, (0.99, base[0]), xycoords=("axes fraction", "data"), fontsize=7 if shared else 5,
                    color="0.3" if shared else color, ha="right", va="bottom")
  ax.set_xscale("log")
  ax.set_xlabel("training FLOPs (analytic)")
  ax.set_ylabel(y.replace("_", " "))
  ax.set_title(title or f"{y.replace('_', ' ')} against compute (mean ± std over seeds)", fontsize=9)
  ax.legend(fontsize=7)
  fig.tight_layout()
  return fig


def _by_budget(sweep: Sweep, rows: list[dict]) -> bool:
  """Whether `rows` are a budget sweep's (`Sweep.budgets` or `flops_budgets`), each carrying
  its train.steps (and, for FLOPs budgets, its budget_flops)."""
  key = "budget_flops" if sweep.flops_budgets else "train.steps"
  return sweep.has_budgets() and all(key in r and "train.steps" in r for r in rows)


def comparisons_markdown(sweep: Sweep, rows: list[dict], y: str, documents: dict[str, dict]) -> str:
  """The pairwise tests (and, with per-document records, the bootstrap) of results.md: over all
  arms, or for a budget sweep within each budget (comparing arms at one compute, never one
  arm's short run with another's long one)."""
  def both(group):
    boot = bootstrap_markdown(group, documents)
    return pairwise_markdown(group, y) + (f"\n#### Over seeds and held-out documents\n\n{boot}" if boot else "")

  if not _by_budget(sweep, rows):
    return both(rows)
  parts = []
  if sweep.flops_budgets:  # arms take different steps for one budget
    for budget in sorted({float(r["budget_flops"]) for r in rows}):
      group = [r for r in rows if float(r["budget_flops"]) == budget]
      parts.append(f"### At a budget of {budget:.3g} training FLOPs\n\n" + both(group))
    return "\n".join(parts)
  for steps in sorted({int(r["train.steps"]) for r in rows}):
    group = [r for r in rows if int(r["train.steps"]) == steps]
    flops = {r.get("train_flops") for r in group}
    same = len(flops) == 1 and None not in flops
    parts.append(f"### At {steps} steps" + (f" ({float(flops.pop()):.3g} training FLOPs)" if same else "")
                 + "\n\n" + both(group))
  return "\n".join(parts)


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
                y: str = "val_bits_per_byte", documents: dict[str, dict] | None = None) -> dict:
  """results.md, results.csv and results.png (y against x, or a bar per run). With seeds:
  results.md has one row per arm, mean ± std (n) of every numeric column, results_by_arm.csv
  the same numbers, results.csv every seed's row, and the plot error bars plus each seed.
  `documents` ({run name: val_documents.json}): results.md also gets the bootstrap over seeds
  and documents (`bootstrap_markdown`) of validation bits per byte."""
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
    (out / "results.md").write_text("\n".join(lines) + "\n" + gone + note + "\n"
                                    + comparisons_markdown(sweep, rows, y, documents or {}))
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
  if seeded and _by_budget(sweep, rows):
    fig = budget_figure(rows, y, f"{sweep.name}: {y.replace('_', ' ')} against compute")
    fig.savefig(out / "curves.png")
    plt.close(fig)
    paths["curves"] = str(out / "curves.png")
  return paths
