"""Runs that can be left alone: each fault injected for real (files, subprocesses, a full disk)."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from llm_input import cli
from llm_input.errors import CheckpointError, ConfigError
from llm_input.fileio import directory_fingerprint
from llm_input.runs import RunFolder
from llm_input.train import checkpoint as checkpoint_lib
from llm_input.train import guards, loop

from helpers import ROOT, small_config, small_overrides


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("trained") / "run"
  loop.train(small_config(*corpus, "train.steps=10"), workdir, say=lambda *a: None)
  return workdir


def copy_of(trained, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  return workdir


def quiet(*args, **kwargs):
  pass


def train_args(corpus, workdir, *extra):
  """`llm-input train` arguments for the small test model (the same as small_config)."""
  return ["train", "--config", str(ROOT / "configs/tiny.py"), "--workdir", str(workdir),
          *[f"--config.{o}" for o in small_overrides(*corpus)], *extra]


def train_cmd(corpus, workdir, *extra):
  return [sys.executable, "-m", "llm_input.cli", *train_args(corpus, workdir, *extra)]


# -- 1. silent corruption and divergence -----------------------------------------------------

def test_damaged_but_readable_checkpoint_is_detected_and_skipped(trained, corpus, tmp_path, capsys):
  import orbax.checkpoint as ocp

  workdir = copy_of(trained, tmp_path)
  step_dir = workdir / "checkpoints" / "10"
  manager = ocp.CheckpointManager(step_dir.parent, options=ocp.CheckpointManagerOptions(read_only=True))
  restored = manager.restore(10, args=ocp.args.Composite(state=ocp.args.StandardRestore(),
                                                         meta=ocp.args.JsonRestore()))
  manager.close()
  state = restored["state"]
  # one weight changed by a tiny amount: readable, finite, plausible, and wrong
  table = np.array(state["params"]["embedding"]["table"])
  table[3, 3] += 1e-3
  state["params"]["embedding"]["table"] = table
  shutil.rmtree(step_dir)
  writer = ocp.CheckpointManager(step_dir.parent)
  writer.save(10, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          meta=ocp.args.JsonSave(restored["meta"])))
  writer.wait_until_finished()
  writer.close()
  capsys.readouterr()
  result = loop.train(small_config(*corpus, "train.steps=12"), workdir, say=print, allow_config_change=True)
  out = capsys.readouterr().out
  assert "checkpoint at step 10" in out and "checksum mismatch" in out and "embedding/table" in out
  assert "resumed from step 5" in out and result["step"] == 12
  # the damaged folder is set aside, named in the log, and the retrained step 10 saved again
  aside = workdir / "damaged_checkpoints" / "10"
  assert f"moved the damaged checkpoint of step 10 to {aside}" in out
  assert (aside / "state").is_dir() and RunFolder(workdir).checkpoint_steps() == [0, 5, 10, 12]
  no_shardings = jax.tree.map(lambda _: None, state["params"])
  checkpoint_lib.restore_params(step_dir.parent, 10, state["params"], no_shardings)  # verifies
  # the params-only reader (sample, report) refuses the damaged one too
  with pytest.raises(CheckpointError, match="checksum mismatch"):
    checkpoint_lib.restore_params(workdir / "damaged_checkpoints", 10, state["params"], no_shardings)
  # the next start meets no damaged checkpoint
  loop.train(small_config(*corpus, "train.steps=13"), workdir, say=print, allow_config_change=True)
  out = capsys.readouterr().out
  assert "resumed from step 12" in out and "warning" not in out


def test_checkpoint_without_checksums_is_not_trusted(trained, corpus, tmp_path, capsys):
  workdir = copy_of(trained, tmp_path)
  meta_file = workdir / "checkpoints" / "10" / "meta" / "metadata"
  meta = json.loads(meta_file.read_text())
  del meta["checksums"]  # and a flipped bit it can no longer reveal:
  meta_file.write_text(json.dumps(meta))
  result = loop.train(small_config(*corpus, "train.steps=10"), workdir, say=print)
  assert result["status"] == "finished"
  out = capsys.readouterr().out
  assert "checkpoint at step 10" in out and "no checksums are recorded" in out
  assert "resumed from step 5" in out
  assert (workdir / "damaged_checkpoints" / "10").is_dir() and 10 in RunFolder(workdir).checkpoint_steps()
  # the params-only reader (sample, report) refuses it too
  import orbax.checkpoint as ocp

  manager = ocp.CheckpointManager(workdir / "checkpoints", options=ocp.CheckpointManagerOptions(read_only=True))
  params = manager.restore(10, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]["params"]
  manager.close()
  with pytest.raises(CheckpointError, match="no checksums are recorded"):
    checkpoint_lib.restore_params(workdir / "damaged_checkpoints", 10, params,
                                  jax.tree.map(lambda _: None, params))


def test_nonfinite_step_stops_before_anything_is_saved(corpus, tmp_path):
  workdir = tmp_path / "run"
  with pytest.raises(checkpoint_lib.NonFiniteError,
                     match=r"step 7: non-finite loss .*stopped before saving it \(the last good checkpoint is step 5"):
    loop.train(small_config(*corpus, "train.steps=12"), workdir, say=quiet, inject_nonfinite=(7,))
  steps = RunFolder(workdir).checkpoint_steps()
  assert steps == [0, 5]
  rows = RunFolder(workdir).read_metrics()
  assert all(np.isfinite(r["loss"]) for r in rows if r["split"] == "train")


def test_cli_exits_nonzero_on_divergence(corpus, tmp_path):
  proc = subprocess.run(train_cmd(corpus, tmp_path / "run", "--config.train.steps=30",
                                  "--config.optimizer.learning_rate=1e6", "--config.schedule.warmup_steps=1",
                                  "--config.optimizer.grad_clip_norm=0.0"),
                        capture_output=True, text=True, timeout=300, cwd=ROOT)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "training diverged" in proc.stderr and "has diverged" in proc.stderr
  assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_loss_spike_counts_as_divergence_when_asked():
  guard = guards.Divergence(spike_factor=3.0, vocab_size=64)
  ok = {"grad_norm": 1.0, "update_norm": 1.0}
  assert all(guard.problem({**ok, "loss": 2.0 + 0.01 * i}) == "" for i in range(25))
  assert guard.problem({**ok, "loss": 5.0}) == ""
  assert "loss spike" in guard.problem({**ok, "loss": 7.0})
  assert "non-finite loss" in guard.problem({**ok, "loss": float("nan")})
  assert guards.Divergence(0.0, 64).problem({**ok, "loss": 1e3}).endswith("the run has diverged")


def test_nonfinite_step_rolls_back_and_skips_the_batches(corpus, tmp_path, capsys):
  workdir = tmp_path / "run"
  result = loop.train(small_config(*corpus, "train.steps=12", "train.on_nonfinite=rollback"), workdir,
                      say=print, inject_nonfinite=(7,))
  out = capsys.readouterr().out
  assert "step 7: non-finite loss" in out and "rolled back to step 5 and skipped the 2 batches" in out
  assert result["status"] == "finished" and result["step"] == 12
  assert np.isfinite(result["validation"]["loss"])
  rollback = [r for r in RunFolder(workdir).read_metrics() if r["split"] == "rollback"]
  assert rollback == [dict(rollback[0], step=7, to_step=5.0, skipped_batches=2.0)]


def test_metrics_fetched_every_log_every_steps_still_stop_a_diverged_step_before_its_save(
    corpus, tmp_path, capsys, monkeypatch):
  """The host fetches metrics once per log_every steps (and before anything is kept), not every
  step; a NaN at step 7 read at the step-8 flush still rolls back to step 5, skips the three
  batches read since, and nothing non-finite is saved or logged. The token store is opened once."""
  from llm_input.data import pipeline

  fetched, opened = [], []
  flush, open_store = loop._Loop.flush, pipeline.open_store
  monkeypatch.setattr(loop._Loop, "flush", lambda self: (fetched.append(len(self.pending)), flush(self))[1])
  monkeypatch.setattr(pipeline, "open_store", lambda *a, **k: (opened.append(1), open_store(*a, **k))[1])
  workdir = tmp_path / "run"
  result = loop.train(small_config(*corpus, "train.steps=16", "train.log_every=4", "train.eval_every=8",
                                   "checkpoint.every_steps=5", "train.on_nonfinite=rollback"),
                      workdir, say=print, inject_nonfinite=(7,))
  out = capsys.readouterr().out
  assert "step 7: non-finite loss" in out and "rolled back to step 5 and skipped the 3 batches" in out
  assert result["status"] == "finished" and result["step"] == 16
  # step 1 (the config record), 2-4, 5 (its checkpoint), 6-8 (step 7 found: rolled back), then
  # from step 5 again: 6-8, 9-10 (checkpoint), 11-12, 13-15, 16
  assert [n for n in fetched if n] == [1, 3, 1, 3, 3, 2, 2, 3, 1], fetched
  rows = RunFolder(workdir).read_metrics()
  assert all(np.isfinite(r["loss"]) for r in rows if r["split"] == "train")
  assert sorted(r["step"] for r in rows if r["split"] == "train") == [4, 8, 12, 16]
  assert RunFolder(workdir).checkpoint_steps()[-1] == 16
  # two evaluations (steps 8 and 16) and a rollback read the store the run opened once (it was
  # re-validated and reopened, its checksums re-read, at every evaluation)
  assert [r["step"] for r in rows if r["split"] == "validation"] == [8, 16]
  assert len(opened) == 1


# -- 2. one trainer per run folder -----------------------------------------------------------

def test_second_trainer_on_the_same_folder_is_refused(trained, corpus, tmp_path):
  workdir = copy_of(trained, tmp_path)
  with RunFolder(workdir).lock():  # this process is "the first trainer"
    proc = subprocess.run(train_cmd(corpus, workdir, "--config.train.steps=10"), capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert f"being written by another trainer (pid {os.getpid()} on host" in proc.stderr
    assert "Traceback" not in proc.stderr
    out = tmp_path / "run" / "tokenizer"
    assert cli.main(["tokenizer", "train", "--kind", "char", "--vocab-size", "50", "--input",
                     str(corpus[0] / "*.txt"), "--out", str(out)]) == 2
  # sample reads without the lock, and the lock dies with its holder
  proc = subprocess.run(train_cmd(corpus, workdir, "--config.train.steps=10"), capture_output=True,
                        text=True, timeout=300, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-2000:]


# -- 3. half-written lines, full disks -------------------------------------------------------

def test_partial_last_metrics_line_is_dropped_with_a_warning(trained, corpus, tmp_path, capsys):
  from llm_input.analysis import curves

  workdir = copy_of(trained, tmp_path)
  with open(workdir / "metrics.jsonl", "a") as f:
    f.write('{"step": 11, "split": "tr')
  assert len(curves.curves(workdir)["train"]["step"]) == 10
  assert "dropped an incomplete last line" in capsys.readouterr().err
  loop.train(small_config(*corpus, "train.steps=12"), workdir, say=quiet, allow_config_change=True)
  rows = RunFolder(workdir).read_metrics()
  assert [r["step"] for r in rows if r["split"] == "train"] == list(range(1, 13))


def test_full_disk_mid_run_is_one_line(trained, corpus, tmp_path, monkeypatch, capsys):
  workdir = copy_of(trained, tmp_path)
  calls = {"n": 0}
  real = RunFolder.append_metrics

  def full(self, record):
    calls["n"] += 1
    if calls["n"] > 2:
      raise OSError(errno.ENOSPC, "No space left on device", str(self.metrics_path))
    return real(self, record)

  monkeypatch.setattr(RunFolder, "append_metrics", full)
  code = cli.main(train_args(corpus, workdir, "--config.train.steps=14", "--allow-config-change"))
  err = capsys.readouterr().err
  assert code == 2
  assert f"no space left on device while writing {workdir / 'metrics.jsonl'}; free space and rerun" in err
  assert err.count("\n") == 1 and "Traceback" not in err
  assert {0, 5, 10} <= set(RunFolder(workdir).checkpoint_steps())  # earlier checkpoints intact


def test_full_disk_before_the_first_step_is_refused_up_front(corpus, tmp_path):
  mount = tmp_path / "small"
  mount.mkdir()
  if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)],
                    capture_output=True).returncode != 0:
    pytest.skip("cannot mount a tmpfs here (not root?); the in-process ENOSPC test covers the message")
  try:
    proc = subprocess.run(train_cmd(corpus, mount / "run", "--config.train.steps=4",
                                    "--config.model.d_model=64", "--config.model.num_layers=4"),
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "no space left on the device of" in proc.stderr and "free space and rerun" in proc.stderr
    assert "Traceback" not in proc.stderr
  finally:
    subprocess.run(["umount", str(mount)])


# -- 4. a failed first run does not block the corrected command ------------------------------

def test_failed_first_run_then_the_corrected_command(corpus, tmp_path):
  workdir = tmp_path / "run"
  with pytest.raises(Exception, match="matches no files"):
    loop.train(small_config(*corpus, f"data.corpus=text:{tmp_path}/nope/*.txt"), workdir, say=quiet)
  assert not (workdir / "config.json").exists()
  with pytest.raises(Exception, match="too large"):
    loop.train(small_config(*corpus, "tokenizer.kind=bpe", "tokenizer.vocab_size=100000"), workdir, say=quiet)
  result = loop.train(small_config(*corpus, "train.steps=3", "train.eval_every=3"), workdir, say=quiet)
  assert result["status"] == "finished" and (workdir / "config.json").exists()


# -- 5. provenance -----------------------------------------------------------------------------

def test_resume_with_a_changed_learning_rate(trained, corpus, tmp_path):
  from llm_input.analysis import report

  workdir = copy_of(trained, tmp_path)
  with pytest.raises(ConfigError, match="optimizer.learning_rate: 0.01 -> 0.005.*--allow-config-change"):
    loop.train(small_config(*corpus, "optimizer.learning_rate=0.005"), workdir, say=quiet)
  assert json.loads((workdir / "config.json").read_text())["optimizer"]["learning_rate"] == 0.01
  loop.train(small_config(*corpus, "optimizer.learning_rate=0.005", "train.steps=12"), workdir,
             say=quiet, allow_config_change=True)
  changes = RunFolder(workdir).read_config_changes()
  assert changes == [{"step": 10, "changed": {"optimizer.learning_rate": [0.01, 0.005],
                                             "train.steps": [10, 12]}}]
  assert "optimizer.learning_rate" in report.run_report(workdir).read_text()


@pytest.mark.parametrize("foreign", ["retrained in place", "another kind"])
def test_foreign_tokenizer_in_the_run_folder_is_refused(trained, corpus, tmp_path, foreign):
  workdir = copy_of(trained, tmp_path)
  # same kind and size cap, other text (so other characters and ids) / another kind
  other_text = tmp_path / "other.txt"
  other_text.write_text("zyx wvu tsr qpo")
  kind, size, source = (("char", "64", str(other_text)) if foreign == "retrained in place"
                        else ("bpe", "300", str(corpus[0] / "*.txt")))
  before = directory_fingerprint(workdir / "tokenizer")
  # tokenizer train refuses to write over a run's tokenizer...
  assert cli.main(["tokenizer", "train", "--kind", kind, "--vocab-size", size, "--input", source,
                   "--out", str(workdir / "tokenizer")]) == 2
  assert directory_fingerprint(workdir / "tokenizer") == before
  # ...so the foreign one is trained elsewhere and copied over it by hand
  assert cli.main(["tokenizer", "train", "--kind", kind, "--vocab-size", size, "--input", source,
                   "--out", str(tmp_path / "foreign")]) == 0
  shutil.rmtree(workdir / "tokenizer")
  shutil.copytree(tmp_path / "foreign", workdir / "tokenizer")
  with pytest.raises(Exception, match="tokenizer"):
    loop.train(small_config(*corpus, "train.steps=12"), workdir, say=quiet, allow_config_change=True)
  assert cli.main(["sample", "--run", str(workdir)]) == 2


# -- 6. SIGINT ---------------------------------------------------------------------------------

def test_sigint_saves_and_exits_like_sigterm(corpus, tmp_path):
  workdir = tmp_path / "run"
  proc = subprocess.Popen(train_cmd(corpus, workdir, "--config.train.steps=100000",
                                    "--config.checkpoint.every_steps=100000", "--config.train.eval_every=100000"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
  deadline = time.time() + 120
  while time.time() < deadline and not (workdir / "config.json").exists():
    time.sleep(0.2)
  time.sleep(1.0)
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, err[-2000:]
  assert "SIGINT: saved step" in out
  saved = int(out.split("SIGINT: saved step ")[1].split(";")[0])
  assert saved in RunFolder(workdir).checkpoint_steps()


# -- 7. user errors: exit 2, one line, no traceback -------------------------------------------

def _cli(args, cwd=ROOT, env=None):
  return subprocess.run([sys.executable, "-m", "llm_input.cli", *args], capture_output=True, text=True,
                        timeout=120, cwd=cwd, env=None if env is None else {**os.environ, **env})


def _bad_inputs(trained, tmp_path):
  """(a config with a syntax error, a file where a folder belongs, a sweep file without
  get_sweep, a run folder with a config and no checkpoints) for the user-error tests."""
  bad_config = tmp_path / "bad.py"
  bad_config.write_text("def get_config(arg=None):\n  return {\n")
  a_file = tmp_path / "file.txt"
  a_file.write_text("x")
  no_sweep = tmp_path / "sweeps" / "nothing" / "sweep.py"
  no_sweep.parent.mkdir(parents=True)
  no_sweep.write_text("X = 1\n")
  config_only = tmp_path / "config_only"
  config_only.mkdir()
  shutil.copy(trained / "config.json", config_only / "config.json")
  return bad_config, a_file, no_sweep, config_only


def test_user_errors_are_one_line(trained, corpus, tmp_path):
  bad_config, a_file, no_sweep, config_only = _bad_inputs(trained, tmp_path)
  no_config = tmp_path / "empty_run"
  no_config.mkdir()
  corrupt = copy_of(trained, tmp_path)
  (corrupt / "config.json").write_text("{not json")
  failing_config = tmp_path / "failing.py"
  failing_config.write_text("def get_config(arg=None):\n  return {'model': undefined_name}\n")
  disagreeing = tmp_path / "tok"
  shutil.copytree(trained / "tokenizer", disagreeing)
  (disagreeing / "sentencepiece.model").write_bytes(b"x")
  cases = [
      (["params", "--config", str(bad_config)], "bad.py:2: syntax error"),
      (["params", "--config", "configs/gpt2_small.py:runlocl"], "accepted: runlocal"),
      (["tokenizer", "train", "--kind", "char", "--vocab-size", "40", "--input", str(a_file),
        "--out", str(a_file)], "is an existing file"),
      (["train", "--config", "configs/tiny.py", "--workdir", str(a_file)], "is a file, not a folder"),
      (["sample", "--run", str(no_config)], "no config.json"),
      (["sample", "--run", str(corrupt)], "config.json is corrupted"),
      (["report", "--run", str(trained), "--sentences", str(tmp_path / "missing.txt")], "is not a file"),
      (["tokenizer", "show", "--tokenizer", str(disagreeing), "hi"], "the files disagree"),
      (["sample", "--run", str(trained), "--temperature", "-1"], "sample.temperature"),
      (["sample", "--run", str(trained), "--top-p", "1.5"], "sample.top_p"),
      (["sample", "--run", str(trained), "--max-new-tokens", "0"], "sample.max_new_tokens"),
      (["sample", "--run", str(trained), "--step", "7"], "has no checkpoint at step 7; it has [0, 5, 10]"),
      (["params", "--config", "configs/tiny.py", "--config.tokenizer.kind=phoneme"], "tokenizer.kind"),
  ]
  cases += [
      (["params", "--config", str(failing_config)],
       "failing.py:2: NameError: name 'undefined_name' is not defined; fix the file"),
      (["sweep", str(no_sweep)], "defines no get_sweep(arg) function"),
      (["params", "--config", "configs"], "config file 'configs' is a folder; name a file in it"),
      (["sample", "--run", str(config_only)], "has no checkpoints yet; train it first"),
      (["report", "--run", str(config_only)], "has no checkpoints yet; train it first"),
      (["tokenizer", "train", "--kind", "char", "--vocab-size", "40", "--input", str(a_file),
        "--out", str(trained / "tokenizer")], "is the tokenizer of the run in"),
  ]
  for args, message in cases:
    proc = _cli(args)
    assert proc.returncode == 2, (args, proc.stderr[-1500:])
    assert message in proc.stderr, (args, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, (args, proc.stderr)
  proc = _cli(["data", "prepare", "--corpus", f"text:{corpus[0]}/*.txt"], env={"LLM_INPUT_DATA": str(a_file)})
  assert proc.returncode == 2 and f"LLM_INPUT_DATA {str(a_file)!r} is a file, not a folder" in proc.stderr
  assert proc.stderr.count("\n") == 1, proc.stderr


def test_user_errors_come_before_jax_is_imported(trained, tmp_path):
  """A bad config file, workdir, flag or run folder is refused in a fraction of a second: the
  commands check them before importing JAX and the model (what every run of theirs pays)."""
  bad_config, a_file, no_sweep, config_only = _bad_inputs(trained, tmp_path)
  cases = [["params", "--config", str(bad_config)],
           ["params", "--run", str(tmp_path / "missing")],
           ["train", "--config", str(bad_config), "--workdir", str(tmp_path / "new")],
           ["train", "--config", "configs/tiny.py", "--workdir", str(a_file)],
           ["bench", "--config", str(bad_config)],
           ["preflight", "--config", str(bad_config), "--topology", "v5e:2x2"],
           ["sample", "--run", str(trained), "--temperature", "-1"],
           ["sample", "--run", str(config_only)],
           ["sample", "--run", str(trained), "--step", "7"],
           ["report", "--run", str(config_only)],
           ["report", "--run", str(trained), "--sentences", str(tmp_path / "missing.txt")],
           ["sweep", str(no_sweep)]]
  script = ("import json, sys\nfrom llm_input import cli\nfor args in json.loads(sys.argv[1]):\n"
            "  code = cli.main(args)\n"
            "  print(code, [m for m in ('jax', 'flax', 'grain', 'orbax', 'tensorflow_datasets') if m in sys.modules])\n")
  proc = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], capture_output=True,
                        text=True, timeout=120, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.splitlines() == ["2 []"] * len(cases), (proc.stdout, proc.stderr)


def test_tokenizer_folder_has_normal_permissions(tmp_path, corpus):
  old = os.umask(0o022)
  try:
    assert cli.main(["tokenizer", "train", "--kind", "char", "--vocab-size", "40", "--input",
                     str(corpus[0] / "*.txt"), "--out", str(tmp_path / "tok")]) == 0
  finally:
    os.umask(old)
  assert (tmp_path / "tok").stat().st_mode & 0o777 == 0o755


# -- 8. writes that fail in a background thread (a full or read-only disk) ------------------

def _in_own_mounts(script: str, timeout: float = 150) -> tuple[subprocess.CompletedProcess, float]:
  """Runs a shell script in its own mount namespace (so it may mount tmpfs and read-only
  binds as root, or as a user with user namespaces) and returns (result, seconds)."""
  if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
    pytest.skip("no mount namespaces here (unshare -rm failed)")
  start = time.monotonic()
  proc = subprocess.run(["unshare", "-rm", "sh", "-ec", script], capture_output=True, text=True,
                        timeout=timeout, cwd=ROOT)
  return proc, time.monotonic() - start


def _one_line(proc, message: str) -> None:
  lines = [line for line in proc.stderr.splitlines() if not line.startswith("tokenize ")]
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr and "ERROR:absl" not in proc.stderr, proc.stderr[-3000:]
  assert lines and message in lines[-1], proc.stderr[-3000:]
  assert sum(line.startswith("llm-input:") for line in lines) == 1 and len(lines) <= 4, lines


def _resumes(corpus, workdir, steps: int) -> None:
  """The run's earlier checkpoints are restorable: the same command continues from them."""
  result = loop.train(small_config(*corpus, f"train.steps={steps}", "checkpoint.every_steps=100"),
                      workdir, say=quiet, allow_config_change=True)
  assert result["status"] == "finished" and result["step"] == steps


