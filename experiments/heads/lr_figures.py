"""The heads learning-rate sweep's figures (`sweep.py --arg lr`), from lr/results.csv and
seeds/results.csv (never typed by hand): each head count's validation bits per byte at peak
rates 1e-3, 3e-3 and 1e-2 at the curve's 200-step budget (seed 0; the 3e-3 point is `--arg
seeds`'s seed-0 run, the curve's own 200-step point), its best rate, whether the order of the
head counts holds at each one's best rate, and the Kneser-Ney baseline of the shared bpe
tokens. Rewrites the block between the `<!-- lr -->` markers of README.md.

  llm-input sweep experiments/heads/sweep.py --arg lr
  llm-input sweep experiments/heads/sweep.py --arg lr --table --out experiments/heads/lr
  python experiments/heads/lr_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent
CURVE_RATE = 3e-3  # configs/tiny.py's peak rate, which the curve used


def label(heads: int) -> str:
  return f"{heads} head{'s' if heads > 1 else ''}"


def block() -> str:
  """The README block, from the committed CSVs."""
  rows = budgets.read_results(HERE / "lr" / "results.csv", "model.num_heads", int)
  seeds = budgets.read_results(HERE / "seeds" / "results.csv", "model.num_heads", int)
  return budgets.rate_sweep_block(rows, seeds, CURVE_RATE, sorted({r["arm"] for r in seeds}), label,
                                  budget_name="the curve's 200-step budget", validation="the held-out play",
                                  point_name="the seeds sweep's seed-0 run (the curve's own 200-step point)")


def main() -> None:
  budgets.write_block(HERE / "README.md", block(), "lr")


if __name__ == "__main__":
  main()
