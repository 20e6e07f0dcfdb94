"""What XLA actually compiled for a train step: per-device memory and every collective.

`analyze_step` lowers and compiles the real train step ahead of time against abstract
arrays (nothing is allocated) for any mesh: N simulated CPU devices, or the devices of a TPU
topology description (`preflight`). It reads the compiled module's memory analysis and its
optimized HLO text, and lists each collective with its kind, dtype, shape, bytes and how many
times it runs per step: a collective inside a `while` body (the scanned layer stack, gradient
accumulation) runs as many times as the loop's known trip count.

Bytes of a collective are those of the whole array it assembles or reduces (an all-gather's
result, a reduce-scatter's operand, an all-reduce's operand): a fixed multiple of what each
device sends for a given algorithm, so the figures compare meshes and shardings fairly.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import re

import jax
import jax.numpy as jnp

COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "collective-permute", "all-to-all")
_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4,
          "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16,
          "f8e4m3fn": 1, "f8e5m2": 1, "s4": 0.5, "u4": 0.5, "token": 0}
_ARRAY = re.compile(r"\b([a-z]+[0-9a-z]*)\[([0-9,]*)\]")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?(%?[\w.\-]+)\s*=\s*(.+?)\s+([a-z][\w\-]*)\((.*)$")
_CALLEE = re.compile(r"\b(condition|body|calls|to_apply)=(%?[\w.\-]+)")
_CALLEE_LISTS = re.compile(r"\b(?:branch_computations|called_computations)=\{([^}]*)\}")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')


@dataclasses.dataclass(frozen=True)
class Array:
  dtype: str
  shape: tuple[int, ...]

  @property
  def bytes(self) -> float:
    return _BYTES.get(self.dtype, 4) * math.prod(self.shape)


def _arrays(type_text: str) -> list[Array]:
  return [Array(d, tuple(int(x) for x in s.split(",") if x)) for d, s in _ARRAY.findall(type_text)
          if d in _BYTES]


def _computations(hlo_text: str) -> tuple[dict[str, list[str]], str | None]:
  """{computation name: its instruction lines}, in textual order, and the entry's name."""
  comps: dict[str, list[str]] = {}
  entry, current = None, None
  for line in hlo_text.splitlines():
    if line and not line[0].isspace() and line.rstrip().endswith("{"):
      head = line.split("(")[0].split()
      if head and head[0] == "ENTRY":
        current = head[1].lstrip("%")
        entry = current
      elif head and not head[0].startswith("HloModule"):
        current = head[0].lstrip("%")
      else:
        continue
      comps[current] = []
    elif line.startswith("}"):
      current = None
    elif current is not None:
      comps[current].append(line)
  return comps, entry


def _multipliers(comps: dict[str, list[str]], entry: str | None) -> dict[str, int]:
  """How many times each computation runs per execution of the entry. Callees are printed
  before their callers, so walking the text backwards visits every caller first."""
  runs = dict.fromkeys(comps, 0)
  if entry is None:
    return {name: 1 for name in comps}
  runs[entry] = 1
  for name in reversed(list(comps)):
    if not runs[name]:
      continue
    for line in comps[name]:
      callees = dict((role, callee.lstrip("%")) for role, callee in _CALLEE.findall(line))
      for role, callee in callees.items():
        if callee in runs:
          trip = _trip_count(line, callees.get("condition"), comps) if role == "body" else 1
          runs[callee] += runs[name] * trip
      for group in _CALLEE_LISTS.findall(line):
        for callee in group.split(","):
          callee = callee.strip().lstrip("%")
          if callee in runs:
            runs[callee] += runs[name]
  return runs


def _trip_count(while_line: str, condition: str | None, comps: dict[str, list[str]]) -> int:
  """XLA:CPU/GPU annotate a while loop's known trip count; XLA:TPU's text does not, so read
  the condition: `i < constant(N)` with i counting from 0 in steps of 1 (as lax.scan does)."""
  found = _TRIP_COUNT.search(while_line)
  if found:
    return int(found.group(1))
  lines = comps.get(condition or "", [])
  if any("direction=LT" in line for line in lines):
    bounds = [int(m) for line in lines for m in re.findall(r"= s32\[\]\S* constant\((\d+)\)", line)]
    if len(bounds) == 1:
      return bounds[0]
  return 1


