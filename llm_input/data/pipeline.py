"""The grain input pipeline: token store -> windows drawn from anywhere -> batch -> global arrays.

Every batch is a dict of (B, L) arrays:
  inputs, targets       token ids; targets[t] is the token after inputs[t]
  segment_ids           which document piece a position belongs to (0 = padding)
  positions             position inside that document piece (restarts at 0 for each piece)
  loss_mask             1 where targets[t] follows inputs[t] in the same document
  target_bytes          UTF-8 bytes of the text each target token stands for (0 where masked)

Each split is tokenized once into the token store (`store.py`: documents as [bos] ids [eos],
concatenated). A training example is a window of seq_len + 1 tokens on a fixed grid over that
stream (starts 0, L+1, 2(L+1), ...; the one token pair straddling two windows is not trained
on); every epoch visits every window once in a seeded permutation of its own, so the rows of a
batch come from all over the corpus. Evaluation reads the windows in order. Bits per byte =
sum of the losses of the masked targets / (ln 2 * sum of their target_bytes).
"""

from __future__ import annotations

import dataclasses
import os
import time

import grain
import numpy as np

from llm_input import config as config_lib
from llm_input.data import builders
from llm_input.data import store as store_lib
from llm_input.errors import DataError
from llm_input.tokenizers.base import Tokenizer

FEATURES = ("inputs", "targets", "segment_ids", "positions", "loss_mask", "target_bytes")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  corpus: str = "shakespeare"
  seq_len: int = 1024  # the defaults equal configs/base.py's (tests/test_config_cli.py checks)
  batch_size: int = 8  # global batch, over all processes
  seed: int = 0
  add_bos: bool = True
  add_eos: bool = True
  doc_split: str = "file"  # text: corpora: one document per file or per blank-line block
  data_dir: str | None = None
  validation_corpus: str = ""  # text: corpora: a glob of held-out files ("" = a share by hash)
  validation_percent: float = 5.0  # text: and shakespeare: share of documents held out by hash
  train_split: str = "train"  # the corpus's split names (TFDS datasets have their own)
  validation_split: str = "validation"
  tokenize_workers: int = 0  # processes that build the token store; 0 = every core

  @classmethod
  def from_config(cls, cfg) -> "PipelineConfig":
    """From the config's `data` section (and the run's `seed`, which orders the data)."""
    return config_lib.typed_section(cls, cfg.data, "data", seed=cfg.seed,
                                    data_dir=cfg.data.data_dir or None)

  def validate(self, data_parallel: int = 1, process_count: int = 1) -> None:
    if not isinstance(self.seq_len, int) or self.seq_len < 2:
      raise DataError(f"data.seq_len must be an integer >= 2 (got {self.seq_len!r}): a sequence "
                      "needs at least one input and one target")
    if not isinstance(self.batch_size, int) or self.batch_size < 1:
      raise DataError(f"data.batch_size must be a positive integer (got {self.batch_size!r})")
    if self.batch_size % data_parallel:
      raise DataError(f"data.batch_size={self.batch_size} is not divisible by the {data_parallel} "
                      f"data-parallel devices; use a multiple of {data_parallel}")
    if self.batch_size % process_count:
      raise DataError(f"data.batch_size={self.batch_size} is not divisible by the "
                      f"{process_count} processes")
    if not isinstance(self.tokenize_workers, int) or self.tokenize_workers < 0:
      raise DataError(f"data.tokenize_workers must be an integer >= 0 (0 = every core), got "
                      f"{self.tokenize_workers!r}")
    if self.validation_corpus and not self.validation_corpus.startswith("text:"):
      raise DataError(f"data.validation_corpus must look like text:GLOB, got {self.validation_corpus!r}")
    if not 0 < self.validation_percent < 100:
      raise DataError(f"data.validation_percent must be in (0, 100), got {self.validation_percent}")

  def split_name(self, split: str) -> str:
    """The corpus's own name of `split` ("train" or "validation")."""
    return {"train": self.train_split, "validation": self.validation_split}.get(split, split)

  def builder(self):
    return builders.prepare(self.corpus, self.data_dir, self.doc_split, self.validation_corpus,
                            self.validation_percent)


def documents(cfg: PipelineConfig, split: str):
  """The prepared corpus split ("train", "validation" or the corpus's own name) as a grain
  MapDataset of UTF-8 strings."""
  builder = cfg.builder()
  split = cfg.split_name(split)
  splits = builder.info.splits
  if split not in splits:
    raise DataError(f"{cfg.corpus} has no {split!r} split (it has {', '.join(splits)})")
  if splits[split].num_examples == 0:
    raise DataError(f"the {split} split of {cfg.corpus} is empty")
  source = builder.as_data_source(split)
  key = builders.text_key(builder)
  return grain.MapDataset.source(source).map(lambda example: _as_text(example[key]))


