"""Count-based baselines: interpolated Kneser-Ney n-gram models over the token store, scored
in bits per byte with exactly the model's accounting.

A transformer's validation figure means little without the figure a count model reaches on
the same tokens: `llm-input baseline ngram` trains one per order on the train split and scores
the same targets the evaluation scores (every token of an evaluation window but its first,
and never across a document boundary; `data.pipeline.windows`), dividing the summed loss by
ln 2 times the same target bytes.

The model (Chen & Goodman's interpolated Kneser-Ney, one discount D for every order):

  p(w | c) = max(a(c w) - D, 0) / a(c .) + D T(c) / a(c .) * p(w | c minus its first token)
  p(w)     = max(a(w) - D, 0) / a(.)     + D T() / a(.)   * 1 / V

where a is the raw count at the highest order and the continuation count (the number of
distinct tokens seen just before the n-gram) below it, a(c .) sums a over every w, T(c)
counts the w with a(c w) > 0, and a context never seen passes its whole mass down. Each
training document is padded on the left with N - 1 boundary symbols (the context of its first
tokens; the symbol is never predicted), so every n-gram below the highest order has a left
neighbour and every lower-order distribution sums to one.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Iterable, Sequence

import numpy as np

from llm_input.errors import ConfigError

MAX_ORDER = 5


@dataclasses.dataclass
class KneserNey:
  order: int
  vocab_size: int
  discount: float = 0.75
  # counts[k]: {k-gram: a}, raw for k == order, continuation counts below
  counts: list[dict] = dataclasses.field(default_factory=list)
  totals: list[dict] = dataclasses.field(default_factory=list)  # {context: a(c .)}
  types: list[dict] = dataclasses.field(default_factory=list)  # {context: T(c)}

  def __post_init__(self):
    if not isinstance(self.order, int) or not 1 <= self.order <= MAX_ORDER:
      raise ConfigError(f"--order must be an integer from 1 to {MAX_ORDER}, got {self.order!r}")
    if not 0 < self.discount < 1:
      raise ConfigError(f"--discount must be in (0, 1), got {self.discount}")

  @property
  def boundary(self) -> int:
    return self.vocab_size  # one past the vocabulary: never a token, never predicted

  def fit(self, documents: Iterable[Sequence[int]]) -> "KneserNey":
    return self.from_counts(count_ngrams(documents, self.order, self.boundary))

  def from_counts(self, raw: list) -> "KneserNey":
    """From `count_ngrams(..., max_order >= order, boundary)`: the k-grams ending in a token
    are the same whatever the padding, once it has at least order - 1 boundary symbols."""
    n = self.order
    self.counts = [{} for _ in range(n + 1)]
    self.counts[n] = dict(raw[n])
    for k in range(n - 1, 0, -1):  # continuation counts: distinct left neighbours
      continuation: collections.Counter = collections.Counter()
      for gram in raw[k + 1]:
        continuation[gram[1:]] += 1
      self.counts[k] = dict(continuation)
    self.totals = [collections.defaultdict(int) for _ in range(n + 1)]
    self.types = [collections.defaultdict(int) for _ in range(n + 1)]
    for k in range(1, n + 1):
      for gram, a in self.counts[k].items():
        self.totals[k][gram[:-1]] += a
        self.types[k][gram[:-1]] += 1
    self.totals = [dict(t) for t in self.totals]
    self.types = [dict(t) for t in self.types]
    return self

  def prob(self, word: int, context: Sequence[int]) -> float:
    """p(word | the last order - 1 tokens of context) (boundary symbols allowed in context)."""
    context = tuple(int(t) for t in context)[len(context) - (self.order - 1):] if self.order > 1 else ()
    p = 1.0 / self.vocab_size
    for k in range(1, len(context) + 2):  # from the unigram up
      ctx = context[len(context) - (k - 1):] if k > 1 else ()
      total = self.totals[k].get(ctx, 0)
      if total == 0:
        continue  # an unseen context passes its whole mass down
      a = self.counts[k].get(ctx + (word,), 0)
      p = max(a - self.discount, 0.0) / total + self.discount * self.types[k][ctx] / total * p
    return p


def count_ngrams(documents: Iterable[Sequence[int]], max_order: int, boundary: int) -> list:
  """Raw counts of every k-gram (k <= max_order) ending in a token, each document padded on
  the left with max_order - 1 boundary symbols. Index k holds the k-grams."""
  raw: list[collections.Counter] = [collections.Counter() for _ in range(max_order + 1)]
  for doc in documents:
    padded = (boundary,) * (max_order - 1) + tuple(int(t) for t in doc)
    for k in range(1, max_order + 1):
      grams = zip(*(padded[j:] for j in range(k)))
      raw[k].update(g for g in grams if g[-1] != boundary)
  return raw


def target_positions(split, seq_len: int) -> np.ndarray:
  """Stream indices of the tokens the evaluation scores: windows of seq_len + 1 from 0 (as
  `pipeline.eval_batches`), each token but a window's first, within one document."""
  total = split.num_tokens
  index = np.arange(total)
  doc = split.doc_index(index)
  keep = (index % (seq_len + 1) != 0) & (index > 0)
  keep[1:] &= doc[1:] == doc[:-1]
  return index[keep]


