"""`llm-input bench`: the train step's speed as ratios measured in one process.

Reports the machine's matmul peak (float32 and bfloat16), the jitted step's tokens/s and
FLOP/s (analytic FLOPs, causal attention counted once), MFU = achieved / measured peak of the
step's compute dtype (the peak re-measured after every step, since a shared machine's speed
drifts by 10-20% within minutes; also the stricter ratio against the best peak of the run), compile time, peak memory; optionally the compile time of scanned stacks
of several depths (scan forced on, whatever the config says), and the real loop's wall time per step against the bare step's.
"""

from __future__ import annotations

import resource
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from llm_input import config as config_lib
from llm_input import host_memory
from llm_input.train import loop
from llm_input.train import metrics as metrics_lib
from llm_input.train import sharding as sharding_lib
from llm_input.train import step as step_lib


def matmul_peak(dtype, size: int = 4096, repeats: int = 5) -> float:
  """Best FLOP/s of a size x size x size matmul (the machine's practical peak)."""
  a = jax.random.normal(jax.random.key(0), (size, size), dtype)
  b = jax.random.normal(jax.random.key(1), (size, size), dtype)
  f = jax.jit(lambda x, y: x @ y)
  f(a, b).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    f(a, b).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * size ** 3 / best


def synthetic_batch(batch: int, seq_len: int, vocab: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  ids = rng.integers(3, vocab, size=(batch, seq_len + 1)).astype(np.int32)
  ones = np.ones((batch, seq_len), np.int32)
  return {"inputs": ids[:, :-1], "targets": ids[:, 1:], "segment_ids": ones,
          "positions": np.tile(np.arange(seq_len, dtype=np.int32), (batch, 1)),
          "loss_mask": ones, "target_bytes": ones * 4}


def step_timing(cfg, steps: int, paired_peak=None) -> dict:
  """The jitted step's median time over `steps`; with `paired_peak` (a function returning
  FLOP/s), the peak is measured again right after every step and each step's MFU is taken
  against its own neighbour, so a shared machine's drift between the two cancels."""
  mesh, _, optim = loop.validate(cfg)
  model_cfg = config_lib.model_config(cfg)
  trainer = step_lib.Trainer(model_cfg, optim, mesh, seed=cfg.seed)
  state = trainer.init_state()
  batch = {k: jax.device_put(v, trainer.batch_sharding) for k, v in
           synthetic_batch(cfg.data.batch_size, cfg.data.seq_len, model_cfg.vocab_size).items()}
  start = time.perf_counter()
  compiled = trainer.train_step.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  times, peaks = [], []
  for _ in range(steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
    if paired_peak is not None:
      peaks.append(paired_peak())
  step_s = float(np.median(times))
  flops = step_lib.flops_per_step(model_cfg, cfg.data.batch_size, cfg.data.seq_len)
  paired = {}
  if peaks:
    paired = {"paired_peaks": peaks,
              "paired_mfu": [flops / t / p for t, p in zip(times, peaks)]}
  tokens = cfg.data.batch_size * cfg.data.seq_len
  memory = None
  stats = jax.devices()[0].memory_stats() if hasattr(jax.devices()[0], "memory_stats") else None
  if stats and "peak_bytes_in_use" in stats:
    memory = {"device_peak_bytes": int(stats["peak_bytes_in_use"])}
  else:
    memory = {"host_max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
  return {"params": int(sum(x.size for x in jax.tree.leaves(state["params"]))),
          "batch": cfg.data.batch_size, "seq_len": cfg.data.seq_len, "step_s": step_s,
          "tokens_per_s": tokens / step_s, "flops_per_step": flops, "flops_per_s": flops / step_s,
          "compile_s": compile_s, "memory": memory, "dtype": model_cfg.dtype,
          "devices": len(mesh.devices.flat), "mesh": dict(mesh.shape), "step_times_s": times,
          **paired}


def breakdown(cfg, repeats: int = 2) -> dict:
  """Seconds of the step's parts, each jitted alone: forward + loss, forward + backward, AdamW."""
  mesh, _, optim = loop.validate(cfg)
  model_cfg = config_lib.model_config(cfg)
  trainer = step_lib.Trainer(model_cfg, optim, mesh, seed=cfg.seed)
  state = trainer.init_state()
  batch = {k: jax.device_put(v, trainer.batch_sharding) for k, v in
           synthetic_batch(cfg.data.batch_size, cfg.data.seq_len, model_cfg.vocab_size).items()}

  def best(fn, *args):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times.append(time.perf_counter() - start)
    return min(times)

  loss = lambda params, b: trainer.loss_sums(params, b)[0]  # noqa: E731
  grads = jax.jit(jax.grad(loss))(state["params"], batch)
  return {"forward_loss_s": best(jax.jit(loss), state["params"], batch),
          "forward_backward_s": best(jax.jit(jax.grad(loss)), state["params"], batch),
          "optimizer_s": best(jax.jit(trainer.optimizer.update), grads, state["opt_state"], state["params"])}


def compile_time(cfg, num_layers: int) -> float:
  """Seconds to compile the train step of a *scanned* stack of `num_layers` (whatever the
  config's own `scan_layers`): the figure that must stay flat in depth."""
  cfg = config_lib.load_like(cfg, [f"model.num_layers={num_layers}", "model.scan_layers=True"])
  mesh, _, optim = loop.validate(cfg)
  trainer = step_lib.Trainer(config_lib.model_config(cfg), optim, mesh, seed=cfg.seed)
  abstract_batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=trainer.batch_sharding)
                    for k, v in synthetic_batch(cfg.data.batch_size, cfg.data.seq_len, 8).items()}
  abstract_state = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                                trainer.abstract_state, trainer.state_shardings)
  start = time.perf_counter()
  trainer.train_step.lower(abstract_state, abstract_batch).compile()
  return time.perf_counter() - start


