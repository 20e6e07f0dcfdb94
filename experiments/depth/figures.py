"""The depth experiment's table, from its committed results.csv (never typed by hand): per depth
its steps at the shared budget, parameters, validation bits per byte (mean ± std over seeds),
and each doubling of depth as a paired difference with its 95% interval and Holm's correction
over the three doublings. Rewrites the block between the `<!-- figures -->` markers of README.md.

  llm-input sweep experiments/depth/sweep.py --table --baselines --documents \
      --x model.num_layers --out experiments/depth
  python experiments/depth/figures.py
"""

from __future__ import annotations

import pathlib

import numpy as np

from llm_input.analysis import budgets, stats

HERE = pathlib.Path(__file__).parent
RUNS = pathlib.Path("runs/sweeps/depth")


def block() -> str:
  data = budgets.read_results(HERE / "results.csv", "model.num_layers", int)
  arms = sorted({r["arm"] for r in data})
  by = {a: {r["seed"]: r for r in data if r["arm"] == a} for a in arms}
  train_tokens = budgets.train_tokens(HERE / "train_tokens.json", RUNS / data[0]["run"])  # one tokenizer
  lines = ["| layers | steps | parameters | epochs of the train split | bits per byte | KN best (order) |",
           "|---|---|---|---|---|---|"]
  for a in arms:
    rows = list(by[a].values())
    values = [r["val_bits_per_byte"] for r in rows]
    first = rows[0]
    lines.append(f"| {a} | {first['steps']:,} | {int(first['params']):,} | "
                 f"{first['steps'] * 16 * 256 / train_tokens:.2f} | {np.mean(values):.4f} ± {np.std(values, ddof=1):.4f} | "
                 f"{first['kn_best_bits_per_byte']:.4f} ({int(first['kn_best_order'])}) |")
  doublings = list(zip(arms, arms[1:]))
  compared = []
  for shallow, deep in doublings:
    seeds = sorted(set(by[shallow]) & set(by[deep]))
    compared.append(stats.compare([by[deep][s]["val_bits_per_byte"] for s in seeds],
                                  [by[shallow][s]["val_bits_per_byte"] for s in seeds], paired=True))
  lines += ["", "| deeper - shallower | difference [95% CI] | paired t p | Holm p (3 doublings) |", "|---|---|---|---|"]
  for (shallow, deep), c, p in zip(doublings, compared, stats.holm([c["p"] for c in compared])):
    lines.append(f"| {deep} - {shallow} layers | {c['diff']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | "
                 f"{c['p']:.2g} | {p:.2g} |")
  seeds = sorted({r["seed"] for r in data})
  return ("\n".join(lines) + f"\n\nTraining FLOPs per run {data[0]['budget']:.3g}; validation bits per byte on three "
          f"held-out plays, mean ± std over seeds {', '.join(map(str, seeds))}, paired over seeds (the arms of a "
          "seed see the same batches).\n\n" + budgets.cpu_hours_line(data))


def main() -> None:
  budgets.write_block(HERE / "README.md", block(), "figures")


if __name__ == "__main__":
  main()
