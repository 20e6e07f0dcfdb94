"""A budget sweep's figures for its README, from the sweep's results.csv: per budget each arm's
validation bits per byte beside the Kneser-Ney baselines, the paired tests within each budget,
the range of budgets where each detected difference holds, the epochs each budget saw and the
CPU time. The experiments' `figures.py` scripts write these lines between markers of their
README, so no number there is typed by hand.
"""

from __future__ import annotations

import csv
import json
import pathlib
from collections.abc import Callable

import numpy as np

from llm_input.analysis import stats, sweep_tables

START, END = "<!-- figures -->", "<!-- /figures -->"
_FLOATS = ("val_bits_per_byte", "kn1_bits_per_byte", "kn_best_bits_per_byte", "train_flops",
           "train_time_s", "bytes_per_token", "budget_flops", "unk_rate")


def read_results(path: str | pathlib.Path, arm_column: str, arm_type: Callable = str) -> list[dict]:
  """results.csv rows with numbers parsed; `arm` is the row's `arm_column`, `steps` the steps it
  trained (the `train.steps` column of a sweep whose runs set it, else the run's steps) and
  `budget` its budget: `budget_flops` for a sweep of FLOPs budgets (`Sweep.flops_budgets`,
  where arms train different steps for one budget), else `steps`."""
  with pathlib.Path(path).open() as f:
    rows = list(csv.DictReader(f))
  for r in rows:
    for key in _FLOATS:
      r[key] = float(r[key]) if r.get(key) not in (None, "") else None
    r["arm"], r["steps"], r["seed"] = arm_type(r[arm_column]), int(r.get("train.steps") or r["steps"]), int(r["seed"])
    r["budget"] = r["budget_flops"] if r.get("budget_flops") is not None else r["steps"]
  return rows


def train_tokens(cache: pathlib.Path, run_dir: pathlib.Path) -> int:
  """Tokens in the train split of a run's token store (a sweep's arms share one tokenizer),
  cached in `cache` (committed beside the figures, so they regenerate without the runs)."""
  from llm_input import tokenizers  # noqa: PLC0415
  from llm_input.data import pipeline  # noqa: PLC0415
  from llm_input.runs import RunFolder  # noqa: PLC0415

  if cache.exists():
    return json.loads(cache.read_text())["train_tokens"]
  run = RunFolder(run_dir)
  pipe = pipeline.PipelineConfig.from_config(run.read_config())
  store = pipeline.open_store(pipe, tokenizers.load(run.tokenizer_dir), say=lambda *_: None)
  n = int(store.meta["splits"]["train"]["tokens"])
  cache.write_text(json.dumps({"train_tokens": n}) + "\n")
  return n


def documents_bundle(cache: pathlib.Path, run_root: pathlib.Path, runs: list[str]) -> dict[str, dict]:
  """{run: its val_documents.json (`llm-input eval`)}, kept in `cache` (committed beside the
  figures, so the bootstrap over documents regenerates without the runs); runs missing from
  the cache are read from `run_root` and added."""
  kept = json.loads(cache.read_text()) if cache.exists() else {}
  missing = [r for r in runs if r not in kept]
  for run in missing:
    path = run_root / run / "val_documents.json"
    if path.exists():
      record = json.loads(path.read_text())
      kept[run] = {k: record[k] for k in ("step", "split", "documents", "bits_per_byte")}
  if missing and any(r in kept for r in missing):
    cache.write_text(json.dumps(dict(sorted(kept.items())), indent=1) + "\n")
  return kept


def bootstrap_block(data: list[dict], records: dict[str, dict], label: Callable = str) -> str:
  """Per budget, every pair's difference with a bootstrap over seeds and held-out documents
  (`sweep_tables.bootstrap_markdown`); empty when a run has no per-document record."""
  parts = []
  for budget in sorted({_budget(r) for r in data}):
    group = [{**r, "arm": label(r["arm"])} for r in data if _budget(r) == budget]
    table = sweep_tables.bootstrap_markdown(group, records)
    if not table:
      return ""
    parts.append(f"At {budget_name(budget)}:\n\n{table}")
  return "\n".join(parts)


