"""The claims table's verdict rules (llm_input/analysis/claims.py) on synthetic figures, one
case per branch, and the committed table regenerated from the committed figures."""

import subprocess
import sys

import pytest

from llm_input.analysis import claims, stats

from helpers import ROOT


def test_a_claimed_difference_holds_reverses_or_is_not_detected_with_its_power():
  higher = stats.compare([0.50, 0.52, 0.55], [0.30, 0.31, 0.36], paired=True)
  assert claims.difference(higher, "higher", "river", "road").startswith(
      "holds: river is higher than road by 0.2 (paired t p ")
  assert claims.difference(higher, "lower", "river", "road").startswith(
      "does not hold: river is higher than road by 0.2 (paired t p ")
  noisy = stats.compare([0.50, 0.30, 0.41], [0.40, 0.45, 0.33], paired=True)
  text = claims.difference(noisy, "higher", "river", "road")
  assert text.startswith("not detected: river - road = +0.01 (paired t p ") and "80% power only for a difference of" in text
  assert claims.difference(stats.compare([0.5], [0.3]), "higher") == "not tested (fewer than 2 seeds)"
  with pytest.raises(ValueError, match="higher' or 'lower"):
    claims.difference(higher, "bigger")


def test_related_pairs_are_judged_against_the_percentile_of_random_pairs():
  assert claims.percentiles({"king/queen": 95.0, "lord/king": 91.0}).startswith(
      "holds: every related pair is at or above the 90th percentile")
  assert claims.percentiles({"king/queen": 95.0, "love/hate": 35.0}) == (
      "holds for 1 of 2 pairs (king/queen): at or above the 90th percentile of random pairs "
      "(king/queen 95th, love/hate 35th)")
  assert claims.percentiles({"king/queen": 75.0, "love/hate": 35.0}).startswith(
      "not detected: no related pair reaches the 90th percentile")
  with pytest.raises(ValueError):
    claims.percentiles({})


def test_percentiles_read_as_ordinals():
  assert [claims.ordinal(v) for v in (93.4, 82.6, 11, 12.2, 1, 22, 89.5, 100)] == [
      "93rd", "83rd", "11th", "12th", "1st", "22nd", "90th", "100th"]
  assert claims.percentiles({"love/hate": 93.0, "lord/king": 42.0}).startswith("holds for 1 of 2 pairs (love/hate)")
  assert "(love/hate 93rd, lord/king 42nd)" in claims.percentiles({"love/hate": 93.0, "lord/king": 42.0})


def test_a_figure_near_the_claimed_number():
  assert claims.near(1.35, 1.3, 0.15, "tokens per word") == "holds: 1.35 tokens per word, within 0.15 of 1.3"
  assert claims.near(2.71, 1.3, 0.15, "tokens per word") == (
      "does not hold here: 2.71 tokens per word, 2.08x the claimed 1.3 (tolerance 0.15)")
  assert claims.near(0.42, 0.0, 0.088, "mean cosine") == (
      "does not hold here: 0.42 mean cosine, +0.42 from the claimed 0 (tolerance 0.088)")
  assert claims.near(-0.05, 0.0, 0.088, "mean cosine") == "holds: -0.05 mean cosine, within 0.088 of 0"


def test_the_committed_claims_table_is_what_the_rules_make_of_the_committed_figures(tmp_path):
  """claims.py --from-json rewrites claims_table.md and the README block from claims.json; run
  on a copy, the table must come out as committed (no verdict edited by hand)."""
  import shutil

  copy = tmp_path / "experiments" / "claims"
  shutil.copytree(ROOT / "experiments" / "claims", copy)
  done = subprocess.run([sys.executable, str(copy / "claims.py"), "--from-json"], capture_output=True,
                        text=True, timeout=300, cwd=tmp_path)
  assert done.returncode == 0, done.stderr[-2000:]
  assert (copy / "claims_table.md").read_text() == (ROOT / "experiments/claims/claims_table.md").read_text()
  assert (copy / "README.md").read_text() == (ROOT / "experiments/claims/README.md").read_text()


def test_a_might_happen_claim_holds_when_seen_at_all():
  assert claims.happens(3, 200, "case pairs split differently", ["Hello/hello", "King/king"]) == (
      "holds: 3 of 200 case pairs split differently (1.5%) (e.g. Hello/hello; King/king)")
  assert claims.happens(0, 200, "case pairs split differently") == "not seen: 0 of 200 case pairs split differently"
  with pytest.raises(ValueError):
    claims.happens(0, 0, "pairs")


def test_an_absence_of_relation_is_a_small_effect_against_random_pairs():
  assert claims.negligible(0.05, "adjacent ids").startswith("holds: adjacent ids are as related as random pairs")
  assert claims.negligible(-0.19, "adjacent ids").startswith("holds")
  assert claims.negligible(0.35, "adjacent ids") == (
      "does not hold: adjacent ids are more related than random pairs (Cohen's d +0.35, |d| >= 0.2)")
  assert claims.negligible(-0.5, "x").startswith("does not hold: x are less related")


