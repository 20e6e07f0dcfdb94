"""Learning-rate schedules by hand: warmup as a share of the run, warmup-stable-decay."""

import numpy as np
import pytest

from llm_input import config as config_lib
from llm_input.errors import ConfigError
from llm_input.train import optim
from llm_input.train import sections as sections_lib

from helpers import ROOT


def lr(cfg, steps):
  schedule = optim.learning_rate_schedule(cfg)
  return np.asarray([float(schedule(s)) for s in steps])


@pytest.mark.parametrize("total,fraction,want", [(1000, 0.05, 50), (39, 0.05, 2), (10, 0.05, 1),
                                                 (200, 0.25, 50), (7, 0.5, 4)])
def test_warmup_fraction_scales_with_the_run(total, fraction, want):
  cfg = optim.OptimConfig(learning_rate=1.0, total_steps=total, warmup_steps=100, warmup_fraction=fraction)
  assert cfg.warmup == want
  values = lr(cfg, range(total + 1))
  np.testing.assert_allclose(values[0], 1.0 / want, rtol=1e-6)
  np.testing.assert_allclose(values[want], 1.0, rtol=1e-6)  # the peak, where the warmup ends
  assert want == 1 or np.all(np.diff(values[:want + 1]) > 0)
  assert np.all(np.diff(values[want:]) <= 1e-7)
  np.testing.assert_allclose(values[total], 0.1, rtol=1e-5)  # cosine to final_lr_fraction


def test_fixed_warmup_steps_still_work():
  cfg = optim.OptimConfig(learning_rate=2.0, total_steps=100, warmup_steps=10)
  assert cfg.warmup == 10
  np.testing.assert_allclose(lr(cfg, [0, 5, 10]), [0.2, 2.0 * (0.1 + 0.9 * 5 / 10), 2.0], rtol=1e-6)


def test_warmup_stable_decay_by_hand():
  # 10 steps, warmup 2, the last 30% (3 steps) decay linearly from 1.0 to 0.1
  cfg = optim.OptimConfig(learning_rate=1.0, total_steps=10, warmup_steps=2, schedule="wsd",
                          decay_fraction=0.3, final_lr_fraction=0.1)
  assert cfg.decay_start == 7
  want = [0.5, 0.75, 1, 1, 1, 1, 1, 1, 1 - 0.9 / 3, 1 - 1.8 / 3, 0.1]
  np.testing.assert_allclose(lr(cfg, range(11)), want, rtol=1e-6)


def test_wsd_does_not_depend_on_the_run_length_before_its_decay():
  """What lets a shorter budget's cooldown branch from a longer run's checkpoint."""
  short, long = (optim.OptimConfig(learning_rate=3e-3, total_steps=t, warmup_steps=5, schedule="wsd",
                                   decay_fraction=0.25) for t in (40, 160))
  assert short.decay_start == 30
  np.testing.assert_array_equal(lr(short, range(31)), lr(long, range(31)))
  assert lr(short, [40])[0] == pytest.approx(3e-4) and lr(long, [40])[0] == pytest.approx(3e-3)


@pytest.mark.parametrize("override,needle", [
    ("schedule.warmup_fraction=1.5", "schedule.warmup_fraction must be in [0, 1)"),
    ("schedule.decay_fraction=0.0", "schedule.decay_fraction must be in (0, 1]"),
    ("schedule.kind=wsd", "do not fit in 20 steps"),
])
def test_bad_schedules_are_refused_before_training(override, needle):
  cfg = config_lib.load(str(ROOT / "configs/tiny.py"), ["train.steps=20", "schedule.decay_fraction=0.9",
                                                         override])
  with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
    sections_lib.validate(cfg)


def test_a_wsd_cooldown_branch_equals_the_run_trained_straight_to_its_budget(tmp_path, capsys):
  import json  # noqa: PLC0415

  from llm_input import cli  # noqa: PLC0415
  from llm_input.runs import RunFolder  # noqa: PLC0415

  from helpers import make_text_corpus, small_overrides  # noqa: PLC0415

  corpus = make_text_corpus(tmp_path / "corpus", files=40)
  common = [f"--config.{o}" for o in small_overrides(
      corpus, tmp_path / "data", "model.d_model=16", "data.seq_len=16", "model.max_len=16",
      "schedule.kind=wsd", "schedule.decay_fraction=0.25", "schedule.warmup_steps=2",
      "train.eval_batches=1", "sample.prompts=()", "checkpoint.every_steps=100",
      "checkpoint.async_save=False")]

  def train(workdir, steps, *extra):
    argv = ["train", "--config", str(ROOT / "configs/tiny.py"), "--workdir", str(tmp_path / workdir),
            *common, f"--config.train.steps={steps}", f"--config.train.eval_every={steps}", *extra]
    assert cli.main(argv) == 0, capsys.readouterr().err
    return RunFolder(tmp_path / workdir)

  straight = train("straight", 4)  # decays over its last step (3 -> 4)
  long = train("long", 8, "--config.checkpoint.keep_steps=(3,)")  # decays from 6; keeps 3
  assert 3 in long.checkpoint_steps()
  branch = train("branch", 4, "--branch-from", str(tmp_path / "long"))
  assert json.loads(branch.run_json_path.read_text())["branched_from"]["step"] == 3
  losses = lambda run: [(r["step"], r["loss"]) for r in run.read_metrics() if r["split"] == "train"]  # noqa: E731
  assert losses(branch) == losses(straight)  # the same 4 steps, bit for bit
  assert losses(long)[:3] == losses(straight)[:3]  # the stable phase is shared
  assert branch.read_summary()["table"]["val_loss"] == straight.read_summary()["table"]["val_loss"]
  # refusals, each before anything is written
  for argv, needle in (
      (["--config.optimizer.learning_rate=0.02"], "differs in optimizer.learning_rate"),
      (["--config.train.steps=3"], "no checkpoint at step 2"),
      (["--config.train.steps=40"], "branch from a longer run")):
    assert cli.main(["train", "--config", str(ROOT / "configs/tiny.py"), "--workdir",
                     str(tmp_path / "bad"), *common, "--branch-from", str(tmp_path / "long"),
                     *argv]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
