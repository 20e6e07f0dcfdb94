"""Multi-host code paths, executed: several JAX processes on this machine (localhost coordinator,
gloo collectives), each a real subprocess."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from llm_input import cli, sweep as sweep_lib
from llm_input.distributed import free_port
from llm_input.runs import RunFolder

from helpers import ROOT, small_overrides

STEPS = 12
# constant learning rate: a segment run with another train.steps follows the same schedule
MESH = ["--config.mesh.data=2", "--config.mesh.fsdp=2", "--config.schedule.kind=constant"]


def train_args(corpus, workdir, *extra):
  return ["train", "--config", str(ROOT / "configs/tiny.py"), "--workdir", str(workdir),
          *[f"--config.{o}" for o in small_overrides(*corpus, f"train.steps={STEPS}",
                                                     f"train.eval_every={STEPS}", "checkpoint.every_steps=4")],
          *MESH, *extra]


def env_for(devices: int, **extra) -> dict:
  """The environment of a training subprocess with `devices` CPU devices; LLVM at -O0 as in the
  rest of the suite (conftest.py), which launch-local passes on to its processes."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} --xla_backend_optimization_level=0")
  env.update({k: str(v) for k, v in extra.items()})
  return env


def launch(args, processes=2, devices=2, **kw):
  return subprocess.run([sys.executable, "-m", "llm_input.cli", "launch-local", "--processes", str(processes),
                         "--devices-per-process", str(devices), "--", *args],
                        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env_for(1), **kw)


def train_losses(workdir) -> dict[int, float]:
  return {r["step"]: r["loss"] for r in RunFolder(workdir).read_metrics() if r["split"] == "train"}


@pytest.fixture(scope="module")
def single_process(corpus, tmp_path_factory):
  """The reference: one process with 4 devices, the same global batch and mesh."""
  workdir = tmp_path_factory.mktemp("single") / "run"
  proc = subprocess.run([sys.executable, "-m", "llm_input.cli", *train_args(corpus, workdir)],
                        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env_for(4))
  assert proc.returncode == 0, proc.stderr[-3000:]
  return train_losses(workdir)


def close(a: dict, b: dict, steps) -> None:
  # Float32 sums reduced across processes by gloo and across devices inside one process add
  # the same numbers in another order: a few ulps (measured: one ulp at step 6).
  np.testing.assert_allclose([a[s] for s in steps], [b[s] for s in steps], rtol=1e-5)


def test_two_processes_train_like_one(corpus, tmp_path, single_process):
  workdir = tmp_path / "run"
  proc = launch(train_args(corpus, workdir))
  assert proc.returncode == 0, proc.stdout[-3000:]
  losses = train_losses(workdir)
  assert sorted(losses) == list(range(1, STEPS + 1))
  close(losses, single_process, range(1, STEPS + 1))
  # process 0 alone wrote the run files, once
  assert len([r for r in RunFolder(workdir).read_metrics() if r["split"] == "validation"]) == 1
  assert "[p0] final validation" in proc.stdout and "[p1] final validation" not in proc.stdout
  assert (workdir / "samples.txt").exists() and (workdir / "summary.json").exists()


def _children(pid: int) -> dict[int, int]:
  """{process id in the job: OS pid} of a launcher's children."""
  out = {}
  for child in subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                              text=True).stdout.split():
    try:
      env = open(f"/proc/{child}/environ", "rb").read().split(b"\0")
    except OSError:
      continue
    for item in env:
      if item.startswith(b"LLM_INPUT_PROCESS_ID="):
        out[int(item.split(b"=")[1])] = int(child)
  return out


