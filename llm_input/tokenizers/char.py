"""Character and byte tokenizers: the finest granularities.

`char`: one id per Unicode character seen in training (the rarest dropped past the vocabulary
cap), `<unk>` for the rest. `byte`: the 256 UTF-8 byte values, so nothing is ever unknown.
"Hello" is 5 tokens in both.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

import numpy as np

from llm_input.tokenizers.base import SPECIAL_PIECES, UNK, Tokenizer, TokenizerError


def utf8_lengths(text: str) -> np.ndarray:
  """UTF-8 length of each character of `text`, vectorised."""
  code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
  return (1 + (code_points >= 0x80) + (code_points >= 0x800) + (code_points >= 0x10000)).astype(np.int32)


class CharTokenizer(Tokenizer):
  kind = "char"

  def __init__(self, chars: list[str]):
    self.chars = list(chars)
    self._offset = len(SPECIAL_PIECES)
    self._ids = {c: i + self._offset for i, c in enumerate(self.chars)}

  @classmethod
  def train(cls, texts: Iterable[str], vocab_size: int) -> "CharTokenizer":
    counts = collections.Counter()
    for text in texts:
      counts.update(text)
    if not counts:
      raise TokenizerError("no characters to train on: the input is empty")
    room = vocab_size - len(SPECIAL_PIECES)
    if room < 1:
      raise TokenizerError(f"--vocab-size {vocab_size} leaves no room for characters after the "
                           f"{len(SPECIAL_PIECES)} special tokens; use at least {len(SPECIAL_PIECES) + 1}")
    # Most frequent first; ties broken by code point so training is deterministic.
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    return cls(ranked[:room])

  @classmethod
  def from_metadata(cls, meta: dict) -> "CharTokenizer":
    return cls(meta["chars"])

  def _metadata(self) -> dict:
    return {"chars": self.chars}

  @property
  def vocab_size(self) -> int:
    return self._offset + len(self.chars)

  def encode(self, text: str) -> list[int]:
    get = self._ids.get
    return [get(c, UNK) for c in text]

  def encode_with_byte_counts(self, text: str) -> tuple[list[int], list[int]]:
    return self.encode(text), utf8_lengths(text).tolist()

  def decode(self, ids: Iterable[int]) -> str:
    out = []
    for i in ids:
      i = int(i)
      if i == UNK:
        out.append("\N{REPLACEMENT CHARACTER}")
      elif i >= self._offset and i - self._offset < len(self.chars):
        out.append(self.chars[i - self._offset])
    return "".join(out)

  def id_to_piece(self, token_id: int) -> str:
    if token_id < self._offset:
      return SPECIAL_PIECES[token_id]
    return self.chars[token_id - self._offset]


class ByteTokenizer(Tokenizer):
  kind = "byte"
  unk_id = None
  _OFFSET = 3  # pad, bos, eos; no <unk>

  @property
  def vocab_size(self) -> int:
    return self._OFFSET + 256

  def encode(self, text: str) -> list[int]:
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)
    return (data + self._OFFSET).tolist()

  def encode_with_byte_counts(self, text: str) -> tuple[list[int], list[int]]:
    ids = self.encode(text)
    return ids, [1] * len(ids)

  def decode(self, ids: Iterable[int]) -> str:
    data = bytes(int(i) - self._OFFSET for i in ids if self._OFFSET <= int(i) < self.vocab_size)
    return data.decode("utf-8", errors="replace")

  def id_to_piece(self, token_id: int) -> str:
    if token_id < self._OFFSET:
      return SPECIAL_PIECES[token_id]
    value = token_id - self._OFFSET
    return chr(value) if 32 <= value < 127 else f"<0x{value:02X}>"
