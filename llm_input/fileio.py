"""Files: written whole or not at all (a temporary sibling, then a rename); text inputs found
by glob and read as UTF-8 with an error that names the file and the byte offset."""

from __future__ import annotations

import errno
import hashlib
import glob
import os
import pathlib
import re
import uuid

from llm_input.errors import UserError


def expand_glob(pattern: str) -> list[pathlib.Path]:
  """Files matching `pattern` (`~` and recursive `**` allowed; a folder means its `*.txt`), sorted."""
  path = pathlib.Path(os.path.expanduser(pattern))
  if path.is_dir():
    return sorted(p for p in path.rglob("*.txt") if p.is_file())
  return sorted(pathlib.Path(p) for p in glob.glob(str(path), recursive=True) if os.path.isfile(p))


def read_utf8(path: pathlib.Path, error: type[UserError] = UserError) -> str:
  """A UTF-8 file's text; anything else raises `error` naming the file and the byte offset."""
  data = pathlib.Path(path).read_bytes()
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as err:
    raise error(f"{path} is not UTF-8: byte offset {err.start} (0x{data[err.start]:02x}) cannot "
                "be decoded; convert it (e.g. iconv -t UTF-8) or leave it out") from None


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


# errno of a write that fails because of where it writes (not what): the fix is the same
# whatever was being written, and names the folder.
WRITE_FAILURES = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                  errno.EROFS: "read-only file system"}


def write_failure(err: BaseException | None) -> tuple[int, str | None] | None:
  """(errno, the path when known) when `err` or an exception it came from is a write that
  failed on a full disk, a quota or a read-only file system (WRITE_FAILURES); else None."""
  seen = set()
  while err is not None and id(err) not in seen:
    seen.add(id(err))
    if isinstance(err, OSError) and err.errno in WRITE_FAILURES:
      return err.errno, err.filename and str(err.filename)
    text = str(err)
    for code, what in WRITE_FAILURES.items():
      if f"[Errno {code}]" in text or f"os_error_code='{code}'" in text or what in text.lower():
        # tensorstore's and orbax's messages quote the file: name the step folder it was in
        quoted = re.search(r"[\"'](/[^\"']+)[\"']", text)
        return code, quoted and re.sub(r"(\.orbax-checkpoint-tmp)/.*", r"\1", quoted.group(1))
    err = err.__cause__ or err.__context__
  return None


def directory_fingerprint(folder: pathlib.Path) -> str:
  """sha256 over the names and bytes of every file in `folder` (sorted)."""
  digest = hashlib.sha256()
  for path in sorted(p for p in pathlib.Path(folder).rglob("*") if p.is_file()):
    digest.update(str(path.relative_to(folder)).encode() + b"\0")
    digest.update(path.read_bytes())
    digest.update(b"\0")
  return digest.hexdigest()
