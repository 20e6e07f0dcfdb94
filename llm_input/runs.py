"""The run folder: the one module that knows the layout of `runs/NAME/` and reads and writes it.

    runs/NAME/
      config.json      the full ml-collections config of the run
      summary.json     final figures a sweep table collects ({"status", "table"})
      metrics.jsonl    one JSON object per logged step and split
      tensorboard/     TensorBoard event files
      damaged_checkpoints/  step folders that failed their checksums on restore, set aside
      tokenizer/       the run's tokenizer (a checkpoint is never separated from its vocabulary)
      checkpoints/     orbax checkpoints, one folder per step
      samples.txt      generated text at the end of training
      val_documents.json  validation loss and bytes per held-out document (`llm-input eval`)
      baselines.json   Kneser-Ney n-gram bits per byte on the same targets (`llm-input baseline ngram`)
      report.html      `llm-input report` (and report.json, every number on the page)
      run.json         what the config does not say: the tokenizer's fingerprint, and for a
                       model imported from Hugging Face (`llm-input import-hf`) where it came from
      config_changes.jsonl  every accepted change of settings on resume: (step, fields)
      .lock            held (flock) by the one trainer writing this folder
      .config.pending.json  the config of a start that has not finished its first step

Everything else asks this module for paths and contents.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import pathlib
import shutil
import socket
import sys

import ml_collections

from llm_input import config as config_lib
from llm_input.errors import CheckpointError, ConfigError, UserError
from llm_input.fileio import directory_fingerprint, write_text_atomic


# Sections of the config that must not change when a run folder is resumed.
FROZEN_SECTIONS = ("model", "tokenizer", "data", "seed")
# Sections that may change on resume only with --allow-config-change (and are recorded).
GUARDED_SECTIONS = ("optimizer", "schedule", "train")
# Fields of the frozen sections that only change how the step is computed, not what: a resume
# may change them (the change is recorded like any other).
SPEED_FIELDS = ("model.head_loss_chunk", "model.attention_block")
# Fields added after run folders were written, with the value that means what those runs did:
# a config.json without them resumes as if it had them at that value.
ADDED_FIELDS = {"tokenizer.path": "", "model.qkv_bias": None, "schedule.warmup_fraction": 0.0,
                "schedule.decay_fraction": 0.2, "checkpoint.keep_steps": [], "model.head_loss_chunk": 0,
                "model.attention_scale": "sqrt"}


class RunLockedError(UserError):
  label = "run folder in use"


def _warn(message: str) -> None:
  print(f"warning: {message}", file=sys.stderr, flush=True)


def _read_json_or_empty(path: pathlib.Path, if_damaged: str) -> dict:
  """A JSON file of the run folder, or {} when it is missing or damaged (saying `if_damaged`)."""
  if not path.exists():
    return {}
  try:
    return json.loads(path.read_text(encoding="utf-8"))
  except (json.JSONDecodeError, UnicodeDecodeError):
    _warn(f"{path} is damaged; {if_damaged}")
    return {}


def read_json_lines(path: pathlib.Path) -> list[dict]:
  """JSON lines of `path`; a partial last line (a crash or a full disk mid-write) is dropped
  with a warning, any other bad line is an error naming the file and line."""
  if not path.exists():
    return []
  text = path.read_text(encoding="utf-8", errors="replace")
  lines = text.split("\n")
  records = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      if number == len(lines):  # the last line, without its newline: a write cut short
        _warn(f"{path}: dropped an incomplete last line ({len(line)} characters)")
        continue
      raise CheckpointError(f"{path} line {number} is not JSON; fix or delete that line") from None
  return records


def append_json_line(path: pathlib.Path, record: dict) -> None:
  """One os.write of the whole line with O_APPEND: a crash leaves at most one partial line."""
  data = (json.dumps(record) + "\n").encode("utf-8")
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
  try:
    os.write(fd, data)
  except OSError as err:  # os.write's error carries no filename: name the file
    raise OSError(err.errno, err.strerror, str(path)) from None
  finally:
    os.close(fd)


@dataclasses.dataclass(frozen=True)
class RunFolder:
  path: pathlib.Path

  def __init__(self, path):
    object.__setattr__(self, "path", pathlib.Path(path))

  # -- layout ------------------------------------------------------------------------------
  @property
  def config_path(self) -> pathlib.Path:
    return self.path / "config.json"

  @property
  def summary_path(self) -> pathlib.Path:
    return self.path / "summary.json"

  @property
  def metrics_path(self) -> pathlib.Path:
    return self.path / "metrics.jsonl"

  @property
  def tensorboard_dir(self) -> pathlib.Path:
    return self.path / "tensorboard"

  @property
  def tokenizer_dir(self) -> pathlib.Path:
    return self.path / "tokenizer"

  @property
  def checkpoints_dir(self) -> pathlib.Path:
    return self.path / "checkpoints"

  @property
  def samples_path(self) -> pathlib.Path:
    return self.path / "samples.txt"

  @property
  def baselines_path(self) -> pathlib.Path:
    return self.path / "baselines.json"

  def read_baselines(self) -> dict:
    """{"discount", "seq_len", "rows": [{order, bits_per_byte, ...}]}, or {} when not computed."""
    return _read_json_or_empty(self.baselines_path, "recompute it with `llm-input baseline ngram "
                               f"--run {self.path}`")

  def write_baselines(self, record: dict) -> None:
    write_text_atomic(self.baselines_path, json.dumps(record, indent=1) + "\n")

  @property
  def documents_path(self) -> pathlib.Path:
    return self.path / "val_documents.json"

  def read_documents(self) -> dict:
    """{"step", "documents": [{index, loss_nats, bytes, tokens}], ...}, or {} when not computed."""
    return _read_json_or_empty(self.documents_path, f"recompute it with `llm-input eval --run {self.path}`")

  def write_documents(self, record: dict) -> None:
    write_text_atomic(self.documents_path, json.dumps(record, indent=1) + "\n")

  @property
  def report_path(self) -> pathlib.Path:
    return self.path / "report.html"

  @property
  def report_json_path(self) -> pathlib.Path:
    return self.path / "report.json"

  @property
  def run_json_path(self) -> pathlib.Path:
    return self.path / "run.json"

  @property
  def changes_path(self) -> pathlib.Path:
    return self.path / "config_changes.jsonl"

  @property
  def pending_config_path(self) -> pathlib.Path:
    """The config of a start that has not yet taken its first step (config.json after it)."""
    return self.path / ".config.pending.json"

  @property
  def lock_path(self) -> pathlib.Path:
    return self.path / ".lock"

  @property
  def name(self) -> str:
    return self.path.name

  def __str__(self) -> str:
    return str(self.path)

  # -- config ------------------------------------------------------------------------------
  def has_config(self) -> bool:
    return self.config_path.is_file()

  def read_config(self) -> ml_collections.ConfigDict:
    """The run's config; a clear error when the folder is missing or is not a run folder."""
    if not self.path.is_dir():
      raise CheckpointError(f"run folder {str(self.path)!r} does not exist; train one with "
                            "`llm-input train --config configs/tiny.py --workdir DIR`")
    if not self.has_config():
      raise CheckpointError(f"{self.path} is not a run folder (no config.json): train it with "
                            "`llm-input train --config ... --workdir DIR` first")
    return ml_collections.ConfigDict(self.read_config_dict())

  def read_config_dict(self) -> dict:
    try:
      value = json.loads(self.config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
      raise CheckpointError(f"{self.config_path} is corrupted ({err.__class__.__name__}: {err}); "
                            "restore it from a backup, or start a new --workdir") from None
    if not isinstance(value, dict):
      raise CheckpointError(f"{self.config_path} is not a config (a JSON object was expected)")
    return value

  def write_config(self, cfg: ml_collections.ConfigDict) -> None:
    write_text_atomic(self.config_path, cfg.to_json_best_effort(indent=2) + "\n")
    self.pending_config_path.unlink(missing_ok=True)

  def write_pending_config(self, cfg: ml_collections.ConfigDict) -> None:
    write_text_atomic(self.pending_config_path, cfg.to_json_best_effort(indent=2) + "\n")

  def record_config_change(self, step: int, changes: dict) -> None:
    append_json_line(self.changes_path, {"step": int(step), "changed": changes})

  def read_config_changes(self) -> list[dict]:
    return read_json_lines(self.changes_path)

  # -- the resume policy -------------------------------------------------------------------
  def check_trainable(self) -> None:
    """A training command may use this folder: it is a folder (or none yet), and not a model
    imported from Hugging Face (whose checkpoint holds parameters only: no optimizer or data
    state to resume from)."""
    if self.path.exists() and not self.path.is_dir():
      raise ConfigError(f"--workdir {str(self.path)!r} is a file, not a folder; choose a folder path")
    if self.imported():
      raise ConfigError(f"{self.path} holds a model imported from Hugging Face "
                        f"({self.imported()['architecture']}); training it is not supported: sample, "
                        "report or export-hf it, and train new models in a new --workdir")

  def config_changes(self, cfg: ml_collections.ConfigDict, allow_change: bool) -> dict:
    """{field: [saved, now]} of the settings a resumed run changes; raises for those not allowed:
    a FROZEN section never changes, a GUARDED one only with --allow-config-change."""
    if not self.has_config():
      return {}
    saved = self.read_config_dict()
    for field, value in ADDED_FIELDS.items():
      section, key = field.split(".")
      if isinstance(saved.get(section), dict):
        saved[section].setdefault(key, value)
    now = json.loads(cfg.to_json_best_effort())
    without_speed = [{k: dict(v) if isinstance(v, dict) else v for k, v in tree.items()} for tree in (saved, now)]
    for tree in without_speed:
      for field in SPEED_FIELDS:
        section, key = field.split(".")
        if isinstance(tree.get(section), dict):
          tree[section].pop(key, None)
    frozen = [k for k in FROZEN_SECTIONS if without_speed[0].get(k) != without_speed[1].get(k)]
    if frozen:
      raise ConfigError(f"{self} holds a run with a different {', '.join(frozen)} config; resume "
                        "it with the config in its config.json, or use a new --workdir")
    before, after = config_lib.flatten(saved), config_lib.flatten(now)
    changes = {k: [before.get(k), after.get(k)] for k in sorted(set(before) | set(after))
               if before.get(k) != after.get(k)}
    guarded = [k for k in changes if k.split(".")[0] in GUARDED_SECTIONS]
    if guarded and not allow_change:
      shown = ", ".join(f"{k}: {changes[k][0]!r} -> {changes[k][1]!r}" for k in guarded[:4])
      raise ConfigError(f"resuming {self} with changed settings ({shown}); rerun with "
                        "--allow-config-change to continue with them (the change is recorded in "
                        "the run folder and shown by the report), or use the config in its config.json")
    return changes

  def clear_unstarted(self, say) -> None:
    """Files left by a start that failed before its first step (marked by its pending config,
    with no config.json) belong to no run and would block the corrected command, so they go.
    A folder without either marker is left alone (its checkpoints are checked by shape)."""
    if self.has_config() or not self.pending_config_path.exists():
      return
    leftovers = [p for p in (self.checkpoints_dir, self.metrics_path, self.tensorboard_dir,
                             self.summary_path, self.samples_path, self.changes_path) if p.exists()]
    if self.checkpoints_dir.exists() and any(not c.name.isdigit() and not c.name.startswith(".")
                                             for c in self.checkpoints_dir.iterdir()):
      raise ConfigError(f"{self.checkpoints_dir} holds files that are not llm_input checkpoints; "
                        "use another --workdir")
    for path in leftovers:
      shutil.rmtree(path) if path.is_dir() else path.unlink()
    if leftovers:
      say(f"note: {self} had no config.json (an earlier start failed before its first step); "
          f"removed what it left: {', '.join(p.name for p in leftovers)}")

  # -- run.json: the tokenizer's fingerprint -----------------------------------------------
  def read_run_json(self) -> dict:
    if not self.run_json_path.exists():
      return {}
    return json.loads(self.run_json_path.read_text(encoding="utf-8"))

  def write_run_json(self, record: dict) -> None:
    """Adds `record`'s keys to run.json (e.g. `imported`: where an imported model came from)."""
    write_text_atomic(self.run_json_path, json.dumps({**self.read_run_json(), **record}, indent=1) + "\n")

  def imported(self) -> dict:
    """{from, architecture, family, dtype, files} of a model imported from Hugging Face; {} else."""
    return self.read_run_json().get("imported") or {}

  def record_tokenizer(self, tokenizer=None) -> str:
    """Records in run.json the fingerprint of the tokenizer saved in tokenizer/ (`tokenizer`:
    the object just saved there, whose `fingerprint()` is that folder's)."""
    fingerprint = tokenizer.fingerprint() if tokenizer is not None else directory_fingerprint(self.tokenizer_dir)
    write_text_atomic(self.run_json_path, json.dumps(
        {**self.read_run_json(), "tokenizer_sha256": fingerprint}, indent=1) + "\n")
    return fingerprint

  def check_tokenizer(self) -> None:
    """The tokenizer folder must be the one the run was trained with."""
    want = self.read_run_json().get("tokenizer_sha256")
    if want is None or not self.tokenizer_dir.is_dir():
      return
    have = directory_fingerprint(self.tokenizer_dir)
    if have != want:
      raise CheckpointError(
          f"{self.tokenizer_dir} is not the tokenizer this run was trained with (sha256 "
          f"{have[:12]}, recorded {want[:12]} in {self.run_json_path.name}); it was changed "
          "after the run started. Put the original back, or train a new run in a new --workdir")

  # -- one trainer per folder --------------------------------------------------------------
  def lock(self) -> "RunLock":
    return RunLock(self)

  def config_text(self) -> str:
    return self.config_path.read_text(encoding="utf-8")

  # -- summary -----------------------------------------------------------------------------
  def read_summary(self) -> dict:
    """summary.json, or {} when the run has not finished yet (or the file is damaged)."""
    return _read_json_or_empty(self.summary_path, "treating the run as unfinished")

  def write_summary(self, table: dict) -> None:
    summary = {"status": "finished", "table": table}
    write_text_atomic(self.summary_path, json.dumps(summary, indent=2) + "\n")

  def finished(self) -> bool:
    return self.read_summary().get("status") == "finished"

  # -- metrics -----------------------------------------------------------------------------
  def append_metrics(self, record: dict) -> None:
    append_json_line(self.metrics_path, record)

  def read_metrics(self) -> list[dict]:
    return read_json_lines(self.metrics_path)

  def last_validation(self) -> dict | None:
    """The newest validation record in metrics.jsonl (a finished run reopened reports it)."""
    return next((r for r in reversed(self.read_metrics()) if r["split"] == "validation"), None)

  def truncate_metrics(self, step: int) -> None:
    """After a restore, drops the metrics of steps the resumed run will redo."""
    if not self.metrics_path.exists():
      return
    kept = [r for r in self.read_metrics() if r["step"] <= step]
    write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

  # -- samples and report ------------------------------------------------------------------
  def write_samples(self, text: str) -> None:
    write_text_atomic(self.samples_path, text)

  def write_report(self, page: str, data_json: str) -> pathlib.Path:
    write_text_atomic(self.report_path, page)
    write_text_atomic(self.report_json_path, data_json)
    return self.report_path

  # -- checkpoints -------------------------------------------------------------------------
  def checkpoint_steps(self) -> list[int]:
    folder = self.checkpoints_dir
    if not folder.is_dir():
      return []
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())

  def readable_step(self, step: int | None = None) -> int:
    """The checkpoint a reader (sample, report, analysis, export) restores: `step`, or the
    latest. Checks what needs no JAX first, so a bad --run is one line before any heavy import:
    the folder and its config.json, at least one checkpoint, the step, the tokenizer's files."""
    self.read_config()
    steps = self.checkpoint_steps()
    if not steps:  # said before the tokenizer: a run that never trained may have none yet
      raise CheckpointError(f"{self} has no checkpoints yet; train it first (llm-input train "
                            f"--workdir {self.path} with the config that wrote its config.json)")
    if step is not None and step not in steps:
      raise CheckpointError(f"{self} has no checkpoint at step {step}; it has {steps}")
    self.check_tokenizer()
    return steps[-1] if step is None else step

  def state(self) -> str:
    """What the run is, in words a report can print: 'untrained (only its step-0 checkpoint)',
    'diverged at step N (last good checkpoint: step M)', 'trained to step N of T (unfinished)'
    or 'trained to step N (finished)'."""
    steps = self.checkpoint_steps()
    last = steps[-1] if steps else None
    imported = self.imported()
    if imported:
      return f"imported from Hugging Face ({imported['architecture']}, {imported['from']})"
    summary = self.read_summary()
    if summary.get("status") == "finished":
      return f"trained to step {summary.get('table', {}).get('steps', last)} (finished)"
    diverged = [r["step"] for r in self.read_metrics() if r.get("split") == "diverged"]
    if diverged and (last is None or diverged[-1] > last):
      where = f"last good checkpoint: step {last}" if last is not None else "no checkpoint"
      return f"diverged at step {diverged[-1]} ({where})"
    if last is None:
      return "untrained (no checkpoint)"
    if last == 0:
      return "untrained (only its step-0 checkpoint)"
    train = self.read_config_dict().get("train", {}) if self.has_config() else {}
    total = None if train.get("flops_budget") else train.get("steps")  # a budget sets its own
    return f"trained to step {last}" + (f" of {total}" if total else "") + " (unfinished)"


class RunLock:
  """An OS lock (flock) on RUN/.lock for the trainer's lifetime. The kernel releases it when
  the process dies, so a SIGKILLed run never leaves a stale lock; the file names the holder."""

  def __init__(self, run: RunFolder):
    self.run = run
    self._fd = None

  def acquire(self) -> "RunLock":
    self.run.path.mkdir(parents=True, exist_ok=True)
    fd = os.open(self.run.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      os.close(fd)
      if err.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      raise RunLockedError(f"{self.run.path} is being written by another trainer "
                           f"({holder(self.run)}); wait for it to finish, stop it, or use another "
                           "--workdir") from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
    self._fd = fd
    return self

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def holder(run: RunFolder) -> str:
  try:
    info = json.loads(run.lock_path.read_text())
    return f"pid {info['pid']} on host {info['host']}"
  except (OSError, ValueError, KeyError):
    return "holder unknown"


def is_locked(folder) -> bool:
  """Whether a trainer holds `folder`'s lock right now (a probe that takes nothing)."""
  path = pathlib.Path(folder) / ".lock"
  if not path.exists():
    return False
  fd = os.open(path, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False
  except OSError:
    return True
  finally:
    os.close(fd)
