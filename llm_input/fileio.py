"""Files written whole or not at all: a temporary sibling, then a rename."""

from __future__ import annotations

import os
import pathlib
import tempfile


def write_text_atomic(path: pathlib.Path, text: str) -> None:
  """Writes `text` (UTF-8) to `path` so a reader never sees a half-written file."""
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
  with os.fdopen(fd, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(tmp, path)