def collectives(hlo_text: str) -> list[dict]:
  """Every collective in an optimized HLO module, one row per array it moves:
  {op, dtype, shape, bytes, count} with `count` the executions per step, merged over
  identical (op, dtype, shape) and sorted by bytes x count, largest first."""
  comps, entry = _computations(hlo_text)
  runs = _multipliers(comps, entry)
  merged: dict[tuple, dict] = {}
  for name, lines in comps.items():
    types: dict[str, str] = {}
    for line in lines:
      match = _INSTRUCTION.match(line)
      if not match:
        continue
      result_name, result_type, op, rest = match.groups()
      types[result_name.lstrip("%")] = result_type
      base = op[:-len("-start")] if op.endswith("-start") else op
      if base not in COLLECTIVES or not runs.get(name):
        continue
      operand_names = re.findall(r"%([\w.\-]+)", rest.split(")")[0])
      operands = [a for n in operand_names for a in _arrays(types.get(n, ""))]
      results = _arrays(result_type)
      if op.endswith("-start") and len(results) > len(operands) and results[:len(operands)] == operands:
        results = results[len(operands):]  # async start: (operands..., results..., context)
      results = results[:len(operands)] if operands and len(results) > len(operands) else results
      pairs = list(zip(operands, results)) if len(operands) == len(results) else [(r, r) for r in results]
      for operand, result in pairs:
        whole = result if result.bytes >= operand.bytes else operand
        key = (base, whole.dtype, whole.shape)
        row = merged.setdefault(key, {"op": base, "dtype": whole.dtype, "shape": list(whole.shape),
                                      "bytes": int(whole.bytes), "count": 0})
        row["count"] += runs[name]
  return sorted(merged.values(), key=lambda r: -r["bytes"] * r["count"])


def abstract_batch(batch_size: int, seq_len: int) -> dict:
  return {k: jax.ShapeDtypeStruct((batch_size, seq_len), jnp.int32)
          for k in ("inputs", "targets", "positions", "segment_ids", "loss_mask", "target_bytes")}


def analyze_step(trainer, batch_size: int, seq_len: int) -> dict:
  """Compiles `trainer.train_step` for its mesh without running it; returns XLA's memory per
  device, the collectives and the communication per step (see the module docstring)."""
  lowered = trainer.train_step.lower(trainer.abstract_state, abstract_batch(batch_size, seq_len))
  compiled = lowered.compile()
  return describe(compiled)


def describe(compiled) -> dict:
  memory = compiled.memory_analysis()
  rows = collectives(compiled.as_text())
  out = {
      "memory": {"argument_bytes": int(memory.argument_size_in_bytes),
                 "temp_bytes": int(memory.temp_size_in_bytes),
                 "output_bytes": int(memory.output_size_in_bytes),
                 "alias_bytes": int(getattr(memory, "alias_size_in_bytes", 0)),
                 "generated_code_bytes": int(getattr(memory, "generated_code_size_in_bytes", 0))},
      "collectives": rows,
      "communication_bytes_per_step": int(sum(r["bytes"] * r["count"] for r in rows)),
  }
  # Live at the peak: arguments, temporaries, and outputs that do not reuse a donated input.
  m = out["memory"]
  m["peak_bytes"] = m["argument_bytes"] + m["temp_bytes"] + m["output_bytes"] - m["alias_bytes"]
  return out


# HBM that XLA:TPU lets one device use, by the device kind JAX reports: the "available HBM"
# figures of the compiler's own out-of-memory messages (libtpu 0.0.42.1). A v4 topology
# description has one device per TensorCore (v4:2x2x1 is 8 devices of 15.25 GiB).
GiB = 2**30
HBM_BYTES = {"TPU v4": int(15.25 * GiB), "TPU v5 lite": int(15.75 * GiB),
             "TPU v5": int(95.74 * GiB), "TPU v6 lite": int(31.25 * GiB)}
