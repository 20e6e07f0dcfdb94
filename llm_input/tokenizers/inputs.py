"""Reading tokenizer training input from files and globs (UTF-8 checked)."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from llm_input.errors import TokenizerError
from llm_input.fileio import expand_glob, read_utf8


def resolve_inputs(patterns: Sequence[str]) -> list[pathlib.Path]:
  """Expands files and globs (recursive `**` allowed), sorted, de-duplicated."""
  if not patterns:
    raise TokenizerError("no --input given; pass one or more files or globs")
  files: list[pathlib.Path] = []
  for pattern in patterns:
    matches = expand_glob(pattern)
    if not matches:
      raise TokenizerError(f"--input {pattern!r} matches no files")
    files.extend(matches)
  return list(dict.fromkeys(files))


def read_text(path: pathlib.Path) -> str:
  """Reads a UTF-8 file; a non-UTF-8 file is an error naming the file and the byte offset."""
  return read_utf8(path, TokenizerError)


def read_inputs(patterns: Sequence[str]) -> list[str]:
  return [read_text(p) for p in resolve_inputs(patterns)]
