"""Character and byte tokenizers: the finest granularities.

`char`: one id per Unicode character seen in training (the rarest dropped past the vocabulary
cap), `<unk>` for the rest. `byte`: the 256 UTF-8 byte values, so nothing is ever unknown.
"Hello" is 5 tokens in both.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from llm_input.tokenizers.base import SPECIAL_PIECES, UNK, Tokenizer, most_frequent
from llm_input.tokenizers.options import TokenizerOptions


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
  def train(cls, kind: str, texts: Iterable[str], vocab_size: int,
            options: TokenizerOptions = TokenizerOptions()) -> "CharTokenizer":
    del kind, options
    return cls(most_frequent(texts, vocab_size, "characters"))

  @classmethod
  def from_folder(cls, folder, meta: dict) -> "CharTokenizer":
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
  num_special_ids = _OFFSET
  fixed_vocab_size = _OFFSET + 256

  @classmethod
  def train(cls, kind: str, texts: Iterable[str], vocab_size: int,
            options: TokenizerOptions = TokenizerOptions()) -> "ByteTokenizer":
    del kind, texts, vocab_size, options  # nothing to learn: the 256 byte values
    return cls()

  @classmethod
  def from_folder(cls, folder, meta: dict) -> "ByteTokenizer":
    return cls()

  @property
  def vocab_size(self) -> int:
    return self.fixed_vocab_size

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
