"""Positions: none vs learned vs sinusoidal vs RoPE, in validation bits per byte.

Question: how much does each positional scheme help, and how much order does a causal model
with no positional encoding still recover? (A causal mask alone breaks the permutation
symmetry that a bidirectional model without positions has; order_probe.py measures the loss
on shuffled vs ordered validation text for each trained run.)

  llm-input sweep experiments/positions/sweep.py
  llm-input sweep experiments/positions/sweep.py --table --x positions
  python experiments/positions/order_probe.py
"""

from llm_input.sweep import Sweep, product


def get_sweep(arg=None):
  steps = 2000 if arg == "full" else 200
  return Sweep(
      name="positions", base="configs/tiny.py", seeds=[0, 1, 2],
      common={"train.steps": steps, "train.eval_every": 100000, "checkpoint.every_steps": 100000,
              "checkpoint.every_minutes": 0.0, "logging.progress_bar": False},
      # Sinusoids have amplitude 1 per dimension while token vectors start at ~0.02: Vaswani et
      # al. scale token vectors by sqrt(d_model), so that variant is run too.
      runs=product(("model.positions", ["none", "learned", "sinusoidal", "rope"]))
      + [{"model.positions": "sinusoidal", "model.scale_embeddings": True}])