def _as_text(value) -> str:
  if isinstance(value, bytes):
    try:
      return value.decode("utf-8")
    except UnicodeDecodeError as err:
      raise DataError(f"a document is not UTF-8 (byte offset {err.start}); re-prepare the "
                      "corpus from UTF-8 text") from None
  return str(value)


def open_store(cfg: PipelineConfig, tokenizer: Tokenizer, say=print) -> store_lib.TokenStore:
  """The token store of this corpus and tokenizer, built (in parallel) the first time."""
  builder = cfg.builder()
  splits = (cfg.split_name("train"), cfg.split_name("validation"))
  return store_lib.ensure(builder, tokenizer, splits, add_bos=cfg.add_bos, add_eos=cfg.add_eos,
                          workers=cfg.tokenize_workers or os.cpu_count() or 1, say=say,
                          documents=lambda split: list(documents(cfg, split)))


def windows(split: store_lib.Split, starts: np.ndarray, length: int) -> dict[str, np.ndarray]:
  """The examples at window `starts` (each `length` = seq_len + 1 tokens of the split's stream;
  a window running past the end is padded with segment 0)."""
  offsets = np.arange(length)
  index_RxT = starts[:, None] + offsets[None, :]
  valid = index_RxT < split.num_tokens
  index = np.minimum(index_RxT, split.num_tokens - 1)
  tokens = np.where(valid, np.asarray(split.ids[index.ravel()]).reshape(index.shape), 0).astype(np.int32)
  nbytes = np.where(valid, np.asarray(split.nbytes[index.ravel()]).reshape(index.shape), 0).astype(np.int32)
  doc = split.doc_index(index)
  # segments number the document pieces of a window 1, 2, ...; positions restart in each piece
  segments = np.where(valid, doc - doc[:, :1] + 1, 0).astype(np.int32)
  piece_start = np.maximum(split.docs[doc], starts[:, None])
  positions = np.where(valid, index - piece_start, 0).astype(np.int32)
  loss_mask = (segments[:, 1:] == segments[:, :-1]) & (segments[:, 1:] > 0)
  return {
      "inputs": tokens[:, :-1],
      "targets": tokens[:, 1:],
      "segment_ids": segments[:, :-1],
      "positions": positions[:, :-1],
      "loss_mask": loss_mask.astype(np.int32),
      "target_bytes": np.where(loss_mask, nbytes[:, 1:], 0).astype(np.int32),
  }


def process_rows(global_batch: int, process_index: int, process_count: int) -> slice:
  """The rows of every global batch that one process reads (contiguous, as
  make_array_from_process_local_data lays them out)."""
  local = global_batch // process_count
  return slice(process_index * local, (process_index + 1) * local)


class WindowSampler:
  """Global batch k = positions [kB, (k+1)B) of the endless stream of per-epoch permutations of
  the window grid, so each epoch visits every window exactly once (a batch may straddle two
  epochs) and the rows of a batch come from anywhere in the corpus."""

  def __init__(self, split: store_lib.Split, seq_len: int, batch_size: int, seed: int):
    self.split, self.length, self.batch_size, self.seed = split, seq_len + 1, batch_size, seed
    self.num_windows = split.num_tokens // self.length
    if self.num_windows < batch_size:
      raise DataError(f"the training split has {split.num_tokens:,} tokens: {self.num_windows} "
                      f"windows of seq_len + 1 = {self.length}, fewer than data.batch_size="
                      f"{batch_size}; use a smaller seq_len or batch, or more text")
    self._permutations: dict[int, np.ndarray] = {}

  def permutation(self, epoch: int) -> np.ndarray:
    if epoch not in self._permutations:
      if len(self._permutations) > 2:
        self._permutations.pop(min(self._permutations))
      self._permutations[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.num_windows)
    return self._permutations[epoch]

  def window_indices(self, batch_index: int) -> np.ndarray:
    """Window numbers (into the grid) of global batch `batch_index`, in row order."""
    position = batch_index * self.batch_size + np.arange(self.batch_size)
    epoch, within = np.divmod(position, self.num_windows)
    out = np.empty(self.batch_size, np.int64)
    for e in np.unique(epoch):
      out[epoch == e] = self.permutation(int(e))[within[epoch == e]]
    return out

  def batch(self, batch_index: int, rows: slice) -> dict[str, np.ndarray]:
    return windows(self.split, self.window_indices(batch_index)[rows] * self.length, self.length)


