"""The run folder: the one module that knows the layout of `runs/NAME/` and reads and writes it.

    runs/NAME/
      config.json      the full ml-collections config of the run
      summary.json     final figures a sweep table collects ({"status", "table"})
      metrics.jsonl    one JSON object per logged step and split
      tensorboard/     TensorBoard event files
      tokenizer/       the run's tokenizer (a checkpoint is never separated from its vocabulary)
      checkpoints/     orbax checkpoints, one folder per step
      samples.txt      generated text at the end of training
      report.html      `llm-input report` (and report.json, every number on the page)

Everything else asks this module for paths and contents.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import ml_collections

from llm_input.errors import CheckpointError
from llm_input.fileio import write_text_atomic


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
  def report_path(self) -> pathlib.Path:
    return self.path / "report.html"

  @property
  def report_json_path(self) -> pathlib.Path:
    return self.path / "report.json"

  @property
  def name(self) -> str:
    return self.path.name

  def __str__(self) -> str:
    return str(self.path)

  # -- config ------------------------------------------------------------------------------
  def has_config(self) -> bool:
    return self.config_path.is_file()

  def read_config_dict(self) -> dict:
    return json.loads(self.config_path.read_text(encoding="utf-8"))

  def read_config(self) -> ml_collections.ConfigDict:
    """The run's config; a clear error when the folder is missing or is not a run folder."""
    if not self.path.is_dir():
      raise CheckpointError(f"run folder {str(self.path)!r} does not exist; train one with "
                            "`llm-input train --config configs/tiny.py --workdir DIR`")
    if not self.has_config():
      raise CheckpointError(f"{self.path} is not a run folder (no config.json)")
    return ml_collections.ConfigDict(self.read_config_dict())

  def write_config(self, cfg: ml_collections.ConfigDict) -> None:
    write_text_atomic(self.config_path, cfg.to_json_best_effort(indent=2) + "\n")

  def config_text(self) -> str:
    return self.config_path.read_text(encoding="utf-8")

  # -- summary -----------------------------------------------------------------------------
  def read_summary(self) -> dict:
    """summary.json, or {} when the run has not finished yet."""
    if not self.summary_path.exists():
      return {}
    return json.loads(self.summary_path.read_text(encoding="utf-8"))

  def write_summary(self, table: dict) -> None:
    summary = {"status": "finished", "table": table}
    write_text_atomic(self.summary_path, json.dumps(summary, indent=2) + "\n")

  def finished(self) -> bool:
    return self.read_summary().get("status") == "finished"

  # -- metrics -----------------------------------------------------------------------------
  def append_metrics(self, record: dict) -> None:
    with self.metrics_path.open("a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")

  def read_metrics(self) -> list[dict]:
    if not self.metrics_path.exists():
      return []
    return [json.loads(line) for line in self.metrics_path.read_text(encoding="utf-8").splitlines()
            if line.strip()]

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
