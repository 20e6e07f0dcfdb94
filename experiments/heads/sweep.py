"""Heads: 1, 2, 4 and 8 attention heads at a fixed d_model of 128, as a loss-vs-compute curve.

Question: at equal width, parameters and FLOPs (the heads split d_model, so the projections
and the score/value matmuls cost the same for any head count), do more, narrower heads model
the text better, and do they look at different things? Each arm and seed trains one
warmup-stable-decay run to the longest budget; the shorter budgets are cooldown branches of
it (llm_input/train/branch.py). The default corpus's one held-out play is the validation set
(the runs of 2026-12-02 also set data.validation_percent=20, which the shakespeare corpus
then ignored; it now honours the setting, so the arms drop it to keep their one play);
head_probe.py measures each trained
model's heads (mean attention distance, entropy, and the divergence between the heads of a
layer).

  llm-input sweep experiments/heads/sweep.py                      # or --shard 1/2 and 2/2 side by side
  llm-input sweep experiments/heads/sweep.py --table --baselines --x num_heads
  python experiments/heads/head_probe.py
  python experiments/heads/figures.py

`--arg seeds`: seeds 0-4 at the curve's 200-step budget, for tests over five seeds (paired t,
Wilcoxon, Holm) at one point of the curve; seeds 0-2 are the curve's own 200-step points:

  llm-input sweep experiments/heads/sweep.py --arg seeds          # or --shard 1/2 and 2/2
  llm-input sweep experiments/heads/sweep.py --arg seeds --table --baselines --x num_heads \
      --out experiments/heads/seeds

`--arg lr`: each head count at peak rates 1e-3 and 1e-2 at the curve's 200-step budget, seed 0,
with the curve's schedule; the 3e-3 point (the curve's rate) is `--arg seeds`'s seed-0 run,
so it is not trained twice (lr_figures.py writes the README's table):

  llm-input sweep experiments/heads/sweep.py --arg lr
  llm-input sweep experiments/heads/sweep.py --arg lr --table --out experiments/heads/lr
  python experiments/heads/lr_figures.py
"""

from llm_input.sweep import Sweep, product

HEADS = [1, 2, 4, 8]


def get_sweep(arg=None):
  if arg == "seeds":
    # five seeds at the curve's 200-step budget: runs straight to it, which equal the curve's
    # 200-step cooldown branches (tests/test_schedule.py), so they share its folders and seeds
    # 0-2 are the curve's own points
    curve = get_sweep()
    curve.seeds, curve.budgets = [0, 1, 2, 3, 4], [200]
    return curve
  if arg == "lr":
    # The curve used tiny's peak rate, 3e-3, for every head count: is any count's rank an
    # artefact of it? 1e-3 and 1e-2 beside it, at the 200-step budget, seed 0.
    curve = get_sweep()
    return Sweep(name="heads_lr", base=curve.base, seeds=[0], budgets=[200], common=curve.common,
                 runs=product(("model.num_heads", HEADS), ("optimizer.learning_rate", [1e-3, 1e-2])))
  budgets = [300, 600, 1200] if arg == "full" else [100, 200, 400]
  return Sweep(
      name="heads" if arg != "full" else "heads_full", base="configs/tiny.py", seeds=[0, 1, 2],
      budgets=budgets,
      common={"schedule.kind": "wsd", "schedule.decay_fraction": 0.2, "schedule.warmup_steps": 50,
              "train.eval_every": 100000, "train.log_every": 25,
              "checkpoint.every_steps": 100000, "checkpoint.every_minutes": 0.0,
              "logging.progress_bar": False},
      runs=product(("model.num_heads", HEADS)))
