"""Whole words: the V most frequent words of the training text, `<unk>` for everything else.

Pre-tokenisation (documented, deterministic): the text is cut into runs of word characters
(`\\w+`, Unicode letters/digits/underscore, with apostrophes inside a word kept: "o'er",
"don't"), single punctuation or symbol characters, and newlines; spaces and tabs separate
tokens and are not tokens themselves. With `lowercase=True` words are lower-cased first.

Decoding is necessarily lossy: spaces are re-inserted between words (none before punctuation
such as , . ; : ! ? ' or after an opening bracket), runs of spaces and tabs become one space,
lower-casing cannot be undone, and `<unk>` decodes to the replacement text "<unk>".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from llm_input.tokenizers.base import SPECIAL_PIECES, UNK, Tokenizer, most_frequent
from llm_input.tokenizers.options import TokenizerOptions

PRETOKEN = re.compile(r"\w+(?:'\w+)*|\n|[^\w\s]")
_NO_SPACE_BEFORE = set(",.;:!?)]}'\"")
_NO_SPACE_AFTER = set("([{\n")


def pretokenize(text: str, lowercase: bool = False) -> list[str]:
  if lowercase:
    text = text.lower()
  return PRETOKEN.findall(text)


class WordTokenizer(Tokenizer):
  kind = "word"

  def __init__(self, words: list[str], lowercase: bool = False):
    self.words = list(words)
    self.lowercase = lowercase
    self._offset = len(SPECIAL_PIECES)
    self._ids = {w: i + self._offset for i, w in enumerate(self.words)}

  @classmethod
  def train(cls, kind: str, texts: Iterable[str], vocab_size: int,
            options: TokenizerOptions = TokenizerOptions()) -> "WordTokenizer":
    del kind
    lowercase = options.lowercase
    return cls(most_frequent((pretokenize(t, lowercase) for t in texts), vocab_size, "words"), lowercase)

  @classmethod
  def from_folder(cls, folder, meta: dict) -> "WordTokenizer":
    return cls(meta["words"], meta["lowercase"])

  def _metadata(self) -> dict:
    return {"lowercase": self.lowercase, "words": self.words}

  @property
  def vocab_size(self) -> int:
    return self._offset + len(self.words)

  def encode(self, text: str) -> list[int]:
    get = self._ids.get
    return [get(w, UNK) for w in pretokenize(text, self.lowercase)]

  def encode_with_byte_counts(self, text: str) -> tuple[list[int], list[int]]:
    source = text.lower() if self.lowercase else text
    get = self._ids.get
    ids, counts = [], []
    previous_end = 0
    for match in PRETOKEN.finditer(source):
      ids.append(get(match.group(), UNK))
      # The token accounts for itself and the whitespace before it.
      counts.append(len(text[previous_end:match.end()].encode("utf-8")))
      previous_end = match.end()
    if counts and previous_end < len(text):
      counts[-1] += len(text[previous_end:].encode("utf-8"))
    return ids, counts

  def decode(self, ids: Iterable[int]) -> str:
    out: list[str] = []
    previous = "\n"
    for i in ids:
      i = int(i)
      if i < self._offset and i != UNK:
        continue
      piece = "<unk>" if i == UNK else self.words[i - self._offset]
      if out and piece not in _NO_SPACE_BEFORE and piece != "\n" and previous not in _NO_SPACE_AFTER:
        out.append(" ")
      out.append(piece)
      previous = piece
    return "".join(out)

  def id_to_piece(self, token_id: int) -> str:
    if token_id < self._offset:
      return SPECIAL_PIECES[token_id]
    return self.words[token_id - self._offset]
