"""The grain input pipeline: shuffle documents -> tokenize -> pack -> batch -> global arrays.

Every batch is a dict of (B, L) arrays:
  inputs, targets       token ids; targets[t] is the token after inputs[t]
  segment_ids           which packed document a position belongs to (0 = padding)
  positions             position inside that document piece (restarts at 0 for each piece)
  loss_mask             1 where targets[t] follows inputs[t] in the same document
  target_bytes          UTF-8 bytes of the text each target token stands for (0 where masked)

Packing concatenates documents ([bos] ids [eos]) and cuts sequences of seq_len + 1 tokens;
a document may continue in the next sequence (its piece restarts at position 0), and the one
token pair that straddles two sequences is not trained on. Bits per byte = sum of the losses
of the masked targets / (ln 2 * sum of their target_bytes).
"""

from __future__ import annotations

import dataclasses
import time

import grain
import numpy as np

from llm_input.data import builders
from llm_input.errors import DataError
from llm_input.tokenizers.base import Tokenizer

FEATURES = ("inputs", "targets", "segment_ids", "positions", "loss_mask", "target_bytes")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  corpus: str = "shakespeare"
  seq_len: int = 256
  batch_size: int = 8  # global batch, over all processes
  seed: int = 0
  add_bos: bool = True
  add_eos: bool = True
  doc_split: str = "file"  # text: corpora: one document per file or per blank-line block
  data_dir: str | None = None

  @classmethod
  def from_config(cls, cfg) -> "PipelineConfig":
    """From the config's `data` section (and the run's `seed`, which orders the data)."""
    d = cfg.data
    return cls(corpus=d.corpus, seq_len=d.seq_len, batch_size=d.batch_size, seed=cfg.seed,
               add_bos=d.add_bos, add_eos=d.add_eos, doc_split=d.doc_split,
               data_dir=d.data_dir or None)

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


def documents(cfg: PipelineConfig, split: str):
  """The prepared corpus split as a grain MapDataset of UTF-8 strings."""
  builder = builders.prepare(cfg.corpus, cfg.data_dir, cfg.doc_split)
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


class Tokenize(grain.transforms.Map):
  def __init__(self, tokenizer: Tokenizer, add_bos: bool, add_eos: bool):
    self.tokenizer, self.add_bos, self.add_eos = tokenizer, add_bos, add_eos

  def map(self, text: str) -> dict[str, np.ndarray]:
    ids, counts = self.tokenizer.encode_with_byte_counts(text)
    if self.add_bos:
      ids, counts = [self.tokenizer.bos_id, *ids], [0, *counts]
    if self.add_eos:
      ids, counts = [*ids, self.tokenizer.eos_id], [*counts, 0]
    return {"tokens": np.asarray(ids, np.int32), "nbytes": np.asarray(counts, np.int32)}


class PackIterDataset(grain.IterDataset):
  """Concatenate-then-split packing over a MapDataset of tokenised documents.

  Emits runs of `length` tokens with segment ids (1, 2, ... per document piece, 0 for the
  padding after the last document of a finite dataset) and positions that restart at 0 for
  each piece. Its iterator state is two integers (the document index and the offset inside
  it), so saving and restoring cost nothing whatever the document length. grain's
  ConcatThenSplitIterDataset does the same job but re-copies a long document's remainder on
  every split (about 4x slower on Shakespeare's plays as single documents) and restores by
  replaying.
  """

  def __init__(self, parent: grain.MapDataset, length: int):
    super().__init__(parent)
    self._length = length

  def __iter__(self):
    return _PackIterator(self._parent, self._length)


