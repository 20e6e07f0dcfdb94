"""Reading run folders back: any optimizer setting, one compilation per model, layering."""

import ast
import pathlib

import pytest

from llm_input import cli
from llm_input.errors import UserError
from llm_input.runs import RunFolder
from llm_input.train import loop
from llm_input.train import sample as sample_lib

from helpers import ROOT, small_config


@pytest.mark.parametrize("optimizer", [
    ("optimizer.grad_clip_norm=0.0",),
    # the other two optimizers in make test-slow (about 15 s each)
    pytest.param(("optimizer.decay_all=True", "schedule.kind=linear"), marks=pytest.mark.slow),
    pytest.param(("schedule.kind=constant", "optimizer.weight_decay=0.0"), marks=pytest.mark.slow),
])
def test_runs_with_non_default_optimizer_can_be_sampled_and_reported(corpus, tmp_path, capsys, optimizer):
  from llm_input.analysis import report

  workdir = tmp_path / "run"
  loop.train(small_config(*corpus, "train.steps=3", "train.eval_every=3", *optimizer), workdir,
             say=lambda *a: None)
  capsys.readouterr()
  assert cli.main(["sample", "--run", str(workdir), "--prompt", "the", "--max-new-tokens", "4",
                   "--temperature", "0"]) == 0
  # The command prints the greedy continuation of this run's own model and tokenizer (the
  # prompt alone, which it echoes, cannot pass: 4 new tokens follow it).
  from llm_input.train import reload

  expected = "the" + reload.load_run(workdir).generate("the", 4, temperature=0.0)
  assert len(expected) > len("the")
  assert capsys.readouterr().out.strip() == expected.strip()
  assert report.run_report(workdir).is_file()


def test_sample_num_3_compiles_once(corpus, tmp_path, capsys):
  workdir = tmp_path / "run"
  loop.train(small_config(*corpus, "train.steps=2", "train.eval_every=2", "model.d_model=24",
                          "model.num_heads=3"), workdir, say=lambda *a: None)
  capsys.readouterr()
  before = (sample_lib._prefill._cache_size(), sample_lib._decode._cache_size())
  assert cli.main(["sample", "--run", str(workdir), "--prompt", "a", "--num", "3",
                   "--max-new-tokens", "5"]) == 0
  after = (sample_lib._prefill._cache_size(), sample_lib._decode._cache_size())
  assert capsys.readouterr().out.count("---") == 2
  # this model shape is new to the process: exactly one prefill and one decode compilation
  assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


@pytest.mark.parametrize("override, message", [
    ("checkpoint.every_steps=0", "checkpoint.every_steps"),
    ("checkpoint.keep=0", "checkpoint.keep"),
    ("checkpoint.every_minutes=-1.0", "checkpoint.every_minutes"),
    ("sample.temperature=-0.5", "sample.temperature"),
    ("sample.top_p=0.0", "sample.top_p"),
    ("sample.top_k=-1", "sample.top_k"),
    ("sample.max_new_tokens=0", "sample.max_new_tokens"),
    ("mesh.rules.embed=fsdpp", "mesh.rules.embed"),
    ("tokenizer.normalization=nfc", "tokenizer.normalization"),
])
def test_bad_checkpoint_sample_and_rule_values_fail_before_the_workdir_exists(corpus, tmp_path, override, message):
  with pytest.raises(UserError, match=message):
    loop.train(small_config(*corpus, override), tmp_path / "run")
  assert not (tmp_path / "run").exists()


def _imports(path: pathlib.Path) -> set[str]:
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{a.name}" for a in node.names)
  return names


def test_analysis_never_imports_the_training_loop():
  files = sorted((ROOT / "llm_input" / "analysis").glob("*.py"))
  files.append(ROOT / "experiments" / "positions" / "order_probe.py")
  offenders = [f.name for f in files if "llm_input.train.loop" in _imports(f)]
  assert files and not offenders