def tests_by_budget(data: list[dict], label: Callable = str) -> dict[int, list[dict]]:
  """{budget: stats.pairwise over the arms' (seed, bits per byte)}: paired over shared seeds,
  Holm within the budget."""
  out = {}
  for budget in sorted({_budget(r) for r in data}):
    values = {label(a): [(r["seed"], r["val_bits_per_byte"]) for r in data
                         if _budget(r) == budget and r["arm"] == a]
              for a in _arms(data)}
    out[budget] = stats.pairwise(values)
  return out


def holding_ranges(tests: dict[int, list[dict]]) -> list[dict]:
  """Each difference detected at the largest budget, with the smallest budget from which it is
  detected, in the same direction, at every budget up to the largest.

  Returns [{"lower", "higher", "diff" (at the largest budget, lower - higher), "from_budget"}],
  ordered by the size of the difference. A difference that is detected only below the largest
  budget is not a conclusion about the range, so it is left to the per-budget lines."""
  budgets = sorted(tests)
  if not budgets:
    return []

  def lower_of(r):  # diff is mean a - mean b
    return r["a"] if r["diff"] < 0 else r["b"]

  def detected_lower(budget, a, b):  # the lower arm where the pair is detected, else None
    return next((lower_of(r) for r in tests[budget] if {r["a"], r["b"]} == {a, b} and r["distinguishable"]),
                None)

  out = []
  for r in tests[budgets[-1]]:
    if not r["distinguishable"]:
      continue
    lower = lower_of(r)
    higher = r["b"] if lower == r["a"] else r["a"]
    start = budgets[-1]
    for budget in reversed(budgets[:-1]):
      if detected_lower(budget, lower, higher) != lower:
        break
      start = budget
    out.append({"lower": lower, "higher": higher, "diff": -abs(r["diff"]), "from_budget": start})
  return sorted(out, key=lambda r: r["diff"])


def _budget(row: dict):
  """A row's budget: `budget` (read_results), else its steps (rows made by hand)."""
  return row.get("budget", row["steps"])


def budget_name(budget) -> str:
  """'400 steps' or, for a FLOPs budget, '7.09e+12 FLOPs'."""
  return f"{budget:.3g} FLOPs" if isinstance(budget, float) else f"{budget} steps"


def _arms(data):
  return sorted({r["arm"] for r in data}, key=lambda a: (str(type(a)), a))