def _shell(args) -> str:
  return " ".join(f"'{a}'" for a in args)


def test_full_disk_while_tensorboard_writes_ends_in_one_line(corpus, tmp_path):
  workdir = tmp_path / "run"
  (workdir / "tensorboard").mkdir(parents=True)
  cmd = train_cmd(corpus, workdir, "--config.logging.tensorboard=True", "--config.train.steps=400",
                  "--config.checkpoint.every_steps=100", "--config.train.eval_every=1000")
  proc, seconds = _in_own_mounts(f"mount -t tmpfs -o size=12k tmpfs {workdir}/tensorboard\n"
                                 f"exec {_shell(cmd)}")
  _one_line(proc, f"disk full: no space left on device while writing {workdir / 'tensorboard'}; "
            "free space and rerun")
  assert seconds < 100
  steps = RunFolder(workdir).checkpoint_steps()
  assert 0 in steps
  _resumes(corpus, workdir, max(steps) + 3)


def test_read_only_checkpoints_folder_when_a_save_comes_ends_at_that_save(corpus, tmp_path):
  workdir = tmp_path / "run"
  cmd = train_cmd(corpus, workdir, "--config.train.steps=100000", "--config.checkpoint.every_steps=150",
                  "--config.train.eval_every=100000")
  proc, seconds = _in_own_mounts(
      f"{_shell(cmd)} &\nP=$!\n"
      f"while [ ! -d {workdir}/checkpoints/0 ]; do sleep 0.1; done\n"
      f"mount --bind -o ro {workdir}/checkpoints {workdir}/checkpoints\n"
      "wait $P")
  _one_line(proc, f"read-only: read-only file system while writing {workdir}/checkpoints/150")
  assert "make it writable" in proc.stderr
  assert seconds < 100
  trained_to = max(r["step"] for r in RunFolder(workdir).read_metrics())
  assert 150 <= trained_to <= 152  # the failed save ends the run at once, not at the next save
  assert RunFolder(workdir).checkpoint_steps() == [0]
  _resumes(corpus, workdir, 3)


