"""Tiny: a 4-layer, 128-wide decoder that trains on a laptop CPU in minutes.

Command: `llm-input params --config configs/tiny.py`.
"""

from configs import base


def get_config(arg: str | None = None):
  del arg
  cfg = base.get_config()
  cfg.model.vocab_size = 4096
  cfg.model.d_model = 128
  cfg.model.num_layers = 4
  cfg.model.num_heads = 4
  cfg.model.max_len = 256
  cfg.data.seq_len = 256
  return cfg
