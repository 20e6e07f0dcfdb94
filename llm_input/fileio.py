"""Files written whole or not at all: a temporary sibling, then a rename."""

from __future__ import annotations

import os
import pathlib
import uuid


def write_text_atomic(path: pathlib.Path, text: str) -> None:
  """Writes `text` (UTF-8) to `path` so a reader never sees a half-written file.

  The temporary sibling is created with open(..., "x"), not mkstemp, so the file gets the
  usual permissions (0666 less the umask) rather than mkstemp's owner-only 0600.
  """
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
  try:
    with open(tmp, "x", encoding="utf-8") as f:
      f.write(text)
    os.replace(tmp, path)
  except BaseException:
    tmp.unlink(missing_ok=True)
    raise