@pytest.mark.parametrize("async_save", [True, False])
def test_full_disk_during_a_checkpoint_save_is_one_line(corpus, tmp_path, async_save):
  workdir = tmp_path / "run"
  (workdir / "checkpoints").mkdir(parents=True)
  cmd = train_cmd(corpus, workdir, "--config.train.steps=100000", "--config.checkpoint.every_steps=150",
                  "--config.train.eval_every=100000", f"--config.checkpoint.async_save={async_save}")
  sample = [sys.executable, "-m", "llm_input.cli", "sample", "--run", str(workdir), "--max-new-tokens", "2"]
  # the disk fills once the step-0 checkpoint is complete (its folder is renamed into place
  # last); after the failure, `sample` restores (and verifies) step 0 from the same full disk
  proc, seconds = _in_own_mounts(
      f"mount -t tmpfs -o size=4m tmpfs {workdir}/checkpoints\nset +e\n"
      f"{_shell(cmd)} 2> {tmp_path}/train.err &\nP=$!\n"
      f"while [ ! -d {workdir}/checkpoints/0 ]; do sleep 0.05; done\n"
      f"free=$(df --output=avail -B1 {workdir}/checkpoints | tail -1)\n"
      f"fallocate -l $((free - 16384)) {workdir}/checkpoints/.filler\n"
      "wait $P\ncode=$?\n"
      f"{_shell(sample)} > {tmp_path}/sample.out 2>&1\n"
      f"echo \"sample exit $?\" >> {tmp_path}/sample.out\n"
      f"cat {tmp_path}/train.err >&2\nexit $code")
  _one_line(proc, f"disk full: no space left on device while writing {workdir}/checkpoints")
  assert seconds < 120
  assert "Event loop is closed" not in proc.stderr
  sampled = (tmp_path / "sample.out").read_text()
  assert sampled.endswith("sample exit 0\n"), sampled[-2000:]