def test_every_form_its_own_entry():
  assert claims.own_entries({"run": ["run"], "runs": ["runs"], "ran": ["ran"], "running": ["running"]}) == (
      "holds: 4 of the 4 forms are entries of their own")
  assert claims.own_entries({"run": ["run"], "runs": ["<unk>"]}) == (
      "holds: 1 of the 2 forms are entries of their own, runs `<unk>` (no entry at all)")
  assert claims.own_entries({"run": ["run"], "running": ["run", "ning"]}).startswith("does not hold: running")
  assert claims.own_entries({"run": ["run"], "Run": ["run"]}).startswith("does not hold: some forms share")


def test_an_ordering_over_a_curve_holds_where_its_range_says():
  ranges = [{"lower": "bpe", "higher": "char", "diff": -0.8, "span": "from 7e+12 FLOPs to 7e+13"},
            {"lower": "char", "higher": "word", "diff": -0.1, "span": "at 7e+13 FLOPs only, the largest budget"}]
  assert claims.over_budgets(ranges, "bpe", "char", "7e+13 FLOPs") == (
      "holds from 7e+12 FLOPs to 7e+13: bpe below char by 0.8 at 7e+13 FLOPs")
  assert claims.over_budgets(ranges, "word", "char", "7e+13 FLOPs").startswith(
      "does not hold at 7e+13 FLOPs only, the largest budget: char is below word by 0.1")
  assert claims.over_budgets(ranges, "unigram", "char", "7e+13 FLOPs") == "not detected at 7e+13 FLOPs: unigram vs char"


