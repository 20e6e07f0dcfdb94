"""Attention in batch chunks (lax.map over 2-8 rows, so a chunk's score arrays fit in L2) against
the model's blocked attention over the whole batch. Run: python experiments/tiny_step_speed/attention_chunks.py
"""
from interleaved import B, attention_inputs, medians
import jax, jax.numpy as jnp, time, numpy as np, math
from llm_input.model import attention as A
q,kk,v,g,mask=attention_inputs()
def chunked(c, blk=128):
  def f(q,kk,v):
    r=lambda x: x.reshape(B//c, c, *x.shape[1:])
    out=jax.lax.map(lambda a: A.blocked_attention(a[0],a[1],a[2],a[3],blk), (r(q),r(kk),r(v),r(mask)))
    return out.reshape(q.shape)
  return f
impls={"blocked128": lambda q,kk,v: A.blocked_attention(q,kk,v,mask,128),
       "chunk8": chunked(8), "chunk4": chunked(4), "chunk2": chunked(2), "chunk4 b64": chunked(4,64), "blocked64": lambda q,kk,v: A.blocked_attention(q,kk,v,mask,64)}
fs={n:jax.jit(jax.grad(lambda q,kk,v,f=f: jnp.sum(f(q,kk,v)*g),argnums=(0,1,2))) for n,f in impls.items()}
for n, sec in medians(fs, (q, kk, v), 12).items(): print(f"{n:12s} {sec*1e3:6.2f} ms")
