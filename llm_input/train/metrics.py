"""What a step costs and what it did: analytic FLOPs and memory, and the metric writers.

`flops_per_step` feeds tokens/s -> FLOP/s and MFU; `estimate_memory` sizes a config before
anything is allocated; `MetricWriter` appends to the run folder's metrics.jsonl and TensorBoard.
"""

from __future__ import annotations

import time
import uuid

from llm_input.model import transformer
from llm_input.model.config import ModelConfig
from llm_input.runs import RunFolder
from llm_input.train import sharding as sharding_lib


class MetricWriter:
  """metrics.jsonl and TensorBoard events, both written in the calling thread.

  TensorBoard's usual writer (tensorboardX's SummaryWriter) writes from a background thread:
  when that thread fails (a full disk, a read-only folder) it dies, its queue fills and the
  trainer blocks forever on the next scalar. Here each event is appended and flushed where
  it is logged, so a failed write raises OSError in the loop like any other write.
  """

  def __init__(self, run: RunFolder, tensorboard: bool = True, enabled: bool = True,
               purge_step: int | None = None):
    """`purge_step`: on resume, TensorBoard events at and after this step (written by the
    interrupted segment) are superseded, so curves do not double back."""
    self.enabled = enabled
    self.run = run
    self.events = None
    if enabled and tensorboard:
      from tensorboardX import summary  # noqa: PLC0415
      from tensorboardX.event_file_writer import EventsWriter  # noqa: PLC0415
      from tensorboardX.proto.event_pb2 import Event, SessionLog  # noqa: PLC0415

      self._scalar_event = lambda step, tag, value, now: Event(  # noqa: E731
          wall_time=now, step=step, summary=summary.scalar(tag, value))

      run.tensorboard_dir.mkdir(parents=True, exist_ok=True)
      # The file is named by the second and the host and opened with "wb": a unique suffix
      # keeps a resume within the same second from truncating the previous segment's file.
      self.events = EventsWriter(str(run.tensorboard_dir / "events"),
                                 filename_suffix=f".{uuid.uuid4().hex[:8]}")
      if purge_step is not None:  # what SummaryWriter(purge_step=...) writes
        self.events.write_event(Event(step=purge_step, file_version="brain.Event:2"))
        self.events.write_event(Event(step=purge_step,
                                      session_log=SessionLog(status=SessionLog.START)))
      self.events.flush()

  def write(self, step: int, split: str, values: dict) -> None:
    if not self.enabled:
      return
    self.run.append_metrics({"step": int(step), "split": split, "time": time.time(),
                             **{k: float(v) for k, v in values.items()}})
    if self.events is not None:
      now = time.time()
      try:
        for key, value in values.items():
          self.events.write_event(self._scalar_event(int(step), f"{split}/{key}", float(value), now))
        self.events.flush()
      except OSError as err:  # name the file: a failed write() or fsync() carries no filename
        raise OSError(err.errno, err.strerror, str(self.run.tensorboard_dir)) from err

  def close(self) -> None:
    if self.events is not None:
      events, self.events = self.events, None
      try:
        events.close()
      except OSError:
        pass  # the write that failed has already raised in write()


def flops_per_step(cfg: ModelConfig, batch: int, seq_len: int) -> float:
  """Analytic training FLOPs: 6 x (non-embedding-lookup params) x tokens, plus attention.

  Matmul parameters: every kernel plus the output head (the input lookup is a gather, not a
  matmul). Attention scores and the weighted sum cost 2 x 2 x L x L x d_model per layer and
  sequence forward; causal attention needs only half of that, counted once (x 1/2); backward
  is twice the forward (x 3 in all).
  """
  d, f, h, k, dh = cfg.d_model, cfg.mlp_width, cfg.num_heads, cfg.kv_heads, cfg.d_head
  attention_params = d * h * dh + 2 * d * k * dh + h * dh * d
  mlp_params = (3 if cfg.mlp == "swiglu" else 2) * d * f
  matmul_params = cfg.num_layers * (attention_params + mlp_params) + d * cfg.vocab_size
  tokens = batch * seq_len
  dense = 6 * matmul_params * tokens
  attention = 3 * cfg.num_layers * batch * (2 * 2 * seq_len * seq_len * h * dh) / 2
  return float(dense + attention)


