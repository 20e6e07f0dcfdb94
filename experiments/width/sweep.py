"""Width: d_model 768 (12 heads) and 1024 (16 heads) at CPU-feasible depth and steps.

Question: at the GPT-2 small and medium widths (head dimension 64 in both), what do the first
steps cost and achieve on a CPU? 4096 wide (32 heads) is sized by `llm-input params --config
configs/d4096.py` and meant for TPU slices (`--arg tpu` gives its full-depth command).

  llm-input sweep experiments/width/sweep.py
  llm-input sweep experiments/width/sweep.py --table --x d_model
  llm-input sweep experiments/width/sweep.py --arg tpu --print   # full depth, 4096 included

`--arg curve` (issue 28): the three widths compute-matched, at 1x, 2x and 3x the FLOPs of 60
steps of the 1024-wide arm (1.09e13 to 3.28e13), so the 128-wide arm trains ~31x the steps of
the 1024-wide one for the same compute; one warmup-stable-decay run per arm and seed to 3x,
the shorter budgets its cooldown branches, three held-out plays; each arm warms up for a
quarter of its own 1x run (1024: 15 of 60 steps):

  llm-input sweep experiments/width/sweep.py --arg curve                # or --shard 1/2 and 2/2
  llm-input sweep experiments/width/sweep.py --arg curve --table --baselines \
      --documents --x model.d_model --out experiments/width/curve

`--arg seeds`: seeds 0-4 at the curve's 2x budget (2.18e13 FLOPs), for tests over five seeds
(paired t, Wilcoxon, Holm) at one point of the curve; seed 0 is the curve's own 2x point:

  llm-input sweep experiments/width/sweep.py --arg seeds          # or --shard 1/2 and 2/2
  llm-input sweep experiments/width/sweep.py --arg seeds --table --baselines --documents \
      --x model.d_model --out experiments/width/seeds

`--arg lr`: each width at peak rates 3e-4 and 3e-3 at the curve's 2x budget (2.18e13 FLOPs),
seed 0, with the curve's schedule, and one more rate past the grid's edge where a width was best
at it (1e-2 for 128, 1e-4 for 768 and 1024); the 1e-3 point (the curve's rate) is the curve's 2x cooldown
branch, which a run straight to that budget equals (tests/test_schedule.py), so it is not
trained twice:

  llm-input sweep experiments/width/sweep.py --arg lr
  llm-input sweep experiments/width/sweep.py --arg lr --table --out experiments/width/lr
  python experiments/width/lr_figures.py
"""

from llm_input.sweep import CURVE_COMMON, Sweep, step_flops, zip_

CPU_SCALE = {"model.num_layers": 2, "data.seq_len": 128, "model.max_len": 128, "data.batch_size": 8}
WIDTHS = zip_(("model.d_model", [128, 768, 1024]), ("model.num_heads", [4, 12, 16]))


def get_sweep(arg=None):
  if arg == "curve":
    one_x = 60 * step_flops("configs/tiny.py", {**CPU_SCALE, **WIDTHS[-1]})
    runs = [{**w, "schedule.warmup_steps": max(1, round(round(one_x / step_flops("configs/tiny.py", {**CPU_SCALE, **w})) / 4))}
            for w in WIDTHS]
    return Sweep(name="width_curve", base="configs/tiny.py", seeds=[0, 1, 2],
                 flops_budgets=[one_x * m for m in (1, 2, 3)],
                 # a checkpoint every 10 minutes: the 128-wide arm's 5,611 steps take about an hour
                 # on one core, and a sweep stopped between sessions resumes from it
                 common={**CURVE_COMMON, **CPU_SCALE, "optimizer.learning_rate": 1e-3,
                         "checkpoint.every_minutes": 10.0}, runs=runs)
  if arg == "seeds":
    # five seeds at the curve's 2x budget: runs straight to it, which equal the curve's 2x
    # cooldown branches (tests/test_schedule.py), so they share its folders and seed 0 is the
    # curve's own point
    curve = get_sweep("curve")
    curve.seeds, curve.flops_budgets = [0, 1, 2, 3, 4], [curve.flops_budgets[1]]
    return curve
  if arg == "lr":
    curve = get_sweep("curve")
    return Sweep(name="width_lr", base=curve.base, seeds=[0], flops_budgets=[curve.flops_budgets[1]],
                 common=curve.common,
                 runs=[{**run, "optimizer.learning_rate": lr} for run in curve.runs for lr in (3e-4, 3e-3)]
                 # each width was best at an edge of 3e-4..3e-3: one more point past it
                 + [{**run, "optimizer.learning_rate": lr} for run, lr in zip(curve.runs, (1e-2, 1e-4, 1e-4))])
  if arg == "tpu":
    return Sweep(name="width_tpu", base="configs/gpt2_small.py",
                 common={"train.steps": 20000, "data.batch_size": 256, "mesh.fsdp": -1, "mesh.data": 1},
                 runs=zip_(("model.d_model", [768, 1024, 4096]), ("model.num_heads", [12, 16, 32]),
                           ("model.num_layers", [12, 24, 32])))
  return Sweep(
      name="width", base="configs/tiny.py", seeds=[0, 1, 2],
      common={"model.num_layers": 2, "data.seq_len": 128, "model.max_len": 128,
              "data.batch_size": 8, "train.steps": 60, "schedule.warmup_steps": 10,
              "optimizer.learning_rate": 1e-3, "train.eval_every": 100000,
              "checkpoint.every_steps": 100000, "checkpoint.every_minutes": 0.0,
              "logging.progress_bar": False},
      runs=zip_(("model.d_model", [128, 768, 1024]), ("model.num_heads", [4, 12, 16])))