def _wait_for_checkpoint(workdir, step, proc, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    if step in RunFolder(workdir).checkpoint_steps():
      return
    time.sleep(0.2)
  raise AssertionError(f"no checkpoint {step} (exit {proc.poll()})")


def test_sigkill_of_one_process_stops_the_other_and_the_rerun_resumes(corpus, tmp_path, single_process):
  workdir = tmp_path / "run"
  port = free_port()
  args = train_args(corpus, workdir, "--config.train.steps=2000", "--config.train.eval_every=2000")
  procs = [subprocess.Popen([sys.executable, "-m", "llm_input.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env_for(2, LLM_INPUT_COORDINATOR=f"localhost:{port}",
                                        LLM_INPUT_NUM_PROCESSES=2, LLM_INPUT_PROCESS_ID=i,
                                        LLM_INPUT_HEARTBEAT_TIMEOUT=10))
           for i in (0, 1)]
  try:
    _wait_for_checkpoint(workdir, 4, procs[0])
    procs[1].kill()
    killed = time.time()
    _, err = procs[0].communicate(timeout=120)
    waited = time.time() - killed
  finally:
    for p in procs:
      p.kill()
      p.wait()
  assert procs[0].returncode != 0 and waited < 60  # bounded: no hang on the dead peer
  # one line of ours when a collective notices first; otherwise JAX's coordination service,
  # which names the dead task, ends the process
  # (JAX names the dead task as "Task 1 heartbeat timeout", ".../task:1" or, under
  # "stopped sending heartbeats):", a line holding just its index)
  assert re.search(r"lost a peer process|Task 1 heartbeat timeout|task:1\b|"
                   r"stopped sending heartbeats\):\s*\n\s*1\s*\n", err), err[-2000:]
  # the same launch, rerun with the run's own step count, resumes and matches the reference
  saved = max(RunFolder(workdir).checkpoint_steps())
  proc = launch(train_args(corpus, workdir, "--allow-config-change"))
  assert proc.returncode == 0, proc.stdout[-3000:]
  assert f"resumed from step {saved}" in proc.stdout
  close(train_losses(workdir), single_process, range(saved + 1, STEPS + 1))


@pytest.mark.slow  # 44 s; SIGTERM handling is in make test through test_train and test_faults
def test_sigterm_to_the_launcher_saves_one_step_and_resumes_on_one_process(corpus, tmp_path, single_process):
  workdir = tmp_path / "run"
  proc = subprocess.Popen([sys.executable, "-m", "llm_input.cli", "launch-local", "--processes", "2",
                           "--devices-per-process", "2", "--",
                           *train_args(corpus, workdir, "--config.train.steps=2000", "--config.train.eval_every=2000")],
                          cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env_for(1))
  try:
    _wait_for_checkpoint(workdir, 4, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=180)
  finally:
    proc.kill()
    proc.wait()
  assert proc.returncode == 0, out[-3000:]
  assert "[p0] " in out and "SIGTERM: saved step" in out
  saved = int(out.split("SIGTERM: saved step ")[1].split(";")[0])
  assert saved in RunFolder(workdir).checkpoint_steps()
  meta = json.loads((workdir / "checkpoints" / str(saved) / "meta" / "metadata").read_text())
  assert meta["data_iterator"] == {"next_index": saved}  # both processes stopped at one step
  # resume the 2-process checkpoint in one process with 4 devices: same global batches
  if saved < STEPS:
    resumed = subprocess.run([sys.executable, "-m", "llm_input.cli", *train_args(corpus, workdir),
                              "--allow-config-change"], capture_output=True, text=True, timeout=600,
                             cwd=ROOT, env=env_for(4))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from step {saved}" in resumed.stdout
    close(train_losses(workdir), single_process, range(saved + 1, STEPS + 1))


def test_sweep_shards_are_disjoint_and_cover_the_sweep(capsys):
  sweep = sweep_lib.load(str(ROOT / "experiments/vocab_size/sweep.py"))
  everything = {folder for folder, _ in sweep.expand()}
  shards = [{folder for folder, _ in sweep.expand((k, 3))} for k in (1, 2, 3)]
  assert set().union(*shards) == everything and sum(map(len, shards)) == len(everything)
  assert cli.main(["sweep", str(ROOT / "experiments/vocab_size/sweep.py"), "--print", "--shard", "2/3"]) == 0
  printed = capsys.readouterr().out.split("\n")
  assert len([line for line in printed if line]) == len(shards[1])
  assert cli.main(["sweep", str(ROOT / "experiments/vocab_size/sweep.py"), "--shard", "4/3"]) == 2


# -- bad input -----------------------------------------------------------------------------------

def test_process_id_out_of_range(corpus, tmp_path, capsys):
  assert cli.main([*train_args(corpus, tmp_path / "run"), "--coordinator", "localhost:1",
                   "--num-processes", "2", "--process-id", "2"]) == 2
  assert "--process-id 2 is out of range for 2 processes" in capsys.readouterr().err


def test_a_coordinator_that_never_answers_times_out_with_its_address(corpus, tmp_path):
  port = free_port()
  start = time.time()
  proc = subprocess.run([sys.executable, "-m", "llm_input.cli", *train_args(corpus, tmp_path / "run"),
                         "--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id", "1"],
                        capture_output=True, text=True, timeout=120, cwd=ROOT,
                        env=env_for(2, LLM_INPUT_COORDINATOR_TIMEOUT=5))
  assert proc.returncode == 2 and time.time() - start < 90
  assert f"could not join the job at localhost:{port} within 5 s" in proc.stderr
  assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("mesh, message", [
    # tensor across the two processes: both would need every row, but each reads its own
    (("1", "1", "2"), "mesh.rules.batch splits the batch 1 ways on this mesh, which does not divide "
                      "over the 2 processes"),
    (("2", "1", "1"), "data.batch_size=3 is not divisible by the 2 data-parallel devices"),
], ids=["tensor_across_processes", "batch_of_3"])
def test_a_batch_the_processes_cannot_split_is_refused(corpus, tmp_path, mesh, message):
  data, fsdp, tensor = mesh
  proc = launch(train_args(corpus, tmp_path / "run", f"--config.mesh.data={data}", f"--config.mesh.fsdp={fsdp}",
                           f"--config.mesh.tensor={tensor}", "--config.data.batch_size=3"), devices=1)
  assert proc.returncode == 2
  assert message in proc.stdout
  assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_processes_with_different_configs_are_refused(corpus, tmp_path):
  port = free_port()
  procs = [subprocess.Popen([sys.executable, "-m", "llm_input.cli",
                             *train_args(corpus, tmp_path / "run", f"--config.optimizer.learning_rate={lr}")],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env_for(2, LLM_INPUT_COORDINATOR=f"localhost:{port}",
                                        LLM_INPUT_NUM_PROCESSES=2, LLM_INPUT_PROCESS_ID=i))
           for i, lr in ((0, 0.01), (1, 0.02))]
  errs = [p.communicate(timeout=300)[1] for p in procs]
  assert [p.returncode for p in procs] == [2, 2]
  assert all("processes [1] were started with a config different from process 0's" in e for e in errs)
  assert not (tmp_path / "run").exists()


def test_a_process_started_with_another_num_processes_is_refused_by_every_process(corpus, tmp_path):
  port = free_port()
  procs = [subprocess.Popen([sys.executable, "-m", "llm_input.cli", *train_args(corpus, tmp_path / "run")],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env_for(2, LLM_INPUT_COORDINATOR=f"localhost:{port}",
                                        LLM_INPUT_NUM_PROCESSES=n, LLM_INPUT_PROCESS_ID=i))
           for i, n in ((0, 2), (1, 3))]
  errs = [p.communicate(timeout=300)[1] for p in procs]
  assert [p.returncode for p in procs] == [2, 2], errs
  assert all("the job has 2 processes but some were started with another --num-processes "
             "(process 1: 3)" in e for e in errs), errs
  assert not (tmp_path / "run").exists()


def test_a_workdir_that_is_not_one_folder_for_every_process_is_refused_by_every_process(corpus, tmp_path):
  if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
    pytest.skip("no mount namespaces here (unshare -rm failed)")
  port = free_port()
  work = tmp_path / "work"
  work.mkdir()
  args = [sys.executable, "-m", "llm_input.cli", *train_args(corpus, work / "run")]
  env = lambda i: env_for(2, LLM_INPUT_COORDINATOR=f"localhost:{port}",  # noqa: E731
                          LLM_INPUT_NUM_PROCESSES=2, LLM_INPUT_PROCESS_ID=i)
  # process 1 sees its own empty disk at work/: a host whose --workdir is local
  own_disk = ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs tmpfs {work} && exec "$@"', "sh", *args]
  procs = [subprocess.Popen(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(i))
           for i, cmd in ((0, args), (1, own_disk))]
  errs = [p.communicate(timeout=300)[1] for p in procs]
  assert [p.returncode for p in procs] == [2, 2], errs
  assert all(f"--workdir {work / 'run'} is not one folder for every process: process(es) [1] do not "
             "see what process 0 writes there" in e for e in errs), errs
  assert not (work / "run").exists()  # nothing left behind: the check made the folder and removed it
