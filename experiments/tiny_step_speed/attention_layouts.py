"""Blocked causal attention forward + backward at the tiny preset's shape (16 x 256, 4 heads of
32), timed interleaved in one process: the model's `blocked_attention` (each query block takes
a slice of K and V in the (B, L, H, Dh) layout, which XLA copies into head-major form once per
block) against K and V put in head-major layout once and sliced per block, at 64/128-query blocks.
Run: python experiments/tiny_step_speed/attention_layouts.py
"""
import math

import jax
import jax.numpy as jnp

from interleaved import B, D, L, attention_inputs, medians
from llm_input.model import attention as A

q, k, v, g, mask = attention_inputs()


def head_major(block):
  def f(q, k, v):
    qh = (q * (1 / math.sqrt(D))).transpose(0, 2, 1, 3)  # (B, H, L, Dh)
    kh = k.transpose(0, 2, 3, 1)  # (B, H, Dh, S)
    vh = v.transpose(0, 2, 1, 3)  # (B, H, S, Dh)
    outs = []
    for start in range(0, L, block):
      end = start + block
      s = jnp.einsum("bhld,bhds->bhls", qh[:, :, start:end], kh[..., :end])
      w = A.masked_softmax(s, mask[:, :, start:end, :end])
      outs.append(jnp.einsum("bhls,bhsd->bhld", w, vh[:, :, :end]))
    return jnp.concatenate(outs, axis=2).transpose(0, 2, 1, 3)
  return f


def grad_of(fn):
  return jax.jit(jax.grad(lambda q, k, v: jnp.sum(fn(q, k, v) * g), argnums=(0, 1, 2)))


impls = {f"model {b}": (lambda b: lambda q, k, v: A.blocked_attention(q, k, v, mask, b))(b) for b in (128, 64)}
impls.update({f"head-major {b}": head_major(b) for b in (128, 64, 32)})
fns = {name: grad_of(f) for name, f in impls.items()}
ref = fns["model 128"](q, k, v)
for name, f in fns.items():
  diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(f(q, k, v), ref))
  print(f"{name:16s} largest gradient difference from model 128: {diff:.2e}")
for name, sec in medians(fns, (q, k, v), 15).items():
  print(f"{name:16s} fwd+bwd {sec * 1e3:6.2f} ms")
