"""Vocabulary size: bpe at 1k, 4k, 16k and 50k at equal training compute.

Question: with the tiny model and a fixed FLOPs budget, how does the subword vocabulary size
trade sequence length (bytes per token) against the cost of a bigger embedding and output head,
in validation bits per byte? The tokenizer statistics alone (no training, bpe and unigram at
1k-50k, char/byte/word) are in tokenizer_table.md (tokenizer_sweep.py).

  llm-input sweep experiments/vocab_size/sweep.py
  llm-input sweep experiments/vocab_size/sweep.py --table --x vocab_size
"""

from llm_input.sweep import Sweep, step_flops, product


def get_sweep(arg=None):
  # Same budget as granularity/: 200 steps (2000 with --arg full) of the bpe-4096 tiny model.
  budget = step_flops("configs/tiny.py", {"tokenizer.kind": "bpe", "tokenizer.vocab_size": 4096})
  budget *= 2000 if arg == "full" else 200
  return Sweep(
      name="vocab_size", base="configs/tiny.py", seeds=[0, 1, 2],
      common={"train.flops_budget": budget, "train.eval_every": 100000,
              "checkpoint.every_steps": 100000, "checkpoint.every_minutes": 0.0,
              "logging.progress_bar": False},
      runs=product(("tokenizer.vocab_size", [1000, 4096, 16000, 50000])))
