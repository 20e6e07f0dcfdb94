"""The tokenizer protocol, its folder format, and atomic saving.

A tokenizer folder holds `tokenizer.json` ({"format": "llm_input.tokenizer", "kind": ...,
options and vocabulary}) plus kind-specific files; `load(dir)` reads the kind from it.
The kinds trained here share their special ids: pad=0, bos=1, eos=2, and unk=3 where a kind
has one; imported kinds (`pretrained.py`) keep their source's (GPT-2: only <|endoftext|> =
50256, used as both bos and eos; Llama 2: unk=0, bos=1, eos=2, no pad).
"""

from __future__ import annotations

import abc
import collections
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterable, Sequence

from llm_input.errors import TokenizerError
from llm_input.fileio import directory_fingerprint

FORMAT = "llm_input.tokenizer"
PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIAL_PIECES = ("<pad>", "<s>", "</s>", "<unk>")


def byte_length(text: str) -> int:
  """UTF-8 bytes of `text`: the denominator of bits per byte for every granularity."""
  return len(text.encode("utf-8"))


def most_frequent(units: Iterable[Iterable[str]], vocab_size: int, what: str) -> list[str]:
  """The `vocab_size - specials` most frequent units (characters or words) of the texts.

  Ties are broken by the unit itself, so the same corpus always gives the same vocabulary.
  """
  counts = collections.Counter()
  for text_units in units:
    counts.update(text_units)
  if not counts:
    raise TokenizerError(f"no {what} to train on: the input is empty")
  room = vocab_size - len(SPECIAL_PIECES)
  if room < 1:
    raise TokenizerError(f"--vocab-size {vocab_size} leaves no room for {what} after the "
                         f"{len(SPECIAL_PIECES)} special tokens; use at least {len(SPECIAL_PIECES) + 1}")
  return sorted(counts, key=lambda unit: (-counts[unit], unit))[:room]


