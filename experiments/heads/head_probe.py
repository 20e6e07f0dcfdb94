"""What the heads of each trained heads-sweep model do: per layer and head, the mean attention
distance (tokens back) and entropy, and per layer the mean Jensen-Shannon divergence between its
heads (`llm_input.analysis.attention.head_statistics`), on 32 whole validation windows. Writes
head_stats.json and head_stats.md beside this file.

  python experiments/heads/head_probe.py [--budget 600]
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np

from llm_input import sweep as sweep_lib
from llm_input.analysis import attention
from llm_input.runs import RunFolder
from llm_input.train import reload

HERE = pathlib.Path(__file__).parent


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--budget", type=int, default=0, help="train.steps of the runs to probe (default: the longest)")
  parser.add_argument("--arg", default=None)
  parser.add_argument("--windows", type=int, default=32)
  args = parser.parse_args()
  sweep = sweep_lib.load(str(HERE / "sweep.py"), args.arg)
  budget = args.budget or max(sweep.budgets)
  results = []
  for (folder, _), (name, overrides, seed) in zip(sweep.expand(validate=False), sweep.arms()):
    if overrides.get("train.steps") != budget or not RunFolder(folder).finished():
      continue
    stats = attention.run_head_statistics(reload.load_run(folder), args.windows)
    results.append({"run": name, "heads": overrides["model.num_heads"], "seed": seed, **stats})
    print(f"{name}: distance per layer {np.round(np.mean(stats['distance'], axis=1), 2).tolist()}, "
          f"head divergence {np.round(stats['head_divergence'], 3).tolist()}")
  (HERE / "head_stats.json").write_text(json.dumps({"budget": budget, "runs": results}, indent=1) + "\n")
  lines = ["| heads | seeds | mean attention distance per layer (tokens) | entropy per layer (nats) | "
           "divergence between heads per layer (JS, nats; ln 2 = 0.693 is disjoint) |", "|---|---|---|---|---|"]
  for heads in sorted({r["heads"] for r in results}):
    runs = [r for r in results if r["heads"] == heads]
    fmt = lambda key, per_layer: " / ".join(  # noqa: E731
        f"{m:.3g} ± {s:.2g}" for m, s in zip(*per_layer([np.asarray(r[key]) for r in runs])))
    over_heads = lambda arrays: (np.mean([a.mean(1) for a in arrays], 0), np.std([a.mean(1) for a in arrays], 0, ddof=1))  # noqa: E731
    per_layer = lambda arrays: (np.mean(arrays, 0), np.std(arrays, 0, ddof=1))  # noqa: E731
    div = "n/a (one head)" if heads == 1 else fmt("head_divergence", per_layer)
    lines.append(f"| {heads} | {len(runs)} | {fmt('distance', over_heads)} | {fmt('entropy', over_heads)} | {div} |")
  text = (f"# heads: what the heads do ({budget}-step runs, {args.windows} validation windows each)\n\n"
          "`python experiments/heads/head_probe.py`\n\n" + "\n".join(lines) +
          "\n\nmean ± standard deviation over seeds; distance and entropy averaged over the heads of a layer.\n")
  (HERE / "head_stats.md").write_text(text)
  print(text)


if __name__ == "__main__":
  main()
