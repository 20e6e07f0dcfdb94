"""Vocabulary size: bpe at 1k, 4k, 16k and 50k at equal training compute.

Question: with the tiny model and a fixed FLOPs budget, how does the subword vocabulary size
trade sequence length (bytes per token) against the cost of a bigger embedding and output head,
in validation bits per byte? The tokenizer statistics alone (no training, bpe and unigram at
1k-50k, char/byte/word) are in tokenizer_table.md (tokenizer_sweep.py).

  llm-input sweep experiments/vocab_size/sweep.py
  llm-input sweep experiments/vocab_size/sweep.py --table --x vocab_size

`--arg curve` (issue 28): the four vocabularies as a loss-vs-compute curve at 1x, 2x, 4x and 10x
the budget above (7.09e12 to 7.09e13 FLOPs), like granularity's: per arm and seed one
warmup-stable-decay run to 10x, the shorter budgets its cooldown branches, three held-out plays.
Each arm warms up for a quarter of its own 1x run (bpe-4096: 50 of 200 steps, the other curves'
warmup; 50k: 10 of 39), so that no arm spends its shortest budget still warming up, the confound
of the fixed 50-step warmup (the 200-step 50k runs never reached their peak rate):

  llm-input sweep experiments/vocab_size/sweep.py --arg curve --seeds 1   # or --shard 1/2 and 2/2
  llm-input sweep experiments/vocab_size/sweep.py --arg curve --seeds 1 --table --baselines \
      --documents --x tokenizer.vocab_size --out experiments/vocab_size/curve

`--arg seeds`: seeds 0-4 at the curve's 2x budget (1.42e13 FLOPs), for tests over seeds (paired
t, Wilcoxon, Holm) at one point of the curve; seed 0 is the curve's own 2x point:

  llm-input sweep experiments/vocab_size/sweep.py --arg seeds          # or --shard 1/2 and 2/2
  llm-input sweep experiments/vocab_size/sweep.py --arg seeds --table --baselines --documents \
      --x tokenizer.vocab_size --out experiments/vocab_size/seeds

`--arg lr`: each vocabulary at peak rates 1e-3 and 1e-2 at the curve's 2x budget, seed 0, with
the curve's schedule, and 16,000 and 50,000 also at 3e-4 (both were best at 1e-3, the grid's
edge); the 3e-3 point (the curve's rate) is the curve's 2x cooldown branch, which
a run straight to that budget equals (tests/test_schedule.py), so it is not trained twice. The
4,096 arm is granularity's bpe arm: its two runs repeat granularity's rate sweep (a check):

  llm-input sweep experiments/vocab_size/sweep.py --arg lr
  llm-input sweep experiments/vocab_size/sweep.py --arg lr --table --out experiments/vocab_size/lr
  python experiments/vocab_size/lr_figures.py

`--arg lr_seeds`: 50,000 at 1e-3 with seeds 0-4 (seed 0 is the rate sweep's run), paired with
the five seeds at 3e-3 above:

  llm-input sweep experiments/vocab_size/sweep.py --arg lr_seeds
  llm-input sweep experiments/vocab_size/sweep.py --arg lr_seeds --table --out experiments/vocab_size/lr_seeds
"""

from llm_input.sweep import CURVE_COMMON, Sweep, step_flops, product

VOCABS = [1000, 4096, 16000, 50000]
CURVE_MULTIPLES = [1, 2, 4, 10]


def get_sweep(arg=None):
  # Same budget as granularity/: 200 steps (2000 with --arg full) of the bpe-4096 tiny model.
  budget = step_flops("configs/tiny.py", {"tokenizer.kind": "bpe", "tokenizer.vocab_size": 4096})
  if arg == "seeds":
    # five seeds at the curve's 2x budget: runs straight to that budget, which equal the
    # curve's 2x cooldown branches (tests/test_schedule.py), so they share its folders and
    # seed 0 is the curve's own point
    curve = get_sweep("curve")
    curve.seeds, curve.flops_budgets = [0, 1, 2, 3, 4], [budget * 200 * 2]
    return curve
  if arg == "lr_seeds":
    # 50,000 at 1e-3, the rate that beat the curve's 3e-3 by the most in the rate sweep (one
    # seed), with seeds 0-4 (seed 0 is the rate sweep's run): against the five seeds at 3e-3,
    # is "50k loses" its untuned rate?
    sweep = get_sweep("lr")
    sweep.seeds = [0, 1, 2, 3, 4]
    sweep.runs = [r for r in sweep.runs if r["tokenizer.vocab_size"] == 50000 and r["optimizer.learning_rate"] == 1e-3]
    return sweep
  if arg == "lr":
    curve = get_sweep("curve")
    return Sweep(name="vocab_size_lr", base=curve.base, seeds=[0], flops_budgets=[budget * 200 * 2],
                 common=curve.common,
                 runs=[{**run, "optimizer.learning_rate": lr} for run in curve.runs for lr in (1e-3, 1e-2)]
                 # 16,000 and 50,000 were best at 1e-3, the grid's edge: one more point past it
                 + [{**run, "optimizer.learning_rate": 3e-4} for run in curve.runs[2:]])
  if arg == "curve":
    runs = []
    for vocab in VOCABS:
      one_x = round(budget * 200 / step_flops("configs/tiny.py", {"tokenizer.vocab_size": vocab}))
      runs.append({"tokenizer.vocab_size": vocab, "schedule.warmup_steps": max(1, round(one_x / 4))})
    return Sweep(name="vocab_size_curve", base="configs/tiny.py", seeds=[0, 1, 2],
                 flops_budgets=[budget * 200 * m for m in CURVE_MULTIPLES], runs=runs,
                 # a checkpoint every 10 minutes: each arm's 10x run takes 25-40 minutes on one
                 # core, and a sweep stopped between sessions resumes from it
                 common={**CURVE_COMMON, "checkpoint.every_minutes": 10.0})
  budget *= 2000 if arg == "full" else 200
  return Sweep(
      name="vocab_size", base="configs/tiny.py", seeds=[0, 1, 2],
      common={"train.flops_budget": budget, "train.eval_every": 100000,
              "checkpoint.every_steps": 100000, "checkpoint.every_minutes": 0.0,
              "logging.progress_bar": False},
      runs=product(("tokenizer.vocab_size", [1000, 4096, 16000, 50000])))
