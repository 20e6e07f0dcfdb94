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

from llm_input.analysis import budgets, sweep_tables

HERE = pathlib.Path(__file__).parent
CURVE = HERE / "curve"
RUNS = pathlib.Path("runs/sweeps/vocab_size_curve")


def label(vocab: int) -> str:
  return f"{vocab:,}"


def _rows(folder: str) -> list[dict]:
  data = budgets.read_results(HERE / folder / "results.csv", "tokenizer.vocab_size", int)
  return sorted(data, key=lambda r: (r["arm"], r["seed"]))


def block(folder: str = "curve") -> str:
  """The README block of `--arg curve` (folder curve/) or `--arg seeds` (seeds/: five seeds at
  the curve's 2x budget), from the committed CSV, documents and token counts."""
  here = HERE / folder
  data = _rows(folder)
  arms = sorted({r["arm"] for r in data})
  one_run = {a: RUNS / next(r["run"] for r in data if r["arm"] == a) for a in arms}
  tokens = budgets.train_tokens_by_arm(here / "train_tokens.json", one_run)
  records = budgets.documents_bundle(here / "documents.json", RUNS, [r["run"] for r in data])
  text = budgets.flops_summary_block(data, label, train_tokens=tokens, tokens_per_step=16 * 256,
                                     validation="three held-out plays, 384 KB", records=records,
                                     # the seeds are one point of the curve: its multiple of the curve's 1x
                                     base_budget=min(r["budget"] for r in _rows("curve")) if folder == "seeds" else None)
  seeds = sorted({r["seed"] for r in data})
  if len(seeds) > 1:
    labelled = [{**r, "arm": label(r["arm"])} for r in data]
    text += ("\n\nOver seeds, paired (the arms of a seed share its random seed; with different tokenizers "
             "the draws and windows differ, so the pairing removes little):\n\n"
             + sweep_tables.pairwise_markdown(labelled).rstrip("\n"))
  boot = budgets.bootstrap_block(data, records, label)
  if boot:
    text += "\n\nOver seeds and the three plays:\n\n" + boot.rstrip("\n")
  return text + "\n\n" + (budgets.seeds_cpu_line(data) if folder == "seeds" else budgets.cpu_hours_line(data))


def main() -> None:
  for folder, name in (("curve", "curve"), ("seeds", "seeds")):
    if (HERE / folder / "results.csv").exists():
      budgets.write_block(HERE / "README.md", block(folder), name)


if __name__ == "__main__":
  main()
