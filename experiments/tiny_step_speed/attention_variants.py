"""Attention forward + backward at the tiny preset's shape (16 x 256, 4 heads of 32), timed
interleaved in one process: the model's blocked attention against the grouped 5-D form it
replaced and 4-D forms with 64/128/256-query blocks, q or the scores scaled.
Run: python experiments/tiny_step_speed/attention_variants.py
"""
from interleaved import D, L, attention_inputs, medians
import jax, jax.numpy as jnp, time, numpy as np, math
from llm_input.model import attention as A
q,kk,v,g,mask=attention_inputs()
def att4(q,kk,v,m, prescale):
  if prescale: s=jnp.einsum("blhd,bshd->bhls",q*(1/math.sqrt(D)),kk)
  else: s=jnp.einsum("blhd,bshd->bhls",q,kk)/math.sqrt(D)
  w=A.masked_softmax(s,m)
  return jnp.einsum("bhls,bshd->blhd",w,v)
def att5(q,kk,v,m, prescale):
  b,l,h,d=q.shape; q5=q.reshape(b,l,h,1,d)
  if prescale: s=jnp.einsum("blkgd,bskd->bkgls",q5*(1/math.sqrt(D)),kk)
  else: s=jnp.einsum("blkgd,bskd->bkgls",q5,kk)/math.sqrt(D)
  w=A.masked_softmax(s,m[:,:,None])
  return jnp.einsum("bkgls,bskd->blkgd",w,v).reshape(b,l,h,d)
def blocked(fn, blk, **kw):
  def f(q,kk,v):
    outs=[]
    for st in range(0,L,blk):
      e=st+blk
      outs.append(fn(q[:,st:e],kk[:,:e],v[:,:e],mask[:,:,st:e,:e],**kw))
    return jnp.concatenate(outs,1)
  return f
def mk(fn):
  def loss(q,kk,v): return jnp.sum(fn(q,kk,v)*g)
  return jax.jit(jax.grad(loss,argnums=(0,1,2)))
impls = {

 "5d post 128": blocked(att5,128,prescale=False), "5d pre 128": blocked(att5,128,prescale=True),
 "4d post 128": blocked(att4,128,prescale=False), "4d pre 128": blocked(att4,128,prescale=True),
 "4d pre 64": blocked(att4,64,prescale=True), "current128": lambda q,kk,v: A.blocked_attention(q,kk,v,mask,128),
}
fs={n:mk(f) for n,f in impls.items()}
for n, sec in medians(fs, (q, kk, v), 15).items(): print(f"{n:14s} fwd+bwd {sec*1e3:6.2f} ms")
