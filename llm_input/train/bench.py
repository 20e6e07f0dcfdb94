"""`llm-input bench`: the train step's speed as ratios measured in one process.

Reports the machine's matmul peak (float32 and bfloat16), the jitted step's tokens/s and
FLOP/s (analytic FLOPs, causal attention counted once), MFU = achieved / measured peak of the
step's compute dtype (against the mean of the peak measured before and after the steps, since
a shared machine's speed drifts by 10-20% within minutes; also the stricter ratio against the
better of the two), compile time, peak memory; optionally the compile time of scanned stacks
of several depths (scan forced on, whatever the config says), the step against a hand-written
plain-JAX GPT-2 step timed alternately (`--plain-jax`), and the real loop's wall time per step against the bare step's.
"""

from __future__ import annotations

import collections
import glob
import re
import resource
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from llm_input import config as config_lib
from llm_input import host_memory
from llm_input.errors import ConfigError
from llm_input.runs import RunFolder
from llm_input.train import checkpoint as checkpoint_lib
from llm_input.train import loop
from llm_input.train import metrics as metrics_lib
from llm_input.train import optim as optim_lib
from llm_input.train import step as step_lib
from llm_input.train import sections as sections_lib


def timed(fn, *args):
  """(fn(*args), seconds), waiting for the computation to finish."""
  start = time.perf_counter()
  out = jax.block_until_ready(fn(*args))
  return out, time.perf_counter() - start


def matmul_peak(dtype, size: int = 4096, repeats: int = 5) -> float:
  """Best FLOP/s of a size x size x size matmul (the machine's practical peak)."""
  a = jax.random.normal(jax.random.key(0), (size, size), dtype)
  b = jax.random.normal(jax.random.key(1), (size, size), dtype)
  f = jax.jit(lambda x, y: x @ y)
  timed(f, a, b)
  return 2 * size ** 3 / min(timed(f, a, b)[1] for _ in range(repeats))


def synthetic_batch(batch: int, seq_len: int, vocab: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  ids = rng.integers(3, vocab, size=(batch, seq_len + 1)).astype(np.int32)
  ones = np.ones((batch, seq_len), np.int32)
  return {"inputs": ids[:, :-1], "targets": ids[:, 1:], "segment_ids": ones,
          "positions": np.tile(np.arange(seq_len, dtype=np.int32), (batch, 1)),
          "loss_mask": ones, "target_bytes": ones * 4}


def setup(cfg, device_count: int | None = None):
  """(model config, mesh, trainer, initialised state, host batch, device batch) for `cfg`,
  with a synthetic batch of the config's shape."""
  sections = sections_lib.validate(cfg, device_count)
  mesh, model_cfg = sections.mesh, sections.model
  trainer = step_lib.Trainer(model_cfg, sections.optim, mesh, seed=cfg.seed, rules=sections.rules)
  host_batch = synthetic_batch(cfg.data.batch_size, cfg.data.seq_len, model_cfg.vocab_size)
  batch = {k: jax.device_put(v, trainer.batch_sharding) for k, v in host_batch.items()}
  return model_cfg, mesh, trainer, trainer.init_state(), host_batch, batch


def time_steps(compiled, state, batch, steps: int) -> tuple[dict, list[float]]:
  """(state after, seconds of each of `steps` back-to-back steps of the compiled step)."""
  times = []
  for _ in range(steps):
    (state, _), seconds = timed(compiled, state, batch)
    times.append(seconds)
  return state, times


def step_timing(cfg, steps: int) -> dict:
  """The jitted step's median time over `steps` back-to-back steps (each time is kept)."""
  model_cfg, mesh, trainer, state, _, batch = setup(cfg)
  start = time.perf_counter()
  compiled = trainer.train_step.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  state, _ = time_steps(compiled, state, batch, 1)  # warm-up
  usage_before = resource.getrusage(resource.RUSAGE_SELF)
  state, times = time_steps(compiled, state, batch, steps)
  usage = resource.getrusage(resource.RUSAGE_SELF)
  step_s = float(np.median(times))
  flops = metrics_lib.flops_per_step(model_cfg, cfg.data.batch_size, cfg.data.seq_len)
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
          # host-side cost of the step's buffers (see llm_input/host_memory.py)
          "page_faults_per_step": (usage.ru_minflt - usage_before.ru_minflt) / max(steps, 1),
          "system_s_per_step": (usage.ru_stime - usage_before.ru_stime) / max(steps, 1)}


