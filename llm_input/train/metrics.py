"""Metric writers (metrics.jsonl and TensorBoard) for a run folder."""

from __future__ import annotations

import json
import pathlib
import time


class MetricWriter:
  def __init__(self, workdir: pathlib.Path, tensorboard: bool = True, enabled: bool = True):
    self.enabled = enabled
    self.path = workdir / "metrics.jsonl"
    self.tb = None
    if enabled and tensorboard:
      from tensorboardX import SummaryWriter  # noqa: PLC0415

      self.tb = SummaryWriter(str(workdir / "tensorboard"))

  def write(self, step: int, split: str, values: dict) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), "split": split, "time": time.time(),
              **{k: float(v) for k, v in values.items()}}
    with self.path.open("a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")
    if self.tb is not None:
      for key, value in values.items():
        self.tb.add_scalar(f"{split}/{key}", float(value), int(step))

  def close(self) -> None:
    if self.tb is not None:
      self.tb.close()


def read(workdir: pathlib.Path) -> list[dict]:
  path = pathlib.Path(workdir) / "metrics.jsonl"
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
