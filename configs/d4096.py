"""A 4096-wide decoder (32 layers, 32 heads of 128; RoPE, SwiGLU, RMSNorm, no biases,
untied head, vocab 50257): a 7B-class shape, sized abstractly and meant for TPU slices.

Command: `llm-input params --config configs/d4096.py --devices 256` prints its count
(6,887,976,960) and the estimated training memory per chip on a 256-chip slice (FSDP over all
chips, batch 256 x 2048) in about a second, without allocating anything.
`llm-input preflight --config configs/d4096.py --topology v5p:8x8x4` compiles the real step
with XLA:TPU for 256 v5p chips (about 3 min on a 2-core CPU, no TPU needed): 39.38 GiB of
95.74 GiB HBM per chip (41%). So no activation recomputation: it would cost a third more
FLOPs per step to save memory this slice does not need (`--config.model.remat=full`: 3.94 GiB,
4.2%; use it for a larger batch or fewer chips).
Hardware: a TPU v5p-256 slice (v5p:8x8x4); launch with launch/tpu.py (see README).
"""

from configs import base


ARGS = ('runlocal',)  # the accepted `:ARG` suffixes (config.load refuses others)

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
  m.remat = "none"  # fits v5p:8x8x4 at 41% of HBM (see the docstring)
  cfg.data.seq_len = 2048
  cfg.data.batch_size = 256
  cfg.mesh.data = 1  # shard parameters and optimizer state over every chip (FSDP)
  cfg.mesh.fsdp = -1
  if arg == "runlocal":
    cfg.data.batch_size = 8
    cfg.mesh.data, cfg.mesh.fsdp = -1, 1
    m.num_layers = 2
    cfg.data.seq_len = 128
  return cfg
