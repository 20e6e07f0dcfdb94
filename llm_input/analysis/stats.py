"""Statistics for comparing sweep arms over seeds.

Arms run with the same seeds share their initialisation seed and data order, so the seeds pair
them: the paired t-test (and Wilcoxon's signed-rank test, which assumes no normality) on the
per-seed differences, with a 95% confidence interval of the mean difference and the effect
size d_z = mean difference / standard deviation of the differences. Arms without a common
set of seeds fall back to Welch's t-test (with Welch-Satterthwaite degrees of freedom for the
interval). Holm's correction covers all pairs of a table at once. A difference that is not
detected is reported with the smallest difference the design could detect with 80% power
(two-sided, at alpha / number of pairs in a table: a bound for Holm), not as "no difference".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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

  return float(optimize.brentq(shortfall, 1e-9 * scale, 60 * scale))  # power alpha .. ~1


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