def summary_block(data: list[dict], label: Callable = str, *, tokens_per_step: int,
                  train_tokens: int, validation: str) -> str:
  """The README lines: a table per budget with the baselines, the tests, the ranges, CPU time."""
  budgets = sorted({r["steps"] for r in data})
  arms = _arms(data)
  kn1, best = data[0]["kn1_bits_per_byte"], data[0]["kn_best_bits_per_byte"]
  order = data[0].get("kn_best_order")
  flops = {b: next(r["train_flops"] for r in data if r["steps"] == b) for b in budgets}
  lines = [f"Validation bits per byte ({validation}), mean ± std over seeds "
           f"{sorted({r['seed'] for r in data})}; Kneser-Ney on the same tokens: unigram {kn1:.4f}, best "
           f"order ({order}) {best:.4f}.", "",
           "| steps | training FLOPs | epochs of the train split | " + " | ".join(label(a) for a in arms)
           + " | best arm vs KN best |", "|---|---|---|" + "---|" * len(arms) + "---|"]
  for b in budgets:
    at = [r for r in data if r["steps"] == b]
    cells, means = [], {}
    for a in arms:
      v = [r["val_bits_per_byte"] for r in at if r["arm"] == a]
      means[a] = float(np.mean(v))
      cells.append(f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}" if len(v) > 1 else f"{v[0]:.4f}")
    winner = min(means, key=means.get)
    gap = means[winner] - best
    lines.append(f"| {b} | {flops[b]:.3g} | {b * tokens_per_step / train_tokens:.2f} | " + " | ".join(cells)
                 + f" | {label(winner)} {gap:+.4f} ({'below' if gap < 0 else 'above'}) |")
  tests = tests_by_budget(data, label)
  pairs = len(arms) * (len(arms) - 1) // 2
  lines += ["", f"Paired over seeds at each budget (paired t, Holm over the {pairs} pairs of a budget):", ""]
  for b in budgets:
    decided = [r for r in tests[b] if r["distinguishable"]]
    text = "; ".join(f"{r['a']} vs {r['b']} {r['diff']:+.4f} (Holm p {r['p_holm']:.2g})" for r in decided) or "none"
    lines.append(f"- {b} steps: decided: {text}; not detected: {len(tests[b]) - len(decided)} of {pairs} pairs.")
  if len(budgets) == 1:  # one point of a curve (`--arg seeds`): the tests above are the result
    return "\n".join(lines)
  ranges = holding_ranges(tests)
  lines += ["", "Where each difference detected at the largest budget holds (detected at every budget from "
            "the first one named; the budgets run "
            f"{budgets[0]}-{budgets[-1]} steps, {flops[budgets[0]]:.3g}-{flops[budgets[-1]]:.3g} FLOPs):", ""]
  lines += [f"- {_span(r['from_budget'], budgets, flops)}, {r['lower']} is below {r['higher']} "
            f"({r['diff']:+.4f} bits per byte at {budgets[-1]} steps)" for r in ranges] or [
      f"- none: no difference is detected at {budgets[-1]} steps"]
  return "\n".join(lines)


def _span(start: int, budgets: list[int], flops: dict) -> str:
  if start == budgets[-1]:
    return f"at {start} steps ({flops[start]:.3g} FLOPs) only, the largest budget"
  return f"from {start} steps ({flops[start]:.3g} FLOPs) to {budgets[-1]} ({flops[budgets[-1]]:.3g})"


def cpu_hours_line(data: list[dict]) -> str:
  longest = max(_budget(r) for r in data)
  long_runs = [r for r in data if _budget(r) == longest]
  hours = sum(r["train_time_s"] or 0.0 for r in long_runs) / 3600
  which = f"{budget_name(longest)} runs" if isinstance(longest, float) else f"{longest}-step runs"
  return (f"CPU time: {hours:.2f} core-hours in the training loops of the {len(long_runs)} {which} "
          "(each on one core; a branch's time repeats its long run's up to the branch point, so branches are "
          "not summed).")


def seeds_cpu_line(data: list[dict], curve_seeds: tuple = (0,)) -> str:
  """CPU time of a sweep's seeds at one point of a curve (`--arg seeds`): the runs of the seeds
  other than `curve_seeds`, whose points are the curve's own (trained with it)."""
  seeds = sorted({r["seed"] for r in data if r["seed"] not in curve_seeds})
  straight = [r for r in data if r["seed"] not in curve_seeds]
  which = {0: "", 1: "; seed {} is the curve's own point"}.get(len(curve_seeds), "; seeds {} are the curve's own points")
  return (f"CPU time: {sum(r['train_time_s'] or 0.0 for r in straight) / 3600:.2f} core-hours in the "
          f"training loops of the {len(straight)} runs of seeds {', '.join(map(str, seeds))} (each on "
          "one core)" + which.format(", ".join(map(str, curve_seeds))) + ".")


def seeds_against_curve(data: list[dict], curve: list[dict], steps: int, label: Callable = str) -> str:
  """The lines a seeds sweep (`--arg seeds`) trained wholly here adds below its `summary_block`:
  every pair paired over seeds with its power, how closely its runs repeat the curve's
  `steps`-step points (`curve`: the curve's rows, trained elsewhere), and its CPU time."""
  return "\n\n".join([
      "Every pair over seeds, paired (with the power of each test):",
      sweep_tables.pairwise_markdown([{**r, "arm": label(r["arm"])} for r in data]).rstrip("\n"),
      repeat_line(data, curve, steps), seeds_cpu_line(data, curve_seeds=())])


