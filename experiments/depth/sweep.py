"""Depth at equal compute: 1, 2, 4 and 8 layers of the tiny model (d_model 128, 4 heads).

Question (the explainer: "Why multiple layers? ... each layer builds on the previous one"): at a
fixed training budget, do more layers model the text better, when each extra layer costs steps?
Every arm gets the same training FLOPs, 2x the 200-step budget of granularity/ (1.42e13; a
deeper model trains fewer steps, `Sweep.flops_budgets`), warmup an eighth of its own run (50 of
the 4-layer arm's 400 steps) and a 20% cooldown at the end, three seeds (paired: the arms of a
seed see the same batches), three held-out plays, rate 3e-3 (the tiny preset's, untuned).

  llm-input sweep experiments/depth/sweep.py                  # or --shard 1/2 and 2/2
  llm-input sweep experiments/depth/sweep.py --table --baselines --documents \
      --x model.num_layers --out experiments/depth

`--arg lr`: each depth at peak rates 1e-3 and 1e-2 beside the sweep's 3e-3, at the same budget
and schedule, seed 0 (the 3e-3 point is the sweep's own seed-0 run), so a depth's loss is not
just the preset's rate suiting 4 layers (lr_figures.py writes the README's table):

  llm-input sweep experiments/depth/sweep.py --arg lr
  llm-input sweep experiments/depth/sweep.py --arg lr --table --out experiments/depth/lr
  python experiments/depth/lr_figures.py
"""

from llm_input.sweep import CURVE_COMMON, Sweep, step_flops

LAYERS = [1, 2, 4, 8]


def get_sweep(arg=None):
  if arg == "lr":
    depth = get_sweep()
    return Sweep(name="depth_lr", base=depth.base, seeds=[0], flops_budgets=depth.flops_budgets, common=depth.common,
                 runs=[{**run, "optimizer.learning_rate": lr} for run in depth.runs for lr in (1e-3, 1e-2)])
  budget = 2 * 200 * step_flops("configs/tiny.py", {"tokenizer.kind": "bpe", "tokenizer.vocab_size": 4096})
  runs = []
  for layers in LAYERS:  # warmup an eighth of the arm's own steps at the budget
    steps = budget / step_flops("configs/tiny.py", {"model.num_layers": layers})
    runs.append({"model.num_layers": layers, "schedule.warmup_steps": max(1, round(steps / 8))})
  return Sweep(name="depth", base="configs/tiny.py", seeds=[0, 1, 2], flops_budgets=[budget],
               common=dict(CURVE_COMMON), runs=runs)