def test_run_folder_owns_the_layout(tmp_path):
  run = RunFolder(tmp_path / "r")
  names = {p.name for p in (run.config_path, run.summary_path, run.metrics_path, run.tokenizer_dir,
                            run.checkpoints_dir, run.samples_path, run.report_path, run.tensorboard_dir)}
  assert names == {"config.json", "summary.json", "metrics.jsonl", "tokenizer", "checkpoints",
                   "samples.txt", "report.html", "tensorboard"}
  # no other module spells these file names (report.py's sweep page is not in a run folder;
  # a Hugging Face model folder has a config.json of its own, in its own format, which
  # interop/huggingface.py owns: it writes the run folder it imports into through RunFolder)
  own_format = {"huggingface.py": {'"config.json"'}}
  spelled = []
  for path in (ROOT / "llm_input").rglob("*.py"):
    if path.name == "runs.py":
      continue
    text = path.read_text()
    spelled += [f"{path.name}: {n}" for n in ('"config.json"', '"summary.json"', '"metrics.jsonl"',
                                               '"samples.txt"')
                if n in text and n not in own_format.get(path.name, ())]
  assert not spelled, spelled
  assert "run.write_config(" in (ROOT / "llm_input" / "interop" / "huggingface.py").read_text()


def _tensorboard_events(folder):
  """Every Event in the folder's event files, read by the TFRecord framing TensorBoard reads
  (length, its masked crc32c, the proto, its masked crc32c), each crc checked."""
  import struct  # noqa: PLC0415

  from tensorboardX.crc32c import crc32c  # noqa: PLC0415
  from tensorboardX.proto.event_pb2 import Event  # noqa: PLC0415

  def masked(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

  events = []
  for path in sorted(folder.glob("events.out.tfevents.*")):
    data, at = path.read_bytes(), 0
    while at < len(data):
      header = data[at:at + 8]
      (length,), (header_crc,) = struct.unpack("Q", header), struct.unpack("I", data[at + 8:at + 12])
      body = data[at + 12:at + 12 + length]
      (body_crc,) = struct.unpack("I", data[at + 12 + length:at + 16 + length])
      assert header_crc == masked(header) and body_crc == masked(body)
      events.append(Event.FromString(body))
      at += 16 + length
  return events


def test_tensorboard_events_are_written_in_the_loop_and_read_back(tmp_path):
  from llm_input.train import metrics as metrics_lib  # noqa: PLC0415

  run = RunFolder(tmp_path / "run")
  run.path.mkdir()
  writer = metrics_lib.MetricWriter(run, tensorboard=True)
  writer.write(1, "train", {"loss": 2.5, "accuracy": 0.25})
  writer.write(2, "validation", {"loss": 2.0})
  # readable before close: each write is flushed where it is logged
  scalars = [(e.step, v.tag, v.simple_value) for e in _tensorboard_events(run.tensorboard_dir)
             for v in e.summary.value]
  assert scalars == [(1, "train/loss", 2.5), (1, "train/accuracy", 0.25), (2, "validation/loss", 2.0)]
  writer.close()
  resumed = metrics_lib.MetricWriter(run, tensorboard=True, purge_step=2)
  resumed.close()
  events = _tensorboard_events(run.tensorboard_dir)
  assert len([v for e in events for v in e.summary.value]) == 3  # the first segment's file is kept
  starts = [e.step for e in events if e.HasField("session_log")]
  assert starts == [2]  # TensorBoard drops the earlier file's events from step 2 on


def test_a_config_written_before_a_field_existed_resumes_as_that_fields_old_meaning(tmp_path):
  """Bug guarded: a new model/schedule field (e.g. model.attention_scale) makes every run folder
  written before it refuse to resume ("different model config"): ADDED_FIELDS must name it with
  the value those runs had. A field missing from it fails here."""
  import json

  from llm_input import config as config_lib
  from llm_input.runs import ADDED_FIELDS, SPEED_FIELDS

  cfg = config_lib.load("configs/tiny.py")
  written = json.loads(cfg.to_json_best_effort())
  # every field added since run folders were first written, whether or not ADDED_FIELDS has it
  added = ["tokenizer.path", "model.qkv_bias", "schedule.warmup_fraction", "schedule.decay_fraction",
           "checkpoint.keep_steps", "model.head_loss_chunk", "model.attention_scale"]
  assert set(ADDED_FIELDS) <= set(added)
  for field in added:
    section, key = field.split(".")
    written[section].pop(key, None)
  run = RunFolder(tmp_path / "old")
  run.path.mkdir()
  run.config_path.write_text(json.dumps(written))
  # raises if a model field is missing from ADDED_FIELDS; only speed fields may be recorded
  # (tiny's head_loss_chunk=32 against the 0 of runs from before that field)
  assert set(run.config_changes(cfg, allow_change=False)) <= set(SPEED_FIELDS)
  # and the fields this guards really are in today's config (a renamed field would pass above)
  for field in ADDED_FIELDS:
    section, key = field.split(".")
    assert key in cfg[section], field