def breakdown(cfg, repeats: int = 2) -> dict:
  """Seconds of the step's parts, each jitted alone: forward + loss, forward + backward, AdamW."""
  _, _, trainer, state, _, batch = setup(cfg)

  def best(fn, *args):
    timed(fn, *args)
    return min(timed(fn, *args)[1] for _ in range(repeats))

  loss = lambda params, b: trainer.loss_sums(params, b)[0]  # noqa: E731
  grads = jax.jit(jax.grad(loss))(state["params"], batch)
  return {"forward_loss_s": best(jax.jit(loss), state["params"], batch),
          "forward_backward_s": best(jax.jit(jax.grad(loss)), state["params"], batch),
          "optimizer_s": best(jax.jit(trainer.optimizer.update), grads, state["opt_state"], state["params"])}


# The model's and the step's jax.named_scope names, most specific first: an XLA op belongs to
# the first of these in its op_name (a fusion carries its root op's name).
# `head_and_loss` is the chunked head + loss (`model.head_loss_chunk`): its backward is computed
# in the same forward pass, so it has no "(backward)" share of its own.
PROFILE_PARTS = ("attention_core", "attention", "mlp", "norm", "head_and_loss", "head", "loss",
                 "embedding", "positions", "optimizer")
_INSTRUCTION = re.compile(
    r"^\s*(?:ROOT )?%?([\w.\-]+) = (?:\([^=]*?\)|\S+) ([\w\-]+)\(.*?op_name=\"([^\"]*)\"")
_COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "collective-permute", "all-to-all")


def _op_parts(hlo_text: str) -> dict[str, str]:
  """HLO instruction name -> 'part' or 'part (backward)', from the ops' name-stack metadata."""
  parts = {}
  for line in hlo_text.splitlines():
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    name, opcode, op_name = match.groups()
    if opcode.startswith(_COLLECTIVES):  # communication (and, on one host, waiting) between devices
      parts[name] = "collectives"
      continue
    scopes = set(re.split(r"[/()]", op_name))
    part = next((p for p in PROFILE_PARTS if p in scopes), "other")
    parts[name] = f"{part} (backward)" if "transpose(" in op_name and part != "optimizer" else part
  return parts


_COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$")
_CALLS = re.compile(r"(?:calls|to_apply|body|condition)=%?([\w.\-]+)")


def _matmul_ops(hlo_text: str) -> set[str]:
  """Names of the instructions that run a matmul: `dot`s, and fusions (or calls) whose
  computation contains one, however deeply (XLA:CPU fuses elementwise work into its library
  matmul kernels, so such a fusion's time is the matmul's plus what rides along)."""
  body: dict[str, list[str]] = {}
  current = None
  for line in hlo_text.splitlines():
    header = None if line.startswith(" ") else _COMPUTATION.match(line)
    if header:
      current = header.group(1)
      body[current] = []
    elif current is not None:
      body[current].append(line)

  has_dot: dict[str, bool] = {}

  def computation_has_dot(name: str, seen=()) -> bool:
    if name not in has_dot:
      has_dot[name] = name not in seen and any(
          " dot(" in line or any(computation_has_dot(c, (*seen, name)) for c in _CALLS.findall(line))
          for line in body.get(name, ()))
    return has_dot[name]

  ops = set()
  for lines in body.values():
    for line in lines:
      match = _INSTRUCTION.match(line)
      if match and (match.group(2) == "dot" or
                    (match.group(2) in ("fusion", "call") and any(computation_has_dot(c) for c in _CALLS.findall(line)))):
        ops.add(match.group(1))
  return ops


def _union_ns(intervals) -> float:
  total, end = 0.0, -1.0
  for start, stop in sorted(intervals):
    if stop > end:
      total += stop - max(start, end)
      end = stop
  return total


