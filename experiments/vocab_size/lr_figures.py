"""The vocab_size learning-rate sweep's figures (`sweep.py --arg lr`), from lr/results.csv and
curve/results.csv (never typed by hand): each vocabulary's validation bits per byte at peak
rates 1e-3, 3e-3 and 1e-2 (and 3e-4 for 16,000 and 50,000, past the grid's edge) at the
curve's 2x budget (seed 0; the 3e-3 point is the curve's 2x
cooldown branch, the same training as a straight run), its best rate, whether the curve's
order of the vocabularies holds at each one's best rate, and each one's own best Kneser-Ney
baseline. Rewrites the block between the `<!-- lr -->` markers of README.md.

  llm-input sweep experiments/vocab_size/sweep.py --arg lr
  llm-input sweep experiments/vocab_size/sweep.py --arg lr --table --out experiments/vocab_size/lr
  python experiments/vocab_size/lr_figures.py
"""

from __future__ import annotations

import pathlib

import numpy as np

from llm_input.analysis import budgets, stats

HERE = pathlib.Path(__file__).parent
CURVE_RATE = 3e-3  # configs/tiny.py's peak rate, the curve's


def block() -> str:
  """The README block, from the committed CSVs."""
  rows = budgets.read_results(HERE / "lr" / "results.csv", "tokenizer.vocab_size", int)
  curve = budgets.read_results(HERE / "curve" / "results.csv", "tokenizer.vocab_size", int)
  text = budgets.rate_sweep_block(rows, curve, CURVE_RATE, sorted({r["arm"] for r in curve}), "{:,}".format)
  if (HERE / "lr_seeds" / "results.csv").exists():
    text += "\n\n" + seeds_lines()
  return text


def seeds_lines() -> str:
  """50,000 at 1e-3 over five seeds (`--arg lr_seeds`) against every arm's five seeds at 3e-3
  (`--arg seeds`), paired by seed, Holm over the comparisons."""
  lr_seeds = budgets.read_results(HERE / "lr_seeds" / "results.csv", "tokenizer.vocab_size", int)
  low = {r["seed"]: r["val_bits_per_byte"] for r in lr_seeds}
  seeds = budgets.read_results(HERE / "seeds" / "results.csv", "tokenizer.vocab_size", int)
  order = sorted(low)
  at_curve = {arm: [next(r["val_bits_per_byte"] for r in seeds if r["arm"] == arm and r["seed"] == s) for s in order]
              for arm in sorted({r["arm"] for r in seeds})}
  ours = [low[s] for s in order]
  tests = stats.against_each(ours, at_curve)
  lines = [f"50,000 at 1e-3 over seeds {', '.join(map(str, order))}: {np.mean(ours):.4f} ± {np.std(ours, ddof=1):.4f} "
           f"bits per byte; against each arm's five seeds at {CURVE_RATE:g} (paired by seed, Holm over the "
           f"{len(tests)} comparisons):", ""]
  for arm, t in tests.items():
    verdict = (("lower" if t["diff"] < 0 else "higher") if t["p_holm"] < stats.ALPHA
               else f"not detected (80% power for {t['detectable']:.3f})")
    lines.append(f"- vs {arm:,} at {CURVE_RATE:g} ({np.mean(at_curve[arm]):.4f}): {t['diff']:+.4f} "
                 f"[{t['ci_low']:+.4f}, {t['ci_high']:+.4f}], Holm p {t['p_holm']:.2g}: {verdict}")
  straight = [r for r in lr_seeds if r["seed"] != 0]
  lines += ["", f"CPU time: {sum(r['train_time_s'] or 0.0 for r in straight) / 3600:.2f} core-hours in the training "
                f"loops of the {len(straight)} runs of seeds 1-4 (seed 0 is the rate sweep's run)."]
  return "\n".join(lines)


def main() -> None:
  budgets.write_block(HERE / "README.md", block(), "lr")


if __name__ == "__main__":
  main()
