"""Median seconds of jitted functions timed interleaved in one process (shared by the scripts here)."""
import time

import jax
import numpy as np


def medians(fns: dict, args: tuple, rounds: int) -> dict:
  """{name: median seconds} over `rounds` rounds, each calling every function once, in turn."""
  for f in fns.values():
    jax.block_until_ready(f(*args))
  times = {name: [] for name in fns}
  for _ in range(rounds):
    for name, f in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(f(*args))
      times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t)) for name, t in times.items()}