def profile_split(cfg, steps: int = 5, device_count: int | None = None) -> dict:
  """Where the compiled step's time goes, from a `jax.profiler` trace of `steps` steps.

  Every XLA op that ran is attributed by its name-stack metadata to a part of the model or
  step (`PROFILE_PARTS`; backward ops by their `transpose(...)` prefix). Tracing slows the
  ops down, so the parts are reported as shares of the traced op time and, scaled by those
  shares, as seconds of the untraced step's median. `device_busy_share` is the fraction of
  the traced steps' wall time during which at least one XLA thread ran an op (the rest is
  dispatch, waiting and the host); `xla_flops` is XLA's own cost analysis of the compiled step
  (summed over the mesh's devices) against the analytic count the MFU uses.
  """
  model_cfg, mesh, trainer, state, _, batch = setup(cfg, device_count)
  compiled = trainer.train_step.lower(state, batch).compile()
  hlo_text = compiled.as_text()
  parts, matmuls = _op_parts(hlo_text), _matmul_ops(hlo_text)
  state, _ = time_steps(compiled, state, batch, 2)  # warm-up
  state, untraced = time_steps(compiled, state, batch, steps)
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    start = time.perf_counter()
    state, _ = time_steps(compiled, state, batch, steps)
    traced_wall_s = time.perf_counter() - start
    jax.profiler.stop_trace()
    trace = jax.profiler.ProfileData.from_file(
        glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[0])
  by_part: collections.Counter = collections.Counter()
  matmul_by_part: collections.Counter = collections.Counter()
  intervals = []
  for plane in trace.planes:
    for line in plane.lines:
      if not line.name.startswith("tf_XLA"):
        continue
      for event in line.events:
        part = parts.get(event.name)
        if part is None or event.duration_ns <= 0:
          continue  # executor and thread-pool bookkeeping, not an op
        by_part[part] += event.duration_ns
        if event.name in matmuls:
          matmul_by_part[part] += event.duration_ns
        intervals.append((event.start_ns, event.start_ns + event.duration_ns))
  op_ns = sum(by_part.values())
  step_s = float(np.median(untraced))
  shares = {part: ns / op_ns for part, ns in by_part.most_common()} if op_ns else {}
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  analytic = metrics_lib.flops_per_step(model_cfg, cfg.data.batch_size, cfg.data.seq_len)
  return {"step_s": step_s, "traced_step_s": traced_wall_s / steps, "shares": shares,
          "seconds": {part: share * step_s for part, share in shares.items()},
          # of each part's op time, the share spent in ops that run a matmul (the rest is
          # elementwise work, reductions, layout copies: memory-bound passes)
          "matmul_shares": {part: matmul_by_part[part] / ns for part, ns in by_part.items() if ns},
          "matmul_share": sum(matmul_by_part.values()) / op_ns if op_ns else 0.0,
          "device_busy_share": _union_ns(intervals) / (traced_wall_s * 1e9),
          # the cost analysis is of one device's partitioned program
          "xla_flops": float(cost.get("flops", 0.0)) * mesh.devices.size if cost else None,
          "analytic_flops": analytic}


def format_profile(profile: dict) -> str:
  """The split as a table a researcher reads: part, share, ms of the untraced step."""
  lines = [f"step {profile['step_s'] * 1e3:.1f} ms (traced {profile['traced_step_s'] * 1e3:.1f} ms); "
           f"device busy {100 * profile['device_busy_share']:.1f}% of the traced wall time; "
           f"XLA counts {profile['xla_flops'] / 1e9:.2f} GFLOP, the MFU's analytic count "
           f"{profile['analytic_flops'] / 1e9:.2f}; {100 * profile['matmul_share']:.1f}% of the op "
           f"time in ops that run a matmul",
           "| part | share | ms per step | of which in matmul ops |", "| --- | --- | --- | --- |"]
  lines += [f"| {part} | {100 * share:.1f}% | {profile['seconds'][part] * 1e3:.1f} | "
            f"{100 * profile['matmul_shares'][part]:.0f}% |" for part, share in profile["shares"].items()]
  return "\n".join(lines)


