"""The width learning-rate sweep's figures (`sweep.py --arg lr`), from lr/results.csv and
curve/results.csv (never typed by hand): each width's validation bits per byte at peak rates
3e-4, 1e-3 and 3e-3 at the curve's 2x budget (seed 0; the 1e-3 point is the curve's 2x
cooldown branch, the same training as a straight run), its best rate, whether the curve's
order of the widths holds at each width's best rate, and the Kneser-Ney baseline of the shared
bpe tokens. Rewrites the block between the `<!-- lr -->` markers of README.md.

  llm-input sweep experiments/width/sweep.py --arg lr
  llm-input sweep experiments/width/sweep.py --arg lr --table --out experiments/width/lr
  python experiments/width/lr_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent
CURVE_RATE = 1e-3  # the curve's peak rate (sweep.py)


def block() -> str:
  """The README block, from the committed CSVs."""
  rows = budgets.read_results(HERE / "lr" / "results.csv", "model.d_model", int)
  curve = budgets.read_results(HERE / "curve" / "results.csv", "model.d_model", int)
  return budgets.rate_sweep_block(rows, curve, CURVE_RATE, sorted({r["arm"] for r in curve}),
                                  lambda a: f"d_model {a}")


def main() -> None:
  budgets.write_block(HERE / "README.md", block(), "lr")


if __name__ == "__main__":
  main()
