"""How much word order does each trained model use?

For every finished run of the positions sweep and each validation sequence, the model predicts
the token after a prefix of c tokens (c = 32, 64, 128, 256) three times: with the prefix as
written; with all its tokens but the first shuffled; and with the last token (the one right
before the prediction) also kept in place. The context holds the same tokens every time; only
their order differs. The gaps (shuffled - ordered, nats per prediction, averaged over the cuts)
are the order information the model uses: in all, and beyond the immediately preceding token. A bidirectional model without positions would show exactly 0 (it is permutation
invariant); a causal model without positions need not, since the causal mask tells each position
how many tokens precede it.

  python experiments/positions/order_probe.py [--rows 96]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from llm_input import sweep as sweep_lib
from llm_input.data import pipeline
from llm_input.runs import RunFolder
from llm_input.train import reload as run_lib

HERE = pathlib.Path(__file__).parent
CUTS = (32, 64, 128, 256)


def probe(workdir, rows: int, seed: int = 0) -> dict:
  run = run_lib.load_run(workdir)
  model = run.model()
  forward = jax.jit(lambda ids: jax.nn.log_softmax(model(ids)[:, -1], axis=-1))
  pipe = pipeline.PipelineConfig.from_config(run.config)
  rng = np.random.default_rng(seed)
  kept = []
  for batch in pipeline.eval_batches(pipe, run.tokenizer):
    whole = (batch["segment_ids"] == 1).all(axis=1) & (batch["loss_mask"].sum(axis=1) == pipe.seq_len)
    kept += [(i, t) for i, t in zip(batch["inputs"][whole], batch["targets"][whole])]
    if len(kept) >= rows:
      break
  inputs = np.stack([i for i, _ in kept[:rows]])
  targets = np.stack([t for _, t in kept[:rows]])
  result = {"positions": run.model_cfg.positions, "scaled": bool(run.model_cfg.scale_embeddings),
            "rows": len(inputs)}
  for cut in CUTS:
    prefix = inputs[:, :cut]
    variants = {"ordered": prefix, "shuffled": prefix.copy(), "shuffled_keep_last": prefix.copy()}
    for row_all, row_keep in zip(variants["shuffled"], variants["shuffled_keep_last"]):
      rest = row_all[1:].copy()
      rng.shuffle(rest)
      row_all[1:] = rest
      middle = row_keep[1:-1].copy()
      rng.shuffle(middle)
      row_keep[1:-1] = middle
    target = targets[:, cut - 1]
    for name, ids in variants.items():
      log_probs = np.asarray(forward(jnp.asarray(ids)))
      result.setdefault(name, []).append(float(-log_probs[np.arange(len(ids)), target].mean()))
  return {**result, **{k: float(np.mean(result[k])) for k in variants}}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--rows", type=int, default=96)
  parser.add_argument("--arg", default=None)
  args = parser.parse_args()
  sweep = sweep_lib.load(str(HERE / "sweep.py"), args.arg)
  by_arm: dict[str, list[dict]] = {}
  for (folder, _), (name, _, seed) in zip(sweep.expand(), sweep.arms()):
    if RunFolder(folder).finished():
      arm = name.rsplit("_seed-", 1)[0] if seed is not None else name
      by_arm.setdefault(arm, []).append(probe(folder, args.rows))

  def cell(values, signed=False):
    mean = float(np.mean(values))
    text = f"{mean:+.3f}" if signed else f"{mean:.3f}"
    return text + (f" ± {float(np.std(values, ddof=1)):.3f}" if len(values) > 1 else "")

  lines = ["| positions | n | ordered NLL | all shuffled: gap | last token kept: gap |",
           "|---|---|---|---|---|"]
  for results in by_arm.values():
    r = results[0]
    name = r["positions"] + (" (scaled tokens)" if r["scaled"] else "")
    lines.append(f"| {name} | {len(results)} | {cell([x['ordered'] for x in results])} | "
                 f"{cell([x['shuffled'] - x['ordered'] for x in results], True)} | "
                 f"{cell([x['shuffled_keep_last'] - x['ordered'] for x in results], True)} |")
  rows = next(iter(by_arm.values()))[0]["rows"] if by_arm else 0
  lines.append(f"\nNats per prediction, mean over prefixes of {', '.join(map(str, CUTS))} tokens; "
               f"{rows} validation sequences each; mean ± standard deviation over the n seeds' "
               "models (the same sequences and shuffles for every model).")
  (HERE / "order_table.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