def compile_time(cfg, num_layers: int) -> float:
  """Seconds to compile the train step of a *scanned* stack of `num_layers` (whatever the
  config's own `scan_layers`): the figure that must stay flat in depth."""
  cfg = config_lib.load_like(cfg, [f"model.num_layers={num_layers}", "model.scan_layers=True"])
  sections = sections_lib.validate(cfg)
  trainer = step_lib.Trainer(sections.model, sections.optim, sections.mesh, seed=cfg.seed,
                             rules=sections.rules)
  abstract_batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=trainer.batch_sharding)
                    for k, v in synthetic_batch(cfg.data.batch_size, cfg.data.seq_len, 8).items()}
  abstract_state = checkpoint_lib.abstract_arrays(trainer.abstract_state, trainer.state_shardings)
  start = time.perf_counter()
  trainer.train_step.lower(abstract_state, abstract_batch).compile()
  return time.perf_counter() - start


def loop_overhead(cfg, steps: int) -> dict:
  """Wall time per step of the real loop (data, metrics, checkpoints) vs the bare step, at the
  config's own train.log_every (the host fetches metrics once per that many steps)."""
  every = int(cfg.train.log_every)
  steps = max(steps, 2 * every)  # at least one window after the one that compiles
  with tempfile.TemporaryDirectory() as workdir:
    cfg = config_lib.load_like(cfg, [f"train.steps={steps + 10}", f"train.eval_every={steps + 10}",
                                     "logging.progress_bar=False", "checkpoint.save_step0=False"])
    loop.train(cfg, workdir, say=lambda *a, **k: None, stop_after=steps)
    records = [r for r in RunFolder(workdir).read_metrics() if r["split"] == "train"]
  warm = [r for r in records if r["step"] > max(3, every)]  # skip compilation and the first steps
  # step_time_s of each record is the wall time between consecutive host records
  per_step = float(np.median([r["step_time_s"] for r in warm]))
  return {"loop_step_s": per_step, "loop_steps": len(warm)}


def plain_jax_loss(params: dict, ids_BxL, targets_BxL, num_heads: int, eps: float):
  """GPT-2 written out in plain jax.numpy on the same parameter tree: no modules, no sharding
  annotations, no custom VJPs, jax.lax.scan over the stacked layers. The yardstick for what
  the model's abstractions cost (`llm-input bench --plain-jax`)."""
  _, length = ids_BxL.shape
  causal = jnp.tril(jnp.ones((length, length), bool))

  def norm(x, p):
    mean = x.mean(-1, keepdims=True)
    var = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]

  def block(x, p):
    a, m = p["attention"], p["mlp"]
    h = norm(x, p["attention_norm"])
    q = jnp.einsum("bld,dhk->blhk", h, a["q_kernel"]) + a["q_bias"]
    k = jnp.einsum("bld,dhk->blhk", h, a["k_kernel"]) + a["k_bias"]
    v = jnp.einsum("bld,dhk->blhk", h, a["v_kernel"]) + a["v_bias"]
    scores = jnp.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(q.shape[-1])
    weights = jax.nn.softmax(jnp.where(causal, scores, -1e30), axis=-1)
    attended = jnp.einsum("bhqs,bshk->bqhk", weights, v)
    x = x + jnp.einsum("blhk,hkd->bld", attended, a["o_kernel"]) + a["o_bias"]
    h = norm(x, p["mlp_norm"])
    up = jax.nn.gelu(h @ m["up_kernel"] + m["up_bias"], approximate=True)
    return x + up @ m["down_kernel"] + m["down_bias"], None

  table = params["embedding"]["table"]
  x = table[ids_BxL] + params["positions"]["table"][:length]
  x, _ = jax.lax.scan(block, x, params["blocks"])
  logits = norm(x, params["final_norm"]) @ table.T
  log_z = jax.nn.logsumexp(logits, axis=-1)
  return (log_z - jnp.take_along_axis(logits, targets_BxL[..., None], -1)[..., 0]).mean()


