"""What the heads of a layer do (analysis/attention.py `head_statistics`): against a loop-by-loop
numpy reference and on heads whose answers are known."""

import math

import numpy as np
import pytest

from llm_input.analysis import attention


def _causal_weights(rng, layers, batch, heads, length):
  logits = rng.normal(0, 2, size=(layers, batch, heads, length, length))
  logits = np.where(np.tril(np.ones((length, length), bool)), logits, -np.inf)
  w = np.exp(logits - logits.max(-1, keepdims=True))
  return w / w.sum(-1, keepdims=True)


def _reference(w, seg):
  layers, batch, heads, length, _ = w.shape
  dist, ent, js = np.zeros((layers, heads)), np.zeros((layers, heads)), np.zeros(layers)
  n = 0
  for b in range(batch):
    for q in range(length):
      if seg[b, q] == 0:
        continue
      n += 1
      for layer in range(layers):
        for h in range(heads):
          p = w[layer, b, h, q]
          dist[layer, h] += sum(p[k] * (q - k) for k in range(length))
          ent[layer, h] -= sum(p[k] * math.log(p[k]) for k in range(length) if p[k] > 0)
        pairs = [(a, c) for a in range(heads) for c in range(a + 1, heads)]
        for a, c in pairs:
          p, r = w[layer, b, a, q], w[layer, b, c, q]
          m = (p + r) / 2
          kl = lambda x: sum(x[k] * math.log(x[k] / m[k]) for k in range(length) if x[k] > 0)  # noqa: E731
          js[layer] += (kl(p) + kl(r)) / 2 / len(pairs)
  return dist / n, ent / n, js / n


def test_head_statistics_equal_a_loop_by_loop_reference():
  rng = np.random.default_rng(0)
  w = _causal_weights(rng, 2, 3, 3, 7)
  seg = np.ones((3, 7), int)
  seg[2, 5:] = 0  # padding: not counted
  got = attention.head_statistics(w, seg)
  dist, ent, js = _reference(w, seg)
  np.testing.assert_allclose(got["distance"], dist, rtol=1e-10)
  np.testing.assert_allclose(got["entropy"], ent, rtol=1e-10)
  np.testing.assert_allclose(got["head_divergence"], js, rtol=1e-10)


def test_known_heads_previous_token_first_token_identical_and_one_head():
  length = 6
  prev = np.zeros((length, length))
  prev[0, 0] = 1
  for q in range(1, length):
    prev[q, q - 1] = 1  # the previous token: distance 1 (but the first query), entropy 0
  first = np.zeros((length, length))
  first[:, 0] = 1  # always the first token: distance q
  w = np.stack([prev, first])[None, None]  # (1 layer, 1 row, 2 heads, L, L)
  got = attention.head_statistics(w, np.ones((1, length), int))
  assert got["distance"][0].tolist() == pytest.approx([(length - 1) / length, sum(range(length)) / length])
  assert got["entropy"][0].tolist() == pytest.approx([0.0, 0.0])
  # disjoint keys at every query but q=0 (both look at token 0 there, and q=1 where both look at 0)
  assert got["head_divergence"][0] == pytest.approx(math.log(2) * (length - 2) / length)
  same = attention.head_statistics(np.stack([prev, prev])[None, None], np.ones((1, length), int))
  assert same["head_divergence"][0] == pytest.approx(0.0)
  one = attention.head_statistics(prev[None, None, None], np.ones((1, length), int))
  assert np.isnan(one["head_divergence"][0])  # one head: no pair to compare
