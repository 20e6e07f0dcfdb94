"""Sweeps: every experiment expands to its runs, --print is stable, a two-run sweep finishes,
is skipped when rerun, and tabulates."""

import json
import pathlib

import pytest

from llm_input import cli, sweep as sweep_lib
from llm_input.analysis import sweep_tables

from helpers import ROOT, make_text_corpus

EXPECTED = {
    "granularity": ["kind-char_vocab_size-4096", "kind-byte_vocab_size-259", "kind-bpe_vocab_size-4096",
                    "kind-unigram_vocab_size-4096", "kind-word_vocab_size-8192"],
    "vocab_size": ["vocab_size-1000", "vocab_size-4096", "vocab_size-16000", "vocab_size-50000"],
    "positions": ["positions-none", "positions-learned", "positions-sinusoidal", "positions-rope",
                  "positions-sinusoidal_scale_embeddings-True"],
    "width": ["d_model-128_num_heads-4", "d_model-768_num_heads-12", "d_model-1024_num_heads-16"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_experiment_sweeps_expand(name):
  sweep = sweep_lib.load(str(ROOT / "experiments" / name / "sweep.py"))
  folders = [f.split("/")[-1] for f, _ in sweep.expand()]
  # Every experiment runs each arm with seeds 0, 1, 2 (error bars).
  assert folders == [f"{arm}_seed-{seed}" for arm in EXPECTED[name] for seed in (0, 1, 2)]


def test_heads_sweep_is_one_long_run_per_arm_and_seed_with_two_cooldown_branches():
  sweep = sweep_lib.load(str(ROOT / "experiments/heads/sweep.py"))
  folders = [f.split("/")[-1] for f, _ in sweep.expand()]
  assert folders == [f"num_heads-{h}_steps-{b}_seed-{s}" for h in (1, 2, 4, 8) for s in (0, 1, 2)
                     for b in (400, 200, 100)]
  branches = {k.split("/")[-1]: v.split("/")[-1] for k, v in sweep.branches().items()}
  assert branches["num_heads-8_steps-100_seed-2"] == "num_heads-8_steps-400_seed-2"
  assert len(branches) == 24


def test_positions_curve_is_one_long_run_per_scheme_and_seed_validated_on_three_plays():
  sweep = sweep_lib.load(str(ROOT / "experiments/positions/sweep.py"), "curve")
  runs = sweep.expand()
  folders = [f.split("/")[-1] for f, _ in runs]
  assert folders == [f"positions-{p}_steps-{b}_seed-{s}" for p in ("none", "learned", "sinusoidal", "rope")
                     for s in (0, 1, 2) for b in (600, 400, 200)]
  assert all("data.validation_percent=12.0" in " ".join(args) for _, args in runs)
  branches = {k.split("/")[-1]: v.split("/")[-1] for k, v in sweep.branches().items()}
  assert branches["positions-rope_steps-200_seed-2"] == "positions-rope_steps-600_seed-2" and len(branches) == 24


def test_a_flops_budget_is_each_arms_own_steps_and_the_shorter_budgets_branch_from_that_arms_long_run():
  """Arms whose steps cost different FLOPs (char vs bpe) get different steps for one budget:
  round(budget / step FLOPs), what train.flops_budget would train; each arm's long run keeps its
  own branch points; collect's rows carry the budget."""
  sweep = sweep_lib.load(str(ROOT / "experiments/granularity/sweep.py"), "curve_shared")
  assert sweep.seeds == [0, 1, 2]
  sweep.seeds = [0]
  one_x = sweep_lib.step_flops("configs/tiny.py", {"tokenizer.kind": "bpe", "tokenizer.vocab_size": 4096}) * 200
  assert sweep.flops_budgets == pytest.approx([one_x, 2 * one_x, 4 * one_x, 10 * one_x])
  for kind, vocab in (("char", 84), ("byte", 259), ("bpe", 4096), ("unigram", 4096), ("word", 8192)):
    per_step = sweep_lib.step_flops("configs/tiny.py", {"tokenizer.kind": kind, "tokenizer.vocab_size": vocab})
    steps = sweep.budget_steps({"tokenizer.kind": kind, "tokenizer.vocab_size": vocab})
    assert steps == {round(m * one_x / per_step): pytest.approx(m * one_x) for m in (1, 2, 4, 10)}
  assert sweep.budget_steps({"tokenizer.kind": "bpe", "tokenizer.vocab_size": 4096}).keys() == {200, 400, 800, 2000}
  runs = dict(sweep.expand())
  names = [f.split("/")[-1] for f in runs]
  assert names[:4] == [f"kind-char_vocab_size-84_steps-{s}_seed-0" for s in (3106, 1243, 621, 311)]
  assert len(names) == 20 and all("data.validation_percent=12.0" in " ".join(a) for a in runs.values())
  long_char = runs["runs/sweeps/granularity_curve/kind-char_vocab_size-84_steps-3106_seed-0"]
  # each shorter budget's branch point: steps - round(0.2 x steps)
  assert "checkpoint.keep_steps=(249, 497, 994)" in long_char
  long_word = runs["runs/sweeps/granularity_curve/kind-word_vocab_size-8192_steps-1467_seed-0"]
  assert "checkpoint.keep_steps=(118, 234, 470)" in long_word
  branches = {k.split("/")[-1]: v.split("/")[-1] for k, v in sweep.branches().items()}
  assert branches["kind-word_vocab_size-8192_steps-147_seed-0"] == "kind-word_vocab_size-8192_steps-1467_seed-0"
  assert branches["kind-bpe_vocab_size-4096_steps-800_seed-0"] == "kind-bpe_vocab_size-4096_steps-2000_seed-0"
  assert len(branches) == 15
  with pytest.raises(sweep_lib.ConfigError, match="both 1 steps"):
    sweep_lib.Sweep(name="x", base="configs/tiny.py", runs=[{}], flops_budgets=[1e3, 2e3]).arms()
  with pytest.raises(sweep_lib.ConfigError, match="not both"):
    sweep_lib.Sweep(name="x", base="configs/tiny.py", runs=[{}], budgets=[1], flops_budgets=[1e3])


def test_vocab_size_curve_warms_each_arm_up_for_a_quarter_of_its_shortest_budget():
  """The 200-step 50k runs never reached their peak rate (a fixed 50-step warmup in a 39-step
  run): each arm's warmup must fit well inside its own 1x budget."""
  sweep = sweep_lib.load(str(ROOT / "experiments/vocab_size/sweep.py"), "curve")
  sweep.seeds = [0]
  runs = dict(sweep.expand())
  assert len(runs) == 16 and len(sweep.branches()) == 12
  for arm in sweep.runs:
    steps = sorted(sweep.budget_steps(arm))
    assert len(steps) == 4 and steps[-1] >= 9.5 * steps[0]
    assert arm["schedule.warmup_steps"] == round(steps[0] / 4)
  assert [a["schedule.warmup_steps"] for a in sweep.runs] == [69, 50, 24, 10]
  assert sorted(sweep.budget_steps(sweep.runs[-1])) == [39, 79, 158, 394]


def test_width_curve_is_compute_matched_with_each_arms_own_warmup():
  sweep = sweep_lib.load(str(ROOT / "experiments/width/sweep.py"), "curve")
  sweep.seeds = [0]
  assert len(sweep.expand()) == 9 and len(sweep.branches()) == 6
  steps = {arm["model.d_model"]: sorted(sweep.budget_steps(arm)) for arm in sweep.runs}
  assert steps[1024] == [60, 120, 180]
  # equal FLOPs: steps x step FLOPs agree across arms within a step's rounding
  flops = {d: sweep_lib.step_flops("configs/tiny.py", {**sweep.common, "model.d_model": d,
                                                         "model.num_heads": {128: 4, 768: 12, 1024: 16}[d]})
           for d in steps}
  for d in steps:
    assert steps[d][0] * flops[d] == pytest.approx(60 * flops[1024], rel=flops[d] / (60 * flops[1024]))
  assert [a["schedule.warmup_steps"] for a in sweep.runs] == [round(steps[d][0] / 4) for d in (128, 768, 1024)]


def test_a_flops_budget_sweeps_comparisons_stay_within_each_budget():
  sweep = sweep_lib.Sweep(name="g", base="configs/tiny.py", runs=[{"tokenizer.kind": "char"}, {"tokenizer.kind": "bpe"}],
                          seeds=[0, 1], flops_budgets=[1e12, 2e12])
  rows = [{"arm": f"kind-{kind}_steps-{steps}", "run": f"{kind}{steps}{seed}", "seed": seed, "train.steps": steps,
           "budget_flops": budget, "train_flops": budget * 1.001, "val_bits_per_byte": level + 0.01 * seed}
          for kind, per in (("char", 3), ("bpe", 2)) for budget, level in ((1e12, 3.0), (2e12, 2.5))
          for steps in [int(budget / 1e10 * per)] for seed in (0, 1)]
  text = sweep_tables.comparisons_markdown(sweep, rows, "val_bits_per_byte", {})
  assert "### At a budget of 1e+12 training FLOPs" in text and "### At a budget of 2e+12 training FLOPs" in text
  assert text.count("| kind-bpe_steps-200 | kind-char_steps-300 |") + text.count("| kind-char_steps-300 | kind-bpe_steps-200 |") == 1
  assert "kind-char_steps-300 | kind-char_steps-600" not in text and "steps-200 | kind-char_steps-600" not in text


def test_positions_learning_rate_sweep_is_the_curves_400_step_point_at_three_rates():
  """`--arg lr` must train what the curve's 400-step branch trained, bar the learning rate:
  otherwise its 3e-3 runs would not reproduce the curve and its best rates would not apply."""
  sweep = sweep_lib.load(str(ROOT / "experiments/positions/sweep.py"), "lr")
  runs = dict(sweep.expand())
  assert len(runs) == 12
  curve = dict(sweep_lib.load(str(ROOT / "experiments/positions/sweep.py"), "curve").expand(validate=False))
  for scheme in ("none", "learned", "sinusoidal", "rope"):
    branch = set(curve[f"runs/sweeps/positions_curve/positions-{scheme}_steps-400_seed-0"])
    for rate in ("0.001", "0.003", "0.01"):
      items = set(runs[f"runs/sweeps/positions_lr/positions-{scheme}_learning_rate-{rate}_seed-0"])
      assert items - branch == {f"optimizer.learning_rate={rate}"}, (scheme, rate, items - branch)
      assert branch - items == set(), (scheme, rate, branch - items)


def test_heads_learning_rate_sweep_is_the_seeds_sweeps_200_step_run_at_two_more_rates():
  """`--arg lr` trains what `--arg seeds` trained for seed 0 (the curve's 200-step point), bar
  the learning rate, so that run is its 3e-3 point."""
  sweep = sweep_lib.load(str(ROOT / "experiments/heads/sweep.py"), "lr")
  runs = dict(sweep.expand())
  assert len(runs) == 8
  seeds = dict(sweep_lib.load(str(ROOT / "experiments/heads/sweep.py"), "seeds").expand(validate=False))
  for heads in (1, 2, 4, 8):
    point = set(seeds[f"runs/sweeps/heads/num_heads-{heads}_steps-200_seed-0"])
    assert "train.steps=200" in point
    for rate in ("0.001", "0.01"):
      items = set(runs[f"runs/sweeps/heads_lr/num_heads-{heads}_learning_rate-{rate}_steps-200_seed-0"])
      assert items - point == {f"optimizer.learning_rate={rate}"}, (heads, rate, items - point)
      assert point - items == set(), (heads, rate, point - items)


def test_depth_learning_rate_sweep_is_the_sweeps_seed_0_run_at_two_more_rates():
  """`--arg lr` trains what the depth sweep trained for seed 0 (same steps and warmup per depth),
  bar the learning rate, so that run is its 3e-3 point."""
  sweep = sweep_lib.load(str(ROOT / "experiments/depth/sweep.py"), "lr")
  runs = dict(sweep.expand())
  assert len(runs) == 8
  depth = dict(sweep_lib.load(str(ROOT / "experiments/depth/sweep.py")).expand(validate=False))
  for layers, warmup, steps in ((1, 96, 765), (2, 73, 587), (4, 50, 400), (8, 31, 244)):
    point = set(depth[f"runs/sweeps/depth/num_layers-{layers}_warmup_steps-{warmup}_steps-{steps}_seed-0"])
    for rate in ("0.001", "0.01"):
      items = set(runs[f"runs/sweeps/depth_lr/num_layers-{layers}_warmup_steps-{warmup}_learning_rate-{rate}"
                       f"_steps-{steps}_seed-0"])
      assert items - point == {f"optimizer.learning_rate={rate}"}, (layers, rate, items - point)
      assert point - items == set(), (layers, rate, point - items)


def test_width_learning_rate_sweep_goes_one_rate_past_each_widths_best_edge():
  """`--arg lr`: 3e-4 and 3e-3 for every width at the curve's 2x steps, and one more rate past the
  edge each width was best at (1e-2 for 128, 1e-4 for 768 and 1024), nothing else."""
  sweep = sweep_lib.load(str(ROOT / "experiments/width/sweep.py"), "lr")
  rates = {}
  for run in sweep.runs:
    rates.setdefault(run["model.d_model"], []).append(run["optimizer.learning_rate"])
  assert {d: sorted(r) for d, r in rates.items()} == {128: [3e-4, 3e-3, 1e-2], 768: [1e-4, 3e-4, 3e-3],
                                                       1024: [1e-4, 3e-4, 3e-3]}
  steps = {d: sorted(sweep.budget_steps({k: v for k, v in r.items() if k != "optimizer.learning_rate"}))
           for d, r in ((r["model.d_model"], r) for r in sweep.runs)}
  assert steps == {128: [3741], 768: [203], 1024: [120]}


def test_granularity_learning_rate_sweep_is_the_curves_2x_branch_at_the_other_two_rates():
  """`--arg lr` trains what the curve's 2x cooldown branch trained (same steps per arm), bar the
  learning rate, so the branch is its 3e-3 point."""
  sweep = sweep_lib.load(str(ROOT / "experiments/granularity/sweep.py"), "lr")
  runs = dict(sweep.expand())
  assert len(runs) == 12
  curve = sweep_lib.load(str(ROOT / "experiments/granularity/sweep.py"), "curve_shared")
  curve.seeds = [0]
  curve_runs = dict(curve.expand(validate=False))
  for kind, vocab, steps in (("char", 84, 621), ("byte", 259, 607), ("bpe", 4096, 400), ("unigram", 4096, 400),
                             ("word", 8192, 293)):
    branch = set(curve_runs[f"runs/sweeps/granularity_curve/kind-{kind}_vocab_size-{vocab}_steps-{steps}_seed-0"])
    assert f"train.steps={steps}" in branch
    for rate in ("0.001", "0.01") + (("0.03",) if kind in ("char", "byte") else ()):
      items = set(runs[f"runs/sweeps/granularity_lr/kind-{kind}_vocab_size-{vocab}_learning_rate-{rate}"
                       f"_steps-{steps}_seed-0"])
      assert items - branch == {f"optimizer.learning_rate={rate}"}, (kind, rate, items - branch)
      assert branch - items == set(), (kind, rate, branch - items)


def test_the_granularity_curve_is_the_shared_rate_curve_but_for_each_arms_best_rate():
  """`--arg curve` differs from `--arg curve_shared` only in the peak rate of the arms BEST_LR
  names (their own run folders); every other arm is the same run, not trained twice."""
  import importlib.util

  spec = importlib.util.spec_from_file_location("gsweep", ROOT / "experiments/granularity/sweep.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  best, shared = module.get_sweep("curve"), module.get_sweep("curve_shared")
  best.seeds = shared.seeds = [0]
  a, b = dict(best.expand(validate=False)), dict(shared.expand(validate=False))
  same = set(a) & set(b)
  assert len(a) == len(b) == 20 and len(same) == 4 * (5 - len(module.BEST_LR))
  for folder in set(a) - same:
    kind = folder.split("kind-")[1].split("_")[0]
    twin = folder.replace(f"_learning_rate-{module.BEST_LR[kind]}", "")
    assert set(a[folder]) - set(b[twin]) == {f"optimizer.learning_rate={module.BEST_LR[kind]}"}
    assert set(b[twin]) - set(a[folder]) == set()


def _granularity_module(name):
  import importlib.util

  spec = importlib.util.spec_from_file_location(name, ROOT / f"experiments/granularity/{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_the_granularity_curves_rates_are_the_rate_sweeps_best():
  sweep, lr = (_granularity_module(n) for n in ("sweep", "lr_figures"))
  best = lr.best_rates()
  assert len(best) == 5 and best == {kind: sweep.BEST_LR.get(kind, sweep.PRESET_LR) for kind in best}


@pytest.mark.parametrize("experiment, runs, names", [
    ("granularity", 25, {"kind-char_vocab_size-84_learning_rate-0.01_steps-621_seed-4",
                         "kind-bpe_vocab_size-4096_steps-400_seed-1"}),
    ("vocab_size", 20, {"vocab_size-50000_warmup_steps-10_steps-79_seed-4",
                        "vocab_size-1000_warmup_steps-69_steps-552_seed-2"}),
    ("width", 15, {"d_model-128_num_heads-4_warmup_steps-468_steps-3741_seed-4",
                   "d_model-1024_num_heads-16_warmup_steps-15_steps-120_seed-1"}),
    ("positions", 20, {"positions-rope_steps-400_seed-3", "positions-none_steps-400_seed-0"}),
    ("heads", 20, {"num_heads-8_steps-200_seed-4", "num_heads-1_steps-200_seed-0"})])
def test_the_seeds_are_the_curves_2x_points_trained_straight(experiment, runs, names):
  """`--arg seeds` trains seeds 0-4 straight to the curve's 2x budget, in the folders of the
  curve's 2x cooldown branches (the curve's own seeds are not trained again)."""
  import importlib.util

  spec = importlib.util.spec_from_file_location(f"{experiment}_sweep", ROOT / f"experiments/{experiment}/sweep.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  curve, seeds = module.get_sweep("curve"), module.get_sweep("seeds")
  curve_folders = {folder: items for folder, items in curve.expand(validate=False)}
  seed_runs = seeds.expand(validate=False)
  assert len(seed_runs) == runs and not seeds.branches()
  for folder, items in seed_runs:
    seed = int(folder.rsplit("seed-", 1)[1])
    twin = folder.rsplit("seed-", 1)[0] + "seed-0"
    # the same folder name pattern as the curve's 2x branch, and the same overrides but the seed
    assert twin in curve_folders and twin in curve.branches(), folder
    assert sorted(i for i in items if not i.startswith("seed=")) == sorted(
        i for i in curve_folders[twin] if not i.startswith("seed=")), folder
    assert f"seed={seed}" in items
  # the 2x budget: e.g. char's 621 steps (1.42e13 FLOPs), bpe-50000's 79, d_model 1024's 120
  assert names <= {pathlib.Path(folder).name for folder, _ in seed_runs}


def _load_script(experiment: str, script: str):
  """experiments/EXPERIMENT/SCRIPT.py as a module (the figure scripts are not a package)."""
  import importlib.util

  spec = importlib.util.spec_from_file_location(f"{experiment}_{script}", ROOT / f"experiments/{experiment}/{script}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


# Every README block a script writes (budgets.write_block) from committed files: (experiment,
# script, the block's marker, what the script makes of it). A figure edited by hand, or a script
# changed without rewriting its block, fails here.
README_BLOCKS = [
    ("granularity", "curve_figures", "figures", lambda m: m.block("curve")),
    ("granularity", "curve_figures", "shared", lambda m: m.block("curve_shared")),
    ("granularity", "curve_figures", "rates", lambda m: m.rates_block()),
    ("granularity", "curve_figures", "seeds", lambda m: m.block("seeds")),
    ("granularity", "lr_figures", "lr", lambda m: m.block()),
    ("vocab_size", "curve_figures", "curve", lambda m: m.block("curve")),
    ("vocab_size", "curve_figures", "seeds", lambda m: m.block("seeds")),
    ("vocab_size", "lr_figures", "lr", lambda m: m.block()),
    ("width", "curve_figures", "curve", lambda m: m.block()),
    ("width", "curve_figures", "seeds", lambda m: m.block("seeds")),
    ("width", "lr_figures", "lr", lambda m: m.block()),
    ("positions", "curve_figures", "figures", lambda m: m.block()),
    ("positions", "curve_figures", "seeds", lambda m: m.block("seeds")),
    ("positions", "lr_figures", "lr", lambda m: m.block()),
    ("heads", "figures", "figures", lambda m: m.block()),
    ("heads", "figures", "seeds", lambda m: m.block("seeds")),
    ("heads", "lr_figures", "lr", lambda m: m.block()),
    ("attention_scale", "figures", "figures", lambda m: m.block()),
    ("attention_scale", "lr_figures", "lr", lambda m: m.block()),
    ("depth", "figures", "figures", lambda m: m.block()),
    ("depth", "lr_figures", "lr", lambda m: m.block()),
]


@pytest.mark.parametrize("experiment, script, marker, make", README_BLOCKS,
                         ids=[f"{e}/{s}:{m}" for e, s, m, _ in README_BLOCKS])
def test_each_readme_block_is_what_its_script_makes_of_the_committed_files(experiment, script, marker, make):
  module = _load_script(experiment, script)
  readme = (ROOT / f"experiments/{experiment}/README.md").read_text()
  assert readme.split(f"<!-- {marker} -->\n", 1)[1].split(f"\n<!-- /{marker} -->", 1)[0] == make(module)


def test_tpu_width_sweep_sizes_4096():
  sweep = sweep_lib.load(str(ROOT / "experiments/width/sweep.py"), "tpu")
  assert [f.split("/")[-1] for f, _ in sweep.expand()][-1] == "d_model-4096_num_heads-32_num_layers-32"


def test_print_is_stable(capsys):
  assert cli.main(["sweep", str(ROOT / "experiments/positions/sweep.py"), "--print"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 5 * 3
  assert lines[0] == ("llm-input train --config configs/tiny.py --workdir "
                      "runs/sweeps/positions/positions-none_seed-0 --config.train.steps=200 "
                      "--config.train.eval_every=100000 --config.checkpoint.every_steps=100000 "
                      "--config.checkpoint.every_minutes=0.0 --config.logging.progress_bar=False "
                      "--config.model.positions=none --config.seed=0")


def test_bad_override_fails_at_expansion(tmp_path):
  sweep = sweep_lib.Sweep(name="bad", base=str(ROOT / "configs/tiny.py"),
                          runs=sweep_lib.product(("model.positoins", ["rope"])))
  with pytest.raises(Exception, match="model.positoins"):
    sweep.expand()


def test_an_invalid_arm_is_refused_by_name_before_any_arm_trains(tmp_path, capsys):
  sweep_file = write_positions_sweep(tmp_path, "heads", width=32, steps=3, eval_batches=1, sample_tokens=2)
  # the second arm asks for 5 heads of a 32-wide model: train would refuse it, so the sweep must
  text = sweep_file.read_text().replace('product(("model.positions", ["none", "rope"]))',
                                        'product(("model.num_heads", [2, 5]))')
  sweep_file.write_text(text)
  assert cli.main(["sweep", str(sweep_file)]) == 2
  err = capsys.readouterr().err
  assert "sweep heads, run num_heads-5 (" in err and "num_heads" in err and "nothing was trained" in err
  assert err.count("\n") == 1
  assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # 34 s; make test runs sweeps through test_two_seed_two_arm_sweep_end_to_end
def test_two_run_cpu_sweep_finishes_and_tabulates(tmp_path, capsys):
  sweep_file = write_positions_sweep(tmp_path, "two", width=32, steps=6, eval_batches=2, sample_tokens=4)
  assert cli.main(["sweep", str(sweep_file)]) == 0
  out = capsys.readouterr().out
  assert out.count("training (") == 2
  assert cli.main(["sweep", str(sweep_file)]) == 0
  assert capsys.readouterr().out.count("finished, skipped") == 2
  assert cli.main(["sweep", str(sweep_file), "--table", "--x", "model.positions"]) == 0
  table = (sweep_file.parent / "results.md").read_text().splitlines()
  assert len(table) == 4 and "val_bits_per_byte" in table[0] and "positions-rope" in table[3]
  assert (sweep_file.parent / "results.png").stat().st_size > 1000
  csv_rows = (sweep_file.parent / "results.csv").read_text().strip().splitlines()
  assert len(csv_rows) == 3
  summary = json.loads((tmp_path / "runs/two/positions-none/summary.json").read_text())
  assert summary["table"]["steps"] == 6 and summary["table"]["val_bits_per_byte"] > 0
  assert summary["table"]["unk_rate"] == 0.0  # char vocabulary covers the test corpus
  # --refresh reopens finished runs without training: the summary keeps its training time
  assert cli.main(["sweep", str(sweep_file), "--refresh"]) == 0
  again = json.loads((tmp_path / "runs/two/positions-none/summary.json").read_text())
  assert again["table"]["train_time_s"] == summary["table"]["train_time_s"]
  assert again["table"]["steps"] == 6
  # one page comparing the runs
  capsys.readouterr()
  assert cli.main(["report", "--sweep", str(sweep_file.parent)]) == 0
  page = (sweep_file.parent / "report.html").read_text()
  assert "Sweep: two" in page and page.count("data:image/png;base64,") == 3
  assert f"{summary['table']['val_bits_per_byte']:.3f}" in page


def test_aggregate_and_compare_on_rows_with_known_answers():
  rows = [{"run": f"a_seed-{s}", "arm": "a", "kind": "bpe", "x": v, "steps": 10, "seed": s}
          for s, v in enumerate([1.0, 2.0, 3.0])]
  rows += [{"run": f"b_seed-{s}", "arm": "b", "kind": "char", "x": v, "steps": 10, "seed": s}
           for s, v in enumerate([4.0, 5.0, 6.0])]
  a, b = sweep_tables.aggregate(rows, keys=("kind",))
  assert (a["arm"], a["n"], a["kind"], a["x_mean"], a["x_std"]) == ("a", 3, "bpe", 2.0, 1.0)
  assert (b["x_mean"], b["steps_mean"], b["steps_std"]) == (5.0, 10.0, 0.0)
  # Welch: t = (2 - 5) / sqrt(1/3 + 1/3) = -3.674, dof 4, two-sided p = 0.0213
  c = sweep_tables.compare([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
  assert c["t"] == pytest.approx(-3.6742, abs=1e-3) and c["p"] == pytest.approx(0.0213, abs=1e-3)
  assert c["distinguishable"] and c["diff"] == -3.0
  assert not sweep_tables.compare([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])["distinguishable"]
  assert not sweep_tables.compare([1.0], [4.0])["distinguishable"]  # one seed decides nothing
  assert "not distinguishable at this budget" in sweep_tables.verdict([1.0, 2.0], [1.2, 2.1], ("bpe", "char"))
  assert sweep_tables.verdict([1.0, 1.1, 0.9], [5.0, 5.1, 4.9], ("bpe", "char")).startswith("bpe is lower")


def test_pairwise_holm_correction_on_known_answers():
  """Three arms: a vs b alone has Welch p = 0.0213 (above), b vs c (t = 2.9 / 0.8165 = 3.552,
  dof 4) p = 0.0238, a vs c p = 0.908. Holm over 3 pairs: 3 x 0.0213 = 0.0639, then
  max(0.0639, 2 x 0.0238) = 0.0639, then 0.908: no pair is distinguishable once the three
  comparisons are accounted for, although a vs b alone would be."""
  rows = [{"arm": arm, "y": v} for arm, values in (("a", [1.0, 2.0, 3.0]), ("b", [4.0, 5.0, 6.0]),
                                                   ("c", [1.1, 2.1, 3.1])) for v in values]
  result = {(r["a"], r["b"]): r for r in sweep_tables.pairwise(rows, "y")}
  assert result[("a", "b")]["p_holm"] == pytest.approx(3 * 0.0213, abs=1e-3)
  assert result[("b", "c")]["p"] == pytest.approx(0.0238, abs=1e-3)
  assert result[("b", "c")]["p_holm"] == pytest.approx(result[("a", "b")]["p_holm"])
  assert result[("a", "c")]["p_holm"] == pytest.approx(0.908, abs=1e-3)
  assert not any(r["distinguishable"] for r in result.values())
  # With a clear gap the pair survives the correction.
  rows += [{"arm": "d", "y": v} for v in (9.0, 9.1, 8.9)]
  d = {(r["a"], r["b"]): r for r in sweep_tables.pairwise(rows, "y")}
  assert d[("a", "d")]["distinguishable"] and d[("a", "d")]["p_holm"] < 0.05
  text = sweep_tables.pairwise_markdown(rows, "y")
  assert "| a | d |" in text and "a lower" in text and "Holm's correction over the 6 pairs" in text


def test_two_seed_two_arm_sweep_end_to_end(tmp_path, capsys):
  sweep_file = write_positions_sweep(tmp_path, "seeds", width=16, steps=3, eval_batches=1, sample_tokens=2,
                                     seeds=[0, 1])
  assert cli.main(["sweep", str(sweep_file)]) == 0
  assert capsys.readouterr().out.count("training (") == 4
  assert cli.main(["sweep", str(sweep_file), "--table"]) == 0
  table = (sweep_file.parent / "results.md").read_text().splitlines()
  assert table[0].startswith("| arm | n | model.positions |")
  assert "| positions-rope | 2 | rope |" in table[3] and " ± " in table[3]
  assert table[4] == "" and table[5].startswith("mean ± sample standard deviation over n seeds")
  # then the pairwise comparison: one pair, with a Welch and a Holm p-value
  assert table[7].startswith("| val_bits_per_byte: arm a | arm b |")
  assert table[9].startswith("| positions-none | positions-rope |") and len(table) == 12
  by_arm = (sweep_file.parent / "results_by_arm.csv").read_text().splitlines()
  assert len(by_arm) == 3 and "val_bits_per_byte_mean" in by_arm[0]
  assert len((sweep_file.parent / "results.csv").read_text().strip().splitlines()) == 5  # every seed
  from llm_input.analysis import report
  page = report.sweep_report(str(sweep_file)).read_text()
  assert "Per arm over seeds (mean ± std)" in page and "positions-rope" in page
  # --baselines: each run's Kneser-Ney figures beside the model, in the table and the report
  assert cli.main(["sweep", str(sweep_file), "--table", "--baselines"]) == 0
  table = (sweep_file.parent / "results.md").read_text()
  assert "kn1_bits_per_byte" in table.splitlines()[0] and "kn_best_bits_per_byte" in table
  one = tmp_path / "runs/seeds/positions-rope_seed-0"
  record = json.loads((one / "baselines.json").read_text())
  assert [r["order"] for r in record["rows"]] == [1, 2, 3, 4, 5]
  summary = json.loads((one / "summary.json").read_text())["table"]
  assert record["rows"][0]["target_bytes"] > 0 and summary["val_bits_per_byte"] > 0
  data = json.loads(report.run_report(one).with_suffix(".json").read_text())
  assert data["baselines"]["rows"] == record["rows"]
  # --documents: every run's loss per held-out document, and a bootstrap over seeds and documents
  assert cli.main(["sweep", str(sweep_file), "--table", "--documents"]) == 0
  text = (sweep_file.parent / "results.md").read_text()
  boot = text[text.index("#### Over seeds and held-out documents"):].splitlines()
  assert boot[2].startswith("| arm a | arm b | seeds | documents |")
  assert boot[4].startswith("| positions-none | positions-rope | 2 | ")
  assert json.loads((one / "val_documents.json").read_text())["step"] == 3
  # a run that did not finish is named, never silently left out
  (tmp_path / "runs/seeds/positions-rope_seed-1/summary.json").unlink()
  assert cli.main(["sweep", str(sweep_file), "--table"]) == 0
  note = ("Not in this table: 1 of 4 runs (positions-rope_seed-1: unfinished or failed: its last "
          "checkpoint is step 3)")
  assert note in (sweep_file.parent / "results.md").read_text()
  assert note in report.sweep_report(str(sweep_file)).read_text()
  # --seeds on the command line gives the same runs
  capsys.readouterr()
  assert cli.main(["sweep", str(sweep_file), "--seeds", "2", "--print"]) == 0
  commands = capsys.readouterr().out.strip().splitlines()
  assert len(commands) == 4 and all("_seed-" in c and "--config.seed=" in c for c in commands)


def write_positions_sweep(tmp_path, name, *, width, steps, eval_batches, sample_tokens, seeds=None):
  """experiments-like folder tmp_path/exp/NAME/sweep.py: a tiny char model on the test
  corpus, positions none vs rope (each seed of `seeds`, if given)."""
  corpus = make_text_corpus(tmp_path / "texts")
  sweep_file = tmp_path / "exp" / name / "sweep.py"
  sweep_file.parent.mkdir(parents=True)
  sweep_file.write_text(f'''
from llm_input.sweep import Sweep, product

def get_sweep(arg=None):
  return Sweep(name={name!r}, base={str(ROOT / "configs/tiny.py")!r}, root={str(tmp_path / "runs")!r},
               common={{"data.corpus": "text:{corpus}", "data.data_dir": "{tmp_path / "cache"}",
                        "tokenizer.kind": "char", "tokenizer.vocab_size": 64, "model.d_model": {width},
                        "model.num_layers": 1, "model.num_heads": 2, "data.seq_len": {width},
                        "model.max_len": {width}, "data.batch_size": 8, "train.steps": {steps},
                        "train.eval_every": {steps}, "train.eval_batches": {eval_batches},
                        "sample.max_new_tokens": {sample_tokens},
                        "logging.progress_bar": False, "logging.tensorboard": False}},
               runs=product(("model.positions", ["none", "rope"])), seeds={seeds or []!r})
''')
  return sweep_file


def _budget_sweep(tmp_path):
  corpus = make_text_corpus(tmp_path / "texts")
  sweep_file = tmp_path / "exp" / "curve" / "sweep.py"
  sweep_file.parent.mkdir(parents=True)
  sweep_file.write_text(f'''
from llm_input.sweep import Sweep, product

def get_sweep(arg=None):
  return Sweep(name="curve", base={str(ROOT / "configs/tiny.py")!r}, root={str(tmp_path / "runs")!r},
               common={{"data.corpus": "text:{corpus}", "data.data_dir": "{tmp_path / "cache"}",
                        "tokenizer.kind": "char", "tokenizer.vocab_size": 64, "model.d_model": 16,
                        "model.num_layers": 1, "model.num_heads": 2, "data.seq_len": 16,
                        "model.max_len": 16, "data.batch_size": 8, "train.eval_batches": 1,
                        "train.eval_every": 100, "schedule.kind": "wsd", "schedule.warmup_steps": 1,
                        "schedule.decay_fraction": 0.25, "checkpoint.every_steps": 100,
                        "sample.prompts": (), "logging.progress_bar": False,
                        "logging.tensorboard": False}},
               runs=product(("model.positions", ["rope"])), seeds=[0], budgets=[4, 8])
''')
  return sweep_file


def test_a_sweep_with_budgets_prints_one_long_run_per_arm_and_branches_for_the_rest(tmp_path, capsys):
  sweep_file = _budget_sweep(tmp_path)
  assert cli.main(["sweep", str(sweep_file), "--print"]) == 0
  commands = capsys.readouterr().out.strip().splitlines()
  assert len(commands) == 2 and "steps-8" in commands[0] and "--branch-from" not in commands[0]
  assert "--config.checkpoint.keep_steps=(3,)" in commands[0]  # 4 - round(0.25 x 4)
  assert commands[1].endswith("--branch-from " + str(tmp_path / "runs/curve/positions-rope_steps-8_seed-0"))


@pytest.mark.slow  # trains; the branch itself is tested in test_schedule.py
def test_a_sweep_with_budgets_trains_one_long_run_per_arm_and_branches_the_rest(tmp_path):
  sweep_file = _budget_sweep(tmp_path)
  assert cli.main(["sweep", str(sweep_file)]) == 0
  short = tmp_path / "runs/curve/positions-rope_steps-4_seed-0"
  assert json.loads((short / "run.json").read_text())["branched_from"]["step"] == 3
  assert cli.main(["sweep", str(sweep_file), "--table"]) == 0
  rows = (sweep_file.parent / "results.csv").read_text().splitlines()
  assert len(rows) == 3 and "positions-rope_steps-4" in rows[2] and "positions-rope_steps-8" in rows[1]


def test_budget_curves_group_each_arm_by_budget_with_mean_and_std():
  rows = []
  for heads, shift in ((1, 0.2), (16, 0.0)):  # "num_heads-1" must not collect "num_heads-16"
    for steps, flops, level in ((100, 1e12, 3.0), (200, 2e12, 2.6)):
      for seed, noise in enumerate((-0.01, 0.0, 0.01)):
        rows.append({"arm": f"num_heads-{heads}_steps-{steps}", "train.steps": steps, "seed": seed,
                     "train_flops": flops, "val_bits_per_byte": level + shift + noise,
                     "kn1_bits_per_byte": 3.5, "kn_best_bits_per_byte": 2.4, "kn_best_order": 3})
  curves = sweep_tables.budget_curves(rows)
  assert sorted(curves) == ["num_heads-1", "num_heads-16"]
  (f1, m1, s1, n1, t1), (f2, m2, _, _, t2) = curves["num_heads-1"]
  assert (f1, t1, n1, f2, t2) == (1e12, 100, 3, 2e12, 200)
  assert (m1, s1, m2) == pytest.approx((3.2, 0.01, 2.8))
  assert curves["num_heads-16"][1][1] == pytest.approx(2.6)
  fig = sweep_tables.budget_figure(rows)
  ax = fig.axes[0]
  assert ax.get_xscale() == "log" and len(ax.lines) >= 2
  assert sorted(t.get_text() for t in ax.texts) == ["KN best (order 3)", "KN unigram"]  # shared tokens: one line each


def test_arms_on_different_tokens_get_their_own_baselines_in_their_colour_on_the_curve():
  rows = [{"arm": f"kind-{kind}_steps-{steps}", "train.steps": steps, "seed": 0, "train_flops": steps * 1e10,
           "val_bits_per_byte": level - steps / 1000, "kn1_bits_per_byte": kn1, "kn_best_bits_per_byte": best,
           "kn_best_order": order}
          for kind, level, kn1, best, order in (("char", 3.5, 4.9, 2.1, 5), ("bpe", 2.6, 3.3, 2.3, 3))
          for steps in (100, 200)]
  ax = sweep_tables.budget_figure(rows).axes[0]
  assert sorted(t.get_text() for t in ax.texts) == ["kind-bpe: KN best (order 3)", "kind-bpe: KN unigram",
                                                     "kind-char: KN best (order 5)", "kind-char: KN unigram"]
  colours = {t.get_text().split(":")[0]: t.get_color() for t in ax.texts}
  handles, labels = ax.get_legend_handles_labels()
  import matplotlib.colors as mcolors

  curve_colours = {label: mcolors.to_hex(h[0].get_color()) for h, label in zip(handles, labels)}
  assert {k: mcolors.to_hex(v) for k, v in colours.items()} == curve_colours
  assert len(set(curve_colours.values())) == 2


def test_a_budget_sweeps_comparisons_stay_within_each_budget():
  sweep = sweep_lib.Sweep(name="b", base="configs/tiny.py", runs=[{"model.num_heads": 1}, {"model.num_heads": 4}],
                          seeds=[0, 1, 2], budgets=[100, 200])
  rows = []
  for heads, shift in ((1, 0.05), (4, 0.0)):
    for steps, level in ((100, 3.0), (200, 2.5)):
      for seed, noise in enumerate((0.0, 0.004, -0.003)):
        rows.append({"arm": f"num_heads-{heads}_steps-{steps}", "run": f"r{heads}{steps}{seed}", "seed": seed,
                     "train.steps": steps, "train_flops": steps * 1e10,
                     "val_bits_per_byte": level + shift + noise * heads})
  text = sweep_tables.comparisons_markdown(sweep, rows, "val_bits_per_byte", {})
  assert "### At 100 steps (1e+12 training FLOPs)" in text and "### At 200 steps (2e+12 training FLOPs)" in text
  assert text.count("| num_heads-1_steps-100 | num_heads-4_steps-100 |") == 1
  assert "| num_heads-1_steps-100 | num_heads-1_steps-200 |" not in text  # never across budgets
  assert text.count("Holm's correction over the 1 pairs") == 2


def test_a_curve_over_seeds_is_tested_within_each_budget():
  """The width curve has seeds 0-2 at three budgets: its paired tests compare the arms within a
  budget (paired t over the shared seeds), never pooling an arm's budgets (which gives Welch's
  test of one width's 1x-3x mixture against another's)."""
  module = _load_script("width", "curve_figures")
  text = module.block("curve")
  assert "Welch t" not in text
  for budget in ("1.09e+13", "2.18e+13", "3.28e+13"):
    assert f"At {budget} FLOPs:\n\n| val_bits_per_byte: arm a |" in text