def repeat_line(data: list[dict], curve: list[dict], steps: int) -> str:
  """How closely a seeds sweep's straight runs (`--arg seeds`) repeat the curve's cooldown
  branches at `steps` (`curve`: the curve's rows, trained on another machine kind), over the
  (arm, seed) pairs both have."""
  at = {(r["arm"], r["seed"]): r["val_bits_per_byte"] for r in curve if r["steps"] == steps}
  repeat = [abs(r["val_bits_per_byte"] - at[(r["arm"], r["seed"])]) for r in data if (r["arm"], r["seed"]) in at]
  if not repeat:
    raise ValueError(f"no (arm, seed) of the seeds sweep is among the curve's {steps}-step points")
  return (f"Seeds {', '.join(map(str, sorted({s for _, s in at})))} repeat the curve's {steps}-step points "
          f"(cooldown branches trained on another machine kind) to within {max(repeat):.4f} bits per byte "
          f"({len(repeat)} runs).")


def rewrite_block(readme: pathlib.Path, text: str, name: str = "figures") -> None:
  """Replaces what lies between the README's `<!-- NAME -->` and `<!-- /NAME -->` markers
  (START and END for the default name) with `text`."""
  start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
  body = readme.read_text()
  head, rest = body.split(start, 1)
  _, tail = rest.split(end, 1)
  readme.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def write_block(readme: pathlib.Path, text: str, name: str = "figures") -> None:
  """A figures script's output: `rewrite_block`, then the block on stdout for the terminal."""
  rewrite_block(readme, text, name)
  print(text)


def train_tokens_by_arm(cache: pathlib.Path, run_dirs: dict) -> dict:
  """{arm: tokens in the train split of its token store} for a sweep whose arms tokenize
  differently ({arm: one of its run folders}), cached in `cache` like `train_tokens`."""
  kept = json.loads(cache.read_text()) if cache.exists() else {}
  if all(str(a) in kept for a in run_dirs):
    return {a: kept[str(a)] for a in run_dirs}
  out = {}
  for arm, run_dir in run_dirs.items():
    if str(arm) in kept:
      out[arm] = kept[str(arm)]
      continue
    scratch = cache.with_name(f".{cache.name}.one")
    scratch.unlink(missing_ok=True)
    out[arm] = train_tokens(scratch, run_dir)
    scratch.unlink()
  cache.write_text(json.dumps({str(a): n for a, n in out.items()}, indent=1) + "\n")
  return out


def bootstrap_tests_by_budget(data: list[dict], records: dict[str, dict], label: Callable = str,
                              alpha: float = 0.05, resamples: int = 10000) -> dict:
  """{budget: [{"a", "b", "diff", "distinguishable"}]} like `tests_by_budget`, decided by the
  bootstrap over seeds and held-out documents instead (for `holding_ranges` when there are too
  few seeds for a test over seeds): distinguishable when the simultaneous interval over all the
  budget's pairs (Bonferroni) excludes 0, as in `sweep_tables.bootstrap_markdown`."""
  out = {}
  for budget in sorted({_budget(r) for r in data}):
    by_arm = {}
    for r in data:
      if _budget(r) == budget:
        by_arm.setdefault(label(r["arm"]), {})[r["seed"]] = records[r["run"]]
    names = list(by_arm)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    wide = alpha / max(len(pairs), 1)
    out[budget] = []
    for a, b in pairs:
      seeds = sorted(set(by_arm[a]) & set(by_arm[b]))
      loss_a, bytes_a = stats.document_arrays([by_arm[a][s] for s in seeds])
      loss_b, bytes_b = stats.document_arrays([by_arm[b][s] for s in seeds])
      r = stats.bootstrap_difference(loss_a, bytes_a, loss_b, bytes_b, resamples, wide)
      out[budget].append({"a": a, "b": b, "diff": r["diff"], "distinguishable": r["excludes_zero"]})
  return out


