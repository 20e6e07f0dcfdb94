"""Verdicts for the explainer's claims, derived from figures by stated rules (no verdict text is
typed by hand: each names the figure and the baseline that decide it).

- `difference`: a claimed direction between two measurements over seeds (a `stats.compare`
  result): holds when the test detects it in that direction, does not hold when it detects the
  opposite, and is otherwise "not detected" with the difference the test had the power to see.
- `percentiles`: related word pairs against random pairs of the same table: a pair counts as
  closer when its cosine is at or above the `threshold`th percentile of random pairs.
- `near`: a figure against the claim's number, within a tolerance.
"""

from __future__ import annotations


def difference(test: dict, claimed: str, a: str = "a", b: str = "b") -> str:
  """`claimed`: "higher" or "lower" (a relative to b); `test`: `stats.compare(a, b, ...)`."""
  if claimed not in ("higher", "lower"):
    raise ValueError(f"claimed must be 'higher' or 'lower', got {claimed!r}")
  if test.get("p") is None:
    return "not tested (fewer than 2 seeds)"
  diff, p = test["diff"], test["p"]
  if test["distinguishable"]:
    if (diff > 0) == (claimed == "higher"):
      return f"holds: {a} is {claimed} than {b} by {abs(diff):.3g} ({test['test']} p {p:.2g})"
    return (f"does not hold: {a} is {'lower' if diff < 0 else 'higher'} than {b} by {abs(diff):.3g} "
            f"({test['test']} p {p:.2g}), the opposite of the claim")
  detectable = test.get("detectable")
  power = (f"; 80% power only for a difference of {detectable:.2g} or more" if detectable
           else "")
  return f"not detected: {a} - {b} = {diff:+.3g} ({test['test']} p {p:.2g}{power})"


def percentiles(by_pair: dict[str, float], threshold: float = 90.0) -> str:
  """`by_pair`: {"king/queen": percentile of its cosine among random pairs (0-100)}."""
  if not by_pair:
    raise ValueError("no related pairs to judge")
  closer = [p for p, v in by_pair.items() if v >= threshold]
  shown = ", ".join(f"{p} {v:.0f}th" for p, v in by_pair.items())
  if len(closer) == len(by_pair):
    return f"holds: every related pair is at or above the {threshold:.0f}th percentile of random pairs ({shown})"
  if closer:
    return (f"holds for {len(closer)} of {len(by_pair)} pairs ({', '.join(closer)}): at or above the "
            f"{threshold:.0f}th percentile of random pairs ({shown})")
  return (f"not detected: no related pair reaches the {threshold:.0f}th percentile of random pairs "
          f"({shown})")


def near(value: float, target: float, tolerance: float, what: str) -> str:
  if abs(value - target) <= tolerance:
    return f"holds: {value:.3g} {what}, within {tolerance:g} of {target:g}"
  return (f"does not hold here: {value:.3g} {what}, {value / target:.2f}x the claimed {target:g} "
          f"(tolerance {tolerance:g})")
