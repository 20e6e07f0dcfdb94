"""The positions learning-rate sweep's figures (`sweep.py --arg lr`), from lr/results.csv and
curve/results.csv (never typed by hand): each scheme's validation bits per byte at peak rates
1e-3, 3e-3 and 1e-2 at the curve's 400-step budget (seed 0), its best rate, the 3e-3 runs
against the curve's own 400-step points (the same training), whether the curve's order of
the schemes at 400 steps holds at each scheme's best rate, and the Kneser-Ney baselines.
Rewrites the block between the `<!-- lr -->` markers of README.md.

  llm-input sweep experiments/positions/sweep.py --arg lr
  llm-input sweep experiments/positions/sweep.py --arg lr --table --out experiments/positions/lr
  python experiments/positions/lr_figures.py
"""

from __future__ import annotations

import pathlib

import numpy as np

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent


def block() -> str:
  """The README block, from the committed CSVs."""
  rows = budgets.read_results(HERE / "lr" / "results.csv", "model.positions")
  schemes = list(dict.fromkeys(r["arm"] for r in rows))  # in the sweep's order
  rates = sorted({float(r["optimizer.learning_rate"]) for r in rows})
  curve = [r for r in budgets.read_results(HERE / "curve" / "results.csv", "model.positions") if r["steps"] == 400]
  bpb = {(r["arm"], float(r["optimizer.learning_rate"])): r["val_bits_per_byte"] for r in rows}
  flops = rows[0]["train_flops"]
  lines = [f"Validation bits per byte at 400 steps ({flops:.3g} training FLOPs), seed 0, three held-out plays:",
           "", "| scheme | " + " | ".join(f"lr {rate:g}" for rate in rates) + " | best rate | best - 3e-3 |",
           "| --- |" + " --- |" * (len(rates) + 2)]
  best = {}
  for scheme in schemes:
    rate, value, cells = budgets.best_rate_cells(bpb, scheme, rates)
    best[scheme] = (rate, value)
    lines.append(f"| {scheme} | {cells} | {rate:g} | {value - bpb[(scheme, 3e-3)]:+.4f} |")

  seed0 = {r["arm"]: r["val_bits_per_byte"] for r in curve if r["seed"] == 0}
  spread = {s: float(np.std([r["val_bits_per_byte"] for r in curve if r["arm"] == s], ddof=1)) for s in schemes}
  repeat = max(abs(bpb[(s, 3e-3)] - seed0[s]) for s in schemes)
  curve_mean = {s: float(np.mean([r["val_bits_per_byte"] for r in curve if r["arm"] == s])) for s in schemes}
  order_curve = sorted(schemes, key=curve_mean.get)
  order_best = sorted(schemes, key=lambda s: best[s][1])
  noise = 2 * max(spread.values())
  kn1, kn_best, order = curve[0]["kn1_bits_per_byte"], curve[0]["kn_best_bits_per_byte"], curve[0]["kn_best_order"]
  lines += [
      "",
      f"- The 3e-3 runs repeat the curve's 400-step cooldown branches of seed 0 to within {repeat:.4f} bits "
      "per byte (the same training, straight to 400 steps instead of branched; the curve ran on another "
      "machine kind).",
      f"- Order of the schemes at the curve's single rate (3e-3, mean of 3 seeds): {' < '.join(order_curve)}; "
      f"at each scheme's best rate (one seed): {' < '.join(order_best)}"
      + (" (the same)." if order_curve == order_best else " (changed)."),
      "- Gaps between neighbours at their best rates: " + "; ".join(
          f"{a} vs {b} {best[b][1] - best[a][1]:.4f}" + (" (within twice the seed spread)" if best[b][1] - best[a][1] < noise else "")
          for a, b in zip(order_best, order_best[1:]))
      + f". Twice the largest seed standard deviation at this budget on the curve: {noise:.4f}.",
      f"- Baselines on the same tokens (Kneser-Ney): unigram {kn1:.4f}, best order ({order}) {kn_best:.4f}; "
      + "; ".join(f"{where} it at its best rate: {', '.join(group) or 'no scheme'}" for where, group in (
          ("below", [s for s in schemes if best[s][1] < kn_best]),
          ("above", [s for s in schemes if best[s][1] >= kn_best]))) + ".",
      f"- CPU time: {sum(r['train_time_s'] or 0.0 for r in rows) / 3600:.2f} core-hours in the {len(rows)} runs' training loops.",
  ]
  return "\n".join(lines)


def main() -> None:
  budgets.write_block(HERE / "README.md", block(), "lr")


if __name__ == "__main__":
  main()