def flops_summary_block(data: list[dict], label: Callable = str, *, train_tokens: dict, tokens_per_step: int,
                        validation: str, records: dict[str, dict] | None = None,
                        order: list | None = None, unk_tolerance: float = 1e-3,
                        base_budget: float | None = None) -> str:
  """The README lines of a sweep of FLOPs budgets whose arms tokenize differently (granularity):
  each arm's own Kneser-Ney baselines, a table per budget (bits per byte, steps, epochs of the
  arm's train split), each arm against its own best n-gram, the tests within each budget, and
  the budget range where each difference holds (from the tests over seeds when there are two or
  more, else from the bootstrap over the held-out documents in `records`). An arm with `<unk>`
  tokens is marked (more than `unk_tolerance` of its validation tokens: a char vocabulary missing
  one rare character is not): its bits per byte leave out the bytes an `<unk>` stands for.
  `order`: the arms' order in the tables (default: sorted). `base_budget`: what the budget
  column's multiples are of (default: the smallest budget; a sweep at one point of a longer
  curve names the curve's 1x)."""
  budgets = sorted({_budget(r) for r in data})
  arms = [a for a in order if any(r["arm"] == a for r in data)] if order else _arms(data)
  seeds = sorted({r["seed"] for r in data})
  first = {a: next(r for r in data if r["arm"] == a) for a in arms}
  lossy = {a for a in arms if (first[a].get("unk_rate") or 0.0) > unk_tolerance}
  name = {a: label(a) + ("*" if a in lossy else "") for a in arms}
  comparable = [a for a in arms if a not in lossy]
  best_kn = min(comparable, key=lambda a: first[a]["kn_best_bits_per_byte"])
  lines = [f"Validation bits per byte ({validation}), "
           + (f"mean ± std over seeds {seeds}" if len(seeds) > 1 else f"seed {seeds[0]}") + ".", "",
           "Each arm's Kneser-Ney baselines, on its own tokens of the same validation text:", "",
           "| arm | bytes per token | `<unk>` rate | KN unigram | KN best (order) |", "|---|---|---|---|---|"]
  for a in arms:
    r = first[a]
    lines.append(f"| {name[a]} | {r['bytes_per_token']:.3f} | {r.get('unk_rate') or 0.0:.4f} | "
                 f"{r['kn1_bits_per_byte']:.4f} | {r['kn_best_bits_per_byte']:.4f} ({r['kn_best_order']}) |")
  lines += ["", "Each cell: bits per byte (steps, epochs of the arm's train split); the last column is the "
            f"best arm without `<unk>` against the best n-gram of any such arm ({name[best_kn]}'s KN, "
            f"{first[best_kn]['kn_best_bits_per_byte']:.4f}).", "",
            "| budget | training FLOPs | " + " | ".join(name[a] for a in arms)
            + " | below their own KN best | best arm vs best KN |", "|---|---|" + "---|" * len(arms) + "---|---|"]
  for i, b in enumerate(budgets):
    at = [r for r in data if _budget(r) == b]
    cells, means = [], {}
    for a in arms:
      rows = [r for r in at if r["arm"] == a]
      v = [r["val_bits_per_byte"] for r in rows]
      means[a] = float(np.mean(v))
      value = f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}" if len(v) > 1 else f"{v[0]:.4f}"
      steps = rows[0]["steps"]
      cells.append(f"{value} ({steps}, {steps * tokens_per_step / train_tokens[a]:.2f})")
    below = [name[a] for a in arms if means[a] < first[a]["kn_best_bits_per_byte"]]
    winner = min(comparable, key=means.get)
    gap = means[winner] - first[best_kn]["kn_best_bits_per_byte"]
    flops = np.mean([r["train_flops"] for r in at])
    lines.append(f"| {b / (base_budget or budgets[0]):.3g}x | {flops:.3g} | " + " | ".join(cells) + f" | {', '.join(below) or 'none'} | "
                 f"{name[winner]} {gap:+.4f} |")
  if len(seeds) > 1:
    tests = tests_by_budget(data, lambda a: name[a])
    how = "paired over seeds (paired t, Holm over the pairs of a budget)"
  else:
    tests = bootstrap_tests_by_budget(data, records or {}, lambda a: name[a])
    how = ("one seed, so no test over seeds: decided by the bootstrap over the held-out documents alone, "
           "when the simultaneous interval over all the pairs of a budget excludes 0 (see below); "
           "seed-to-seed variance is not in these intervals")
  pairs = len(arms) * (len(arms) - 1) // 2
  ranges = holding_ranges(tests)
  if len(budgets) == 1:  # one budget: what is detected there, no range
    lines += ["", f"Detected at {budgets[0]:.3g} FLOPs ({how}):", ""]
    lines += [f"- {r['lower']} is below {r['higher']} ({r['diff']:+.4f} bits per byte)" for r in ranges]
  else:
    lines += ["", f"Where each difference detected at the largest budget holds ({how}; the budgets run "
              f"{budgets[0]:.3g}-{budgets[-1]:.3g} FLOPs):", ""]
    lines += [f"- {flops_span(r['from_budget'], budgets)}, {r['lower']} is below {r['higher']} "
              f"({r['diff']:+.4f} bits per byte at {budgets[-1]:.3g} FLOPs)" for r in ranges]
  lines += [] if ranges else [
      f"- none: no difference is detected at {budgets[-1]:.3g} FLOPs"]
  undecided = [(r["a"], r["b"]) for r in tests[budgets[-1]] if not r["distinguishable"]]
  if undecided:
    lines.append(f"- not detected at {budgets[-1]:.3g} FLOPs: " + "; ".join(f"{a} vs {b}" for a, b in undecided)
                 + f" ({len(undecided)} of {pairs} pairs)")
  if lossy:
    lines += ["", f"\\* `<unk>` tokens (over {100 * unk_tolerance:g}% of the validation tokens): an `<unk>` costs one token's loss and stands for every byte of a rare "
              "word, so this arm's bits per byte (and its n-gram's) leave out its hardest bytes; it is not "
              "comparable with the others and not in the last column."]
  return "\n".join(lines)


