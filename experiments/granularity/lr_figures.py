"""The granularity learning-rate sweep's figures (`sweep.py --arg lr`), from lr/results.csv and
curve_shared/results.csv (never typed by hand): each granularity's validation bits per byte at peak
rates 1e-3, 3e-3 and 1e-2 at the curve's 2x budget (seed 0; the 3e-3 point is the shared-rate
curve's 2x cooldown branch, the same training as a straight run), its best rate, whether the curve's order
of the arms at 2x holds at each arm's best rate, and each arm's own best Kneser-Ney baseline.
Rewrites the block between the `<!-- lr -->` markers of README.md.

  llm-input sweep experiments/granularity/sweep.py --arg lr
  llm-input sweep experiments/granularity/sweep.py --arg lr --table --out experiments/granularity/lr
  python experiments/granularity/lr_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent
ORDER = ["char", "byte", "bpe", "unigram", "word"]
CURVE_RATE = 3e-3  # configs/tiny.py's peak rate, the curve's


def _points() -> tuple[dict, dict, list[dict]]:
  """{(arm, rate): bits per byte}, {arm: its shared-rate curve row at the sweep's budget}, and
  the rate sweep's rows."""
  rows = budgets.read_results(HERE / "lr" / "results.csv", "tokenizer.kind")
  curve = budgets.read_results(HERE / "curve_shared" / "results.csv", "tokenizer.kind")
  budget = rows[0]["budget"]
  at = {r["arm"]: r for r in curve if r["budget"] == budget and r["seed"] == 0}
  bpb = {(r["arm"], float(r["optimizer.learning_rate"])): r["val_bits_per_byte"] for r in rows}
  bpb.update({(arm, CURVE_RATE): r["val_bits_per_byte"] for arm, r in at.items()})
  return bpb, at, rows


def best_rates() -> dict:
  """{arm: its best peak rate} (what sweep.py's BEST_LR must say)."""
  bpb, _, _ = _points()
  arms = {a for a, _ in bpb}
  return {a: min((r for b, r in bpb if b == a), key=lambda r: bpb[(a, r)]) for a in arms}


def block() -> str:
  """The README block, from the committed CSVs."""
  bpb, at, rows = _points()
  budget = rows[0]["budget"]
  arms = [a for a in ORDER if any(k[0] == a for k in bpb)]
  rates = sorted({rate for _, rate in bpb})
  lines = [f"Validation bits per byte at the curve's 2x budget ({budget:.3g} training FLOPs), seed 0, three "
           f"held-out plays; the {CURVE_RATE:g} column is the shared-rate curve's 2x point:", "",
           "| arm | steps | " + " | ".join(f"lr {rate:g}" for rate in rates) + " | best rate | best - 3e-3 | own KN best |",
           "| --- | --- |" + " --- |" * (len(rates) + 3)]
  best = {}
  for arm in arms:
    values = [bpb.get((arm, rate)) for rate in rates]
    rate, value = min(((r, v) for r, v in zip(rates, values) if v is not None), key=lambda rv: rv[1])
    best[arm] = (rate, value)
    cells = " | ".join("" if v is None else (f"**{v:.4f}**" if r == rate else f"{v:.4f}") for r, v in zip(rates, values))
    steps = next(r["steps"] for r in rows if r["arm"] == arm)
    lines.append(f"| {arm} | {steps} | {cells} | {rate:g} | {value - bpb[(arm, CURVE_RATE)]:+.4f} | "
                 f"{at[arm]['kn_best_bits_per_byte']:.4f} ({at[arm]['kn_best_order']}) |")
  order_curve = sorted(arms, key=lambda a: bpb[(a, CURVE_RATE)])
  order_best = sorted(arms, key=lambda a: best[a][1])
  off = [a for a in arms if best[a][0] != CURVE_RATE]
  lines += [
      "",
      f"- Best rate: {CURVE_RATE:g} for " + (", ".join(a for a in arms if a not in off) or "no arm")
      + ("; " + ", ".join(f"{best[a][0]:g} for {a} ({best[a][1] - bpb[(a, CURVE_RATE)]:+.4f})" for a in off) if off else "")
      + ".",
      f"- Order of the arms at the curve's rate: {' < '.join(order_curve)}; at each arm's best rate: "
      f"{' < '.join(order_best)}" + (" (the same)." if order_curve == order_best else " (changed)."),
      "- Below their own best n-gram at their best rate: "
      + (", ".join(a for a in arms if best[a][1] < at[a]["kn_best_bits_per_byte"]) or "none") + ".",
      f"- CPU time: {sum(r['train_time_s'] or 0.0 for r in rows) / 3600:.2f} core-hours in the {len(rows)} runs' "
      "training loops (the 3e-3 points are the curve's).",
  ]
  return "\n".join(lines)


def main() -> None:
  text = block()
  budgets.rewrite_block(HERE / "README.md", text, "lr")
  print(text)


if __name__ == "__main__":
  main()
