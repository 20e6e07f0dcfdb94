"""The vocab_size curve's figures (`sweep.py --arg curve`), from curve/results.csv,
curve/documents.json and curve/train_tokens.json (never typed by hand): per FLOPs budget each
vocabulary size's validation bits per byte against the Kneser-Ney baselines of its own tokens,
the steps and epochs of its own train split each point saw, where each difference holds, a
bootstrap over the three held-out plays, and CPU time. Rewrites the block between the
`<!-- curve -->` markers of README.md.

  llm-input sweep experiments/vocab_size/sweep.py --arg curve --seeds 1
  llm-input sweep experiments/vocab_size/sweep.py --arg curve --seeds 1 --table --baselines \
      --documents --x tokenizer.vocab_size --out experiments/vocab_size/curve
  python experiments/vocab_size/curve_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent
CURVE = HERE / "curve"
RUNS = pathlib.Path("runs/sweeps/vocab_size_curve")


def label(vocab: int) -> str:
  return f"{vocab:,}"


def block() -> str:
  data = budgets.read_results(CURVE / "results.csv", "tokenizer.vocab_size", int)
  data.sort(key=lambda r: r["arm"])
  arms = sorted({r["arm"] for r in data})
  one_run = {a: RUNS / next(r["run"] for r in data if r["arm"] == a) for a in arms}
  tokens = budgets.train_tokens_by_arm(CURVE / "train_tokens.json", one_run)
  records = budgets.documents_bundle(CURVE / "documents.json", RUNS, [r["run"] for r in data])
  text = budgets.flops_summary_block(data, label, train_tokens=tokens, tokens_per_step=16 * 256,
                                     validation="three held-out plays, 384 KB", records=records)
  boot = budgets.bootstrap_block(data, records, label)
  if boot:
    text += "\n\nOver seeds and the three plays:\n\n" + boot.rstrip("\n")
  return text + "\n\n" + budgets.cpu_hours_line(data)


def main() -> None:
  text = block()
  budgets.rewrite_block(HERE / "README.md", text, "curve")
  print(text)


if __name__ == "__main__":
  main()