def flops_span(start: float, budgets: list[float]) -> str:
  if start == budgets[-1]:
    return f"at {start:.3g} FLOPs only, the largest budget"
  return f"from {start:.3g} FLOPs to {budgets[-1]:.3g}"


def best_rate_cells(bpb: dict, arm, rates: list[float]) -> tuple[float, float, str]:
  """An arm's best peak rate and its bits per byte there, from `bpb` {(arm, rate): bits per
  byte}, and its table cells over `rates` (the best in bold, a rate not tried left empty)."""
  values = [bpb.get((arm, rate)) for rate in rates]
  rate, value = min(((r, v) for r, v in zip(rates, values) if v is not None), key=lambda rv: rv[1])
  cells = " | ".join("" if v is None else (f"**{v:.4f}**" if r == rate else f"{v:.4f}") for r, v in zip(rates, values))
  return rate, value, cells


def rate_points(rows: list[dict], curve: list[dict], curve_rate: float,
                rate_column: str = "optimizer.learning_rate") -> dict[tuple, float]:
  """{(arm, peak rate): validation bits per byte} of a learning-rate sweep: its `rows` (one
  budget, one seed) and, at `curve_rate`, the curve's runs at that budget and seed (a run
  straight to a budget equals the curve's cooldown branch to it, so it is not trained twice)."""
  budget, seed = rows[0]["budget"], rows[0]["seed"]
  points = {(r["arm"], float(r[rate_column])): r["val_bits_per_byte"] for r in rows}
  points.update({(r["arm"], curve_rate): r["val_bits_per_byte"] for r in curve
                 if r["budget"] == budget and r["seed"] == seed})
  return points


