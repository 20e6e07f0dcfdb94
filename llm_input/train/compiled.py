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
import math
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
      trip = _TRIP_COUNT.search(line)
      for role, callee in _CALLEE.findall(line):
        callee = callee.lstrip("%")
        if callee in runs:
          factor = int(trip.group(1)) if (role == "body" and trip) else 1
          runs[callee] += runs[name] * factor
      for group in _CALLEE_LISTS.findall(line):
        for callee in group.split(","):
          callee = callee.strip().lstrip("%")
          if callee in runs:
            runs[callee] += runs[name]
  return runs


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