def plain_jax_comparison(cfg, steps: int) -> dict:
  """Our train step and a plain-JAX GPT-2 step (same parameters, optax AdamW with clipping),
  timed alternately in one process on one device, so the machine's drift hits both alike."""
  model_cfg = sections_lib.model_config(cfg)
  shape = (model_cfg.positions, model_cfg.norm, model_cfg.mlp, model_cfg.tie_embeddings,
           model_cfg.use_bias, model_cfg.kv_heads == model_cfg.num_heads, model_cfg.dtype,
           model_cfg.causal)
  if shape != ("learned", "layernorm", "gelu", True, True, True, "float32", True):
    raise ConfigError(
        "bench --plain-jax compares against a hand-written GPT-2: it needs learned positions, "
        "layernorm, gelu, tied embeddings, biases, multi-head attention, float32 and a causal "
        "mask (e.g. configs/gpt2_small.py:runlocal)")
  _, _, trainer, state, host_batch, batch = setup(cfg, device_count=1)  # both on one device
  optim = trainer.optim_cfg
  ours = trainer.train_step.lower(state, batch).compile()

  tx = optax.chain(optax.clip_by_global_norm(optim.grad_clip_norm),
                   optax.adamw(optim_lib.learning_rate_schedule(optim), b1=optim.b1, b2=optim.b2,
                               eps=optim.eps, weight_decay=optim.weight_decay))

  def plain_step(params, opt_state, ids, targets):
    loss, grads = jax.value_and_grad(plain_jax_loss)(params, ids, targets, model_cfg.num_heads,
                                                     model_cfg.norm_eps)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  plain = jax.jit(plain_step, donate_argnums=(0, 1))
  params = jax.tree.map(jnp.copy, state["params"])
  opt_state = tx.init(params)
  ids, targets = jnp.asarray(host_batch["inputs"]), jnp.asarray(host_batch["targets"])
  (state, _), _ = timed(ours, state, batch)
  (params, opt_state, _), _ = timed(plain, params, opt_state, ids, targets)
  ours_s, plain_s = [], []
  for _ in range(steps):
    (state, _), seconds = timed(ours, state, batch)
    ours_s.append(seconds)
    (params, opt_state, _), seconds = timed(plain, params, opt_state, ids, targets)
    plain_s.append(seconds)
  return {"step_times_s": ours_s, "plain_jax_step_times_s": plain_s,
          "step_s": float(np.median(ours_s)), "plain_jax_step_s": float(np.median(plain_s)),
          "step_over_plain_jax": float(np.median(ours_s) / np.median(plain_s))}


def run(cfg, steps: int = 10, skip_peak: bool = False, compile_depths: str = "",
        loop_steps: int = 0, parts: bool = False, peak_size: int = 4096,
        plain_jax: bool = False, profile: bool = False) -> dict:
  result = {"backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
            "host_memory": host_memory.status()}
  if not skip_peak:
    result["peak_flops_f32"] = matmul_peak(jnp.float32, peak_size)
    result["peak_flops_bf16"] = matmul_peak(jnp.bfloat16, peak_size)
  result["step"] = step_timing(cfg, steps)
  if not skip_peak:
    bf16 = cfg.model.dtype == "bfloat16"
    key = "peak_flops_bf16" if bf16 else "peak_flops_f32"
    # The peak again right after the steps: a shared machine drifts within minutes.
    after = matmul_peak(jnp.bfloat16 if bf16 else jnp.float32, peak_size)
    result[key + "_after"] = after
    result["mfu"] = result["step"]["flops_per_s"] / ((result[key] + after) / 2)
    result["mfu_vs_best_peak"] = result["step"]["flops_per_s"] / max(result[key], after)
  if compile_depths:
    depths = [int(d) for d in compile_depths.split(",")]
    times = {d: compile_time(cfg, d) for d in depths}
    result["compile_s_by_depth"] = times
    result["compile_ratio_last_over_first"] = times[depths[-1]] / times[depths[0]]
  if parts:
    result["breakdown"] = breakdown(cfg)
  if plain_jax:
    result["plain_jax"] = plain_jax_comparison(cfg, steps)
  if profile:
    result["profile"] = profile_split(cfg, min(steps, 5))
  if loop_steps:
    result["loop"] = loop_overhead(cfg, loop_steps)
    result["loop"]["loop_over_step"] = result["loop"]["loop_step_s"] / result["step"]["step_s"]
  return result
