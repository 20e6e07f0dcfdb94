"""The heads README's figures, from results.csv and head_stats.json (never typed by hand): per
budget each arm's validation bits per byte against the Kneser-Ney baselines, the paired tests
at each budget, what the heads do, the epochs each budget saw and the CPU time. Rewrites the
block between the `<!-- figures -->` markers of README.md.

  llm-input sweep experiments/heads/sweep.py --table --baselines --documents --x num_heads
  python experiments/heads/head_probe.py
  python experiments/heads/figures.py
"""

from __future__ import annotations

import csv
import json
import pathlib

import numpy as np

from llm_input.analysis import stats

HERE = pathlib.Path(__file__).parent
START, END = "<!-- figures -->", "<!-- /figures -->"
TRAIN_TOKENS_KEY = "train_tokens"  # written by this script from a run's token store, once


def rows() -> list[dict]:
  with (HERE / "results.csv").open() as f:
    out = list(csv.DictReader(f))
  for r in out:
    for k in ("val_bits_per_byte", "kn1_bits_per_byte", "kn_best_bits_per_byte", "train_flops", "train_time_s",
              "bytes_per_token"):
      r[k] = float(r[k]) if r.get(k) not in (None, "") else None
    r["heads"], r["steps"], r["seed"] = int(r["model.num_heads"]), int(r["train.steps"]), int(r["seed"])
  return out


def train_tokens() -> int:
  """Tokens in the train split of the sweep's token store (all arms share the bpe-4096 tokens)."""
  from llm_input import tokenizers  # noqa: PLC0415
  from llm_input.data import pipeline  # noqa: PLC0415
  from llm_input.runs import RunFolder  # noqa: PLC0415

  cache = HERE / "train_tokens.json"
  if cache.exists():
    return json.loads(cache.read_text())[TRAIN_TOKENS_KEY]
  run = RunFolder(pathlib.Path("runs/sweeps/heads") / "num_heads-4_steps-400_seed-0")
  pipe = pipeline.PipelineConfig.from_config(run.read_config())
  store = pipeline.open_store(pipe, tokenizers.load(run.tokenizer_dir), say=lambda *_: None)
  n = int(store.meta["splits"]["train"]["tokens"])
  cache.write_text(json.dumps({TRAIN_TOKENS_KEY: n}) + "\n")
  return n


def block(data: list[dict], probe: dict | None, tokens: int) -> str:
  budgets = sorted({r["steps"] for r in data})
  heads = sorted({r["heads"] for r in data})
  kn1 = data[0]["kn1_bits_per_byte"]
  best = data[0]["kn_best_bits_per_byte"]
  order = data[0].get("kn_best_order")
  lines = [f"Validation bits per byte (the held-out play), mean ± std over seeds "
           f"{sorted({r['seed'] for r in data})}; Kneser-Ney on the same tokens: unigram {kn1:.4f}, best "
           f"order ({order}) {best:.4f}.", "",
           "| steps | training FLOPs | epochs of the train split | " + " | ".join(f"{h} head{'s' if h > 1 else ''}" for h in heads)
           + " | best arm vs KN best |", "|---|---|---|" + "---|" * len(heads) + "---|"]
  for b in budgets:
    at = [r for r in data if r["steps"] == b]
    cells, means = [], {}
    for h in heads:
      v = [r["val_bits_per_byte"] for r in at if r["heads"] == h]
      means[h] = float(np.mean(v))
      cells.append(f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}" if len(v) > 1 else f"{v[0]:.4f}")
    winner = min(means, key=means.get)
    gap = means[winner] - best
    epochs = b * 16 * 256 / tokens
    lines.append(f"| {b} | {at[0]['train_flops']:.3g} | {epochs:.2f} | " + " | ".join(cells)
                 + f" | {winner} heads {gap:+.4f} ({'below' if gap < 0 else 'above'}) |")
  lines += ["", "Paired over seeds at each budget (paired t, Holm over the 6 pairs of a budget):", ""]
  for b in budgets:
    values = {f"{h} heads": [(r["seed"], r["val_bits_per_byte"]) for r in data if r["steps"] == b and r["heads"] == h]
              for h in heads}
    decided = [r for r in stats.pairwise(values) if r["distinguishable"]]
    closest = [r for r in stats.pairwise(values) if not r["distinguishable"]]
    text = "; ".join(f"{r['a']} vs {r['b']} {r['diff']:+.4f} (Holm p {r['p_holm']:.2g})" for r in decided) or "none"
    lines.append(f"- {b} steps: decided: {text}; not detected: {len(closest)} of 6 pairs.")
  if probe:
    lines += ["", f"What the heads do ({probe['budget']}-step models; `head_stats.md`): mean Jensen-Shannon "
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
  longest = max(budgets)
  long_runs = [r for r in data if r["steps"] == longest]
  hours = sum(r["train_time_s"] or 0.0 for r in long_runs) / 3600
  lines += ["", f"CPU time: {hours:.2f} core-hours in the training loops of the {len(long_runs)} {longest}-step runs "
            "(each on one core; a branch's time repeats its long run's up to the branch point, so branches are "
            "not summed)."]
  return "\n".join(lines)


def main() -> None:
  data = rows()
  probe_path = HERE / "head_stats.json"
  probe = json.loads(probe_path.read_text()) if probe_path.exists() else None
  text = block(data, probe, train_tokens())
  readme = HERE / "README.md"
  body = readme.read_text()
  head, rest = body.split(START, 1)
  _, tail = rest.split(END, 1)
  readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")
  print(text)


if __name__ == "__main__":
  main()
