"""Granularity: char vs byte vs bpe vs unigram vs word at equal training compute.

Question: at the same training FLOPs, which way of cutting text into tokens predicts
Shakespeare best, measured in validation bits per byte (the only scale on which the five
agree)? Every run uses the tiny model (4 layers, 128 wide) and 256-token sequences, so a
char model sees ~256 bytes per sequence and a bpe model ~3.6x more: that is the sequence-length
cost the table shows next to tokens per word.

  llm-input sweep experiments/granularity/sweep.py            # runs (resumes) every run
  llm-input sweep experiments/granularity/sweep.py --table --x tokenizer
  --arg full: 10x the compute budget.
"""

from llm_input.sweep import Sweep, step_flops, zip_


def get_sweep(arg=None):
  # The budget: 200 steps (2000 with --arg full) of the bpe-4096 tiny model, batch 16 x 256.
  budget = step_flops("configs/tiny.py", {"tokenizer.kind": "bpe", "tokenizer.vocab_size": 4096})
  budget *= 2000 if arg == "full" else 200
  return Sweep(
      name="granularity", base="configs/tiny.py", seeds=[0, 1, 2],
      common={"train.flops_budget": budget, "train.eval_every": 100000,
              "checkpoint.every_steps": 100000, "checkpoint.every_minutes": 0.0,
              "logging.progress_bar": False},
      runs=zip_(("tokenizer.kind", ["char", "byte", "bpe", "unigram", "word"]),
                ("tokenizer.vocab_size", [4096, 259, 4096, 4096, 8192])))
