"""The width curve's figures (`sweep.py --arg curve`), from curve/results.csv, curve/documents.json
and curve/train_tokens.json (never typed by hand): per FLOPs budget each width's validation
bits per byte against the Kneser-Ney baselines of its (shared) bpe tokens, the steps and epochs
each point saw, where each difference holds, a bootstrap over seeds and the three held-out
plays, and CPU time. Rewrites the block between the `<!-- curve -->` markers of README.md.

  llm-input sweep experiments/width/sweep.py --arg curve --seeds 1
  llm-input sweep experiments/width/sweep.py --arg curve --seeds 1 --table --baselines \
      --documents --x model.d_model --out experiments/width/curve
  python experiments/width/curve_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent
CURVE = HERE / "curve"
RUNS = pathlib.Path("runs/sweeps/width_curve")
TOKENS_PER_STEP = 8 * 128  # the sweep's CPU_SCALE: batch 8 of 128 tokens


def block() -> str:
  data = budgets.read_results(CURVE / "results.csv", "model.d_model", int)
  data.sort(key=lambda r: r["arm"])
  one_run = {a: RUNS / next(r["run"] for r in data if r["arm"] == a) for a in sorted({r["arm"] for r in data})}
  tokens = budgets.train_tokens_by_arm(CURVE / "train_tokens.json", one_run)
  records = budgets.documents_bundle(CURVE / "documents.json", RUNS, [r["run"] for r in data])
  text = budgets.flops_summary_block(data, lambda a: f"d_model {a}", train_tokens=tokens,
                                     tokens_per_step=TOKENS_PER_STEP,
                                     validation="three held-out plays, 384 KB", records=records)
  boot = budgets.bootstrap_block(data, records, lambda a: f"d_model {a}")
  if boot:
    text += "\n\nOver seeds and the three plays:\n\n" + boot.rstrip("\n")
  return text + "\n\n" + budgets.cpu_hours_line(data)


def main() -> None:
  text = block()
  budgets.rewrite_block(HERE / "README.md", text, "curve")
  print(text)


if __name__ == "__main__":
  main()
