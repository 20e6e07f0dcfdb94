"""Granularity: char vs byte vs bpe vs unigram vs word at equal training compute.

Question: at the same training FLOPs, which way of cutting text into tokens predicts
Shakespeare best, measured in validation bits per byte (the only scale on which the five
agree)? Every run uses the tiny model (4 layers, 128 wide) and 256-token sequences, so a
char model sees ~256 bytes per sequence and a bpe model ~3.6x more: that is the sequence-length
cost the table shows next to tokens per word.

  llm-input sweep experiments/granularity/sweep.py            # runs (resumes) every run
  llm-input sweep experiments/granularity/sweep.py --table --x tokenizer
  --arg full: 10x the compute budget.

`--arg curve` (issue 28): the five granularities as a loss-vs-compute curve at 1x, 2x, 4x and
10x the budget above (7.09e12 to 7.09e13 FLOPs): per arm and seed one warmup-stable-decay run
to 10x (an arm's steps are the budget over its own step's FLOPs), the shorter budgets its
cooldown branches (llm_input/train/branch.py), validated on three held-out plays, each arm at
its best peak learning rate of the rate sweep (`--arg lr`; BEST_LR). `--arg curve_shared`: the
same at the preset's 3e-3 for every arm (the first run of the curve):

  llm-input sweep experiments/granularity/sweep.py --arg curve --seeds 1   # or --shard 1/2 and 2/2
  llm-input sweep experiments/granularity/sweep.py --arg curve --seeds 1 --table --baselines \
      --documents --x tokenizer.kind --out experiments/granularity/curve
  python experiments/granularity/curve_figures.py

`--arg seeds`: seeds 0-4 at the curve's 2x budget (1.42e13 FLOPs), each arm at its best rate,
for tests over seeds (paired t, Wilcoxon, Holm) at one point of the curve; seed 0 is the
curve's own 2x point:

  llm-input sweep experiments/granularity/sweep.py --arg seeds
  llm-input sweep experiments/granularity/sweep.py --arg seeds --table --baselines --documents \
      --x tokenizer.kind --out experiments/granularity/seeds

`--arg lr`: each granularity at peak learning rates 1e-3 and 1e-2 at the curve's 2x budget,
seed 0, and char and byte also at 3e-2 (both were best at 1e-2, the grid's edge); the 3e-3
point (the preset's rate) is the shared-rate curve's 2x cooldown branch, which a run straight
to that budget equals (tests/test_schedule.py), so it is not trained twice:

  llm-input sweep experiments/granularity/sweep.py --arg lr
  llm-input sweep experiments/granularity/sweep.py --arg lr --table --out experiments/granularity/lr
"""

from llm_input.sweep import CURVE_COMMON, Sweep, step_flops, zip_

# The 1x budget: 200 steps of the bpe-4096 tiny model, batch 16 x 256 (7.087e12 FLOPs).
BPE_STEP = {"tokenizer.kind": "bpe", "tokenizer.vocab_size": 4096}
CURVE_MULTIPLES = [1, 2, 4, 10]
KINDS = zip_(("tokenizer.kind", ["char", "byte", "bpe", "unigram", "word"]),
             ("tokenizer.vocab_size", [84, 259, 4096, 4096, 8192]))


# Each arm's best peak learning rate in the rate sweep (`--arg lr`, README's table; a test checks
# these are its committed results' best). Arms not named keep the preset's 3e-3.
BEST_LR = {"char": 1e-2, "byte": 1e-2}
PRESET_LR = 3e-3


def get_sweep(arg=None):
  budget = step_flops("configs/tiny.py", BPE_STEP)
  if arg == "curve":
    # the curve at each arm's best rate; the arms whose best is the preset's rate are the same
    # runs as the shared-rate curve's (the same folders: nothing is trained twice)
    return Sweep(name="granularity_curve", base="configs/tiny.py", seeds=[0, 1, 2],
                 flops_budgets=[budget * 200 * m for m in CURVE_MULTIPLES], common=CURVE_COMMON,
                 runs=[{**kind, "optimizer.learning_rate": BEST_LR[kind["tokenizer.kind"]]}
                       if kind["tokenizer.kind"] in BEST_LR else kind for kind in KINDS])
  if arg == "seeds":
    # five seeds at the curve's 2x budget (each arm at its best rate): runs straight to that
    # budget, which equal the curve's 2x cooldown branches (tests/test_schedule.py), so they
    # share its folders and seed 0 is the curve's own point
    curve = get_sweep("curve")
    curve.seeds, curve.flops_budgets = [0, 1, 2, 3, 4], [budget * 200 * 2]
    return curve
  if arg == "curve_shared":
    # char's vocabulary is its training text's characters: 84 ids with the 4 special ones on
    # the default corpus's 37 training plays (the 200-step runs), 82 on these 35. The cap is set
    # near it so that the analytic step FLOPs a budget is divided by are the trained model's
    # (2 ids fewer are 0.03% of a step's FLOPs); the table's train_flops are the trained model's.
    return Sweep(name="granularity_curve", base="configs/tiny.py", seeds=[0, 1, 2],
                 flops_budgets=[budget * 200 * m for m in CURVE_MULTIPLES], common=CURVE_COMMON,
                 runs=KINDS)
  if arg == "lr":
    return Sweep(name="granularity_lr", base="configs/tiny.py", seeds=[0], flops_budgets=[budget * 200 * 2],
                 common=CURVE_COMMON,
                 runs=[{**kind, "optimizer.learning_rate": lr} for kind in KINDS for lr in (1e-3, 1e-2)]
                 # char and byte were best at 1e-2, the grid's edge: one more point past it
                 + [{**kind, "optimizer.learning_rate": 3e-2} for kind in KINDS[:2]])
  budget *= 2000 if arg == "full" else 200
  return Sweep(
      name="granularity", base="configs/tiny.py", seeds=[0, 1, 2],
      common={"train.flops_budget": budget, "train.eval_every": 100000,
              "checkpoint.every_steps": 100000, "checkpoint.every_minutes": 0.0,
              "logging.progress_bar": False},
      runs=zip_(("tokenizer.kind", ["char", "byte", "bpe", "unigram", "word"]),
                ("tokenizer.vocab_size", [4096, 259, 4096, 4096, 8192])))