_OOM = re.compile(r"(?:temporaries|memory required)[^(]*\(([\d.]+)([KMGT])\)[^(]*available HBM \(([\d.]+)([KMGT])\)")
_UNIT = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_mesh(text: str | None) -> dict[str, int] | None:
  """'D,F,T' (data, fsdp, tensor; one may be -1) -> mesh sizes."""
  from llm_input.errors import ConfigError  # noqa: PLC0415

  if text is None:
    return None
  try:
    values = [int(v) for v in text.split(",")]
  except ValueError:
    values = []
  if len(values) != 3:
    raise ConfigError(f"--mesh {text!r} must be data,fsdp,tensor sizes, e.g. 1,-1,1 (FSDP over "
                      "every chip) or 1,-1,4 (tensor parallelism 4 within FSDP)")
  return dict(zip(("data", "fsdp", "tensor"), values))


def topology_devices(name: str) -> list:
  """The abstract devices of a TPU topology (e.g. v5p:8x8x4), from libtpu; no TPU needed."""
  from llm_input.errors import ConfigError  # noqa: PLC0415

  if importlib.util.find_spec("libtpu") is None:
    raise ConfigError(f"--topology {name}: XLA:TPU is not installed; pip install -e '.[tpu]' "
                      "(the tpu extra pins jax[tpu] at this project's jax; make test installs it)")
  # Only compiling, never running: several processes (pytest workers) may load libtpu at once.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  try:
    from jax.experimental import topologies  # noqa: PLC0415

    topology = topologies.get_topology_desc(platform="tpu", topology_name=name)
  except Exception as err:  # noqa: BLE001 (libtpu raises several kinds)
    text = (str(err).splitlines() or [type(err).__name__])[0]
    raise ConfigError(f"--topology {name}: {text[:200]} (topologies look like v5p:8x8x4, "
                      "v5e:2x2, v4:2x2x1)") from None
  return list(topology.devices)


def advice(cfg) -> str:
  steps = []
  if cfg.model.remat == "none":
    steps.append("model.remat=full (recompute each block in the backward pass)")
  steps += ["more chips (a larger --topology)",
            f"a smaller data.batch_size (now {cfg.data.batch_size}) or "
            "optimizer.grad_accum_steps > 1 (same global batch in micro-batches)",
            "tensor parallelism (--mesh 1,-1,4 or mesh.tensor=4)"]
  if cfg.model.dtype == "float32":
    steps.append("model.dtype=bfloat16")
  return "; ".join(steps)


def compile_report(cfg, mesh, device_count_label: str) -> dict:
  """Builds the trainer for `mesh` and compiles its step; returns `describe`'s dict plus the
  analytic estimate, or {'error': ..., 'required_bytes', 'available_bytes'} when the compiler
  runs out of memory."""
  from llm_input.model import transformer  # noqa: PLC0415
  from llm_input.train import metrics  # noqa: PLC0415
  from llm_input.train import sections as sections_lib  # noqa: PLC0415
  from llm_input.train import sharding as sharding_lib  # noqa: PLC0415
  from llm_input.train.optim import OptimConfig  # noqa: PLC0415
  from llm_input.train.step import Trainer  # noqa: PLC0415

  model_cfg = sections_lib.model_config(cfg)
  trainer = Trainer(model_cfg, OptimConfig.from_config(cfg), mesh,
                    rules=sharding_lib.rules_from_config(cfg.mesh.rules))
  sizes = dict(mesh.shape)
  estimate = metrics.estimate_memory(model_cfg, cfg.data.batch_size, cfg.data.seq_len,
                                       sizes, math.prod(sizes.values()))
  out = {"devices": device_count_label, "mesh": sizes,
         "device_ids": [int(d.id) for d in mesh.devices.ravel()],  # the mesh's device order
         "param_bytes": 4 * transformer.count_params(model_cfg),
         "estimate": {k: v for k, v in estimate.items() if k.endswith("_bytes")}}
  try:
    out.update(analyze_step(trainer, cfg.data.batch_size, cfg.data.seq_len))
  except Exception as err:  # noqa: BLE001
    text = str(err)
    if "RESOURCE_EXHAUSTED" not in text and "Ran out of memory" not in text:
      raise
    out["error"] = next((line for line in text.splitlines() if "memory" in line.lower()), text)[:400]
    found = _OOM.search(text)
    if found:
      out["required_bytes"] = int(float(found.group(1)) * _UNIT[found.group(2)])
      out["available_bytes"] = int(float(found.group(3)) * _UNIT[found.group(4)])
  return out


