"""The attention_scale learning-rate sweep's figures (`sweep.py --arg lr`), from lr/results.csv
and results.csv (never typed by hand): each arm (a head size, with or without 1/sqrt(d_head)) at
peak rates 1e-3, 3e-3 and 1e-2 at the 400-step budget (seed 0; the 3e-3 point is the sweep's
own seed-0 run), its best rate, whether the order of the arms holds at each one's best rate, the
Kneser-Ney baseline of the shared bpe tokens; then, per head size, what dropping the scale costs
at 3e-3 and at each arm's best rate. Rewrites the block between the `<!-- lr -->` markers of
README.md.

  llm-input sweep experiments/attention_scale/sweep.py --arg lr
  llm-input sweep experiments/attention_scale/sweep.py --arg lr --table --baselines \
      --out experiments/attention_scale/lr
  python experiments/attention_scale/lr_figures.py
"""

from __future__ import annotations

import pathlib

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent
RATE = 3e-3  # configs/tiny.py's peak rate, which the sweep used
D_MODEL = 128


def read(path: pathlib.Path) -> list[dict]:
  """results.csv rows whose arm is (d_head, scale): the same key in the sweep and its rate sweep."""
  rows = budgets.read_results(path, "arm")
  for r in rows:
    r["arm"] = (D_MODEL // int(r["model.num_heads"]), r["model.attention_scale"])
  return rows


def label(arm: tuple[int, str]) -> str:
  d_head, scale = arm
  return f"d_head {d_head} {'with' if scale == 'sqrt' else 'without'} the scale"


def block() -> str:
  """The README block, from the committed CSVs."""
  rows, sweep = read(HERE / "lr" / "results.csv"), read(HERE / "results.csv")
  arms = sorted({r["arm"] for r in sweep}, key=lambda a: (a[0], a[1] != "sqrt"))
  text = budgets.rate_sweep_block(rows, sweep, RATE, arms, label, budget_name="the sweep's 400-step budget",
                                  point_name="the sweep's own seed-0 run")
  points = budgets.rate_points(rows, sweep, RATE)
  rates = sorted({rate for _, rate in points})
  best = {arm: min(v for (a, _), v in points.items() if a == arm) for arm in arms}
  costs = [f"d_head {d}: " + ", ".join(f"{points[((d, 'none'), r)] - points[((d, 'sqrt'), r)]:+.4f} at {r:g}"
                                       for r in rates if ((d, "none"), r) in points and ((d, "sqrt"), r) in points)
           + f", {best[(d, 'none')] - best[(d, 'sqrt')]:+.4f} at each arm's best rate"
           for d in sorted({d for d, _ in arms})]
  return text + "\n- Without the scale minus with it (seed 0, one run each): " + "; ".join(costs) + "."


def main() -> None:
  budgets.write_block(HERE / "README.md", block(), "lr")


if __name__ == "__main__":
  main()