def evaluate(model: KneserNey, split, seq_len: int) -> dict:
  """Bits per byte (and nats per token) on the evaluation's targets of `split`; each target's
  context is the N - 1 tokens before it in its document (boundary symbols before its start)."""
  ids = np.asarray(split.ids, np.int64)
  positions = target_positions(split, seq_len)
  starts = split.docs[split.doc_index(positions)]
  nats = 0.0
  for t, start in zip(positions.tolist(), starts.tolist()):
    context = ids[max(start, t - model.order + 1):t].tolist()
    context = [model.boundary] * (model.order - 1 - len(context)) + context
    nats -= math.log(model.prob(int(ids[t]), context))
  target_bytes = int(np.asarray(split.nbytes, np.int64)[positions].sum())
  return {"order": model.order, "targets": int(len(positions)), "target_bytes": target_bytes,
          "nats_per_token": nats / max(len(positions), 1),
          "bits_per_byte": nats / (math.log(2) * max(target_bytes, 1))}


def documents_of(split) -> list[np.ndarray]:
  ids = np.asarray(split.ids, np.int64)
  return [ids[a:b] for a, b in zip(split.docs[:-1].tolist(), split.docs[1:].tolist())]


def baselines(cfg, tokenizer, orders: Sequence[int], discount: float = 0.75, say=print) -> list[dict]:
  """Kneser-Ney bits per byte of each order on `cfg`'s validation split (a PipelineConfig)."""
  from llm_input.data import pipeline  # noqa: PLC0415

  store = pipeline.open_store(cfg, tokenizer, say)
  train = store.split(cfg.split_name("train"))
  validation = store.split(cfg.split_name("validation"))
  vocab = int(tokenizer.vocab_size)
  orders = list(orders)
  raw = count_ngrams(documents_of(train), max(orders), vocab)  # once, for every order
  rows = []
  for order in orders:
    model = KneserNey(order, vocab, discount).from_counts(raw)
    rows.append({**evaluate(model, validation, cfg.seq_len), "discount": discount,
                 "train_tokens": train.num_tokens, "vocab_size": vocab})
  return rows


def run_baselines(workdir, max_order: int = 5, discount: float = 0.75, say=print, cache=None) -> dict:
  """The baselines of a run folder's corpus, tokenizer and seq_len, written to its
  baselines.json (`cache`: {key: record} shared across runs with the same tokens)."""
  from llm_input import tokenizers  # noqa: PLC0415
  from llm_input.data import pipeline  # noqa: PLC0415
  from llm_input.runs import RunFolder  # noqa: PLC0415

  run = RunFolder(workdir)
  cfg = pipeline.PipelineConfig.from_config(run.read_config())
  tokenizer = tokenizers.load(run.tokenizer_dir)
  key = (tokenizer.fingerprint(), cfg.corpus, cfg.data_dir, cfg.seq_len, cfg.add_bos,
         cfg.add_eos, cfg.validation_corpus, cfg.validation_percent, cfg.doc_split, max_order, discount)
  if cache is not None and key in cache:
    record = cache[key]
  else:
    rows = baselines(cfg, tokenizer, range(1, max_order + 1), discount, say=say)
    record = {"kind": "interpolated Kneser-Ney", "discount": discount, "seq_len": cfg.seq_len,
              "corpus": cfg.corpus, "rows": rows}
    if cache is not None:
      cache[key] = record
  run.write_baselines(record)
  return record


def table_columns(record: dict) -> dict:
  """The columns a sweep table shows beside a run: the unigram's and the best order's figure."""
  rows = record.get("rows") or []
  if not rows:
    return {}
  best = min(rows, key=lambda r: r["bits_per_byte"])
  unigram = next((r for r in rows if r["order"] == 1), None)
  out = {"kn_best_bits_per_byte": best["bits_per_byte"], "kn_best_order": best["order"]}
  if unigram is not None:
    out = {"kn1_bits_per_byte": unigram["bits_per_byte"], **out}
  return out