def train_dataset(cfg: PipelineConfig, tokenizer: Tokenizer, *, process_index: int = 0,
                  process_count: int = 1, data_parallel: int = 1, say=print,
                  store: store_lib.TokenStore | None = None) -> grain.IterDataset:
  """Endless training batches for this process: (batch_size / process_count, seq_len) arrays.

  Its iterator's state is one integer (the next batch), saved in every checkpoint. `store`: the
  token store a caller has opened already for this `cfg`, validated (the training loop), so it
  is neither checked nor reopened here."""
  if store is None:
    cfg.validate(data_parallel, process_count)
    store = open_store(cfg, tokenizer, say)
  sampler = WindowSampler(store.split(cfg.split_name("train")), cfg.seq_len, cfg.batch_size, cfg.seed)
  rows = process_rows(cfg.batch_size, process_index, process_count)
  batches = grain.MapDataset.range(0, 1 << 62).map(lambda k: sampler.batch(k, rows))
  # One reader thread and a short prefetch: the batch is a memory-mapped slice, and the
  # cores belong to the train step.
  return batches.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))


def eval_batches(cfg: PipelineConfig, tokenizer: Tokenizer, *, split: str = "validation",
                 process_index: int = 0, process_count: int = 1, data_parallel: int = 1, say=print,
                 store: store_lib.TokenStore | None = None):
  """The whole split once, in a fixed order; the last batch is padded with masked rows.
  `store`: as in `train_dataset` (the loop evaluates from the store it opened once)."""
  if store is None:
    cfg.validate(data_parallel, process_count)
    store = open_store(cfg, tokenizer, say)
  data = store.split(cfg.split_name(split))
  length = cfg.seq_len + 1
  starts = np.arange(0, data.num_tokens, length)  # the last window may be partial
  rows = process_rows(cfg.batch_size, process_index, process_count)
  for first in range(0, len(starts), cfg.batch_size):
    chosen = starts[first:first + cfg.batch_size]
    batch = windows(data, chosen, length)
    if len(chosen) < cfg.batch_size:
      pad = cfg.batch_size - len(chosen)
      batch = {k: np.pad(v, ((0, pad), (0, 0))) for k, v in batch.items()}
    yield {k: v[rows] for k, v in batch.items()}


def global_batch(local_batch: dict[str, np.ndarray], sharding) -> dict:
  """Assembles each process's rows into global jax.Arrays laid out by `sharding`."""
  import jax  # noqa: PLC0415 (the data tools should not need to import jax)

  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local_batch.items()}


def benchmark(cfg: PipelineConfig, tokenizer: Tokenizer, seconds: float = 10.0,
              warmup_batches: int = 2, say=print) -> dict:
  """Training-batch read throughput from the store (tokens/s over about `seconds`); the store
  is built first if missing (its tokenization figures are in the store's meta.json)."""
  iterator = iter(train_dataset(cfg, tokenizer, say=say))
  for _ in range(warmup_batches):
    next(iterator)
  tokens = batches = 0
  start = time.perf_counter()
  while time.perf_counter() - start < seconds:
    batch = next(iterator)
    tokens += int(batch["inputs"].size)
    batches += 1
  elapsed = time.perf_counter() - start
  return {"tokens_per_s": tokens / elapsed, "batches": batches, "seconds": elapsed,
          "batch_size": cfg.batch_size, "seq_len": cfg.seq_len}


def tokenize_benchmark(cfg: PipelineConfig, tokenizer: Tokenizer, tokenizer_dir, workers: int,
                       num_bytes: int = 16 << 20) -> dict:
  """Tokenization throughput (MB/s of UTF-8 text, worker start-up included) with `workers`
  processes on `num_bytes` of the training split (documents repeated if it is smaller),
  without writing anything."""
  texts, size = [], 0
  split = list(documents(cfg, "train"))
  while size < num_bytes:
    for text in split:
      texts.append(text)
      size += len(text.encode("utf-8"))
      if size >= num_bytes:
        break
  start = time.perf_counter()
  store_lib.tokenize_documents(tokenizer, tokenizer_dir, texts, workers, progress=False)
  seconds = time.perf_counter() - start
  return {"workers": workers, "mb_per_s": size / 1e6 / seconds, "bytes": size, "seconds": seconds}
