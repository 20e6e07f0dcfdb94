"""What the embedding table learned: cosine similarity, neighbours, isotropy, a 2-D map.

A word is looked up as the tokenizer cuts it (with a leading space for SentencePiece, as it
appears mid-sentence); a word cut into several tokens is represented by the mean of its
pieces' vectors, and a word that becomes <unk> has no vector of its own: both are noted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from llm_input.tokenizers.base import Tokenizer

DEFAULT_PAIRS = (("Hello", "hello"), ("king", "queen"), ("cat", "dog"), ("bank", "river"),
                 ("love", "hate"), ("lord", "king"))


@dataclasses.dataclass
class WordVector:
  word: str
  vector: np.ndarray | None
  pieces: list[str]
  note: str = ""


def word_vector(table: np.ndarray, tokenizer: Tokenizer, word: str) -> WordVector:
  ids = tokenizer.word_ids(word)
  pieces = [tokenizer.id_to_piece(i) for i in ids]
  if not ids:
    return WordVector(word, None, [], "empty after tokenization")
  unk = tokenizer.unk_id
  if unk is not None and unk in ids:
    if all(i == unk for i in ids):
      return WordVector(word, None, pieces, "becomes <unk>: no vector of its own")
  vector = table[ids].mean(axis=0)
  note = f"mean of its {len(ids)} pieces" if len(ids) > 1 else ""
  if unk is not None and unk in ids:
    note = (note + "; " if note else "") + "contains <unk>"
  return WordVector(word, vector, pieces, note)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
  return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def pair_similarities(table, tokenizer, pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS) -> list[dict]:
  rows = []
  for a, b in pairs:
    va, vb = word_vector(table, tokenizer, a), word_vector(table, tokenizer, b)
    value = cosine(va.vector, vb.vector) if va.vector is not None and vb.vector is not None else None
    notes = "; ".join(f"{v.word}: {v.note}" for v in (va, vb) if v.note)
    rows.append({"a": a, "b": b, "cosine": value, "pieces_a": va.pieces, "pieces_b": vb.pieces,
                 "note": notes})
  return rows


def nearest_neighbours(table, tokenizer, word: str, k: int = 8, exclude_special: bool = True) -> dict:
  """Brute-force cosine neighbours of a word's vector among all rows of the table."""
  wv = word_vector(table, tokenizer, word)
  if wv.vector is None:
    return {"word": word, "neighbours": [], "note": wv.note}
  normed = table / (np.linalg.norm(table, axis=1, keepdims=True) + 1e-12)
  query = wv.vector / (np.linalg.norm(wv.vector) + 1e-12)
  scores = normed @ query
  if exclude_special:
    scores[list(tokenizer.special_token_ids)] = -np.inf
  own = set(tokenizer.word_ids(word)) if len(tokenizer.word_ids(word)) == 1 else set()
  order = [int(i) for i in np.argsort(-scores) if int(i) not in own and int(i) < tokenizer.vocab_size][:k]
  return {"word": word, "note": wv.note,
          "neighbours": [(tokenizer.id_to_piece(i), float(scores[i])) for i in order]}


def random_pair_cosines(table, count: int = 5000, seed: int = 0, rows: int | None = None) -> np.ndarray:
  rng = np.random.default_rng(seed)
  n = rows or table.shape[0]
  a = rng.integers(0, n, count)
  b = rng.integers(0, n, count)
  keep = a != b
  ta, tb = table[a[keep]], table[b[keep]]
  return (ta * tb).sum(1) / (np.linalg.norm(ta, axis=1) * np.linalg.norm(tb, axis=1) + 1e-12)


def anisotropy(table: np.ndarray) -> float:
  """Mean cosine over all pairs of distinct rows, exactly: (|sum u|^2 - n) / (n (n - 1))."""
  unit = table / (np.linalg.norm(table, axis=1, keepdims=True) + 1e-12)
  n = unit.shape[0]
  total = unit.sum(axis=0)
  return float((total @ total - n) / (n * (n - 1)))


def pca_2d(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Coordinates of every row on the first two principal components, and their variance share."""
  centered = table - table.mean(axis=0)
  _, s, vt = np.linalg.svd(centered, full_matrices=False)
  share = (s ** 2) / (s ** 2).sum()
  return centered @ vt[:2].T, share[:2]


def token_frequencies(tokenizer: Tokenizer, texts: Sequence[str]) -> np.ndarray:
  counts = np.zeros(tokenizer.vocab_size, np.int64)
  for ids in tokenizer.encode_batch(list(texts)):
    np.add.at(counts, np.asarray(ids, np.int64), 1)
  return counts


def summary(table, tokenizer, pairs=DEFAULT_PAIRS, probes: Sequence[str] = ()) -> dict:
  """Every embedding number of the report, for one checkpoint's table."""
  cosines = random_pair_cosines(table[: tokenizer.vocab_size])
  return {"d_model": table.shape[1], "pairs": pair_similarities(table, tokenizer, pairs),
          "neighbours": [nearest_neighbours(table, tokenizer, w) for w in probes],
          "random_cosine_mean": float(cosines.mean()), "random_cosine_std": float(cosines.std()),
          "random_cosines": cosines, "baseline_std": 1 / np.sqrt(table.shape[1]),
          "anisotropy": anisotropy(table[: tokenizer.vocab_size])}


def figure_cosines(summaries: dict):
  """Histogram of random-pair cosines per checkpoint, with the 1/sqrt(d) baseline."""
  import matplotlib.pyplot as plt  # noqa: PLC0415

  fig, ax = plt.subplots(figsize=(6, 3), dpi=110)
  for label, s in summaries.items():
    ax.hist(s["random_cosines"], bins=60, alpha=0.55, density=True,
            label=f"{label}: mean {s['random_cosine_mean']:+.3f}, std {s['random_cosine_std']:.3f}")
  d = next(iter(summaries.values()))["d_model"]
  ax.axvline(1 / np.sqrt(d), color="k", ls=":", lw=1)
  ax.axvline(-1 / np.sqrt(d), color="k", ls=":", lw=1, label=f"±1/sqrt(d) = ±{1 / np.sqrt(d):.3f}")
  ax.set_xlabel("cosine of two random token vectors")
  ax.legend(fontsize=7)
  fig.tight_layout()
  return fig


def figure_projection(table, tokenizer, frequencies: np.ndarray, labels: Sequence[str], title: str):
  """PCA of the token vectors, coloured by log frequency, with chosen words labelled."""
  import matplotlib.pyplot as plt  # noqa: PLC0415

  n = tokenizer.vocab_size
  coords, share = pca_2d(table[:n])
  fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
  points = ax.scatter(coords[:, 0], coords[:, 1], c=np.log10(frequencies[:n] + 1), s=3, cmap="viridis")
  fig.colorbar(points, ax=ax, label="log10(count + 1) in validation text")
  for word in labels:
    ids = tokenizer.word_ids(word)
    if len(ids) == 1 and ids[0] != tokenizer.unk_id:
      x, y = coords[ids[0]]
      ax.annotate(word, (x, y), fontsize=8, color="crimson")
      ax.scatter([x], [y], s=14, color="crimson")
  ax.set_xlabel(f"PC1 ({share[0]:.1%} of variance)")
  ax.set_ylabel(f"PC2 ({share[1]:.1%})")
  ax.set_title(title, fontsize=10)
  fig.tight_layout()
  return fig
