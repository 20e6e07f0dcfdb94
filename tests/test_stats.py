"""Sweep statistics against scipy and simulation on known data."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from llm_input.analysis import stats

A = [2.51, 2.53, 2.50, 2.56, 2.52]
B = [2.54, 2.55, 2.53, 2.60, 2.53]  # B - A: +0.03 +0.02 +0.03 +0.04 +0.01


def test_paired_comparison_equals_scipy():
  r = stats.compare(A, B, paired=True)
  ref = scipy_stats.ttest_rel(A, B)
  ci = ref.confidence_interval(0.95)
  assert (r["t"], r["p"]) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-12)
  assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
  assert r["p_wilcoxon"] == pytest.approx(scipy_stats.wilcoxon(A, B).pvalue)
  d = np.subtract(A, B)
  assert r["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1))
  assert r["distinguishable"] and r["test"] == "paired t"


def test_welch_comparison_equals_scipy():
  r = stats.compare(A, B, paired=False)
  ref = scipy_stats.ttest_ind(A, B, equal_var=False)
  ci = ref.confidence_interval(0.95)
  assert (r["t"], r["p"]) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-12)
  assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
  # the same seeds unpaired: the seed-to-seed spread hides the consistent +0.026
  assert not r["distinguishable"]


def test_the_smallest_detectable_difference_has_80_percent_power():
  """Simulated: paired t-tests of n=5 differences ~ N(delta, sd^2) reject at alpha 0.05 in
  80% of draws when delta is `detectable`."""
  sd, n = 0.02, 5
  delta = stats.detectable(sd / np.sqrt(n), n - 1)
  rng = np.random.default_rng(0)
  d = rng.normal(delta, sd, size=(40000, n))
  t = d.mean(1) / (d.std(1, ddof=1) / np.sqrt(n))
  rejected = np.abs(t) > scipy_stats.t.ppf(0.975, n - 1)
  assert rejected.mean() == pytest.approx(0.8, abs=0.01)


def test_holm_by_hand():
  assert stats.holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
  assert stats.holm([0.5, 0.2]) == pytest.approx([0.5, 0.4])


def test_pairwise_pairs_shared_seeds_and_says_what_was_not_detected():
  values = {"a": list(enumerate(A)), "b": list(enumerate(B)), "c": [(0, 2.5), (1, 2.9), (2, 2.2)]}
  rows = {(r["a"], r["b"]): r for r in stats.pairwise(values)}
  assert rows[("a", "b")]["test"] == "paired t" and rows[("a", "c")]["test"] == "Welch t"
  assert rows[("a", "b")]["distinguishable"]  # paired, it survives Holm over 3 pairs
  text = stats.describe(rows[("a", "c")])
  assert text.startswith("not detected (80% power only for a difference of ")
  assert stats.describe(rows[("a", "b")]) == "a lower"


def test_detectable_difference_accounts_for_the_number_of_pairs():
  values = {"a": list(enumerate(A)), "b": list(enumerate(B)), "c": [(0, 2.5), (1, 2.9), (2, 2.2)]}
  rows = {(r["a"], r["b"]): r for r in stats.pairwise(values)}
  alone = stats.compare(A, B, paired=True)
  assert rows[("a", "b")]["detectable"] == pytest.approx(stats.detectable(alone["se"], alone["df"], 0.05 / 3))
  assert rows[("a", "b")]["detectable"] > alone["detectable"]
