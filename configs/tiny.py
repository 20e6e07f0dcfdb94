"""Tiny: a 4-layer, 128-wide decoder (1.35M parameters, bpe 4096) for a laptop CPU.

Command: `llm-input train --config configs/tiny.py --workdir runs/tiny` (what `make demo` runs).
Hardware: 2-core x86 CPU (Intel Xeon, AVX-512). Time (2026-12-02): 600 steps of 16 x 256
tokens in 3 min 9 s (~0.29 s/step, MFU 40-41% in `llm-input bench`), 3 min 37 s for the whole
`make demo` with the corpus prepared. On 2 AMD EPYC Zen 4 cores with AVX-512 (2026-12-07):
0.31-0.36 s per step, MFU 52.4-60.5% (median 56.9%) of a 180-201 GFLOP/s peak in five
`llm-input bench` runs; `make demo` 4 min 27 s and 3 min 42 s, its 600 steps 4 min 0 s and
3 min 22 s, 2.4316 bits per byte. On 2 AMD EPYC Zen 3 cores, AVX2 only (2026-12-08), with
64-query attention blocks: 0.38-0.51 s per step, MFU 46.2-60.0% (median 54.9%) of a 129-167
GFLOP/s peak in three `llm-input bench` runs (0.52-0.54 s, 41-46% before), 0.36-0.54 s and
MFU 41.3-58.9% (median 57.1%) in three more; `make demo` from a fresh clone 5 min 59.8 s, its
600 steps 5 min 13 s, and later with the corpus prepared 5 min 10 s and 4 min 37 s, 2.4318
bits per byte.
Result (2026-12-02, subwords encoded line by line as SentencePiece trained them): validation
loss 4.7840 nats/token, perplexity 119.58, 2.4317 bits per byte (2.4317 too before the chunked
head and loss, 2.4535 when documents were encoded whole, 2.5993 with the previous pipeline,
whose batches were slices of one play). A count bigram on the same tokens scores 2.4158
(`llm-input baseline ngram --run runs/tiny --order 2`).
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
  # Four layers compile in seconds unrolled, and on a 2-core CPU the scanned stack's
  # stacking copies and zero-filled residual buffers cost ~25% of the step (`llm-input bench`).
  cfg.model.scan_layers = False
  # The head and loss 32 positions (512 tokens) at a time: no (16, 256, 4096) logits array;
  # 0.29 vs 0.31 s per step here (`llm-input bench`), the same numbers.
  cfg.model.head_loss_chunk = 32
  # Causal attention in 64-query blocks (4 at L=256; base has 128): 62.5% of the full score
  # matrix instead of 75%, in smaller arrays; 0.38-0.44 vs 0.41-0.51 s per step on 2 AVX2
  # cores (experiments/tiny_step_speed/alternate_configs.py). The same numbers to float32 rounding.
  cfg.model.attention_block = 64
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
