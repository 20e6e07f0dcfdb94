"""sqrt(d_k): models trained with and without the 1/sqrt(d_head) on their attention scores.

Question (the explainer: "dividing by sqrt(d_k) keeps the dot products from growing with the
dimension, so the softmax does not saturate"): does a model trained *without* the scale end up
worse, and more so the wider each head is? Removing the scale from a trained model (what the
claims table did before) is circular: those weights were learned under the scale. Here each
arm learns its own weights. At a fixed d_model of 128 (the tiny model), 1, 4 and 16 heads give
d_head 128, 32 and 8 at equal parameters and FLOPs; each head size is trained with the scale
("sqrt") and without it ("none"), three seeds (paired: the two arms of a seed see the same
batches), warmup-stable-decay to 400 steps (2x the 200-step budget) with a cooldown branch at
200, three held-out plays, rate 3e-3 (the tiny preset's, untuned).

  llm-input sweep experiments/attention_scale/sweep.py            # or --shard 1/2 and 2/2
  llm-input sweep experiments/attention_scale/sweep.py --table --baselines --documents \
      --x model.num_heads --out experiments/attention_scale
  python experiments/claims/claims.py --only attention_scale       # the claims row

`--arg lr`: every arm at peak rates 1e-3 and 1e-2 beside the sweep's 3e-3, at the 400-step
budget with the same schedule, seed 0 (the 3e-3 point is the sweep's own seed-0 run to 400
steps), so that "without the scale is worse" is not just 3e-3 suiting the scaled arms
(lr_figures.py writes the README's table):

  llm-input sweep experiments/attention_scale/sweep.py --arg lr    # or --shard 1/2 and 2/2
  llm-input sweep experiments/attention_scale/sweep.py --arg lr --table --baselines \
      --out experiments/attention_scale/lr
  python experiments/attention_scale/lr_figures.py
"""

from llm_input.sweep import CURVE_COMMON, Sweep, product

HEADS = [1, 4, 16]  # d_head 128, 32, 8 at d_model 128
SCALES = ["sqrt", "none"]


def get_sweep(arg=None):
  if arg == "lr":
    scale = get_sweep()
    return Sweep(name="attention_scale_lr", base=scale.base, seeds=[0], budgets=[max(scale.budgets)],
                 common=scale.common,
                 runs=[{**run, "optimizer.learning_rate": lr} for run in scale.runs for lr in (1e-3, 1e-2)])
  return Sweep(name="attention_scale", base="configs/tiny.py", seeds=[0, 1, 2], budgets=[200, 400],
               common=dict(CURVE_COMMON), runs=product(("model.num_heads", HEADS),
                                                       ("model.attention_scale", SCALES)))