def estimate_memory(model_cfg, batch_size: int, seq_len: int, mesh_sizes: dict[str, int],
                      device_count: int) -> dict[str, float]:
  """An estimate of training memory per device, in bytes, before anything is allocated.

  - State: parameters, gradients and AdamW's two moments, float32 (16 bytes per parameter),
    split over the fsdp x tensor shards.
  - Saved activations (Korthikanti et al. 2022, without sequence parallelism): per layer
    s*b*d*(10 + 24/t + 5*heads*s/(d*t)) bytes at 16-bit (doubled for float32) with t the
    tensor axis; with full remat only each block's input (2*s*b*d at 16-bit) is kept, and one
    block's activations are rebuilt at a time in the backward pass. Batch is split over
    data x fsdp.
  - Logits: b*s*vocab float32, twice (the loss's input and its gradient), split over tensor
    when it divides the vocabulary.
  - Gathered weights (when parameters are sharded): the larger of one layer's weights in the
    compute dtype, gathered for the forward and again for the backward, plus its float32
    gradient before the reduction; and the embedding table (and untied head) gathered with
    their float32 gradients. Both split over tensor where it divides them.

  Checked against XLA's compiled figures for the presets (README, "Before renting a slice").
  """
  data, fsdp, tensor = sharding_lib.mesh_shape(mesh_sizes, device_count)
  params = transformer.count_params(model_cfg)
  state = 16 * params / (fsdp * tensor)
  local_batch = batch_size / (data * fsdp)
  width = 2 if model_cfg.dtype == "bfloat16" else 4
  s, d, heads = seq_len, model_cfg.d_model, model_cfg.num_heads
  # Tensor parallelism splits the attention and MLP internals (24 of the 34 and the scores),
  # not the residual stream and norms (10), nor a vocabulary it does not divide.
  full_layer = s * local_batch * d * (10 + 24 / tensor + 5 * heads * s / (d * tensor)) * width / 2
  if model_cfg.remat == "full":
    per_layer = 2 * s * local_batch * d * width / 2
    activations = model_cfg.num_layers * per_layer + full_layer
  else:
    activations = model_cfg.num_layers * full_layer
  vocab_split = tensor if model_cfg.vocab_size % tensor == 0 else 1
  logits = 2 * 4 * local_batch * s * model_cfg.vocab_size / vocab_split
  gathered = 0.0
  if fsdp > 1:
    table = model_cfg.vocab_size * d * (1 if model_cfg.tie_embeddings else 2)
    layer = (params - table) / model_cfg.num_layers
    gathered = max(layer * (2 * width + 4) / tensor, table * (width + 4) / vocab_split)
  return {"params": params, "mesh": dict(zip(sharding_lib.MESH_AXES, (data, fsdp, tensor))),
          "state_bytes": state, "activation_bytes": activations, "logits_bytes": logits,
          "gathered_bytes": gathered, "total_bytes": state + activations + logits + gathered}


class Throughput:
  """Tokens/s, FLOP/s and seconds per step over the steps counted since the last `rates()`."""

  def __init__(self, tokens_per_step: int, flops_per_step: float):
    self.tokens_per_step, self.flops_per_step = tokens_per_step, flops_per_step
    self.start, self.steps = time.perf_counter(), 0

  def count(self) -> None:
    self.steps += 1

  def rates(self) -> dict:
    """The window's rates; starts the next window."""
    elapsed = max(time.perf_counter() - self.start, 1e-9)
    steps = max(self.steps, 1)
    out = {"tokens_per_s": self.steps * self.tokens_per_step / elapsed,
           "flops_per_s": self.steps * self.flops_per_step / elapsed, "step_time_s": elapsed / steps}
    self.start, self.steps = time.perf_counter(), 0
    return out


def progress_bar(enabled: bool, total: int, initial: int):
  """The training loop's tqdm bar (loss and tokens/s beside it), or None."""
  if not enabled:
    return None
  from tqdm import tqdm  # noqa: PLC0415

  return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)
