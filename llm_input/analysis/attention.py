"""Where each token looks: the model's own attention weights for a sentence."""

from __future__ import annotations

import numpy as np

from llm_input.tokenizers.base import Tokenizer


def attention_maps(model, tokenizer: Tokenizer, sentence: str, add_bos: bool = True) -> dict:
  """Weights (layers, heads, L, L) from the model's attention module, and the tokens."""
  import jax.numpy as jnp  # noqa: PLC0415

  ids = tokenizer.prompt_ids(sentence, add_bos)
  _, weights = model(jnp.asarray([ids], jnp.int32), return_attention=True)
  weights = np.asarray(weights[:, 0], np.float64)  # (layers, heads, L, L)
  return {"tokens": [tokenizer.id_to_piece(i) for i in ids], "ids": ids, "weights": weights}


def looks_at(maps: dict, top: int = 2) -> list[dict]:
  """Per token, the earlier tokens it attends to most (averaged over heads, per layer)."""
  weights, tokens = maps["weights"], maps["tokens"]
  rows = []
  for layer in range(weights.shape[0]):
    mean = weights[layer].mean(axis=0)  # (L, L), rows sum to 1
    for q, token in enumerate(tokens):
      order = np.argsort(-mean[q])[:top]
      rows.append({"layer": layer, "position": q, "token": token,
                   "looks_at": [(tokens[k], int(k), float(mean[q, k])) for k in order]})
  return rows


def figure(maps: dict):
  """A grid of heatmaps: one row per layer, one column per head."""
  import matplotlib.pyplot as plt  # noqa: PLC0415

  weights, tokens = maps["weights"], maps["tokens"]
  layers, heads = weights.shape[:2]
  size = 1.9
  fig, axes = plt.subplots(layers, heads, figsize=(size * heads + 1, size * layers + 0.6), dpi=100,
                           squeeze=False)
  labels = [t.replace("\u2581", "_") for t in tokens]
  for layer in range(layers):
    for head in range(heads):
      ax = axes[layer, head]
      ax.imshow(weights[layer, head], cmap="magma", vmin=0, vmax=1)
      ax.set_xticks([])
      ax.set_yticks([])
      if head == 0:
        ax.set_ylabel(f"layer {layer}", fontsize=8)
        if len(tokens) <= 24:
          ax.set_yticks(range(len(tokens)), labels, fontsize=5)
      if layer == 0:
        ax.set_title(f"head {head}", fontsize=8)
      if layer == layers - 1 and len(tokens) <= 24:
        ax.set_xticks(range(len(tokens)), labels, fontsize=5, rotation=90)
  fig.suptitle("attention weights (rows: query token, columns: key token)", fontsize=9)
  fig.tight_layout()
  return fig


# -- what the heads of a layer do, over many windows ------------------------------------------

def head_statistics(weights, segment_ids) -> dict:
  """Per layer and head, over every query of a batch: the mean attention distance (sum over
  keys of weight x how many tokens back the key is), the entropy of the weights (nats), and per
  layer the mean Jensen-Shannon divergence between the weights of every pair of its heads (0:
  the heads look at the same tokens; ln 2 = 0.693: at disjoint ones). `weights`:
  (layers, B, H, L, L) as `Transformer(..., return_attention=True)` returns them; queries are
  counted where `segment_ids` (B, L) > 0, each with the keys of its own document only."""
  w = np.asarray(weights, np.float64)
  seg = np.asarray(segment_ids)
  layers, _, heads, length, _ = w.shape
  valid_BxL = seg > 0
  n = valid_BxL.sum()
  distance_LxL = np.arange(length)[:, None] - np.arange(length)[None, :]  # query - key
  distance = np.einsum("nbhqk,qk,bq->nh", w, distance_LxL, valid_BxL) / n
  logw = np.log(np.where(w > 0, w, 1.0))
  entropy = -np.einsum("nbhqk,nbhqk,bq->nh", w, logw, valid_BxL) / n
  divergence = np.full(layers, np.nan)
  if heads > 1:
    js = np.zeros(layers)
    pairs = 0
    for a in range(heads):
      for b in range(a + 1, heads):
        p, q = w[:, :, a], w[:, :, b]
        m = (p + q) / 2
        logm = np.log(np.where(m > 0, m, 1.0))
        kl_p = (p * (logw[:, :, a] - logm)).sum(-1)
        kl_q = (q * (logw[:, :, b] - logm)).sum(-1)
        js += ((kl_p + kl_q) / 2 * valid_BxL).sum(axis=(1, 2)) / n
        pairs += 1
    divergence = js / pairs
  return {"distance": distance, "entropy": entropy, "head_divergence": divergence}


def run_head_statistics(run, windows: int = 32) -> dict:
  """`head_statistics` of a run's model (`reload.Run`) on the first `windows` evaluation
  windows of its validation split (whole windows of one document, so every query sees up to
  seq_len keys), as lists for JSON."""
  import jax  # noqa: PLC0415

  from llm_input.data import pipeline  # noqa: PLC0415

  pipe = pipeline.PipelineConfig.from_config(run.config)
  model = run.model()
  forward = jax.jit(lambda ids, pos, seg: model(ids, pos, seg, return_attention=True)[1])
  rows = []
  for batch in pipeline.eval_batches(pipe, run.tokenizer, say=lambda *_: None):
    whole = (batch["segment_ids"] == 1).all(axis=1)
    rows += [{k: v[i] for k, v in batch.items()} for i in np.flatnonzero(whole)]
    if len(rows) >= windows:
      break
  rows = rows[:windows]
  sums, count = None, 0
  for first in range(0, len(rows), 8):  # 8 windows at a time: (layers, 8, H, L, L) weights
    chunk = {k: np.stack([r[k] for r in rows[first:first + 8]]) for k in ("inputs", "positions", "segment_ids")}
    stats = head_statistics(forward(chunk["inputs"], chunk["positions"], chunk["segment_ids"]),
                            chunk["segment_ids"])
    weight = len(chunk["inputs"])
    sums = {k: v * weight for k, v in stats.items()} if sums is None else \
        {k: sums[k] + v * weight for k, v in stats.items()}
    count += weight
  return {k: np.asarray(v / count).tolist() for k, v in sums.items()} | {"windows": count}
