"""Training a tokenizer of any kind from files (or in-memory texts) and saving it atomically."""

from __future__ import annotations

import glob
import os
import pathlib
from collections.abc import Sequence

from llm_input.tokenizers.base import KINDS, Tokenizer, TokenizerError


def resolve_inputs(patterns: Sequence[str]) -> list[pathlib.Path]:
  """Expands files and globs (recursive `**` allowed), sorted, de-duplicated."""
  if not patterns:
    raise TokenizerError("no --input given; pass one or more files or globs")
  files: list[pathlib.Path] = []
  for pattern in patterns:
    matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
    matches = [m for m in matches if os.path.isfile(m)]
    if not matches:
      raise TokenizerError(f"--input {pattern!r} matches no files")
    files.extend(pathlib.Path(m) for m in matches)
  return list(dict.fromkeys(files))


def read_text(path: pathlib.Path) -> str:
  """Reads a UTF-8 file; a non-UTF-8 file is an error naming the file and the byte offset."""
  data = path.read_bytes()
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as err:
    raise TokenizerError(f"{path} is not UTF-8: byte offset {err.start} "
                         f"(0x{data[err.start]:02x}) cannot be decoded; convert the file "
                         "(e.g. iconv -t UTF-8) or leave it out") from None


def read_inputs(patterns: Sequence[str]) -> list[str]:
  return [read_text(p) for p in resolve_inputs(patterns)]


def train(kind: str, vocab_size: int, texts: Sequence[str], *, lowercase: bool = False,
          **subword_options) -> Tokenizer:
  """Trains a tokenizer of `kind` on `texts` (each a document)."""
  from llm_input.tokenizers import char, subword, word  # noqa: PLC0415

  if kind not in KINDS:
    raise TokenizerError(f"unknown tokenizer kind {kind!r}; allowed: {', '.join(KINDS)}")
  if not isinstance(vocab_size, int) or vocab_size < 1:
    raise TokenizerError(f"--vocab-size must be a positive integer, got {vocab_size!r}")
  if not any(t.strip() for t in texts):
    raise TokenizerError("the training input is empty (no non-whitespace text)")
  if kind == "byte":
    return char.ByteTokenizer()
  if kind == "char":
    return char.CharTokenizer.train(texts, vocab_size)
  if kind == "word":
    return word.WordTokenizer.train(texts, vocab_size, lowercase=lowercase)
  return subword.SentencePieceTokenizer.train(texts, kind, vocab_size, **subword_options)
