"""The depth learning-rate sweep's figures (`sweep.py --arg lr`), from lr/results.csv and
results.csv (never typed by hand): each depth's validation bits per byte at peak rates 1e-3,
3e-3 and 1e-2 at the sweep's budget (1.42e13 FLOPs, seed 0; the 3e-3 point is the sweep's own
seed-0 run), its best rate, whether the order of the depths holds at each one's best rate, and
the Kneser-Ney baseline of the shared bpe tokens. Rewrites the block between the `<!-- lr -->`
markers of README.md.

  llm-input sweep experiments/depth/sweep.py --arg lr
  llm-input sweep experiments/depth/sweep.py --arg lr --table --out experiments/depth/lr
  python experiments/depth/lr_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent
RATE = 3e-3  # configs/tiny.py's peak rate, which the sweep used


def block() -> str:
  """The README block, from the committed CSVs."""
  rows = budgets.read_results(HERE / "lr" / "results.csv", "model.num_layers", int)
  depth = budgets.read_results(HERE / "results.csv", "model.num_layers", int)
  return budgets.rate_sweep_block(rows, depth, RATE, sorted({r["arm"] for r in depth}),
                                  lambda a: f"{a} layer{'s' if a > 1 else ''}",
                                  budget_name="the sweep's budget", point_name="the sweep's own seed-0 run")


def main() -> None:
  budgets.write_block(HERE / "README.md", block(), "lr")


if __name__ == "__main__":
  main()