def test_the_sweet_spot_row_holds_only_when_every_subword_is_detected_below_every_letter_arm():
  """The granularity row's rule on the committed figures and on two edits of them: a letter pair
  not detected, and one detected in the wrong direction (a subword above a letter arm)."""
  import copy
  import importlib.util
  import json

  spec = importlib.util.spec_from_file_location("claims_script", ROOT / "experiments/claims/claims.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  figures = json.loads((ROOT / "experiments/claims/claims.json").read_text())

  def verdict(results):
    row = next(line for line in module.table(results).splitlines() if "Subwords are the sweet spot" in line)
    return row.split(" | ")[3]

  assert verdict(figures).startswith("holds against letters at this budget: bpe and unigram are below char and byte")
  undetected, reversed_ = copy.deepcopy(figures), copy.deepcopy(figures)
  for results, edit in ((undetected, {"distinguishable": False}), (reversed_, None)):
    pair = next(p for p in results["granularity"]["pairwise"] if {p["a"], p["b"]} == {"byte", "unigram"})
    if edit:
      pair.update(edit)
    else:
      pair["diff"] = -pair["diff"]
    assert verdict(results).startswith("not detected: some subword arm is not below some letter arm")


def _init(var_none, var_sqrt, peaked, peaked_sqrt=(0.0, 0.0, 0.0), dims=(8, 32, 128)):
  return {d: {"none": {"score_var": vn, "rows_over_0.9": pn}, "sqrt": {"score_var": vs, "rows_over_0.9": ps}}
          for d, vn, vs, pn, ps in zip(dims, var_none, var_sqrt, peaked, peaked_sqrt)}


def test_scores_saturate_with_d_k_only_without_the_scale():
  assert claims.saturates_with_dimension(_init((8.1, 31.5, 127.0), (1.01, 0.98, 0.99), (0.01, 0.2, 0.6))).startswith(
      "holds at unit-variance init: unscaled score variance 8.1 / 31.5 / 127 at d_k 8 / 32 / 128, scaled")
  # variance not d_k (a scale applied where it should not be), peaking that does not grow,
  # a scaled variance off 1, and unscaled rows no more peaked than scaled ones
  for bad in (_init((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (0.01, 0.2, 0.6)),
              _init((8, 32, 128), (1, 1, 1), (0.3, 0.2, 0.6)),
              _init((8, 32, 128), (1, 1, 4.0), (0.01, 0.2, 0.6)),
              _init((8, 32, 128), (1, 1, 1), (0.01, 0.2, 0.6), (0.0, 0.0, 0.7))):
    assert claims.saturates_with_dimension(bad).startswith("does not hold at unit-variance init")
  with pytest.raises(ValueError, match="two or more"):
    claims.saturates_with_dimension(_init((8,), (1,), (0.1,), dims=(8,)))


def test_a_cost_per_size_is_judged_per_size_with_holm_and_its_growth_said():
  base = [2.30, 2.31, 2.29]
  costly = stats.compare([2.50, 2.52, 2.48], base, paired=True)  # +0.2, tight
  slight = stats.compare([2.35, 2.36, 2.34], base, paired=True)  # +0.05, tight
  noisy = stats.compare([2.30, 2.40, 2.25], base, paired=True)
  helps = stats.compare([2.10, 2.12, 2.08], base, paired=True)
  label = "d_head {}".format
  # sizes in numeric order (as text, "128" < "32" < "8"), shown by the label
  text = claims.costs_per_size({128: costly, 8: slight}, "unscaled", "scaled", label)
  assert text.startswith("holds at every size: unscaled vs scaled, d_head 8: costs 0.05 [")
  assert text.endswith("; the differences growing with the size")
  text = claims.costs_per_size({8: costly, 32: noisy, 128: slight}, "unscaled", "scaled")
  assert text.startswith("holds at 8, 128 of 8, 32, 128") and "32: not detected (+" in text
  assert "80% power for" in text and text.endswith("the differences not growing steadily with the size")
  assert "8: raises it by 0.2 [" in claims.costs_per_size({8: costly}, "unscaled", "scaled", raises="raises it by")
  assert claims.costs_per_size({8: helps, 32: noisy}, "unscaled", "scaled").startswith(
      "not detected at any size: unscaled vs scaled, 8: helps by 0.2 [")
  assert "not tested" in claims.costs_per_size({8: stats.compare([1.0], [2.0])}, "a", "b")


def test_mixing_holds_only_when_the_mlp_stays_put_and_attention_reaches_out():
  assert claims.mixes_across([0.002, 0.003], [0.03, 0.04], [0.0, 1e-9], [0.12, 0.1]).startswith(
      "holds in all 2 models: the MLP's change at other positions is at most 1e-08 of its own")
  assert claims.mixes_across([0.002], [0.03], [0.0], [0.1]).startswith(
      "holds in the one model: the MLP's change at other positions is exactly 0, attention's")
  assert claims.mixes_across([0.002], [0.03], [0.01], [0.1]).startswith(
      "does not hold: the MLP moves other positions by up to 0.1 of its change")
  assert claims.mixes_across([0.0], [0.03], [0.0], [0.1]).startswith(
      "does not hold: attention moves other positions by only 0 of its own")
  with pytest.raises(ValueError, match="one value per model"):
    claims.mixes_across([0.1], [0.1, 0.2], [0.0], [0.1])


def test_a_sweet_spot_holds_only_below_every_other_arm():
  arms = ["1,000", "4,096", "50,000"]
  ranges = [{"lower": "4,096", "higher": "50,000", "diff": -0.45, "from_budget": 1, "span": "from 7e+12 FLOPs to 7e+13"},
            {"lower": "4,096", "higher": "1,000", "diff": -0.04, "from_budget": 2, "span": "from 1.4e+13 FLOPs to 7e+13"},
            {"lower": "1,000", "higher": "50,000", "diff": -0.41, "from_budget": 1, "span": "from 7e+12 FLOPs to 7e+13"}]
  assert claims.sweet_spot(ranges, "4,096", arms, "7e+13 FLOPs") == (
      "holds from 1.4e+13 FLOPs to 7e+13: 4,096 below every other arm, by 0.04 or more at 7e+13 FLOPs")
  assert claims.sweet_spot(ranges, "50,000", arms, "7e+13 FLOPs") == (
      "does not hold: 4,096 below 50,000 from 7e+12 FLOPs to 7e+13 (0.45 at 7e+13 FLOPs); "
      "1,000 below 50,000 from 7e+12 FLOPs to 7e+13 (0.41 at 7e+13 FLOPs)")
  assert claims.sweet_spot(ranges[:1], "1,000", arms, "7e+13 FLOPs") == "not detected at 7e+13 FLOPs: 1,000 vs 4,096, 50,000"
  with pytest.raises(ValueError, match="other arms"):
    claims.sweet_spot(ranges, "4,096", ["4,096"], "x")


def test_an_ordered_sequence_is_judged_step_by_step():
  # differences that vary a little by seed (identical ones would make the t-test degenerate)
  values = {"1": [(0, 2.60), (1, 2.62), (2, 2.61)], "2": [(0, 2.40), (1, 2.43), (2, 2.41)],
            "4": [(0, 2.30), (1, 2.32), (2, 2.305)], "8": [(0, 2.35), (1, 2.375), (2, 2.36)]}
  pairs = stats.pairwise(values)
  assert claims.ordered(pairs, ["1", "2", "4"]).startswith("holds at every step: 1 -> 2: -0.197 (Holm p ")
  text = claims.ordered(pairs, ["1", "2", "4", "8"])
  assert text.startswith("does not hold at every step: ") and "4 -> 8: +0.0533, worse" in text
  noisy = stats.pairwise({"1": [(0, 2.6), (1, 2.4), (2, 2.5)], "2": [(0, 2.45), (1, 2.55), (2, 2.52)],
                          "4": [(0, 2.1), (1, 2.12), (2, 2.11)]})
  text = claims.ordered(noisy, ["1", "2", "4"])
  assert text.startswith("holds at 1 of 2 steps: 1 -> 2: ") and "not detected" in text
  assert claims.ordered(noisy, ["1", "16"]) == "not detected at any step: 1 -> 16: not tested"
  assert claims.ordered(pairs, ["4", "2", "1"]).startswith("does not hold: every step is worse: 4 -> 2: +0.105, worse")
  with pytest.raises(ValueError, match="two or more"):
    claims.ordered(pairs, ["1"])


def test_permutation_invariance_is_float_noise_relative_to_the_logits():
  assert claims.permutation_invariant([1.9e-6, 2.1e-6], [0.8, 1.2], 11.0).startswith(
      "holds only without the causal mask: shuffling moves the outputs by at most 2.1e-06")
  assert claims.permutation_invariant([1e-6], [2e-6], 11.0).startswith("holds with and without the causal mask")
  assert claims.permutation_invariant([1e-6], [2e-6], 11.0).endswith("in the one model")  # an imported model
  assert claims.permutation_invariant([1e-6, 0.3], [0.8, 1.2], 11.0).startswith(
      "does not hold: shuffling changes a model's logits by up to 0.3 even without the causal mask")
  with pytest.raises(ValueError, match="positive logit scale"):
    claims.permutation_invariant([1e-6], [0.8], 0.0)


def test_the_vocabulary_row_says_whether_50k_still_loses_at_its_better_rate():
  """50k at the rate its sweep liked, five seeds paired with the others at 3e-3: above an arm
  only where the paired test (Holm) detects it."""
  import copy
  import importlib.util
  import json

  spec = importlib.util.spec_from_file_location("claims_script", ROOT / "experiments/claims/claims.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  figures = json.loads((ROOT / "experiments/claims/claims.json").read_text())
  v = copy.deepcopy(figures["vocab_sweet_spot"])
  jitter = [0.0, 0.004, -0.003, 0.002, -0.001]
  v["better_rate"] = {"arm": "50,000", "rate": 1e-3, "budget": 1.42e13,
                      "values": [2.50 + j for j in jitter],
                      "others": {"1,000": [2.44 - j / 2 for j in jitter],           # 50k above by 0.06
                                 "4,096": [2.33 + j / 3 for j in jitter],           # above by 0.17
                                 "16,000": [2.50 + 0.01 * (-1) ** i for i in range(5)],  # no difference
                                 "50,000": [2.60 - j for j in jitter]}}
  row = module.vocab_row(v)
  assert "50,000 at peak rate 0.001 (its best of the rate sweep, 5 seeds) 2.500 ± 0.003" in row[2]
  assert "(its own five seeds at 3e-3: 2.600, the better rate -0.099, Holm p" in row[2]
  assert row[3].split(". Instead")[0].endswith(
      "with 50,000 at 0.001 (paired over 5 seeds, Holm): still above 1,000, 4,096, not detected against 16,000")


def test_the_depth_row_says_whether_the_order_survives_each_depths_best_rate():
  """The rate sweep (seed 0) beside the paired verdict at 3e-3: the row names each depth's best
  rate and says whether the order at those rates is the one at 3e-3."""
  import copy
  import importlib.util
  import json

  spec = importlib.util.spec_from_file_location("claims_script", ROOT / "experiments/claims/claims.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  dp = copy.deepcopy(json.loads((ROOT / "experiments/claims/claims.json").read_text())["depth"])
  dp["rates"] = {"1": {"0.001": 2.25, "0.003": 2.17, "0.01": 2.30}, "2": {"0.001": 2.26, "0.003": 2.24, "0.01": 2.35},
                 "4": {"0.001": 2.38, "0.003": 2.33, "0.01": 2.40}, "8": {"0.001": 2.43, "0.003": 2.44, "0.01": 2.50}}
  row = module.depth_row(dp)
  assert row[2].endswith("seed 0 at each depth's best peak rate of 0.001 / 0.003 / 0.01: 1: 2.170 (0.003), "
                         "2: 2.240 (0.003), 4: 2.330 (0.003), 8: 2.430 (0.001)")
  assert row[3].endswith("at each depth's best rate (seed 0, one run each) the order is 1 < 2 < 4 < 8 layers (as at 3e-3)")
  dp["rates"]["8"]["0.001"] = 2.20  # 8 layers at 1e-3 below 2 and 4: the order changes
  assert module.depth_row(dp)[3].endswith("the order is 1 < 8 < 2 < 4 layers (at 3e-3: 1 < 2 < 4 < 8)")
