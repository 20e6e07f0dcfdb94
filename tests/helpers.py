"""Shared test helpers: a small deterministic text corpus and small training configs."""

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
