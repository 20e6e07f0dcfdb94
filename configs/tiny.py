"""Tiny: a 4-layer, 128-wide decoder (1.35M parameters, bpe 4096) for a laptop CPU.

Command: `llm-input train --config configs/tiny.py --workdir runs/tiny` (what `make demo` runs).
Hardware: 2-core x86 CPU. Time: 600 steps of 16 x 256 tokens at ~0.4 s/step (4 min 00 s),
4 min 8 s for the whole `make demo` with the corpus prepared (2026-11-29).
Result (2026-12-01, subwords encoded line by line as SentencePiece trained them): validation
loss 4.7838 nats/token, perplexity 119.56, 2.4316 bits per byte (2.4535 when documents were
encoded whole, 2.5993 with the previous pipeline, whose batches were slices of one play).
"""

from configs import base


ARGS = ()  # the accepted `:ARG` suffixes (config.load refuses others)

def get_config(arg: str | None = None):
  del arg
  cfg = base.get_config()
  cfg.tokenizer.kind = "bpe"
  cfg.tokenizer.vocab_size = 4096
  cfg.model.d_model = 128
  cfg.model.num_layers = 4
  cfg.model.num_heads = 4
  cfg.model.max_len = 256
  cfg.data.seq_len = 256
  cfg.data.batch_size = 16
  cfg.optimizer.learning_rate = 3e-3
  cfg.optimizer.weight_decay = 0.0
  cfg.schedule.warmup_steps = 50
  cfg.train.steps = 600
  cfg.train.eval_every = 200
  cfg.train.log_every = 10
  cfg.checkpoint.every_steps = 200
  cfg.checkpoint.every_minutes = 2.0
  return cfg
