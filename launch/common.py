"""Shared pieces of the launch scripts: running (or, with --dry-run, printing) commands."""

from __future__ import annotations

import shlex
import subprocess
import sys

JAX_VERSION = "0.10.2"  # keep equal to the pin in pyproject.toml


class Runner:
  def __init__(self, dry_run: bool):
    self.dry_run = dry_run

  def __call__(self, argv: list[str], *, check: bool = True) -> int:
    line = " ".join(shlex.quote(a) for a in argv)
    if self.dry_run:
      print(line)
      return 0
    print(f"+ {line}", file=sys.stderr, flush=True)
    return subprocess.run(argv, check=check).returncode


def sweep_command(sweep_file: str, shard: int, shards: int, root: str, arg: str | None = None,
                  repo: str | None = "~/llm_input") -> str:
  """The shell line that runs shard `shard` of `shards` of a sweep into the shared `root`."""
  parts = [".venv/bin/llm-input", "sweep", sweep_file, "--shard", f"{shard}/{shards}", "--root", root]
  if arg:
    parts += ["--arg", arg]
  line = "nohup " + " ".join(shlex.quote(p) for p in parts) + f" > sweep-{shard}-of-{shards}.log 2>&1 &"
  return f"cd {repo} && {line}" if repo else line


def train_command(config: str, workdir: str, overrides: list[str], multihost: bool,
                  repo: str | None = "~/llm_input") -> str:
  """The shell line that starts training in `repo` (None: here) with nohup, logging to train.log."""
  parts = [".venv/bin/llm-input", "train", "--config", config, "--workdir", workdir]
  if multihost:
    parts.append("--multihost")
  parts += overrides
  line = "nohup " + " ".join(shlex.quote(p) for p in parts) + " > train.log 2>&1 &"
  return f"cd {repo} && {line}" if repo else line