def preflight(cfg, topology: str, mesh_sizes: dict[str, int] | None = None) -> dict:
  """Compiles the config's train step with XLA:TPU for `topology` on this machine and says
  whether it fits the chips' HBM (see `compile_report`)."""
  from llm_input.train import sharding as sharding_lib  # noqa: PLC0415

  devices = topology_devices(topology)
  sizes = mesh_sizes or sharding_lib.mesh_sizes(cfg.mesh)
  mesh = sharding_lib.make_mesh(sizes, devices)
  kind = getattr(devices[0], "device_kind", "TPU")
  report = compile_report(cfg, mesh, f"{len(devices)} x {kind}")
  hbm = report.get("available_bytes") or HBM_BYTES.get(kind)
  report.update(topology=topology, tpu_devices=len(devices), device_kind=kind, hbm_bytes=hbm)
  if "error" in report:
    report["fits"] = False
  else:
    memory = report["memory"]
    need = memory["peak_bytes"] + memory["generated_code_bytes"]
    report["fits"] = hbm is None or need <= hbm
    report["hbm_used"] = need / hbm if hbm else None
  if not report["fits"]:
    report["advice"] = advice(cfg)
  return report


def zero3_ideal_bytes(report: dict) -> float:
  """The ZeRO-3 traffic of one step: every float32 weight gathered twice and reduced once."""
  return 3.0 * report["param_bytes"]


def format_report(report: dict) -> str:
  """A few lines for a terminal: memory against the estimate (and HBM), the largest
  collectives, and the communication per step."""
  g = lambda b: f"{b / GiB:.2f} GiB"  # noqa: E731
  lines = [f"compiled for {report['devices']} devices, mesh {report['mesh']}"]
  est = report["estimate"]
  if "error" in report:
    lines.append(f"does not compile: {report['error']}")
  else:
    m = report["memory"]
    lines.append(f"XLA per device: arguments {g(m['argument_bytes'])}, temporaries {g(m['temp_bytes'])}, "
                 f"outputs {g(m['output_bytes'])} ({g(m['alias_bytes'])} reuse donated inputs); "
                 f"peak {g(m['peak_bytes'])}")
  lines.append(f"analytic estimate per device: {g(est['total_bytes'])} (state {g(est['state_bytes'])}, "
               f"activations {g(est['activation_bytes'])}, logits {g(est['logits_bytes'])}, "
               f"gathered weights {g(est['gathered_bytes'])})"
               + (f"; XLA's peak / estimate = {report['memory']['peak_bytes'] / est['total_bytes']:.2f}"
                  if "memory" in report else ""))
  if report.get("hbm_bytes"):
    if "error" in report:
      needed = report.get("required_bytes")
      lines.append(f"HBM per device {g(report['hbm_bytes'])}: needs "
                   f"{g(needed) if needed else 'more'} of temporaries alone: DOES NOT FIT")
    else:
      lines.append(f"HBM per device {g(report['hbm_bytes'])}: uses {100 * report['hbm_used']:.1f}% "
                   f"({'fits' if report['fits'] else 'DOES NOT FIT'})")
  if report.get("advice"):
    lines.append(f"to fit, try: {report['advice']}")
  if "collectives" in report:
    rows = report["collectives"]
    lines.append(f"communication per step: {report['communication_bytes_per_step'] / 1e9:.3f} GB "
                 f"({report['communication_bytes_per_step'] / zero3_ideal_bytes(report):.2f}x the "
                 f"ZeRO-3 ideal of 3 x {report['param_bytes'] / 1e9:.3f} GB float32 weights) "
                 f"in {sum(r['count'] for r in rows)} collectives; the largest:")
    for r in rows[:12]:
      shape = f"{r['dtype']}[{','.join(map(str, r['shape']))}]"
      lines.append(f"  {r['count']:>4} x {r['op']:<18} {shape:<24} {r['bytes'] / 1e6:10.2f} MB")
  return "\n".join(lines)