class _PackIterator(grain.DatasetIterator):
  def __init__(self, documents: grain.MapDataset, length: int):
    super().__init__()
    self._documents = documents
    self._length = length
    self._count = len(documents)
    self._index = 0  # next document to read
    self._offset = 0  # tokens of document `_index` already emitted
    self._current = None  # (index, tokens, nbytes) cache of the document being split

  def _document(self, index: int):
    if self._current is None or self._current[0] != index:
      doc = self._documents[index]
      self._current = (index, doc["tokens"], doc["nbytes"])
    return self._current[1], self._current[2]

  def __next__(self) -> dict[str, np.ndarray]:
    if self._index >= self._count:
      raise StopIteration
    length = self._length
    tokens = np.zeros(length, np.int32)
    nbytes = np.zeros(length, np.int32)
    segments = np.zeros(length, np.int32)
    positions = np.zeros(length, np.int32)
    filled, segment = 0, 0
    while filled < length and self._index < self._count:
      doc_tokens, doc_bytes = self._document(self._index)
      take = min(length - filled, len(doc_tokens) - self._offset)
      if take > 0:
        segment += 1
        end = filled + take
        tokens[filled:end] = doc_tokens[self._offset:self._offset + take]
        nbytes[filled:end] = doc_bytes[self._offset:self._offset + take]
        segments[filled:end] = segment
        positions[filled:end] = np.arange(take, dtype=np.int32)
        filled = end
        self._offset += take
      if self._offset >= len(doc_tokens):
        self._index += 1
        self._offset = 0
    return {"tokens": tokens, "nbytes": nbytes, "segment_ids": segments, "positions": positions}

  def get_state(self) -> dict:
    return {"document_index": self._index, "offset": self._offset}

  def set_state(self, state: dict) -> None:
    self._index = int(state["document_index"])
    self._offset = int(state["offset"])


def to_example(packed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """A packed run of seq_len + 1 tokens -> inputs/targets and their masks."""
  tokens, segments = packed["tokens"], packed["segment_ids"]
  loss_mask = (segments[1:] == segments[:-1]) & (segments[1:] > 0)
  return {
      "inputs": tokens[:-1],
      "targets": tokens[1:],
      "segment_ids": segments[:-1],
      "positions": packed["positions"][:-1],
      "loss_mask": loss_mask.astype(np.int32),
      "target_bytes": np.where(loss_mask, packed["nbytes"][1:], 0).astype(np.int32),
  }


def _pack(documents: grain.MapDataset, seq_len: int) -> grain.IterDataset:
  return PackIterDataset(documents, seq_len + 1).map(to_example)


def _process_share(dataset: grain.MapDataset, process_index: int, process_count: int):
  if len(dataset) < process_count:
    raise DataError(f"{len(dataset)} documents cannot be shared by {process_count} processes")
  return dataset[process_index::process_count]


def train_dataset(cfg: PipelineConfig, tokenizer: Tokenizer, *, process_index: int = 0,
                  process_count: int = 1, data_parallel: int = 1) -> grain.IterDataset:
  """Endless training batches for this process: (batch_size / process_count, seq_len) arrays."""
  cfg.validate(data_parallel, process_count)
  docs = _process_share(documents(cfg, "train"), process_index, process_count)
  docs = docs.shuffle(seed=cfg.seed).repeat()  # reshuffled each epoch
  tokens = docs.map(Tokenize(tokenizer, cfg.add_bos, cfg.add_eos))
  return _pack(tokens, cfg.seq_len).batch(cfg.batch_size // process_count, drop_remainder=True)


def eval_batches(cfg: PipelineConfig, tokenizer: Tokenizer, *, split: str = "validation",
                 process_index: int = 0, process_count: int = 1, data_parallel: int = 1):
  """The whole split once, in a fixed order; the last batch is padded with masked rows."""
  cfg.validate(data_parallel, process_count)
  docs = _process_share(documents(cfg, split), process_index, process_count)
  tokens = docs.map(Tokenize(tokenizer, cfg.add_bos, cfg.add_eos))
  local_batch = cfg.batch_size // process_count
  for batch in _pack(tokens, cfg.seq_len).batch(local_batch):
    rows = batch["inputs"].shape[0]
    if rows < local_batch:
      batch = {k: np.pad(v, ((0, local_batch - rows), (0, 0))) for k, v in batch.items()}
    yield batch


def global_batch(local_batch: dict[str, np.ndarray], sharding) -> dict:
  """Assembles each process's rows into global jax.Arrays laid out by `sharding`."""
  import jax  # noqa: PLC0415 (the data tools should not need to import jax)

  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local_batch.items()}


def benchmark(cfg: PipelineConfig, tokenizer: Tokenizer, seconds: float = 10.0,
              warmup_batches: int = 2) -> dict:
  """Training-pipeline throughput: target tokens per second over about `seconds`."""
  iterator = iter(train_dataset(cfg, tokenizer))
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
