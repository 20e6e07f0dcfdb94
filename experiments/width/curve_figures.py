"""The width curve's figures (`sweep.py --arg curve`), from curve/results.csv, curve/documents.json
and curve/train_tokens.json (never typed by hand): per FLOPs budget each width's validation
bits per byte against the Kneser-Ney baselines of its (shared) bpe tokens, the steps and epochs
each point saw, where each difference holds, a bootstrap over seeds and the three held-out
plays, and CPU time. Rewrites the block between the `<!-- curve -->` markers of README.md.

  llm-input sweep experiments/width/sweep.py --arg curve
  llm-input sweep experiments/width/sweep.py --arg curve --table --baselines \
      --documents --x model.d_model --out experiments/width/curve
  python experiments/width/curve_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets, sweep_tables

HERE = pathlib.Path(__file__).parent
CURVE = HERE / "curve"
RUNS = pathlib.Path("runs/sweeps/width_curve")
TOKENS_PER_STEP = 8 * 128  # the sweep's CPU_SCALE: batch 8 of 128 tokens


def block(folder: str = "curve") -> str:
  """The README block of `--arg curve` (folder curve/) or `--arg seeds` (seeds/: five seeds at
  the curve's 2x budget), from the committed CSV, documents and token counts."""
  here = HERE / folder
  data = budgets.read_results(here / "results.csv", "model.d_model", int)
  data.sort(key=lambda r: (r["arm"], r["seed"]))
  one_run = {a: RUNS / next(r["run"] for r in data if r["arm"] == a) for a in sorted({r["arm"] for r in data})}
  tokens = budgets.train_tokens_by_arm(here / "train_tokens.json", one_run)
  records = budgets.documents_bundle(here / "documents.json", RUNS, [r["run"] for r in data])
  label = lambda a: f"d_model {a}"  # noqa: E731
  text = budgets.flops_summary_block(data, label, train_tokens=tokens, tokens_per_step=TOKENS_PER_STEP,
                                     validation="three held-out plays, 384 KB", records=records,
                                     # the seeds are one point of the curve: its multiple of the curve's 1x
                                     base_budget=min(r["budget"] for r in budgets.read_results(
                                         CURVE / "results.csv", "model.d_model", int)) if folder == "seeds" else None)
  if len({r["seed"] for r in data}) > 1:
    # within each budget only: pooling a curve's budgets would compare an arm's 1x with its 3x
    text += "\n\nOver seeds, paired (the arms of a seed share its random seed and data order):"
    for budget in sorted({r["budget"] for r in data}):
      text += (f"\n\nAt {budget:.3g} FLOPs:\n\n" + sweep_tables.pairwise_markdown(
          [{**r, "arm": label(r["arm"])} for r in data if r["budget"] == budget]).rstrip("\n"))
  boot = budgets.bootstrap_block(data, records, label)
  if boot:
    text += "\n\nOver seeds and the three plays:\n\n" + boot.rstrip("\n")
  return text + "\n\n" + (budgets.seeds_cpu_line(data) if folder == "seeds" else budgets.cpu_hours_line(data))


def main() -> None:
  for folder in ("curve", "seeds"):
    if (HERE / folder / "results.csv").exists():
      budgets.write_block(HERE / "README.md", block(folder), folder)


if __name__ == "__main__":
  main()
