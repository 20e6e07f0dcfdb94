"""The `llm-input` command's huge-page re-exec (see llm_input/host_memory.py)."""

import json
import os
import subprocess
import sys

import pytest

from llm_input import host_memory

from helpers import ROOT

# One large malloc, every page touched (numpy would madvise huge pages itself, as XLA does not).
TOUCH_256MB = """
import ctypes, resource
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
ctypes.memset(libc.malloc(256 * 2**20), 1, 256 * 2**20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _env(**extra):
  env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", host_memory.ENV)}
  env.update(extra)
  return env


def test_tuned_environ_keeps_other_tunables():
  assert host_memory.tuned_environ({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
  env = host_memory.tuned_environ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "X": "1"})
  assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
  assert env["X"] == "1"


def test_not_wanted_when_switched_off_or_already_set():
  assert not host_memory.wanted({host_memory.ENV: "default"})
  assert not host_memory.wanted({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"})
  assert host_memory.status({"GLIBC_TUNABLES": "a=1:glibc.malloc.hugetlb=1"}) == "huge pages (glibc tunable)"


def _info(env):
  out = subprocess.run([sys.executable, "-m", "llm_input.cli", "info", "--json"], cwd=ROOT, env=env,
                       capture_output=True, text=True, check=True)
  return json.loads(out.stdout)


def test_command_reexecutes_with_huge_pages_where_they_help():
  env = _env()
  if not host_memory.wanted(env):
    pytest.skip(f"huge pages would not help here (transparent huge pages: {host_memory.thp_mode()}, "
                f"libc: {os.confstr('CS_GNU_LIBC_VERSION') if hasattr(os, 'confstr') else '?'})")
  assert _info(env)["host_memory"] == "huge pages (glibc tunable)"
  assert _info(_env(**{host_memory.ENV: "default"}))["host_memory"] == "default"
  # and the tunable does what it is for: a 256 MB buffer arrives in 2 MiB pages, not 4 KiB
  faults = {}
  for name, extra in (("default", {}), ("huge", {"GLIBC_TUNABLES": host_memory.TUNABLE})):
    out = subprocess.run([sys.executable, "-c", TOUCH_256MB], env=_env(**extra),
                         capture_output=True, text=True, check=True)
    faults[name] = int(out.stdout)
  assert faults["default"] > 50_000  # 65,536 pages of 4 KiB
  assert faults["huge"] < faults["default"] / 10, faults
