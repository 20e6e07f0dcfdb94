"""Width: d_model 768 (12 heads) and 1024 (16 heads) at CPU-feasible depth and steps.

Question: at the GPT-2 small and medium widths (head dimension 64 in both), what do the first
steps cost and achieve on a CPU? 4096 wide (32 heads) is sized by `llm-input params --config
configs/d4096.py` and meant for TPU slices (`--arg tpu` gives its full-depth command).

  llm-input sweep experiments/width/sweep.py
  llm-input sweep experiments/width/sweep.py --table --x d_model
  llm-input sweep experiments/width/sweep.py --arg tpu --print   # full depth, 4096 included
"""

from llm_input.sweep import Sweep, zip_


def get_sweep(arg=None):
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