class Tokenizer(abc.ABC):
  """One granularity. Subclasses also provide `train(texts, vocab_size, options)` and
  `from_folder(folder, meta)` classmethods; the registry in `tokenizers/__init__.py` calls them."""

  kind: str

  pad_id: int | None = PAD  # None for kinds without one (GPT-2, Llama)
  bos_id = BOS
  eos_id = EOS
  unk_id: int | None = UNK  # None for kinds that never produce an unknown (byte)
  num_special_ids = len(SPECIAL_PIECES)  # trained kinds: ids below this are specials, not text
  fixed_vocab_size: int | None = None  # set by kinds whose vocabulary does not depend on training

  @property
  @abc.abstractmethod
  def vocab_size(self) -> int:
    ...

  @abc.abstractmethod
  def encode(self, text: str) -> list[int]:
    ...

  @abc.abstractmethod
  def decode(self, ids: Iterable[int]) -> str:
    ...

  @abc.abstractmethod
  def id_to_piece(self, token_id: int) -> str:
    """A readable form of one token (`show` prints these)."""

  def encode_with_byte_counts(self, text: str) -> tuple[list[int], list[int]]:
    """Ids plus, for each token, the UTF-8 bytes of `text` it accounts for.

    Every byte of the text is attributed to exactly one token, so the counts of a document
    sum to `byte_length(text)` (word tokenizers too: whitespace goes to the next token; only a
    whitespace-only text, which has no word tokens, has no counts).
    Bits per byte divides the loss of the predicted tokens by the sum of their counts.
    """
    raise NotImplementedError

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    return [self.encode(t) for t in texts]

  def pieces(self, text: str) -> list[tuple[str, int]]:
    return [(self.id_to_piece(i), i) for i in self.encode(text)]

  def unknown_parts(self, text: str) -> list[str]:
    """The parts of `text` that become <unk> (characters or words outside the vocabulary),
    read back from each token's byte count; [] for kinds that never produce an unknown."""
    if self.unk_id is None:
      return []
    ids, counts = self.encode_with_byte_counts(text)
    data, at, out = text.encode("utf-8"), 0, []
    for token, count in zip(ids, counts):
      if token == self.unk_id:
        out.append(data[at:at + count].decode("utf-8", "replace").strip())
      at += count
    return out

  def word_ids(self, word: str) -> list[int]:
    """The ids `word` gets where it appears after a space in running text (the pieces that
    make up one word, for word vectors and word-level views)."""
    return self.encode(word)

  def prompt_ids(self, text: str, add_bos: bool) -> list[int]:
    """`text` as the model saw documents in training: after <s> when the run added it."""
    return ([self.bos_id] if add_bos else []) + self.encode(text)

  def byte_length(self, text: str) -> int:
    return byte_length(text)

  @property
  def special_ids(self) -> dict[str, int]:
    ids = {"pad": self.pad_id, "bos": self.bos_id, "eos": self.eos_id, "unk": self.unk_id}
    return {role: i for role, i in ids.items() if i is not None}

  @property
  def special_token_ids(self) -> tuple[int, ...]:
    """Ids that stand for no text (never a neighbour, never counted as vocabulary use)."""
    return tuple(range(self.num_special_ids))

  # -- saving ---------------------------------------------------------------------------
  def _metadata(self) -> dict:
    """Kind-specific entries of tokenizer.json."""
    return {}

  def _write_files(self, folder: pathlib.Path) -> None:
    """Kind-specific extra files."""

  def fingerprint(self) -> str:
    """sha256 of the files `save` writes: the tokenizer's one identity. The run folder records
    it (run.json) and the token store is keyed by it. Computed once per object: at its first
    `save`, or from a scratch save."""
    if getattr(self, "_fingerprint", None) is None:
      with tempfile.TemporaryDirectory() as tmp:
        self._write(pathlib.Path(tmp) / "t")
    return self._fingerprint

  def saved_folder(self) -> pathlib.Path | None:
    """The folder this object was last saved to, while it still holds exactly those files (the
    token store's worker processes load that copy instead of a new one); else None."""
    folder = getattr(self, "_saved_folder", None)
    if folder is None or not folder.is_dir() or directory_fingerprint(folder) != self._fingerprint:
      return None
    return folder

  def save(self, folder: str | os.PathLike) -> pathlib.Path:
    """Writes the tokenizer to `folder` atomically: a temporary sibling, then a rename."""
    folder = self._write(pathlib.Path(folder))
    self._saved_folder = folder
    return folder

  def _write(self, folder: pathlib.Path) -> pathlib.Path:
    """`save`'s files into `folder`; remembers their fingerprint."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; a tokenizer is as readable as its run
    try:
      meta = {"format": FORMAT, "kind": self.kind, "vocab_size": self.vocab_size,
              "special_ids": self.special_ids, **self._metadata()}
      (tmp / "tokenizer.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
      self._write_files(tmp)
      if folder.exists():
        if not (folder / "tokenizer.json").exists() and any(folder.iterdir()):
          raise TokenizerError(f"{folder} exists and is not a tokenizer folder; choose an empty "
                               "or new --out folder")
        shutil.rmtree(folder)
      os.replace(tmp, folder)
    finally:
      if tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True)
    self._fingerprint = directory_fingerprint(folder)
    return folder


def read_metadata(folder: str | os.PathLike) -> dict:
  """tokenizer.json of a folder written by `save`, checked; every error names the fix."""
  folder = pathlib.Path(folder)
  meta_file = folder / "tokenizer.json"
  if not folder.is_dir():
    raise TokenizerError(f"tokenizer folder {str(folder)!r} does not exist; train one with "
                         "`llm-input tokenizer train --kind ... --out DIR`")
  if not meta_file.is_file():
    raise TokenizerError(f"{str(folder)!r} is not a tokenizer folder (no tokenizer.json); "
                         "point --tokenizer at a folder written by `llm-input tokenizer train`")
  try:
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
  except (json.JSONDecodeError, UnicodeDecodeError) as err:
    raise TokenizerError(f"{meta_file} is corrupted ({err}); retrain the tokenizer") from err
  if not isinstance(meta, dict) or meta.get("format") != FORMAT:
    raise TokenizerError(f"{meta_file} was not written by llm_input (format "
                         f"{meta.get('format') if isinstance(meta, dict) else None!r}); "
                         "retrain with `llm-input tokenizer train`")
  return meta
