"""The token store: each corpus split tokenized once per tokenizer, then read by index.

Layout, under the prepared corpus's folder (so it follows the corpus version):

    token_store/<fingerprint>/
      meta.json          fingerprint, tokenizer kind and size, dtype, counts, bos/eos, and
                         each array file's size and crc32 (checked on open, with every id
                         below the vocabulary: a damaged store is rebuilt, saying why)
      tokenizer/         the tokenizer that wrote it
      <split>.ids.npy    every document's ids, concatenated (with <s>/</s> as configured);
                         the smallest unsigned dtype that holds the vocabulary
      <split>.nbytes.npy UTF-8 bytes of the text each token stands for (0 for <s>/</s>)
      <split>.docs.npy   document boundaries: doc i is ids[docs[i]:docs[i + 1]]

Files are plain `.npy`, opened with memory mapping. The fingerprint hashes the tokenizer's
files, the corpus builder's name, version and config, and the bos/eos setting, so a store is
never reused for anything else. It is written into a temporary sibling and renamed whole, so
a crash or a full disk never leaves a store that looks complete. Tokenization runs in worker
processes over shards of documents.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import fcntl
import hashlib
import json
import multiprocessing
import os
import pathlib
import shutil
import sys
import time
import uuid
import zlib

import numpy as np

from llm_input.errors import DataError

STORE_DIR = "token_store"
FORMAT = "llm_input.token_store/1"


def ids_dtype(vocab_size: int) -> np.dtype:
  """The smallest unsigned dtype whose range holds every id of the vocabulary."""
  for dtype in (np.uint8, np.uint16, np.uint32):
    if vocab_size - 1 <= np.iinfo(dtype).max:
      return np.dtype(dtype)
  raise DataError(f"a vocabulary of {vocab_size:,} ids does not fit 32 bits")


@dataclasses.dataclass
class Split:
  """One split of a store, memory-mapped."""

  ids: np.ndarray
  nbytes: np.ndarray
  docs: np.ndarray  # document starts plus the end: len = documents + 1

  @property
  def num_tokens(self) -> int:
    return int(self.ids.shape[0])

  def doc_index(self, positions: np.ndarray) -> np.ndarray:
    return np.searchsorted(self.docs, positions, side="right") - 1


class TokenStore:
  def __init__(self, folder: pathlib.Path):
    self.folder = pathlib.Path(folder)
    self.meta = json.loads((self.folder / "meta.json").read_text())
    self._splits: dict[str, Split] = {}

  def split(self, name: str) -> Split:
    if name not in self._splits:
      if name not in self.meta["splits"]:
        raise DataError(f"the token store has no {name!r} split (it has {', '.join(self.meta['splits'])})")
      load = lambda kind: np.load(self.folder / f"{name}.{kind}.npy", mmap_mode="r")  # noqa: E731
      self._splits[name] = Split(load("ids"), load("nbytes"), np.asarray(load("docs")))
    return self._splits[name]


# -- building ----------------------------------------------------------------------------------

_WORKER = {}


def _init_worker(tokenizer_dir: str) -> None:
  from llm_input import tokenizers  # noqa: PLC0415

  _WORKER["tokenizer"] = tokenizers.load(tokenizer_dir)


def _encode_shard(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """A shard's ids and byte counts as two flat int32 arrays plus document lengths: three
  buffers to send back instead of two small arrays per document."""
  docs = _encode(_WORKER["tokenizer"], texts)
  lengths = np.asarray([len(ids) for ids, _ in docs], np.int64)
  if not docs:
    return np.zeros(0, np.int32), np.zeros(0, np.int32), lengths
  return (np.concatenate([ids for ids, _ in docs]).astype(np.int32),
          np.concatenate([c for _, c in docs]).astype(np.int32), lengths)


def _split_shard(ids, counts, lengths) -> list[tuple[np.ndarray, np.ndarray]]:
  bounds = np.cumsum(lengths)[:-1]
  return list(zip(np.split(ids, bounds), np.split(counts, bounds)))


def _encode(tokenizer, texts) -> list[tuple[np.ndarray, np.ndarray]]:
  out = []
  for text in texts:
    ids, counts = tokenizer.encode_with_byte_counts(text)
    out.append((np.asarray(ids, np.int64), np.asarray(counts, np.int64)))
  return out


def _shards(texts: list[str], target_bytes: int) -> list[list[str]]:
  shards, current, size = [], [], 0
  for text in texts:
    current.append(text)
    size += len(text)
    if size >= target_bytes:
      shards.append(current)
      current, size = [], 0
  if current:
    shards.append(current)
  return shards


def tokenize_documents(tokenizer, tokenizer_dir: pathlib.Path, texts: list[str], workers: int,
                       progress: bool = True, label: str = "") -> list[tuple[np.ndarray, np.ndarray]]:
  """(ids, byte counts) of every text, in order, tokenized by `workers` processes."""
  total = sum(len(t) for t in texts)
  bar = None
  if progress and sys.stderr.isatty():  # a log file or a pipe gets the one summary line instead
    from tqdm import tqdm  # noqa: PLC0415

    bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"tokenize {label}".strip(),
               dynamic_ncols=True, file=sys.stderr)
  try:
    # Shards of at least 64 KiB: text that makes one shard is encoded here, not by a pool whose
    # start (a forkserver importing the tokenizers) takes longer than encoding it.
    shards = _shards(texts, max(1 << 16, total // (workers * 8) + 1))
    if workers <= 1 or len(shards) < 2:
      out = _encode(tokenizer, texts)
      if bar is not None:
        bar.update(total)
      return out
    # fork is cheapest, but a parent that has started JAX holds threads that fork would copy
    # half-alive: then a fresh forkserver (tokenizer modules preloaded) forks the workers.
    if "jax" in sys.modules:
      context = multiprocessing.get_context("forkserver")
      context.set_forkserver_preload(["llm_input.tokenizers"])
    else:
      context = multiprocessing.get_context("fork")
    results: list = [None] * len(shards)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                                initargs=(str(tokenizer_dir),)) as pool:
      futures = {pool.submit(_encode_shard, shard): i for i, shard in enumerate(shards)}
      for future in concurrent.futures.as_completed(futures):
        i = futures[future]
        results[i] = future.result()
        if bar is not None:
          bar.update(sum(len(t) for t in shards[i]))
    return [doc for shard in results for doc in _split_shard(*shard)]
  finally:
    if bar is not None:
      bar.close()


def _concatenate(docs, bos: int | None, eos: int | None, vocab_size: int):
  pieces_ids, pieces_bytes, lengths = [], [], []
  head = np.asarray([bos] if bos is not None else [], np.int64)
  tail = np.asarray([eos] if eos is not None else [], np.int64)
  for ids, counts in docs:
    pieces_ids += [head, ids, tail]
    pieces_bytes += [np.zeros(len(head), np.int64), counts, np.zeros(len(tail), np.int64)]
    lengths.append(len(head) + len(ids) + len(tail))
  ids = np.concatenate(pieces_ids) if pieces_ids else np.zeros(0, np.int64)
  nbytes = np.concatenate(pieces_bytes) if pieces_bytes else np.zeros(0, np.int64)
  starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
  count_dtype = ids_dtype(int(nbytes.max(initial=0)) + 1)
  return ids.astype(ids_dtype(vocab_size)), nbytes.astype(count_dtype), starts


@dataclasses.dataclass(frozen=True)
class StoreKey:
  corpus_dir: pathlib.Path  # the prepared corpus's folder
  corpus_id: str  # builder name, version and config
  tokenizer_sha256: str
  add_bos: bool
  add_eos: bool

  @property
  def fingerprint(self) -> str:
    text = json.dumps([FORMAT, self.corpus_id, self.tokenizer_sha256, self.add_bos, self.add_eos])
    return hashlib.sha256(text.encode()).hexdigest()[:24]

  @property
  def folder(self) -> pathlib.Path:
    return self.corpus_dir / STORE_DIR / self.fingerprint


def key_for(builder, tokenizer, add_bos: bool, add_eos: bool) -> StoreKey:
  config = builder.builder_config.name if builder.builder_config else ""
  corpus_id = f"{builder.name}:{builder.version}:{config}"
  return StoreKey(pathlib.Path(builder.data_dir), corpus_id, tokenizer.fingerprint(),
                  add_bos, add_eos)


def _valid(key: StoreKey) -> str:
  """'' when the folder holds a complete store for exactly this key, else why not."""
  meta_path = key.folder / "meta.json"
  if not meta_path.exists():
    return "missing"
  try:
    meta = json.loads(meta_path.read_text())
  except (OSError, ValueError):
    return "its meta.json is unreadable"
  if meta.get("fingerprint") != key.fingerprint or meta.get("format") != FORMAT:
    return (f"its fingerprint {str(meta.get('fingerprint'))[:12]} is not this tokenizer and corpus's "
            f"{key.fingerprint[:12]}")
  missing = [f"{s}.{k}.npy" for s in meta.get("splits", {}) for k in KINDS
             if not (key.folder / f"{s}.{k}.npy").exists()]
  if missing:
    return f"files are missing ({', '.join(missing)})"
  # Checked once per process while the files are untouched (a run reopens its store at
  # every evaluation; a multi-GB store would be read in full each time).
  stamp = (str(key.folder), *((p.name, st.st_size, st.st_mtime_ns)
                              for p in sorted(key.folder.glob("*.npy")) for st in [p.stat()]),
           meta_path.stat().st_mtime_ns)
  if stamp in _VERIFIED:
    return ""
  problem = _damage(key.folder, meta)
  if not problem:
    _VERIFIED.add(stamp)
  return problem


_VERIFIED: set = set()


KINDS = ("ids", "nbytes", "docs")


def _file_record(path: pathlib.Path) -> dict:
  """What meta.json records of one array file: its size and a crc32 of its bytes."""
  crc = 0
  with open(path, "rb") as f:
    while chunk := f.read(1 << 24):
      crc = zlib.crc32(chunk, crc)
  return {"bytes": path.stat().st_size, "crc32": f"{crc:08x}"}


def _damage(folder: pathlib.Path, meta: dict) -> str:
  """'' when every array file has the size and checksum meta.json recorded and every id is
  inside the vocabulary; else what is wrong."""
  files = meta.get("files")
  if not files:
    return "it was written before stores recorded their files' sizes and checksums"
  for split in meta["splits"]:
    for kind in KINDS:
      name = f"{split}.{kind}.npy"
      want, path = files.get(name), folder / name
      if want is None:
        return f"meta.json records nothing of {name}"
      size = path.stat().st_size
      if size != want["bytes"]:
        return f"{name} is {size:,} bytes, not the {want['bytes']:,} written (truncated?)"
      if _file_record(path)["crc32"] != want["crc32"]:
        return f"{name} does not match its checksum (the file was changed or damaged)"
    ids = np.load(folder / f"{split}.ids.npy", mmap_mode="r")
    top = int(ids.max(initial=0)) if ids.size else 0
    if top >= meta["vocab_size"]:
      return f"{split}.ids.npy holds id {top:,}, outside the vocabulary of {meta['vocab_size']:,}"
  return ""


def ensure(builder, tokenizer, splits: tuple[str, ...], *, add_bos: bool, add_eos: bool,
           documents, workers: int | None = None, say=print) -> TokenStore:
  """The store of `builder`'s corpus for `tokenizer` with these `splits`, built when missing
  or not matching. `documents(split)` returns a split's texts (read only when building)."""
  key = key_for(builder, tokenizer, add_bos, add_eos)
  root = key.folder.parent
  root.mkdir(parents=True, exist_ok=True)
  with open(root / ".lock", "a+") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time (other processes wait here)
    problem = _valid(key)
    if not problem:
      return TokenStore(key.folder)
    if problem != "missing":
      say(f"token store {key.folder} is not usable ({problem}); rebuilding it")
    others = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
              and p.name != key.fingerprint]
    if others and problem == "missing":
      say(f"token store: building for this tokenizer ({key.tokenizer_sha256[:12]}); the "
          f"{len(others)} other store(s) here are for other tokenizers or settings")
    for stale in root.glob(".tmp-*"):  # left by a build that died (we hold the lock)
      shutil.rmtree(stale, ignore_errors=True)
    _build(key, tokenizer, splits, documents, add_bos, add_eos, workers or os.cpu_count() or 1, say)
    return TokenStore(key.folder)


