"""The weight gradient's matmul, dW = x^T g, at the tiny preset's shapes, timed interleaved in
one process: as autodiff writes it (XLA folds the transpose into the dot: a dot contracting the
major dimension of both operands) against x^T written out first (`optimization_barrier` keeps
XLA from folding it back). The chunked head's dW (512 x 128 x 4096 per 32-position chunk) is
the case the train step now writes out (llm_input/train/step.py).
Run: python experiments/tiny_step_speed/transposed_dots.py
"""
import jax

from interleaved import medians

key = jax.random.key(0)
# (tokens, input width, output width): the head's chunk, the MLP's up and down projections,
# an attention projection
for tokens, d_in, d_out in ((512, 128, 4096), (4096, 128, 512), (4096, 512, 128), (4096, 128, 128)):
  x, g = jax.random.normal(key, (tokens, d_in)), jax.random.normal(key, (tokens, d_out))
  fns = {"folded x^T g": jax.jit(lambda x, g: x.T @ g),
         "x^T written out": jax.jit(lambda x, g: jax.lax.optimization_barrier(x.T) @ g)}
  flops = 2 * tokens * d_in * d_out
  line = ", ".join(f"{name} {flops / sec / 1e9:.0f} GFLOP/s" for name, sec in medians(fns, (x, g), 20).items())
  print(f"{tokens} x {d_in} x {d_out}: {line}")
