"""How much word order does each trained model use? Loss on shuffled vs ordered validation text.

For every finished run of the positions sweep, each validation sequence (one document piece,
no padding) is evaluated as it is and with its tokens shuffled (the first token kept; the bag
of tokens, and so the unigram statistics, unchanged). The gap (shuffled - ordered, nats per
token) is the order information the model exploits. A causal model with no positional
encoding still has one: the causal mask tells each position how many tokens precede it.

  python experiments/positions/order_probe.py [--batches 8]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import numpy as np

from llm_input import sweep as sweep_lib
from llm_input.data import pipeline
from llm_input.train import loop, sharding, step as step_lib
from llm_input.train import run as run_lib

HERE = pathlib.Path(__file__).parent


def shuffled(batch: dict, rng: np.random.Generator) -> dict:
  full = np.concatenate([batch["inputs"][:, :1], batch["targets"]], axis=1)
  for row in full:
    rest = row[1:].copy()
    rng.shuffle(rest)
    row[1:] = rest
  out = dict(batch)
  out["inputs"], out["targets"] = full[:, :-1], full[:, 1:]
  return out


def probe(workdir, batches: int, seed: int = 0) -> dict:
  run = run_lib.load_run(workdir)
  cfg = run.config
  mesh = sharding.make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
  trainer = step_lib.Trainer(run.model_cfg, step_lib.OptimConfig(), mesh)
  pipe = loop.pipeline_config(cfg)
  rng = np.random.default_rng(seed)
  sums = {"ordered": np.zeros(2), "shuffled": np.zeros(2)}
  used = 0
  for batch in pipeline.eval_batches(pipe, run.tokenizer):
    keep = (batch["segment_ids"] == 1).all(axis=1) & (batch["loss_mask"].sum(axis=1) == cfg.data.seq_len)
    if not keep.any():
      continue
    batch = {k: v[keep] for k, v in batch.items()}
    for name, b in (("ordered", batch), ("shuffled", shuffled(batch, rng))):
      parts = jax.device_get(trainer.eval_step(run.params, b))
      sums[name] += [float(parts["loss_sum"]), float(parts["tokens"])]
    used += 1
    if used >= batches:
      break
  ordered, shuffled_loss = (s[0] / s[1] for s in (sums["ordered"], sums["shuffled"]))
  return {"positions": run.model_cfg.positions, "ordered_loss": ordered,
          "shuffled_loss": shuffled_loss, "gap": shuffled_loss - ordered, "tokens": int(sums["ordered"][1])}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--batches", type=int, default=8)
  parser.add_argument("--arg", default=None)
  args = parser.parse_args()
  sweep = sweep_lib.load(str(HERE / "sweep.py"), args.arg)
  rows = [probe(folder, args.batches) for folder, _ in sweep.expand() if sweep_lib.finished(folder)]
  lines = ["| positions | ordered loss (nats/token) | shuffled loss | gap (shuffled - ordered) | tokens |",
           "|---|---|---|---|---|"]
  lines += [f"| {r['positions']} | {r['ordered_loss']:.4f} | {r['shuffled_loss']:.4f} | "
            f"{r['gap']:+.4f} | {r['tokens']:,} |" for r in rows]
  (HERE / "order_table.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
