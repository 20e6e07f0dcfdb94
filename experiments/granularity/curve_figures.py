"""The granularity curve's figures (`sweep.py --arg curve`), from curve/results.csv and
curve/documents.json (never typed by hand): per FLOPs budget each granularity's validation bits
per byte against its own Kneser-Ney baselines, the steps and epochs each point saw, where each
difference holds, a bootstrap over seeds and the three held-out plays, and CPU time. Rewrites the
block between the `<!-- figures -->` markers of README.md.

  llm-input sweep experiments/granularity/sweep.py --arg curve --seeds 1
  llm-input sweep experiments/granularity/sweep.py --arg curve --seeds 1 --table --baselines \
      --documents --x tokenizer.kind --out experiments/granularity/curve
  python experiments/granularity/curve_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent
CURVE = HERE / "curve"
RUNS = pathlib.Path("runs/sweeps/granularity_curve")
ORDER = ["char", "byte", "bpe", "unigram", "word"]


def block() -> str:
  data = budgets.read_results(CURVE / "results.csv", "tokenizer.kind")
  data.sort(key=lambda r: ORDER.index(r["arm"]))
  one_run = {a: RUNS / next(r["run"] for r in data if r["arm"] == a) for a in ORDER if any(r["arm"] == a for r in data)}
  tokens = budgets.train_tokens_by_arm(CURVE / "train_tokens.json", one_run)
  records = budgets.documents_bundle(CURVE / "documents.json", RUNS, [r["run"] for r in data])
  text = budgets.flops_summary_block(data, train_tokens=tokens, tokens_per_step=16 * 256, order=ORDER,
                                     validation="three held-out plays, 384 KB", records=records)
  boot = budgets.bootstrap_block(data, records)
  if boot:
    text += "\n\nOver seeds and the three plays:\n\n" + boot
  return text + "\n\n" + budgets.cpu_hours_line(data)


def main() -> None:
  text = block()
  budgets.rewrite_block(HERE / "README.md", text)
  print(text)


if __name__ == "__main__":
  main()
