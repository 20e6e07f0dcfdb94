"""The positions curve's figures (`sweep.py --arg curve`), from curve/results.csv and
curve/documents.json (never typed by hand): per budget each scheme's validation bits per byte
against the Kneser-Ney baselines, the paired tests, the budget range where each difference
holds, a bootstrap over seeds and the three held-out plays, epochs and CPU time. Rewrites the
block between the `<!-- figures -->` markers of README.md.

  llm-input sweep experiments/positions/sweep.py --arg curve
  llm-input sweep experiments/positions/sweep.py --arg curve --table --baselines --documents \
      --x model.positions --out experiments/positions/curve
  python experiments/positions/curve_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent
CURVE = HERE / "curve"
RUNS = pathlib.Path("runs/sweeps/positions_curve")


def block(folder: str = "curve") -> str:
  """The README block of `--arg curve` (folder curve/) or `--arg seeds` (seeds/: five seeds at
  the curve's 400-step budget, all trained on this machine), from the committed CSV, documents
  and token count."""
  data = budgets.read_results(HERE / folder / "results.csv", "model.positions")
  tokens = budgets.train_tokens(CURVE / "train_tokens.json", RUNS / "positions-rope_steps-600_seed-0")
  records = budgets.documents_bundle(HERE / folder / "documents.json", RUNS, [r["run"] for r in data])
  text = budgets.summary_block(data, str, tokens_per_step=16 * 256, train_tokens=tokens,
                               validation="three held-out plays, 384 KB")
  boot = budgets.bootstrap_block(data, records)
  if boot:
    text += "\n\nOver seeds and the three plays (what the seed-only tests above leave out):\n\n" + boot
  if folder == "seeds":
    curve = budgets.read_results(CURVE / "results.csv", "model.positions")
    return text.rstrip("\n") + "\n\n" + budgets.seeds_against_curve(data, curve, 400)
  return text + "\n\n" + budgets.cpu_hours_line(data)


def main() -> None:
  for folder in ("curve", "seeds"):
    if (HERE / folder / "results.csv").exists():
      budgets.write_block(HERE / "README.md", block(folder), "figures" if folder == "curve" else "seeds")


if __name__ == "__main__":
  main()