def _build(key: StoreKey, tokenizer, splits, documents, add_bos, add_eos, workers, say) -> None:
  tmp = key.folder.parent / f".tmp-{uuid.uuid4().hex}"
  tmp.mkdir()
  try:
    tokenizer_dir = tokenizer.saved_folder() or tokenizer.save(tmp / "tokenizer")
    meta = {"format": FORMAT, "fingerprint": key.fingerprint, "corpus": key.corpus_id,
            "tokenizer_sha256": key.tokenizer_sha256, "tokenizer_kind": tokenizer.kind,
            "vocab_size": tokenizer.vocab_size, "add_bos": add_bos, "add_eos": add_eos, "splits": {}}
    for split in splits:
      texts = list(documents(split))
      start = time.perf_counter()
      docs = tokenize_documents(tokenizer, tokenizer_dir, texts, workers, label=split)
      seconds = time.perf_counter() - start
      ids, nbytes, starts = _concatenate(docs, tokenizer.bos_id if add_bos else None,
                                         tokenizer.eos_id if add_eos else None, tokenizer.vocab_size)
      for kind, array in (("ids", ids), ("nbytes", nbytes), ("docs", starts)):
        np.save(tmp / f"{split}.{kind}.npy", array)
      text_bytes = int(nbytes.sum())
      meta["splits"][split] = {"documents": len(texts), "tokens": int(ids.size), "bytes": text_bytes,
                               "dtype": str(ids.dtype), "tokenize_s": seconds, "workers": workers}
      say(f"token store: {split}: {len(texts):,} documents, {ids.size:,} tokens ({ids.dtype}) in "
          f"{seconds:.1f} s ({text_bytes / 1e6 / max(seconds, 1e-9):.1f} MB/s on {workers} workers)")
    meta["files"] = {f"{split}.{kind}.npy": _file_record(tmp / f"{split}.{kind}.npy")
                     for split in splits for kind in KINDS}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    if key.folder.exists():
      shutil.rmtree(key.folder)
    os.replace(tmp, key.folder)
  except OSError as err:
    shutil.rmtree(tmp, ignore_errors=True)
    if err.errno == 28:
      raise DataError(f"no space left on device while writing the token store under "
                      f"{key.folder.parent}; free space and rerun the same command") from None
    raise
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
