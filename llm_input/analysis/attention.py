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
