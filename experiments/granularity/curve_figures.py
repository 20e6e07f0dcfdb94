"""The granularity curve's figures, from curve/ (`sweep.py --arg curve`: each arm at its best
rate) and curve_shared/ (`--arg curve_shared`: every arm at 3e-3): results.csv, documents.json
and train_tokens.json (never typed by hand): per FLOPs budget each granularity's validation
bits per byte against its own Kneser-Ney baselines, the steps and epochs each point saw, where
each difference holds, a bootstrap over seeds and the three held-out plays, and CPU time.
Rewrites the README's `<!-- figures -->` (curve/), `<!-- shared -->` (curve_shared/), `<!-- rates -->`
(both) and `<!-- seeds -->` (seeds/: `--arg seeds`, five seeds at the 2x budget) blocks.

  llm-input sweep experiments/granularity/sweep.py --arg curve --seeds 1
  llm-input sweep experiments/granularity/sweep.py --arg curve --seeds 1 --table --baselines \
      --documents --x tokenizer.kind --out experiments/granularity/curve
  (the same with --arg curve_shared and --out experiments/granularity/curve_shared)
  python experiments/granularity/curve_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets, sweep_tables

HERE = pathlib.Path(__file__).parent
RUNS = pathlib.Path("runs/sweeps/granularity_curve")
ORDER = ["char", "byte", "bpe", "unigram", "word"]
# folder of --table output: README block it writes
BLOCKS = {"curve": "figures", "curve_shared": "shared", "seeds": "seeds"}
SHARED_RATE = 3e-3  # configs/tiny.py's peak rate: rows without optimizer.learning_rate ran at it


def block(folder: str = "curve") -> str:
  """The README block of `--arg curve` (folder curve/) or `--arg curve_shared` (curve_shared/),
  from the committed CSV, documents and token counts."""
  here = HERE / folder
  data = budgets.read_results(here / "results.csv", "tokenizer.kind")
  data.sort(key=lambda r: ORDER.index(r["arm"]))
  one_run = {a: RUNS / next(r["run"] for r in data if r["arm"] == a) for a in ORDER if any(r["arm"] == a for r in data)}
  tokens = budgets.train_tokens_by_arm(here / "train_tokens.json", one_run)
  records = budgets.documents_bundle(here / "documents.json", RUNS, [r["run"] for r in data])
  rates = {a: _rate(next(r for r in data if r["arm"] == a)) for a in tokens}
  text = (f"Peak learning rates: {', '.join(f'{a} {rate:g}' for a, rate in rates.items())}.\n\n"
          + budgets.flops_summary_block(data, train_tokens=tokens, tokens_per_step=16 * 256, order=ORDER,
                                        validation="three held-out plays, 384 KB", records=records,
                                        # the seeds are one point of the curve: its multiple of the curve's 1x
                                        base_budget=min(r["budget"] for r in _rows("curve")) if folder == "seeds" else None))
  seeds = sorted({r["seed"] for r in data})
  if len(seeds) > 1:
    text += ("\n\nOver seeds, paired (the arms share each seed's initialisation and data order):\n\n"
             + sweep_tables.pairwise_markdown(data).rstrip("\n"))
  boot = budgets.bootstrap_block(data, records)
  if boot:
    text += "\n\nOver seeds and the three plays:\n\n" + boot.rstrip("\n")
  return text + "\n\n" + (budgets.seeds_cpu_line(data) if folder == "seeds" else budgets.cpu_hours_line(data))


def _rows(folder: str) -> list[dict]:
  return budgets.read_results(HERE / folder / "results.csv", "tokenizer.kind")


def _rate(row: dict) -> float:
  return float(row.get("optimizer.learning_rate") or SHARED_RATE)


def rates_block() -> str:
  """The README's `<!-- rates -->` block: every (arm, peak rate) the two curves ran, per budget
  (seed 0), the better rate per budget, the envelope (each arm at its better rate per budget)
  against each arm's own n-gram, and what one configuration trained twice gives (the rate
  sweep's straight 2x runs against the curve's 2x branches of the same configuration)."""
  rows = [r for folder in ("curve", "curve_shared") for r in _rows(folder) if r["seed"] == 0]
  points = {(r["arm"], _rate(r), r["budget"]): r for r in rows}
  budget_list = sorted({b for _, _, b in points})
  base = budget_list[0]
  name = {b: f"{b / base:.3g}x" for b in budget_list}
  arms = [a for a in ORDER if any(k[0] == a for k in points)]
  pairs = sorted({(a, rate) for a, rate, _ in points}, key=lambda ar: (ORDER.index(ar[0]), ar[1]))
  best = {(a, b): min((points[(a, rate, b)] for rate in {k[1] for k in points if k[0] == a}
                       if (a, rate, b) in points), key=lambda r: r["val_bits_per_byte"])
          for a in arms for b in budget_list}
  lines = ["Validation bits per byte of every peak rate either curve ran, seed 0 (bold: the arm's better "
           "rate at that budget):", "",
           "| arm | peak rate | " + " | ".join(f"{name[b]} ({b:.3g} FLOPs)" for b in budget_list) + " |",
           "| --- | --- |" + " --- |" * len(budget_list)]
  for a, rate in pairs:
    cells = []
    for b in budget_list:
      r = points.get((a, rate, b))
      value = "" if r is None else f"{r['val_bits_per_byte']:.4f}"
      several = sum((a, other, b) in points for _, other in pairs if _ == a) > 1
      cells.append(f"**{value}**" if r is not None and several and best[(a, b)] is r else value)
    lines.append(f"| {a} | {rate:g} | " + " | ".join(cells) + " |")
  lines.append("")
  for a in arms:
    tried = sorted({rate for arm, rate in pairs if arm == a})
    if len(tried) > 1:
      wins = {rate: [name[b] for b in budget_list if _rate(best[(a, b)]) == rate] for rate in tried}
      lines.append(f"- {a}: " + "; ".join(f"{rate:g} better at {', '.join(w)}" for rate, w in wins.items() if w)
                   + " (largest gap " + max((f"{abs(points[(a, tried[0], b)]['val_bits_per_byte'] - points[(a, tried[1], b)]['val_bits_per_byte']):.4f} at {name[b]}"
                                            for b in budget_list if (a, tried[0], b) in points and (a, tried[1], b) in points),
                                           key=lambda t: float(t.split()[0])) + ").")
  letters = [a for a in ("char", "byte") if a in arms]
  subwords = [a for a in ("bpe", "unigram") if a in arms]
  if letters and subwords:
    gaps = []
    for b in budget_list:
      lo_letter = min((best[(a, b)] for a in letters), key=lambda r: r["val_bits_per_byte"])
      lo_sub = min((best[(a, b)] for a in subwords), key=lambda r: r["val_bits_per_byte"])
      gaps.append(f"{lo_letter['val_bits_per_byte'] - lo_sub['val_bits_per_byte']:+.4f} at {name[b]}")
    lines.append("- Each arm at its better rate per budget, the best letter arm minus the best subword arm: "
                 + ", ".join(gaps) + ".")
    below = []
    for b in budget_list:
      arms_below = [a for a in arms if best[(a, b)]["val_bits_per_byte"] < best[(a, b)]["kn_best_bits_per_byte"]]
      below.append(f"{name[b]}: {', '.join(arms_below) or 'none'}")
    lines.append("- Below their own best Kneser-Ney n-gram at their better rate: " + "; ".join(below) + ".")
  lr_csv = HERE / "lr" / "results.csv"
  if lr_csv.exists():
    again = []
    for r in budgets.read_results(lr_csv, "tokenizer.kind"):
      twin = points.get((r["arm"], _rate(r), r["budget"]))
      if twin is not None and r["seed"] == 0:
        again.append(f"{r['arm']} at {_rate(r):g}: {r['val_bits_per_byte']:.4f} straight, "
                     f"{twin['val_bits_per_byte']:.4f} branched ({twin['val_bits_per_byte'] - r['val_bits_per_byte']:+.4f})")
    if again:
      lines.append("- One configuration trained twice (the rate sweep's straight 2x run, one thread, and the "
                   "curve's 2x cooldown branch, two threads; same seed and data order): " + "; ".join(again)
                   + ". A branch equals a straight run on the same cores (tests/test_schedule.py); XLA:CPU "
                   "splits a step's sums by thread count, so one core and two add in another order, "
                   "and training grows those last-bit differences to this much: a floor under any "
                   "difference between arms that one seed can show.")
  return "\n".join(lines)


def main() -> None:
  for folder, name in BLOCKS.items():
    if (HERE / folder / "results.csv").exists():
      budgets.write_block(HERE / "README.md", block(folder), name)
  if all((HERE / folder / "results.csv").exists() for folder in ("curve", "curve_shared")):
    budgets.write_block(HERE / "README.md", rates_block(), "rates")


if __name__ == "__main__":
  main()
