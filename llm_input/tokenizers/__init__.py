"""Tokenizers at three granularities behind one interface: char/byte, subword, word.

The registry maps each kind to its class; `train` and `load` are the only places that choose
a class by kind.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

from llm_input.errors import TokenizerError
from llm_input.tokenizers.base import Tokenizer, byte_length, read_metadata
from llm_input.tokenizers.char import ByteTokenizer, CharTokenizer
from llm_input.tokenizers.options import TokenizerOptions
from llm_input.tokenizers.pretrained import HuggingFaceTokenizer, TiktokenTokenizer, import_tokenizer
from llm_input.tokenizers.subword import SentencePieceTokenizer
from llm_input.tokenizers.word import WordTokenizer

REGISTRY: dict[str, type[Tokenizer]] = {
    "char": CharTokenizer,
    "byte": ByteTokenizer,
    "bpe": SentencePieceTokenizer,
    "unigram": SentencePieceTokenizer,
    "word": WordTokenizer,
}
KINDS = tuple(REGISTRY)  # the kinds `train` makes
# kinds made elsewhere, brought in by `import_tokenizer` with their own ids
IMPORTED: dict[str, type[Tokenizer]] = {
    "hf": HuggingFaceTokenizer,
    "tiktoken": TiktokenTokenizer,
    "sentencepiece": SentencePieceTokenizer,
}


def tokenizer_class(kind: str) -> type[Tokenizer]:
  if kind not in REGISTRY:
    raise TokenizerError(f"unknown tokenizer kind {kind!r}; allowed: {', '.join(KINDS)}")
  return REGISTRY[kind]


def train(kind: str, vocab_size: int, texts: Sequence[str],
          options: TokenizerOptions | None = None) -> Tokenizer:
  """Trains a tokenizer of `kind` on `texts` (each a document)."""
  cls = tokenizer_class(kind)
  if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 1:
    raise TokenizerError(f"--vocab-size must be a positive integer, got {vocab_size!r}")
  if not any(t.strip() for t in texts):
    raise TokenizerError("the training input is empty (no non-whitespace text)")
  options = options or TokenizerOptions()
  options.validate()
  return cls.train(kind, texts, vocab_size, options)


def load(folder: str | os.PathLike) -> Tokenizer:
  """Loads any kind of tokenizer from a folder written by `Tokenizer.save`."""
  meta = read_metadata(folder)
  kind = meta.get("kind")
  classes = {**REGISTRY, **IMPORTED}
  if kind not in classes:
    raise TokenizerError(f"{folder}/tokenizer.json names an unknown kind {kind!r}; retrain with "
                         "`llm-input tokenizer train`")
  folder = pathlib.Path(folder)
  has_model = (folder / "sentencepiece.model").exists()
  if has_model != (classes[kind] is SentencePieceTokenizer):
    raise TokenizerError(f"{folder}: tokenizer.json says kind {kind!r} but the folder "
                         f"{'holds' if has_model else 'lacks'} sentencepiece.model; the files "
                         "disagree, so retrain the tokenizer into an empty folder")
  try:
    return classes[kind].from_folder(folder, meta)
  except (KeyError, TypeError) as err:
    raise TokenizerError(f"{folder}/tokenizer.json lacks {err} for a {kind} tokenizer; retrain it") from None


__all__ = ["IMPORTED", "KINDS", "REGISTRY", "import_tokenizer", "Tokenizer", "TokenizerOptions", "byte_length", "load", "train",
           "tokenizer_class"]