def loop_overhead(cfg, steps: int) -> dict:
  """Wall time per step of the real loop (data, metrics, checkpoints) vs the bare step."""
  with tempfile.TemporaryDirectory() as workdir:
    cfg = config_lib.load_like(cfg, [f"train.steps={steps + 10}", "train.log_every=1",
                                     f"train.eval_every={steps + 10}", "logging.progress_bar=False",
                                     "checkpoint.save_step0=False"])
    loop.train(cfg, workdir, say=lambda *a, **k: None, stop_after=steps)
    records = [r for r in metrics_lib.read(workdir) if r["split"] == "train"]
  warm = records[3:]  # skip compilation and the first steps
  # step_time_s of each record is the wall time between consecutive host records
  per_step = float(np.median([r["step_time_s"] for r in warm]))
  return {"loop_step_s": per_step, "loop_steps": len(warm)}


def run(cfg, steps: int = 10, skip_peak: bool = False, compile_depths: str = "",
        loop_steps: int = 0, parts: bool = False, peak_size: int = 4096) -> dict:
  result = {"backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
            "host_memory": host_memory.status()}
  paired_peak = None
  if not skip_peak:
    result["peak_flops_f32"] = matmul_peak(jnp.float32, peak_size)
    result["peak_flops_bf16"] = matmul_peak(jnp.bfloat16, peak_size)
    dtype = jnp.bfloat16 if cfg.model.dtype == "bfloat16" else jnp.float32
    paired_peak = lambda: matmul_peak(dtype, peak_size, repeats=3)  # noqa: E731
  result["step"] = step_timing(cfg, steps, paired_peak)
  if not skip_peak:
    peak = result["peak_flops_bf16" if cfg.model.dtype == "bfloat16" else "peak_flops_f32"]
    step = result["step"]
    # Headline: median over steps of (step FLOP/s / the peak measured right after it).
    result["mfu"] = float(np.median(step["paired_mfu"]))
    # Stricter: the median step against the best peak seen anywhere in this run.
    result["mfu_vs_best_peak"] = step["flops_per_s"] / max([peak, *step["paired_peaks"]])
  if compile_depths:
    depths = [int(d) for d in compile_depths.split(",")]
    times = {d: compile_time(cfg, d) for d in depths}
    result["compile_s_by_depth"] = times
    result["compile_ratio_last_over_first"] = times[depths[-1]] / times[depths[0]]
  if parts:
    result["breakdown"] = breakdown(cfg)
  if loop_steps:
    result["loop"] = loop_overhead(cfg, loop_steps)
    result["loop"]["loop_over_step"] = result["loop"]["loop_step_s"] / result["step"]["step_s"]
  return result
