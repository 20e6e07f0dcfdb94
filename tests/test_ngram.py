"""The Kneser-Ney baseline against NLTK's implementation and a hand count, and its accounting
against the model's evaluation."""

import math

import numpy as np
import pytest
from nltk.lm import counter as nltk_counter
from nltk.lm import models as nltk_models
from nltk.lm import smoothing as nltk_smoothing
from nltk.lm import vocabulary as nltk_vocabulary

from llm_input import cli
from llm_input.analysis import ngram
from llm_input.data import pipeline
from llm_input.errors import ConfigError

from helpers import make_text_corpus


def random_docs(seed=0, vocab=12, docs=30):
  rng = np.random.default_rng(seed)
  # a skewed, repetitive source so every order has repeated n-grams and unseen ones
  return [rng.choice(vocab, size=rng.integers(3, 25), p=np.arange(vocab, 0, -1) / np.arange(vocab, 0, -1).sum()).tolist()
          for _ in range(docs)]


def nltk_model(order, vocab, discount, docs):
  """NLTK's interpolated Kneser-Ney on the same padded documents (the boundary symbol left of
  each document, n-grams ending in it dropped, as llm_input counts them), with the unigram
  level interpolated with the uniform distribution (NLTK's own unigram is not smoothed)."""
  boundary = vocab

  class Uniform(nltk_smoothing.KneserNey):
    def _unigram_count(self, word):  # continuation count below the highest order, raw at order 1
      return self._continuation_counts(word)[0] if order > 1 else self.counts[1][word]

    def unigram_score(self, word):
      total = self._continuation_counts(word)[1] if order > 1 else self.counts[1].N()
      kinds = sum(1 for w in range(vocab) if self._unigram_count(w) > 0)
      return max(self._unigram_count(word) - self.discount, 0) / total + self.discount * kinds / total / vocab

  grams = []
  for doc in docs:
    padded = [boundary] * (order - 1) + doc
    sentence = []
    for k in range(1, order + 1):
      sentence += [tuple(padded[i:i + k]) for i in range(len(padded) - k + 1) if padded[i + k - 1] != boundary]
    grams.append(sentence)
  model = nltk_models.InterpolatedLanguageModel(
      Uniform, order, params={"discount": discount, "order": order},
      vocabulary=nltk_vocabulary.Vocabulary(list(range(vocab + 1)), unk_cutoff=1),
      counter=nltk_counter.NgramCounter(grams))
  return model


@pytest.mark.parametrize("order", (1, 2, 3, 4))
def test_kneser_ney_equals_nltk(order):
  vocab, discount = 12, 0.6
  docs = random_docs()
  ours = ngram.KneserNey(order, vocab, discount).fit(docs)
  theirs = nltk_model(order, vocab, discount, docs)
  rng = np.random.default_rng(1)
  contexts = [d[max(0, i - order + 1):i] for d in random_docs(seed=5) for i in range(1, len(d))]
  contexts += [rng.integers(0, vocab, size=order - 1).tolist() for _ in range(20)]  # unseen ones
  for context in contexts[:150]:
    context = [vocab] * (order - 1 - len(context)) + list(context)
    for word in range(vocab):
      want = theirs.unmasked_score(word, tuple(context) if order > 1 else None)
      assert ours.prob(word, context) == pytest.approx(want, rel=1e-12, abs=1e-15), (context, word)


@pytest.mark.parametrize("order", (1, 2, 3, 5))
def test_every_distribution_sums_to_one(order):
  vocab = 12
  model = ngram.KneserNey(order, vocab).fit(random_docs())
  rng = np.random.default_rng(2)
  for _ in range(40):
    context = rng.integers(0, vocab + 1, size=order - 1).tolist()
    assert sum(model.prob(w, context) for w in range(vocab)) == pytest.approx(1.0, abs=1e-12)


