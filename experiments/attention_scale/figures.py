"""The attention_scale experiment's table, from its committed results.csv (never typed by hand):
per budget and head size, validation bits per byte with the scale and without it (mean ± std
over seeds), the paired difference with its 95% interval, and Holm's correction across the head
sizes of a budget. Rewrites the block between the `<!-- figures -->` markers of README.md.

  llm-input sweep experiments/attention_scale/sweep.py --table --baselines --documents \
      --x model.num_heads --out experiments/attention_scale
  python experiments/attention_scale/figures.py
"""

from __future__ import annotations

import pathlib

import numpy as np

from llm_input.analysis import budgets, stats

HERE = pathlib.Path(__file__).parent
D_MODEL = 128


def block() -> str:
  data = budgets.read_results(HERE / "results.csv", "arm")
  grid = sorted({r["budget"] for r in data})
  heads = sorted({int(r["model.num_heads"]) for r in data}, reverse=True)  # d_head ascending
  kn = min(r["kn_best_bits_per_byte"] for r in data if r.get("kn_best_bits_per_byte"))
  lines = ["| steps | d_head (heads) | with 1/sqrt(d_head) | without | without - with [95% CI] | paired t p | Holm p (3 sizes) |",
           "|---|---|---|---|---|---|---|"]
  for budget in grid:
    tests = []
    for h in heads:
      by = {s: {r["seed"]: r["val_bits_per_byte"] for r in data
                if r["budget"] == budget and int(r["model.num_heads"]) == h and r["model.attention_scale"] == s}
            for s in ("sqrt", "none")}
      seeds = sorted(set(by["sqrt"]) & set(by["none"]))
      tests.append((h, [by["sqrt"][s] for s in seeds], [by["none"][s] for s in seeds]))
    compared = [stats.compare(none, sqrt, paired=True) for _, sqrt, none in tests]
    for (h, sqrt, none), c, p in zip(tests, compared, stats.holm([c["p"] for c in compared])):
      lines.append(f"| {budget} | {D_MODEL // h} ({h}) | {np.mean(sqrt):.4f} ± {np.std(sqrt, ddof=1):.4f} | "
                   f"{np.mean(none):.4f} ± {np.std(none, ddof=1):.4f} | {c['diff']:+.4f} [{c['ci_low']:+.4f}, "
                   f"{c['ci_high']:+.4f}] | {c['p']:.2g} | {p:.2g} |")
  seeds = sorted({r["seed"] for r in data})
  return ("\n".join(lines) + f"\n\nValidation bits per byte (three held-out plays), mean ± std over seeds "
          f"{', '.join(map(str, seeds))}; paired over seeds (both arms of a seed see the same batches). "
          f"The tokens' best Kneser-Ney n-gram: {kn:.4f}.\n\n" + budgets.cpu_hours_line(data))


def main() -> None:
  budgets.write_block(HERE / "README.md", block(), "figures")


if __name__ == "__main__":
  main()
