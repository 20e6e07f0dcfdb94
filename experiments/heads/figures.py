"""The heads README's figures, from results.csv and head_stats.json (never typed by hand): per
budget each arm's validation bits per byte against the Kneser-Ney baselines, the paired tests
at each budget, what the heads do, the epochs each budget saw and the CPU time. Rewrites the
block between the `<!-- figures -->` markers of README.md.

  llm-input sweep experiments/heads/sweep.py --table --baselines --documents --x num_heads
  python experiments/heads/head_probe.py
  python experiments/heads/figures.py

With `--arg seeds` tabled into seeds/, it also rewrites the `<!-- seeds -->` block.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from llm_input.analysis import budgets

HERE = pathlib.Path(__file__).parent


def label(heads: int) -> str:
  return f"{heads} head{'s' if heads > 1 else ''}"


def probe_lines(probe: dict, heads: list[int]) -> list[str]:
  lines = ["", f"What the heads do ({probe['budget']}-step models; `head_stats.md`): mean Jensen-Shannon "
           "divergence between the heads of a layer, averaged over layers and seeds:", ""]
  for h in heads:
    runs = [r for r in probe["runs"] if r["heads"] == h]
    if h == 1 or not runs:
      continue
    div = [float(np.mean(r["head_divergence"])) for r in runs]
    dist = [np.asarray(r["distance"]) for r in runs]
    spread = [float(np.mean(d.max(1) - d.min(1))) for d in dist]
    per_layer = np.mean([r["head_divergence"] for r in runs], axis=0)
    lines.append(f"- {h} heads: divergence {np.mean(div):.3f} ± {np.std(div, ddof=1):.3f} nats (by layer, first to "
                 f"last: {' / '.join(f'{v:.3f}' for v in per_layer)}); within a layer the heads' mean attention "
                 f"distances span {np.mean(spread):.1f} tokens on average")
  every = [np.asarray(r["distance"]).mean() for r in probe["runs"]]
  uniform = float(np.mean(np.arange(256) / 2))  # a query at q spreading evenly over its q + 1 keys
  lines += ["", f"Mean attention distance over every head, layer and seed: {np.mean(every):.1f} tokens "
            f"(range of runs {min(every):.1f}-{max(every):.1f}); attention spread evenly over the causal "
            f"prefix of a 256-token window would give {uniform:.2f}."]
  return lines


def block(folder: str = ".") -> str:
  """The README block of the curve (results.csv, head_stats.json) or, with folder "seeds", of
  `--arg seeds` (five seeds at the curve's 200-step budget, all trained on this machine), from
  the committed CSVs and token count."""
  data = budgets.read_results(HERE / folder / "results.csv", "model.num_heads", int)
  tokens = budgets.train_tokens(HERE / "train_tokens.json",
                                pathlib.Path("runs/sweeps/heads") / "num_heads-4_steps-400_seed-0")
  text = budgets.summary_block(data, label, tokens_per_step=16 * 256, train_tokens=tokens,
                               validation="the held-out play")
  if folder == "seeds":
    curve = budgets.read_results(HERE / "results.csv", "model.num_heads", int)
    return text + "\n\n" + budgets.seeds_against_curve(data, curve, 200, label)
  probe_path = HERE / "head_stats.json"
  probe = json.loads(probe_path.read_text()) if probe_path.exists() else None
  lines = [text] + (probe_lines(probe, sorted({r["arm"] for r in data})) if probe else [])
  return "\n".join(lines + ["", budgets.cpu_hours_line(data)])


def main() -> None:
  for folder, name in ((".", "figures"), ("seeds", "seeds")):
    if (HERE / folder / "results.csv").exists():
      budgets.write_block(HERE / "README.md", block(folder), name)


if __name__ == "__main__":
  main()