def rate_sweep_block(rows: list[dict], curve: list[dict], curve_rate: float, arms: list, label: Callable = str,
                     *, budget_name: str = "the curve's 2x budget", point_name: str = "the curve's own point",
                     rate_column: str = "optimizer.learning_rate", validation: str = "three held-out plays") -> str:
  """A learning-rate sweep at one budget of a curve, as a README block: per arm its validation
  bits per byte at each peak rate (the best in bold), its best rate and how much that gains
  over the curve's rate, and its own best Kneser-Ney baseline; then which arms are best
  elsewhere than the curve's rate, whether the arms' order changes at their best rates, which
  arms beat their own n-gram, and CPU time. `rows`: the sweep's results (one seed); `curve`:
  the curve's results (`read_results`), whose seed-0 rows at the sweep's budget are the
  `curve_rate` points (a straight run to that budget equals the curve's cooldown branch);
  `validation`: what the validation split is."""
  budget = rows[0]["budget"]
  seed = rows[0]["seed"]
  at = {r["arm"]: r for r in curve if r["budget"] == budget and r["seed"] == seed}
  bpb = rate_points(rows, curve, curve_rate, rate_column)
  arms = [a for a in arms if any(k[0] == a for k in bpb)]
  rates = sorted({rate for _, rate in bpb})
  # a sweep of step budgets (heads) states the FLOPs its runs trained
  flops = budget if isinstance(budget, float) else rows[0]["train_flops"]
  lines = [f"Validation bits per byte at {budget_name} ({flops:.3g} training FLOPs), seed {seed}, "
           f"{validation}; the {curve_rate:g} column is {point_name}:", "",
           "| arm | steps | " + " | ".join(f"lr {rate:g}" for rate in rates)
           + f" | best rate | best - {curve_rate:g} | own KN best |",
           "| --- | --- |" + " --- |" * (len(rates) + 3)]
  best, edge = {}, []
  for arm in arms:
    rate, value, cells = best_rate_cells(bpb, arm, rates)
    best[arm] = (rate, value)
    tried = [r for r in rates if (arm, r) in bpb]
    if rate != curve_rate and rate in (tried[0], tried[-1]):
      edge.append(arm)
    steps = next(r["steps"] for r in rows if r["arm"] == arm)
    lines.append(f"| {label(arm)} | {steps} | {cells} | {rate:g} | {value - bpb[(arm, curve_rate)]:+.4f} | "
                 f"{at[arm]['kn_best_bits_per_byte']:.4f} ({at[arm]['kn_best_order']}) |")
  order_curve = sorted(arms, key=lambda a: bpb[(a, curve_rate)])
  order_best = sorted(arms, key=lambda a: best[a][1])
  off = [a for a in arms if best[a][0] != curve_rate]
  lines += [
      "",
      f"- Best rate: {curve_rate:g} for " + (", ".join(label(a) for a in arms if a not in off) or "no arm")
      + ("; " + ", ".join(f"{best[a][0]:g} for {label(a)} ({best[a][1] - bpb[(a, curve_rate)]:+.4f})" for a in off)
         if off else "") + "."
      + (f" At the grid's edge (a better rate may lie past it): {', '.join(label(a) for a in edge)}." if edge else ""),
      f"- Order of the arms at the curve's rate: {' < '.join(map(label, order_curve))}; at each arm's best rate: "
      f"{' < '.join(map(label, order_best))}" + (" (the same)." if order_curve == order_best else " (changed)."),
      "- Below their own best n-gram at their best rate: "
      + (", ".join(label(a) for a in arms if best[a][1] < at[a]["kn_best_bits_per_byte"]) or "none") + ".",
      f"- CPU time: {sum(r['train_time_s'] or 0.0 for r in rows) / 3600:.2f} core-hours in the {len(rows)} runs' "
      f"training loops (the {curve_rate:g} points are the curve's).",
  ]
  return "\n".join(lines)
