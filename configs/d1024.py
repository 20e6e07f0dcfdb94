"""A 1024-wide decoder (GPT-2 medium shape: 24 layers, 16 heads of 64, vocab 50257).

Command: `llm-input params --config configs/d1024.py --devices 8` (354,823,168 parameters,
sized abstractly). Hardware: one GPU or a small TPU slice; `:runlocal` (2 layers, 128 tokens)
is a CPU smoke run. No full training result yet.
"""

from configs import base


ARGS = ('runlocal',)  # the accepted `:ARG` suffixes (config.load refuses others)

def get_config(arg: str | None = None):
  cfg = base.get_config()
  cfg.model.d_model = 1024
  cfg.model.num_layers = 24
  cfg.model.num_heads = 16
  if arg == "runlocal":
    cfg.model.num_layers = 2
    cfg.data.seq_len = 128
  return cfg
