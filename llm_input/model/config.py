"""The typed model configuration: every architectural choice the model files read.

Validated on construction so a bad sweep value fails before anything compiles.
"""

from __future__ import annotations

import dataclasses
import math

from llm_input.errors import ConfigError

POSITIONS = ("none", "learned", "sinusoidal", "rope")
MLPS = ("gelu", "swiglu")
NORMS = ("layernorm", "rmsnorm")
# blocked: causal self-attention in query blocks that skip wholly future keys (training);
# reference: one L x S score matrix (what the analysis reads weights from);
# fused: jax.nn.dot_product_attention, the backend's kernel where it has one.
# Where blocked or fused cannot apply (attention weights requested, non-causal, KV-cache
# decoding for blocked) the reference computation runs.
ATTENTION_IMPLS = ("blocked", "reference", "fused")
REMAT_POLICIES = ("none", "full", "dots")
# What the attention scores Q K^T are multiplied by: 1/sqrt(d_head) (the transformer's), or
# nothing ("none", for the experiment that asks what the scale buys; never for a real model).
ATTENTION_SCALES = ("sqrt", "none")
DTYPES = ("float32", "bfloat16")



@dataclasses.dataclass(frozen=True)
class ModelConfig:
  vocab_size: int
  d_model: int
  num_layers: int
  num_heads: int
  num_kv_heads: int | None = None  # None: = num_heads (multi-head); 1: multi-query.
  d_mlp: int | None = None  # None: 4 * d_model (gelu) or 8/3 * d_model rounded up to 64 (swiglu).
  mlp: str = "gelu"
  positions: str = "learned"
  max_len: int = 1024  # Rows of the learned position table (the data's seq_len must fit).
  rope_base: float = 10000.0
  norm: str = "layernorm"
  norm_eps: float = 1e-5
  use_bias: bool = True
  qkv_bias: bool | None = None  # Biases on Q, K, V only (Qwen2); None: = use_bias.
  tie_embeddings: bool = True
  scale_embeddings: bool = False  # Multiply token vectors by sqrt(d_model) (Vaswani et al.).
  causal: bool = True  # False only for analysis (e.g. the permutation-invariance check).
  attention_impl: str = "blocked"
  attention_block: int = 128  # blocked: queries per block.
  attention_scale: str = "sqrt"  # Scores times 1/sqrt(d_head) ("sqrt") or unscaled ("none").
  scan_layers: bool = True
  remat: str = "none"
  # Training's output head and loss in chunks of this many positions (the largest divisor of the
  # sequence length up to it), each chunk's logits made, used and dropped while in cache, its
  # gradient computed in the same pass; 0: one (B, L, V) logits array. Only the train step on
  # one device uses it (on a mesh its collectives would repeat per chunk); the numbers are the
  # same either way.
  head_loss_chunk: int = 0
  dtype: str = "float32"  # Compute dtype; parameters are always float32.
  init_std: float = 0.02

  def __post_init__(self):
    def need(cond, field, message):
      if not cond:
        raise ConfigError(f"model.{field}: {message}")

    for name in ("vocab_size", "d_model", "num_layers", "num_heads", "max_len"):
      value = getattr(self, name)
      need(isinstance(value, int) and value > 0, name, f"must be a positive integer, got {value!r}")
    need(self.d_model % self.num_heads == 0, "num_heads",
         f"d_model={self.d_model} must be divisible by num_heads={self.num_heads} "
         f"(choose num_heads among {_divisors(self.d_model)})")
    kv = self.kv_heads
    need(isinstance(kv, int) and kv > 0 and self.num_heads % kv == 0, "num_kv_heads",
         f"num_heads={self.num_heads} must be divisible by num_kv_heads={self.num_kv_heads} "
         f"(choose among {_divisors(self.num_heads)})")
    need(self.mlp in MLPS, "mlp", f"unknown {self.mlp!r}; allowed: {', '.join(MLPS)}")
    need(self.positions in POSITIONS, "positions",
         f"unknown {self.positions!r}; allowed: {', '.join(POSITIONS)}")
    need(self.norm in NORMS, "norm", f"unknown {self.norm!r}; allowed: {', '.join(NORMS)}")
    need(self.attention_impl in ATTENTION_IMPLS, "attention_impl",
         f"unknown {self.attention_impl!r}; allowed: {', '.join(ATTENTION_IMPLS)}")
    need(isinstance(self.attention_block, int) and self.attention_block >= 1, "attention_block",
         f"must be an integer >= 1 (for one L x L matrix use attention_impl=reference), "
         f"got {self.attention_block!r}")
    need(self.attention_scale in ATTENTION_SCALES, "attention_scale",
         f"unknown {self.attention_scale!r}; allowed: {', '.join(ATTENTION_SCALES)}")
    need(self.remat in REMAT_POLICIES, "remat",
         f"unknown {self.remat!r}; allowed: {', '.join(REMAT_POLICIES)}")
    need(isinstance(self.head_loss_chunk, int) and self.head_loss_chunk >= 0, "head_loss_chunk",
         f"must be an integer >= 0 (0 = off), got {self.head_loss_chunk!r}")
    need(self.dtype in DTYPES, "dtype", f"unknown {self.dtype!r}; allowed: {', '.join(DTYPES)}")
    if self.positions == "rope":
      need(self.d_head % 2 == 0, "num_heads",
           f"rope rotates pairs of dimensions, so d_head={self.d_head} must be even")
      need(self.rope_base > 1, "rope_base", f"must be > 1, got {self.rope_base}")
    if self.d_mlp is not None:
      need(isinstance(self.d_mlp, int) and self.d_mlp > 0, "d_mlp",
           f"must be a positive integer or None, got {self.d_mlp!r}")
    need(self.norm_eps > 0, "norm_eps", f"must be > 0, got {self.norm_eps}")
    need(self.init_std > 0, "init_std", f"must be > 0, got {self.init_std}")

  @property
  def d_head(self) -> int:
    return self.d_model // self.num_heads

  @property
  def score_scale(self) -> float:
    """What Q K^T is multiplied by before the softmax."""
    return 1.0 / math.sqrt(self.d_head) if self.attention_scale == "sqrt" else 1.0

  @property
  def has_qkv_bias(self) -> bool:
    return self.use_bias if self.qkv_bias is None else bool(self.qkv_bias)

  @property
  def kv_heads(self) -> int:
    return self.num_heads if self.num_kv_heads is None else self.num_kv_heads

  @property
  def mlp_width(self) -> int:
    if self.d_mlp is not None:
      return self.d_mlp
    if self.mlp == "gelu":
      return 4 * self.d_model
    return -(-(8 * self.d_model // 3) // 64) * 64

  @classmethod
  def from_dict(cls, values) -> "ModelConfig":
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
      raise ConfigError(f"model: unknown field(s) {unknown}; known fields: {sorted(names)}")
    return cls(**dict(values))


def _divisors(n: int) -> list[int]:
  return [d for d in range(1, n + 1) if n % d == 0][:12]


def check_context(cfg: ModelConfig, seq_len: int) -> None:
  """The data's sequence length must fit the model's positions (learned: max_len rows)."""
  if cfg.positions == "learned" and seq_len > cfg.max_len:
    raise ConfigError(f"model.max_len: learned positions have max_len={cfg.max_len} rows but "
                      f"data.seq_len={seq_len}; set model.max_len >= {seq_len}")


def context_length(cfg: ModelConfig, seq_len: int) -> int:
  """Tokens the model can attend over when generating: learned positions stop at max_len;
  the others were trained on seq_len-token windows."""
  return cfg.max_len if cfg.positions == "learned" else seq_len
