"""Shared test helpers: a small deterministic text corpus, small training configs, numpy
references for the position encodings, and a call recorder."""

import pathlib

import numpy as np

from llm_input import config as config_lib

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORDS = ("the bank by the river was quiet hello world a king and a queen cat dog sat on mat "
         "tokens become vectors attention looks back at earlier words").split()


def make_text_corpus(folder: pathlib.Path, files: int = 40, seed: int = 0) -> pathlib.Path:
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  for i in range(files):
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(3, 12))) for _ in range(rng.integers(2, 30))]
    (folder / f"doc{i:03d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
  return folder


def small_overrides(corpus: pathlib.Path, data_dir: pathlib.Path, *extra: str) -> list[str]:
  """A 2-layer, 32-wide char model on the test corpus; extra overrides as `a.b=value`."""
  return [
      f"data.corpus=text:{corpus}", f"data.data_dir={data_dir}", "data.seq_len=32",
      "data.batch_size=8", "tokenizer.kind=char", "tokenizer.vocab_size=64",
      "model.d_model=32", "model.num_layers=2", "model.num_heads=4", "model.max_len=32",
      "train.steps=20", "train.eval_every=20", "train.log_every=1", "train.eval_batches=2",
      "schedule.warmup_steps=2", "optimizer.learning_rate=0.01", "checkpoint.every_steps=5",
      "checkpoint.every_minutes=0.0", "logging.progress_bar=False", "logging.tensorboard=False",
      "sample.max_new_tokens=8", *extra]


def small_config(corpus: pathlib.Path, data_dir: pathlib.Path, *extra: str):
  return config_lib.load(str(ROOT / "configs/tiny.py"), small_overrides(corpus, data_dir, *extra))


def numpy_rope(x, positions, base):
  """RoFormer in numpy: rotate pairs (i, i + d/2) of the last axis by position * base^(-2i/d)."""
  half = x.shape[-1] // 2
  angle = positions[:, :, None, None] * base ** (-2.0 * np.arange(half) / x.shape[-1])
  a, z = x[..., :half], x[..., half:]
  return np.concatenate([a * np.cos(angle) - z * np.sin(angle), z * np.cos(angle) + a * np.sin(angle)], -1)


def paper_sinusoidal(positions, d):
  """Vaswani et al. in numpy: PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(same); an odd
  last column is zero."""
  pe = np.zeros((*positions.shape, d))
  for i in range(d // 2):
    angle = positions / 10000.0 ** (2 * i / d)
    pe[..., 2 * i], pe[..., 2 * i + 1] = np.sin(angle), np.cos(angle)
  return pe


def spy(monkeypatch, module, name, record):
  """Replaces `module.name` for this test by a wrapper that calls `record(*args)`, then the
  original."""
  real = getattr(module, name)

  def wrapper(*args):
    record(*args)
    return real(*args)

  monkeypatch.setattr(module, name, wrapper)


UNICODE_TEXT = ("Café crème brûlée, naïve façade.\n東京は雨です。 日本語のテキスト\n"
                "emoji 🙂👍🏽 and maths ∑x² ≠ ∞; Ελληνικά; Ünïcödé words\n")


def trained_on_unicode(kind: str):
  """A tokenizer of `kind` trained on UNICODE_TEXT and some ASCII (accents, CJK, emoji)."""
  from llm_input import tokenizers  # noqa: PLC0415

  texts = [UNICODE_TEXT * 3, "plain ascii words and more words\n" * 5]
  size = {"char": 200, "byte": 259, "word": 200, "unigram": 325}.get(kind, 420)
  return tokenizers.train(kind, size, texts)
