"""What keeps a long run safe unattended: signals, the divergence guard, the disk check.

`Preemption` turns SIGTERM/SIGINT into a flag the loop checks between steps; `Divergence`
decides whether a step's metrics are unusable (the loop then stops or rolls back before
anything is saved); `check_disk` refuses a run whose checkpoint would not fit.
"""

from __future__ import annotations

import math
import shutil
import signal

import jax
import numpy as np

from llm_input.errors import DiskFullError
from llm_input.train.checkpoint import NonFiniteError

MAX_ROLLBACKS = 3  # train.on_nonfinite=rollback: at most this many, then the run stops


class Preemption:
  """Turns SIGTERM (preemption) and SIGINT (Ctrl-C) into a flag the loop checks between steps."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.requested = None  # the signal's name once one arrived
    self._previous = {}

  def __enter__(self):
    for sig in self.SIGNALS:
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread
        pass
    return self

  def _handle(self, signum, frame):
    self.requested = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)


class Diverged(Exception):
  """A step whose metrics `Divergence.problem` found unusable."""

  def __init__(self, step: int, problem: str):
    super().__init__(problem)
    self.step, self.problem = step, problem


class Divergence:
  """Decides whether a step's metrics are unusable: non-finite loss, gradient or update; a loss
  above 10 x ln(vocab) (ten times a uniform guess: nothing trains back from there); or, with
  train.loss_spike_factor > 0, a loss above that multiple of the recent median."""

  def __init__(self, spike_factor: float, vocab_size: int, window: int = 100, warmup: int = 20):
    self.spike_factor, self.window, self.warmup = spike_factor, window, warmup
    self.ceiling = 10 * math.log(vocab_size)
    self.recent: list[float] = []

  def problem(self, values: dict) -> str:
    bad = [k for k in ("loss", "grad_norm", "update_norm") if not math.isfinite(values[k])]
    if bad:
      return "non-finite " + ", ".join(f"{k} ({values[k]})" for k in bad)
    loss = values["loss"]
    if loss > self.ceiling:
      return (f"loss {loss:.4g} is above 10 x ln(vocab) = {self.ceiling:.1f} (a uniform guess "
              f"scores {self.ceiling / 10:.2f}): the run has diverged")
    if self.spike_factor > 0 and len(self.recent) >= self.warmup:
      median = float(np.median(self.recent))
      if loss > self.spike_factor * median:
        return (f"loss spike: {loss:.4g} > train.loss_spike_factor={self.spike_factor} x the "
                f"median {median:.4g} of the last {len(self.recent)} steps")
    self.recent = (self.recent + [loss])[-self.window:]
    return ""

  def check(self, step: int, values: dict) -> None:
    """Raises `Diverged` for unusable metrics."""
    problem = self.problem(values)
    if problem:
      raise Diverged(step, problem)


def check_disk(path, abstract_state) -> None:
  """One checkpoint must fit on the run's disk before a step is spent."""
  need = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(abstract_state))
  free = shutil.disk_usage(path).free
  if free < need:
    raise DiskFullError(f"no space left on the device of {path}: a checkpoint needs "
                        f"{need / 2**20:,.1f} MiB and {free / 2**20:,.1f} MiB are free; free space "
                        "and rerun the same command")


def stopped(err: Diverged, rollbacks: int, good_steps: list[int], directory) -> NonFiniteError:
  """The error that ends a diverged run: what went wrong, where the last good checkpoint is,
  and how to continue from it."""
  where = (f"the last good checkpoint is step {good_steps[-1]} in {directory}" if good_steps
           else "no checkpoint was saved")
  extra = f" after {rollbacks} rollbacks" if rollbacks else ""
  return NonFiniteError(
      f"step {err.step}: {err.problem}{extra}; stopped before saving it ({where}). Lower "
      "optimizer.learning_rate (or set train.on_nonfinite=rollback) and rerun the same "
      "command to continue from that checkpoint")