def test_kneser_ney_by_hand():
  # one document "a b a b" (a=0, b=1), vocabulary {a, b, c}, bigrams, D = 0.5; boundary B = 3.
  # raw bigrams: B a, a b (2), b a; continuation unigrams: a <- {B, b}: 2, b <- {a}: 1.
  model = ngram.KneserNey(2, 3, 0.5).fit([[0, 1, 0, 1]])
  unigram = {0: (2 - 0.5) / 3 + 0.5 * 2 / 3 / 3, 1: (1 - 0.5) / 3 + 0.5 * 2 / 3 / 3, 2: 0.5 * 2 / 3 / 3}
  assert sum(unigram.values()) == pytest.approx(1.0)
  # after a: c(a .) = 2 (a b twice), one type
  assert model.prob(1, [0]) == pytest.approx((2 - 0.5) / 2 + 0.5 * 1 / 2 * unigram[1])
  assert model.prob(0, [0]) == pytest.approx(0.5 * 1 / 2 * unigram[0])
  assert model.prob(2, [0]) == pytest.approx(0.5 * 1 / 2 * unigram[2])
  # c never seen as a context: its whole mass goes to the unigram
  assert model.prob(1, [2]) == pytest.approx(unigram[1])


def test_bits_per_byte_uses_the_evaluations_targets_and_bytes(tmp_path):
  from llm_input import tokenizers  # noqa: PLC0415

  corpus = make_text_corpus(tmp_path / "corpus", files=40)
  cfg = pipeline.PipelineConfig(corpus=f"text:{corpus}", data_dir=str(tmp_path / "data"), seq_len=16,
                                batch_size=4)
  tokenizer = tokenizers.train("char", 64, list(pipeline.documents(cfg, "train")))
  batches = list(pipeline.eval_batches(cfg, tokenizer, say=lambda *_: None))
  targets = sum(int(b["loss_mask"].sum()) for b in batches)
  target_bytes = sum(int(b["target_bytes"].sum()) for b in batches)
  split = pipeline.open_store(cfg, tokenizer, say=lambda *_: None).split("validation")
  assert len(ngram.target_positions(split, cfg.seq_len)) == targets
  [row] = ngram.baselines(cfg, tokenizer, [2], say=lambda *_: None)
  assert (row["targets"], row["target_bytes"]) == (targets, target_bytes)
  # the figure is the mean of -log2 p over the targets, per byte: recomputed directly
  model = ngram.KneserNey(2, tokenizer.vocab_size).fit(ngram.documents_of(
      pipeline.open_store(cfg, tokenizer, say=lambda *_: None).split("train")))
  ids, docs = np.asarray(split.ids, np.int64), split.docs
  total = 0.0
  for t in ngram.target_positions(split, cfg.seq_len):
    start = docs[split.doc_index(np.asarray([t]))[0]]
    context = [int(ids[t - 1])] if t - 1 >= start else [model.boundary]
    total -= math.log2(model.prob(int(ids[t]), context))
  assert row["bits_per_byte"] == pytest.approx(total / target_bytes, rel=1e-12)
  # higher orders fit this repetitive corpus better than a unigram
  rows = ngram.baselines(cfg, tokenizer, [1, 3], say=lambda *_: None)
  assert rows[1]["bits_per_byte"] < rows[0]["bits_per_byte"]


def test_baseline_command(tmp_path, capsys):
  corpus = make_text_corpus(tmp_path / "corpus", files=40)
  assert cli.main(["tokenizer", "train", "--kind", "char", "--vocab-size", "64", "--input",
                   str(corpus / "doc000.txt"), "--out", str(tmp_path / "tok")]) == 0
  capsys.readouterr()
  argv = ["baseline", "ngram", "--corpus", f"text:{corpus}", "--tokenizer", str(tmp_path / "tok"),
          "--data-dir", str(tmp_path / "data"), "--order", "2", "--seq-len", "16"]
  assert cli.main(argv + ["--json"]) == 0
  import json  # noqa: PLC0415

  result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert [r["order"] for r in result["rows"]] == [1, 2]
  assert cli.main(argv[:-2] + ["--order", "9"]) == 2
  assert "--order must be an integer from 1 to 5" in capsys.readouterr().err
  with pytest.raises(ConfigError):
    ngram.KneserNey(2, 10, discount=1.5)


def test_counts_made_once_for_the_highest_order_serve_every_order():
  docs, vocab = random_docs(seed=3), 12
  raw = ngram.count_ngrams(docs, 5, vocab)
  for order in (1, 2, 3, 4):
    once = ngram.KneserNey(order, vocab, 0.6).from_counts(raw)
    own = ngram.KneserNey(order, vocab, 0.6).fit(docs)
    assert once.counts == own.counts and once.totals == own.totals and once.types == own.types
