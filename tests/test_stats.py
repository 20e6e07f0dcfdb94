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


def test_the_detectable_difference_of_two_seeds_under_holm_over_ten_pairs():
  """df 1 at alpha 0.05 / 10 (two seeds, five arms): the critical t is ~127, so 80% power lies
  far past the first bracket of the root; simulated as above."""
  sd, n, alpha = 0.02, 2, 0.005
  delta = stats.detectable(sd / np.sqrt(n), n - 1, alpha)
  crit = scipy_stats.t.ppf(1 - alpha / 2, n - 1)
  assert delta > crit * sd / np.sqrt(n)
  rng = np.random.default_rng(0)
  d = rng.normal(delta, sd, size=(40000, n))
  t = d.mean(1) / (d.std(1, ddof=1) / np.sqrt(n))
  assert (np.abs(t) > crit).mean() == pytest.approx(0.8, abs=0.01)


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


# -- the bootstrap over seeds and documents ---------------------------------------------------

def _documents(rng, n_seeds, n_docs, shift=0.0):
  nbytes = rng.integers(20_000, 120_000, size=n_docs).astype(float)
  per_doc = rng.normal(1.7, 0.08, size=n_docs)  # nats per byte: documents differ
  loss = (per_doc + shift)[None, :] * nbytes[None, :] + rng.normal(0, 300, size=(n_seeds, n_docs))
  return loss, nbytes


def test_bootstrap_over_documents_equals_scipys_paired_bootstrap():
  """One seed: only documents are resampled; scipy's percentile bootstrap of the same ratio
  statistic (documents paired across arms) gives the same interval up to Monte Carlo error."""
  rng = np.random.default_rng(1)
  loss_a, bytes_a = _documents(rng, 1, 12)
  loss_b = loss_a * 1.01 + rng.normal(0, 400, size=loss_a.shape)
  ours = stats.bootstrap_difference(loss_a, bytes_a, loss_b, bytes_a, resamples=40000, seed=3)

  def statistic(la, lb, nb, axis=-1):
    return (la.sum(axis=axis) - lb.sum(axis=axis)) / (np.log(2) * nb.sum(axis=axis))

  ref = scipy_stats.bootstrap((loss_a[0], loss_b[0], bytes_a), statistic, paired=True, vectorized=True,
                              n_resamples=40000, method="percentile", random_state=4)
  width = ref.confidence_interval.high - ref.confidence_interval.low
  assert ours["diff"] == pytest.approx(statistic(loss_a[0], loss_b[0], bytes_a))
  assert ours["ci_low"] == pytest.approx(ref.confidence_interval.low, abs=0.03 * width)
  assert ours["ci_high"] == pytest.approx(ref.confidence_interval.high, abs=0.03 * width)


def test_bootstrap_over_seeds_equals_scipys_bootstrap_of_the_paired_differences():
  """One document: only seeds are resampled, paired: scipy's bootstrap of the mean per-seed
  difference."""
  rng = np.random.default_rng(2)
  loss_a, nbytes = _documents(rng, 7, 1)
  loss_b = loss_a + rng.normal(900, 500, size=loss_a.shape)
  ours = stats.bootstrap_difference(loss_a, nbytes, loss_b, nbytes, resamples=40000, seed=5)
  d = (loss_a[:, 0] - loss_b[:, 0]) / (np.log(2) * nbytes[0])
  ref = scipy_stats.bootstrap((d,), np.mean, n_resamples=40000, method="percentile", random_state=6)
  width = ref.confidence_interval.high - ref.confidence_interval.low
  assert ours["diff"] == pytest.approx(d.mean())
  assert ours["ci_low"] == pytest.approx(ref.confidence_interval.low, abs=0.03 * width)
  assert ours["ci_high"] == pytest.approx(ref.confidence_interval.high, abs=0.03 * width)


def test_the_bootstrap_interval_widens_with_text_variance_and_pairs_documents():
  """Arms that differ by a constant per byte on every document: pairing the documents leaves
  only seed noise (a narrow interval excluding 0); documents drawn for each arm separately
  would mix in the documents' own spread, which is larger than the difference."""
  rng = np.random.default_rng(3)
  loss_a, nbytes = _documents(rng, 5, 8)
  loss_b = loss_a + 0.01 * nbytes[None, :]  # b is 0.01 nats per byte worse everywhere
  r = stats.bootstrap_difference(loss_a, nbytes, loss_b, nbytes, resamples=5000)
  assert r["diff"] == pytest.approx(-0.01 / np.log(2))
  assert r["excludes_zero"] and r["ci_high"] < 0
  assert r["ci_high"] - r["ci_low"] < 0.002  # documents paired: their spread cancels
  with pytest.raises(ValueError, match="seeds, documents"):
    stats.bootstrap_difference(loss_a, nbytes, loss_b[:, :3], nbytes)


def test_document_arrays_refuse_runs_that_scored_different_bytes():
  a = {"documents": [{"loss_nats": 1.0, "bytes": 10}, {"loss_nats": 2.0, "bytes": 20}]}
  b = {"documents": [{"loss_nats": 1.5, "bytes": 10}, {"loss_nats": 2.5, "bytes": 20}]}
  loss, nbytes = stats.document_arrays([a, b])
  assert loss.tolist() == [[1.0, 2.0], [1.5, 2.5]] and nbytes.tolist() == [10.0, 20.0]
  c = {"documents": [{"loss_nats": 1.0, "bytes": 11}, {"loss_nats": 2.0, "bytes": 20}]}
  with pytest.raises(ValueError, match="different target bytes"):
    stats.document_arrays([a, c])
