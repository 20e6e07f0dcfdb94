"""The tiny preset's head + loss, forward + backward, at 4,096 tokens x 4,096 ids: the masked-sum
target logit, the gather (used when the vocabulary is whole on each device), and a token-chunked
loss that recomputes the logits in its backward (chunks of 256-1,024). Prints each variant's
difference from the first, then its median time.
Run: python experiments/tiny_step_speed/loss_variants.py
"""
from interleaved import medians
import jax, jax.numpy as jnp, time, numpy as np, math
from llm_input.train import step as S
N,D,V=4096,128,4096
ks=jax.random.split(jax.random.key(0),3)
h=jax.random.normal(ks[0],(N,D)); T=jax.random.normal(ks[1],(V,D))*0.02; tg=jax.random.randint(ks[2],(N,),0,V)
def cur(h,T):
  lz,t,m=S.log_z_and_target_logit((h@T.T)[None],tg[None]); return jnp.sum(lz-t)
@jax.custom_vjp
def lzt(logits,tg):
  mx=jnp.max(logits,-1); lz=mx+jnp.log(jnp.sum(jnp.exp(logits-mx[...,None]),-1))
  t=jnp.take_along_axis(logits,tg[...,None],-1)[...,0]
  return lz,t,mx
def f(l,tg):
  o=lzt(l,tg); return o,(l,tg,o[0])
def b(r,g):
  l,tg,lz=r; gz,gt,_=g
  vocab=jax.lax.broadcasted_iota(jnp.int32,l.shape,l.ndim-1)
  return (jnp.exp(l-lz[...,None])*gz[...,None]+jnp.where(vocab==tg[...,None],gt[...,None],0.0)),None
lzt.defvjp(f,b)
def gat(h,T):
  lz,t,m=lzt(h@T.T,tg); return jnp.sum(lz-t)
def chunked(C):
  @jax.custom_vjp
  def head(h,T,tg):
    hc=h.reshape(N//C,C,D); tc=tg.reshape(N//C,C)
    def one(_,x):
      hh,tt=x; l=hh@T.T; mx=jnp.max(l,-1); lz=mx+jnp.log(jnp.sum(jnp.exp(l-mx[:,None]),-1))
      t=jnp.take_along_axis(l,tt[:,None],-1)[:,0]
      return None,(lz,t,mx)
    _,(lz,t,mx)=jax.lax.scan(one,None,(hc,tc))
    return lz.reshape(N),t.reshape(N),mx.reshape(N)
  def fw(h,T,tg):
    o=head(h,T,tg); return o,(h,T,tg,o[0])
  def bw(r,g):
    h,T,tg,lz=r; gz,gt,_=g
    hc=h.reshape(N//C,C,D); tc=tg.reshape(N//C,C); lzc=lz.reshape(N//C,C); gzc=gz.reshape(N//C,C); gtc=gt.reshape(N//C,C)
    def one(dT,x):
      hh,tt,ll,a,bb=x; l=hh@T.T
      vocab=jax.lax.broadcasted_iota(jnp.int32,l.shape,1)
      dl=jnp.exp(l-ll[:,None])*a[:,None]+jnp.where(vocab==tt[:,None],bb[:,None],0.0)
      return dT+dl.T@hh, dl@T
    dT,dh=jax.lax.scan(one,jnp.zeros_like(T),(hc,tc,lzc,gzc,gtc))
    return dh.reshape(N,D),dT,None
  head.defvjp(fw,bw)
  def loss(h,T):
    lz,t,m=head(h,T,tg); return jnp.sum(lz-t)
  return loss
fs={"current":cur,"gather":gat,"chunk256":chunked(256),"chunk512":chunked(512),"chunk1024":chunked(1024)}
gs={n:jax.jit(jax.value_and_grad(f,argnums=(0,1))) for n,f in fs.items()}
ref=gs["current"](h,T)
for n,g in gs.items():
  o=g(h,T); print(n, float(o[0]-ref[0]), float(jnp.abs(o[1][0]-ref[1][0]).max()), float(jnp.abs(o[1][1]-ref[1][1]).max()))
for n, sec in medians(gs, (h, T), 10).items(): print(f"{n:10s} {sec*1e3:6.2f} ms")
