"""Train steps of the tiny preset under several override sets, compiled side by side and timed
alternately in one process (a shared machine drifts between processes).
Run: python experiments/tiny_step_speed/alternate_configs.py "--config.model.scan_layers=False" "--config.model.scan_layers=True"
"""
import sys, time, numpy as np, jax
from llm_input import config as config_lib
from llm_input.train import bench
vs=[]
for arg in sys.argv[1:]:
  cfg = config_lib.load("configs/tiny.py", arg.split())
  _, _, tr, st, _, b = bench.setup(cfg)
  c = tr.train_step.lower(st, b).compile()
  for _ in range(2): st, m = c(st, b); jax.block_until_ready(m)
  vs.append([arg, c, st, b, []])
for _ in range(12):
  for v in vs:
    s=time.perf_counter(); v[2], m = v[1](v[2], v[3]); jax.block_until_ready(m); v[4].append(time.perf_counter()-s)
for v in vs: print(f"{np.median(v[4]):.4f} s  min {min(v[4]):.4f}  {v[0]}")
