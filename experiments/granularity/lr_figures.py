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
  return budgets.rate_sweep_block(budgets.read_results(HERE / "lr" / "results.csv", "tokenizer.kind"),
                                  budgets.read_results(HERE / "curve_shared" / "results.csv", "tokenizer.kind"),
                                  CURVE_RATE, ORDER, point_name="the shared-rate curve's 2x point")


def main() -> None:
  budgets.write_block(HERE / "README.md", block(), "lr")


if __name__ == "__main__":
  main()
