"""Transparent huge pages for XLA:CPU's per-step buffers (Linux with glibc).

XLA:CPU allocates each execution's temporary buffer afresh: 4.3 GB for the GPT-2 small train
step at 8 x 256. glibc serves an allocation that large with mmap and returns it with munmap,
so every step the kernel faults it in again 4 KiB at a time: 1.1 million page faults and
~4 s of system time per ~13 s step on the 2-core CI machine. With glibc's `hugetlb=1`
tunable, malloc asks for transparent huge pages on those mappings (madvise), so the same
memory comes in 2 MiB pages: ~3,000 faults and ~1.8 s of system time per step, and the
process's memory use is unchanged. (Keeping freed memory in the heap instead, with mallopt,
removed the faults entirely but fragmented: resident memory grew from 6.2 to 14.5 GB within
eight steps, with 16-second steps whenever it grew.)

glibc reads tunables only at process start, so the `llm-input` command re-executes itself
once with GLIBC_TUNABLES extended, before anything else is imported. It does so only where it
helps: Linux, glibc >= 2.35, and transparent huge pages in `madvise` mode (with `always` the
kernel already uses them; with `never` nothing can). LLM_INPUT_HOST_MEMORY=default turns it
off. A Python process of your own (a notebook) can get the same by starting with
GLIBC_TUNABLES=glibc.malloc.hugetlb=1 in its environment.
"""

from __future__ import annotations

import os
import sys

ENV = "LLM_INPUT_HOST_MEMORY"
TUNABLE = "glibc.malloc.hugetlb=1"
THP_MODE_FILE = "/sys/kernel/mm/transparent_hugepage/enabled"


def _glibc_version() -> tuple[int, int] | None:
  try:
    name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
  except (AttributeError, ValueError, OSError):
    return None
  if name != "glibc":
    return None
  major, minor = version.split(".")[:2]
  return int(major), int(minor)


def thp_mode(path: str = THP_MODE_FILE) -> str | None:
  """The kernel's transparent-huge-page mode: 'always', 'madvise', 'never' or None."""
  try:
    with open(path) as f:
      text = f.read()
  except OSError:
    return None
  start, end = text.find("["), text.find("]")
  return text[start + 1:end] if 0 <= start < end else None


def status(environ=None) -> str:
  """How this process's large host buffers are paged: 'huge pages (glibc tunable)',
  'huge pages (kernel: always)', or 'default'."""
  environ = os.environ if environ is None else environ
  if TUNABLE in environ.get("GLIBC_TUNABLES", "").split(":"):
    return "huge pages (glibc tunable)"
  if thp_mode() == "always":
    return "huge pages (kernel: always)"
  return "default"


def wanted(environ=None) -> bool:
  """True when re-executing with the tunable would change how memory is paged."""
  environ = os.environ if environ is None else environ
  if environ.get(ENV, "huge") == "default" or status(environ) != "default":
    return False
  version = _glibc_version()
  return (sys.platform.startswith("linux") and version is not None and version >= (2, 35)
          and thp_mode() == "madvise")


def tuned_environ(environ=None) -> dict:
  environ = dict(os.environ if environ is None else environ)
  existing = environ.get("GLIBC_TUNABLES", "")
  environ["GLIBC_TUNABLES"] = f"{existing}:{TUNABLE}" if existing else TUNABLE
  return environ


def reexec_with_huge_pages() -> None:
  """Replaces the process with itself plus the tunable, where `wanted()`; else returns."""
  if not wanted():
    return
  argv = list(getattr(sys, "orig_argv", []) or [sys.executable, *sys.argv])
  try:
    os.execve(sys.executable, [sys.executable, *argv[1:]], tuned_environ())
  except OSError:  # could not re-execute: run as we are
    return
