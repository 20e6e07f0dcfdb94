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


# The tiny preset's attention: batch 16, 256 positions, 4 heads of 32.
B, L, H, D = 16, 256, 4, 32


def attention_inputs():
  """(q, k, v, cotangent), each (B, L, H, Dh) from key 0, and the causal mask of one document
  per row: the inputs every attention script here times."""
  from llm_input.model import attention  # noqa: PLC0415

  q, k, v, g = [jax.random.normal(key, (B, L, H, D)) for key in jax.random.split(jax.random.key(0), 4)]
  return q, k, v, g, attention.attention_mask(jax.numpy.ones((B, L), jax.numpy.int32), True)
