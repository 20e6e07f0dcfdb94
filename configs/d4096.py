"""A 4096-wide decoder (32 layers, 32 heads of 128; RoPE, SwiGLU, RMSNorm, no biases,
untied head, vocab 50257): a 7B-class shape, sized abstractly and meant for TPU slices.

Command: `llm-input params --config configs/d4096.py` prints its count in seconds without
allocating it.
"""

from configs import base


def get_config(arg: str | None = None):
  cfg = base.get_config()
  m = cfg.model
  m.d_model = 4096
  m.num_layers = 32
  m.num_heads = 32
  m.positions = "rope"
  m.mlp = "swiglu"
  m.d_mlp = 11008
  m.norm = "rmsnorm"
  m.use_bias = False
  m.tie_embeddings = False
  m.dtype = "bfloat16"
  m.remat = "full"
  cfg.data.seq_len = 2048
  if arg == "runlocal":
    m.num_layers = 2
    cfg.data.seq_len = 128
  return cfg