def test_small_replicated_arrays_are_saved_whole_and_large_ones_split_over_replicas(tmp_path, monkeypatch):
  """On an 8-device data-parallel mesh every parameter is replicated 8 times; orbax would cut
  each one's write into 8 slices (a slice op each). Below REPLICA_PARALLEL_MIN_BYTES per slice
  an array is written whole; above it still in slices. Both read back exactly."""
  from orbax.checkpoint._src.serialization import replica_slices  # noqa: PLC0415

  mesh = jax.sharding.Mesh(np.array(jax.devices()[:8]), ("data",))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  big_rows = 8 * checkpoint_lib.REPLICA_PARALLEL_MIN_BYTES // (4 * 256)  # one full slice per replica
  state = {"params": {"small": jax.device_put(np.arange(4096, dtype=np.float32).reshape(64, 64), replicated),
                      "big": jax.device_put(np.ones((big_rows, 256), np.float32), replicated)}}
  sliced: list = []
  real = replica_slices.ReplicaSlice.data
  monkeypatch.setattr(replica_slices.ReplicaSlice, "data",
                      lambda self: sliced.append(self.unsliced_data.shape) or real(self) if self.slice_args
                      else real(self))
  config = checkpoint_lib.CheckpointConfig(every_steps=1, every_minutes=0.0, async_save=False)
  checkpointer = checkpoint_lib.Checkpointer(tmp_path / "checkpoints", config)
  checkpointer.save(1, state, {}, {"param_shapes": checkpoint_lib.param_shapes(state)}, force=True)
  checkpointer.close()
  assert sliced == [(big_rows, 256)] * 8  # the big array by its 8 replicas, the small one whole
  shardings = jax.tree.map(lambda _: replicated, state["params"])
  params = checkpoint_lib.restore_params(tmp_path / "checkpoints", 1, state["params"], shardings)
  for key in ("small", "big"):
    np.testing.assert_array_equal(np.asarray(params[key]), np.asarray(state["params"][key]))
