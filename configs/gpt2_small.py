"""GPT-2 small (124M): vocab 50257, 1024 learned positions, 768 wide, 12 layers, 12 heads,
GELU MLP 3072, LayerNorm with biases, biases everywhere, tied output head.

Command: `llm-input params --config configs/gpt2_small.py` prints 124,439,808 parameters
(computed with jax.eval_shape; nothing is allocated).
`:runlocal` (256-token sequences, batch 8, 20 steps) is a CPU smoke run of the real model:
`llm-input train --config configs/gpt2_small.py:runlocal --workdir runs/gpt2_cpu`.
Hardware: a GPU or TPU slice for real training (launch/); on the 2-core CPU machine one
8 x 256 step takes 10.9-12.4 s (`llm-input bench --config configs/gpt2_small.py:runlocal`,
MFU 70.6-79.4% of the measured float32 matmul peak in six runs, median 74.3%, 2026-11-29;
0.80x the time of a hand-written plain-JAX step with `--plain-jax`; see docs/benchmarks.md).
Re-measured 2026-12-02 on the same kind (Intel Xeon, AVX-512): 7.36 and 7.48 s per step, MFU
66.2% and 62.7%, against a peak that read 301-342 GFLOP/s that day (179 GFLOP/s on 11-29): the
step got faster, the peak faster still. On 2 AMD EPYC Zen 4 cores with AVX-512 (`lscpu`),
2026-12-07: 10.37 s per step, MFU 84.3% of a peak that read 173-180 GFLOP/s. On 2 AMD EPYC
Zen 3 cores, AVX2 only (2026-12-08): 14.68 and 13.66 s per step, MFU 80.8% and 78.5% of a peak
that read 128-145 GFLOP/s (69.3% before that day's changes). No trained result yet.
"""

from configs import base


ARGS = ('runlocal',)  # the accepted `:ARG` suffixes (config.load refuses others)

def get_config(arg: str | None = None):
  cfg = base.get_config()
  cfg.model.vocab_size = 50257
  cfg.tokenizer.vocab_size = 50257
  cfg.model.d_model = 768
  cfg.model.num_layers = 12
  cfg.model.num_heads = 12
  cfg.model.positions = "learned"
  cfg.model.max_len = 1024
  cfg.data.seq_len = 1024
  if arg == "runlocal":  # CPU smoke run: same model, short sequences, few steps
    cfg.data.seq_len = 256
    cfg.train.steps = 20
    cfg.train.eval_every = 20
    cfg.train.eval_batches = 2
    cfg.schedule.warmup_steps = 5
    # Unrolled layers on CPU: XLA:CPU runs the scanned stack ~15% slower (the per-layer
    # stacking of saved activations, DUS/dynamic-slice copies, no fusion across layers).
    # Same stacked parameters, so checkpoints are interchangeable with the scanned model.
    cfg.model.scan_layers = False
  return cfg
