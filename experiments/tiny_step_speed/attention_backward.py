"""Attention forward + backward at the tiny preset's shape (16 x 256, 4 heads of 32), timed
interleaved in one process: the model's blocked attention (autodiff through the masked
softmax) against attention with its whole backward written out, flash-attention style
(dS = P * (dP - rowsum(dO * O)): the row sum is over d_head numbers instead of a pass over
the L x S probabilities, and the mask's select has no backward pass), in the (B, L, H, Dh)
layout and in a head-major (B, H, L, Dh) one.
Run: python experiments/tiny_step_speed/attention_backward.py
"""
import math

import jax
import jax.numpy as jnp

from interleaved import B, D, H, L, attention_inputs, medians
from llm_input.model import attention as A

q, k, v, g, mask = attention_inputs()
NEG = jnp.finfo(jnp.float32).min


def written_out(block):
  """The block-causal attention with a hand-written VJP (head-major inside)."""

  @jax.custom_vjp
  def attend(q, k, v):
    return fwd(q, k, v)[0]

  def blocks(q, k, v):
    for start in range(0, L, block):
      end = start + block
      yield start, end, q[:, :, start:end], k[:, :, :end], v[:, :, :end], mask[:, :, start:end, :end]

  def fwd(q, k, v):
    qh, kh, vh = (x.transpose(0, 2, 1, 3) for x in (q, k, v))
    qh = qh * (1 / math.sqrt(D))
    outs, probs = [], []
    for _, _, qb, kb, vb, mb in blocks(qh, kh, vh):
      s = jnp.einsum("bhld,bhsd->bhls", qb, kb)
      s = jnp.where(mb, s, NEG)
      p = jnp.exp(s - jnp.max(s, -1, keepdims=True))
      p = p / jnp.sum(p, -1, keepdims=True)
      probs.append(p)
      outs.append(jnp.einsum("bhls,bhsd->bhld", p, vb))
    out = jnp.concatenate(outs, 2)
    return out.transpose(0, 2, 1, 3), (qh, kh, vh, out, probs)

  def bwd(res, g):
    qh, kh, vh, out, probs = res
    gh = g.transpose(0, 2, 1, 3)
    delta = jnp.sum(gh * out, -1, keepdims=True)  # rowsum(dO * O) = rowsum(dP * P)
    dq = []
    dk = jnp.zeros_like(kh)
    dv = jnp.zeros_like(vh)
    for (start, end, qb, kb, vb, _), p in zip(blocks(qh, kh, vh), probs):
      gb = gh[:, :, start:end]
      dv = dv.at[:, :, :end].add(jnp.einsum("bhls,bhld->bhsd", p, gb))
      dp = jnp.einsum("bhld,bhsd->bhls", gb, vb)
      ds = p * (dp - delta[:, :, start:end])
      dq.append(jnp.einsum("bhls,bhsd->bhld", ds, kb))
      dk = dk.at[:, :, :end].add(jnp.einsum("bhls,bhld->bhsd", ds, qb))
    dq = jnp.concatenate(dq, 2) * (1 / math.sqrt(D))
    return tuple(x.transpose(0, 2, 1, 3) for x in (dq, dk, dv))

  attend.defvjp(fwd, bwd)
  return attend


def grad_of(fn):
  return jax.jit(jax.grad(lambda q, k, v: jnp.sum(fn(q, k, v) * g), argnums=(0, 1, 2)))


impls = {
    "model (autodiff), 128 blocks": lambda q, k, v: A.blocked_attention(q, k, v, mask, 128),
    "written-out vjp, 128 blocks": written_out(128),
    "written-out vjp, 64 blocks": written_out(64),
    "written-out vjp, one block": written_out(256),
}
fns = {name: grad_of(f) for name, f in impls.items()}
reference = fns["model (autodiff), 128 blocks"](q, k, v)
for name, f in fns.items():
  err = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(f(q, k, v), reference))
  print(f"{name:32s} largest gradient difference to the model's {err:.2e}")
for name, sec in medians(fns, (q, k, v), 15).items():
  print(f"{name:32s} fwd+bwd {sec * 1e3:6.2f} ms")
