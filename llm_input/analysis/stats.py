"""Statistics for comparing sweep arms over seeds.

Arms run with the same seeds share their initialisation seed and data order, so the seeds pair
them: the paired t-test (and Wilcoxon's signed-rank test, which assumes no normality) on the
per-seed differences, with a 95% confidence interval of the mean difference and the effect
size d_z = mean difference / standard deviation of the differences. Arms without a common
set of seeds fall back to Welch's t-test (with Welch-Satterthwaite degrees of freedom for the
interval). Holm's correction covers all pairs of a table at once. A difference that is not
detected is reported with the smallest difference the design could detect with 80% power
(two-sided, at alpha / number of pairs in a table: a bound for Holm), not as "no difference".

Seeds are not the only source of variance: the validation text is a sample of documents too.
`bootstrap_difference` resamples both (seeds paired across arms, the same documents for both
arms) from each run's per-document losses (`llm-input eval --run R`, val_documents.json), so
an interval says how much the difference would move with other seeds and other held-out text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

ALPHA = 0.05
POWER = 0.8


def _t_quantile(q: float, df: float) -> float:
  from scipy import stats  # noqa: PLC0415

  return float(stats.t.ppf(q, df))


def detectable(se: float, df: float, alpha: float = ALPHA, power: float = POWER) -> float | None:
  """The smallest true difference a two-sided t-test whose difference has standard error `se`
  (sd / sqrt(n) for a paired test) with `df` degrees of freedom detects with probability
  `power`: solved with the noncentral t distribution (taking the observed spread as known)."""
  from scipy import optimize, stats  # noqa: PLC0415

  if not math.isfinite(se) or se <= 0 or df <= 0:
    return None
  crit = _t_quantile(1 - alpha / 2, df)
  scale = se

  def shortfall(delta):
    nc = delta / scale
    lower = float(stats.nct.cdf(-crit, df, nc))  # the far tail (scipy gives nan when it is ~0)
    return float(stats.nct.sf(crit, df, nc)) + (lower if math.isfinite(lower) else 0.0) - power

  # bracket the root: power is ~alpha near 0 and rises to 1; with few degrees of freedom and a
  # strict alpha (two seeds, Holm over ten pairs: crit ~127) 80% lies past 60 standard errors
  high = 60 * scale
  while shortfall(high) < 0:
    if high > 1e12 * scale:
      return math.inf
    high *= 4
  return float(optimize.brentq(shortfall, 1e-9 * scale, high))


def compare(a: Sequence[float], b: Sequence[float], paired: bool = False, alpha: float = ALPHA) -> dict:
  """mean a - mean b with its test. `paired`: a[i] and b[i] share seed i."""
  from scipy import stats  # noqa: PLC0415

  a, b = [float(x) for x in a], [float(x) for x in b]
  mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
  out = {"mean_a": mean_a, "mean_b": mean_b, "diff": mean_a - mean_b, "n_a": len(a), "n_b": len(b),
         "test": None, "t": None, "p": None, "p_wilcoxon": None, "ci_low": None, "ci_high": None,
         "effect_size": None, "detectable": None, "distinguishable": False, "se": None, "df": None}
  if paired:
    if len(a) != len(b):
      raise ValueError("paired arms need one value per shared seed")
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    if n < 2:
      return out
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    test = stats.ttest_rel(a, b)
    half = _t_quantile(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
    out.update(test="paired t", t=float(test.statistic), p=float(test.pvalue),
               se=sd / math.sqrt(n), df=float(n - 1),
               ci_low=mean - half, ci_high=mean + half,
               effect_size=mean / sd if sd > 0 else math.copysign(math.inf, mean) if mean else 0.0,
               detectable=detectable(sd / math.sqrt(n), n - 1, alpha))
    if any(x != 0 for x in d):
      out["p_wilcoxon"] = float(stats.wilcoxon(a, b).pvalue)
  else:
    if len(a) < 2 or len(b) < 2:
      return out
    var_a = sum((x - mean_a) ** 2 for x in a) / (len(a) - 1)
    var_b = sum((x - mean_b) ** 2 for x in b) / (len(b) - 1)
    se = math.sqrt(var_a / len(a) + var_b / len(b))
    df = se ** 4 / ((var_a / len(a)) ** 2 / (len(a) - 1) + (var_b / len(b)) ** 2 / (len(b) - 1)) \
        if se > 0 else float(len(a) + len(b) - 2)
    test = stats.ttest_ind(a, b, equal_var=False)
    half = _t_quantile(1 - alpha / 2, df) * se
    pooled = math.sqrt(((len(a) - 1) * var_a + (len(b) - 1) * var_b) / (len(a) + len(b) - 2))
    out.update(test="Welch t", t=float(test.statistic), p=float(test.pvalue), se=se, df=float(df),
               ci_low=out["diff"] - half, ci_high=out["diff"] + half,
               effect_size=out["diff"] / pooled if pooled > 0 else None,
               detectable=detectable(se, df, alpha))
  out["distinguishable"] = bool(out["p"] is not None and out["p"] < alpha)
  return out


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
  """Holm-adjusted p-values (monotone), None where a test could not be made."""
  tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
  out: list[float | None] = [None] * len(pvalues)
  running = 0.0
  for rank, (p, i) in enumerate(tested):
    running = max(running, min(1.0, p * (len(tested) - rank)))
    out[i] = running
  return out


def against_each(ours: Sequence[float], others: dict[str, Sequence[float]], alpha: float = ALPHA) -> dict[str, dict]:
  """One arm against each of `others`, paired by seed (`compare(..., paired=True)`), with
  `p_holm`: Holm over these comparisons."""
  tests = {name: compare(ours, values, paired=True, alpha=alpha) for name, values in others.items()}
  for name, p in zip(tests, holm([t["p"] for t in tests.values()])):
    tests[name]["p_holm"] = p
  return tests


def pairwise(values: dict[str, list[tuple]], alpha: float = ALPHA) -> list[dict]:
  """Every pair of arms, `values` = {arm: [(seed or None, value), ...]}: paired over the seeds
  when both arms have the same distinct seeds, else Welch; Holm over all pairs. Sorted by the
  Holm p-value."""
  names = list(values)
  out = []
  for i, a in enumerate(names):
    for b in names[i + 1:]:
      by_a, by_b = dict(values[a]), dict(values[b])
      paired = (set(by_a) == set(by_b) and None not in by_a and len(by_a) >= 2
                and len(by_a) == len(values[a]) and len(by_b) == len(values[b]))
      if paired:
        order = sorted(by_a)
        c = compare([by_a[s] for s in order], [by_b[s] for s in order], True, alpha)
      else:
        c = compare([v for _, v in values[a]], [v for _, v in values[b]], False, alpha)
      out.append({"a": a, "b": b, **c})
  tests = sum(r["p"] is not None for r in out)
  for r, p in zip(out, holm([r["p"] for r in out])):
    r["p_holm"] = p
    r["distinguishable"] = bool(p is not None and p < alpha)
    if p is not None and tests > 1:  # what the corrected test could detect (Bonferroni bound)
      r["detectable"] = detectable(r["se"], r["df"], alpha / tests)
  return sorted(out, key=lambda r: (r["p_holm"] is None, r["p_holm"] or 0.0))


def describe(r: dict, y: str = "") -> str:
  """The verdict cell of a table row."""
  if r["p"] is None:
    return "not tested (fewer than 2 seeds)"
  if r["distinguishable"]:
    return f"{r['a'] if r['diff'] < 0 else r['b']} lower"
  if r["detectable"] is not None:
    return f"not detected (80% power only for a difference of {r['detectable']:.2g} or more)"
  return "not detected"


def document_arrays(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
  """(seeds, documents) losses and (documents,) bytes from one arm's runs' records (one per
  seed, in seed order); the bytes must agree across seeds (the same tokens)."""
  loss = np.array([[d["loss_nats"] for d in r["documents"]] for r in records], np.float64)
  nbytes = np.array([[d["bytes"] for d in r["documents"]] for r in records], np.int64)
  if len({tuple(b) for b in nbytes}) != 1:
    raise ValueError("the runs of one arm scored different target bytes per document (different "
                     "tokens or validation split); compare runs of one arm only")
  return loss, nbytes[0].astype(np.float64)


def bits_per_byte(loss_SxD: np.ndarray, bytes_D: np.ndarray) -> float:
  """Mean over seeds (rows) of summed loss (nats) over documents (columns) per target byte."""
  return float(np.mean(np.asarray(loss_SxD).sum(axis=1)) / (math.log(2) * np.sum(bytes_D)))


def bootstrap_difference(loss_a: np.ndarray, bytes_a: np.ndarray, loss_b: np.ndarray,
                         bytes_b: np.ndarray, resamples: int = 10000, alpha: float = ALPHA,
                         seed: int = 0) -> dict:
  """Bits per byte of arm a minus arm b with a percentile bootstrap interval over seeds and
  documents. `loss_*`: (seeds, documents) summed validation loss in nats, row i = seed i in
  both arms; `bytes_*`: (documents,) target bytes (each arm's own: the targets an evaluation
  scores depend on the tokenizer). Each resample draws seeds with replacement (the same draw
  for both arms: they share data order and initialisation) and documents with replacement (the
  same documents for both), and recomputes each arm's figure as in `bits_per_byte`."""
  loss_a, loss_b = np.asarray(loss_a, np.float64), np.asarray(loss_b, np.float64)
  bytes_a, bytes_b = np.asarray(bytes_a, np.float64), np.asarray(bytes_b, np.float64)
  if loss_a.ndim != 2 or loss_a.shape != loss_b.shape or bytes_a.shape != (loss_a.shape[1],) \
     or bytes_b.shape != bytes_a.shape:
    raise ValueError(f"need (seeds, documents) losses of one shape and (documents,) bytes; got "
                     f"{loss_a.shape}, {loss_b.shape}, {bytes_a.shape}, {bytes_b.shape}")
  n_seeds, n_docs = loss_a.shape
  rng = np.random.default_rng(seed)
  diffs = np.empty(resamples)
  chunk = 2000
  for first in range(0, resamples, chunk):
    r = min(chunk, resamples - first)
    seeds_RxS = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=r)  # how often each seed is drawn
    docs_RxD = rng.multinomial(n_docs, np.full(n_docs, 1 / n_docs), size=r)
    arm = []
    for loss, nbytes in ((loss_a, bytes_a), (loss_b, bytes_b)):
      per_seed_RxS = (docs_RxD @ loss.T) / (math.log(2) * (docs_RxD @ nbytes))[:, None]
      arm.append((seeds_RxS * per_seed_RxS).sum(axis=1) / n_seeds)
    diffs[first:first + r] = arm[0] - arm[1]
  low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
  return {"diff": bits_per_byte(loss_a, bytes_a) - bits_per_byte(loss_b, bytes_b),
          "ci_low": float(low), "ci_high": float(high), "seeds": n_seeds, "documents": n_docs,
          "resamples": resamples, "excludes_zero": bool(low > 0 or high < 0)}
