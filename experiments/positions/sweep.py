"""Positions: none vs learned vs sinusoidal vs RoPE, in validation bits per byte.

Question: how much does each positional scheme help, and how much order does a causal model
with no positional encoding still recover? (A causal mask alone breaks the permutation
symmetry that a bidirectional model without positions has; order_probe.py measures the loss
on shuffled vs ordered validation text for each trained run.)

  llm-input sweep experiments/positions/sweep.py
  llm-input sweep experiments/positions/sweep.py --table --x positions
  python experiments/positions/order_probe.py

`--arg curve`: the four schemes as a loss-vs-compute curve (issue 28): one warmup-stable-decay
run per arm and seed to 600 steps (3x the 200-step budget above), the 200- and 400-step points
its cooldown branches (llm_input/train/branch.py), validated on three held-out plays
(data.validation_percent=12: A Midsummer Night's Dream, Measure for Measure, Coriolanus) so a
bootstrap over documents has documents to draw:

  llm-input sweep experiments/positions/sweep.py --arg curve      # or --shard 1/2 and 2/2 side by side
  llm-input sweep experiments/positions/sweep.py --arg curve --table --baselines --documents --x positions

`--arg seeds`: seeds 0-4 at the curve's 400-step budget, for tests over five seeds (paired t,
Wilcoxon, Holm) at one point of the curve; seeds 0-2 are the curve's own 400-step points:

  llm-input sweep experiments/positions/sweep.py --arg seeds      # or --shard 1/2 and 2/2
  llm-input sweep experiments/positions/sweep.py --arg seeds --table --baselines --documents \
      --x positions --out experiments/positions/seeds

`--arg lr`: each scheme at peak learning rates 1e-3, 3e-3 (the curve's) and 1e-2, at the
curve's 400-step budget, seed 0 (lr_figures.py writes the README's table):

  llm-input sweep experiments/positions/sweep.py --arg lr
  llm-input sweep experiments/positions/sweep.py --arg lr --table --out experiments/positions/lr
  python experiments/positions/lr_figures.py
"""

from llm_input.sweep import CURVE_COMMON, Sweep, product

SCHEMES = ["none", "learned", "sinusoidal", "rope"]


def get_sweep(arg=None):
  if arg == "curve":
    return Sweep(name="positions_curve", base="configs/tiny.py", seeds=[0, 1, 2], budgets=[200, 400, 600],
                 common=CURVE_COMMON, runs=product(("model.positions", SCHEMES)))
  if arg == "seeds":
    # five seeds at the curve's 400-step budget: runs straight to it, which equal the curve's
    # 400-step cooldown branches (tests/test_schedule.py), so they share its folders and seeds
    # 0-2 are the curve's own points
    curve = get_sweep("curve")
    curve.seeds, curve.budgets = [0, 1, 2, 3, 4], [400]
    return curve
  if arg == "lr":
    # The curve used one peak learning rate, 3e-3, for every scheme: is any scheme's rank an
    # artefact of it? Each scheme at 1e-3, 3e-3 and 1e-2, at the curve's 400-step budget (a wsd
    # run straight to 400 steps equals the curve's 400-step cooldown branch), seed 0.
    return Sweep(name="positions_lr", base="configs/tiny.py", seeds=[0],
                 common={**CURVE_COMMON, "train.steps": 400},
                 runs=product(("model.positions", SCHEMES), ("optimizer.learning_rate", [1e-3, 3e-3, 1e-2])))
  steps = 2000 if arg == "full" else 200
  return Sweep(
      name="positions", base="configs/tiny.py", seeds=[0, 1, 2],
      common={"train.steps": steps, "train.eval_every": 100000, "checkpoint.every_steps": 100000,
              "checkpoint.every_minutes": 0.0, "logging.progress_bar": False},
      # Sinusoids have amplitude 1 per dimension while token vectors start at ~0.02: Vaswani et
      # al. scale token vectors by sqrt(d_model), so that variant is run too.
      runs=product(("model.positions", ["none", "learned", "sinusoidal", "rope"]))
      + [{"model.positions": "sinusoidal", "model.scale_embeddings": True}])
