"""The granularity curve's figures, from curve/ (`sweep.py --arg curve`: each arm at its best
rate) and curve_shared/ (`--arg curve_shared`: every arm at 3e-3): results.csv, documents.json
and train_tokens.json (never typed by hand): per FLOPs budget each granularity's validation
bits per byte against its own Kneser-Ney baselines, the steps and epochs each point saw, where
each difference holds, a bootstrap over seeds and the three held-out plays, and CPU time.
Rewrites the README's `<!-- figures -->` (curve/) and `<!-- shared -->` (curve_shared/) blocks.

  llm-input sweep experiments/granularity/sweep.py --arg curve --seeds 1
  llm-input sweep experiments/granularity/sweep.py --arg curve --seeds 1 --table --baselines \
      --documents --x tokenizer.kind --out experiments/granularity/curve
  (the same with --arg curve_shared and --out experiments/granularity/curve_shared)
  python experiments/granularity/curve_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent
RUNS = pathlib.Path("runs/sweeps/granularity_curve")
ORDER = ["char", "byte", "bpe", "unigram", "word"]
# folder of --table output: README block it writes
BLOCKS = {"curve": "figures", "curve_shared": "shared"}


def block(folder: str = "curve") -> str:
  """The README block of `--arg curve` (folder curve/) or `--arg curve_shared` (curve_shared/),
  from the committed CSV, documents and token counts."""
  here = HERE / folder
  data = budgets.read_results(here / "results.csv", "tokenizer.kind")
  data.sort(key=lambda r: ORDER.index(r["arm"]))
  one_run = {a: RUNS / next(r["run"] for r in data if r["arm"] == a) for a in ORDER if any(r["arm"] == a for r in data)}
  tokens = budgets.train_tokens_by_arm(here / "train_tokens.json", one_run)
  records = budgets.documents_bundle(here / "documents.json", RUNS, [r["run"] for r in data])
  rates = {a: float(next(r.get("optimizer.learning_rate") or 3e-3 for r in data if r["arm"] == a)) for a in tokens}
  text = (f"Peak learning rates: {', '.join(f'{a} {rate:g}' for a, rate in rates.items())}.\n\n"
          + budgets.flops_summary_block(data, train_tokens=tokens, tokens_per_step=16 * 256, order=ORDER,
                                        validation="three held-out plays, 384 KB", records=records))
  boot = budgets.bootstrap_block(data, records)
  if boot:
    text += "\n\nOver seeds and the three plays:\n\n" + boot.rstrip("\n")
  return text + "\n\n" + budgets.cpu_hours_line(data)


def main() -> None:
  for folder, name in BLOCKS.items():
    if (HERE / folder / "results.csv").exists():
      text = block(folder)
      budgets.rewrite_block(HERE / "README.md", text, name)
      print(text)


if __name__ == "__main__":
  main()
