"""Verdicts for the explainer's claims, derived from figures by stated rules (no verdict text is
typed by hand: each names the figure and the baseline that decide it).

- `difference`: a claimed direction between two measurements over seeds (a `stats.compare`
  result): holds when the test detects it in that direction, does not hold when it detects the
  opposite, and is otherwise "not detected" with the difference the test had the power to see.
- `percentiles`: related word pairs against random pairs of the same table: a pair counts as
  closer when its cosine is at or above the `threshold`th percentile of random pairs.
- `near`: a figure against the claim's number, within a tolerance.
- `happens`: a "might happen" claim (similar words might split differently): holds when it is
  seen at all, with how often.
- `negligible`: a claimed absence of relation (adjacent ids are unrelated) against random
  pairs: holds when the effect size is below Cohen's "small" (|d| < 0.2).
- `own_entries`: every form of a word its own vocabulary entry (or `<unk>`), none shared.
- `over_budgets`: a claimed ordering of two arms of a loss-vs-compute curve: the budget range
  where it is detected (`budgets.holding_ranges`), or its reverse, or neither.
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
  shown = ", ".join(f"{p} {ordinal(v)}" for p, v in by_pair.items())
  if len(closer) == len(by_pair):
    return f"holds: every related pair is at or above the {threshold:.0f}th percentile of random pairs ({shown})"
  if closer:
    return (f"holds for {len(closer)} of {len(by_pair)} pairs ({', '.join(closer)}): at or above the "
            f"{threshold:.0f}th percentile of random pairs ({shown})")
  return (f"not detected: no related pair reaches the {threshold:.0f}th percentile of random pairs "
          f"({shown})")


def ordinal(value: float) -> str:
  """93 -> '93rd', 11 -> '11th' (a percentile rounded to a whole number)."""
  n = int(round(value))
  suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
  return f"{n}{suffix}"


def near(value: float, target: float, tolerance: float, what: str) -> str:
  if abs(value - target) <= tolerance:
    return f"holds: {value:.3g} {what}, within {tolerance:g} of {target:g}"
  off = f"{value / target:.2f}x the claimed {target:g}" if target else f"{value - target:+.3g} from the claimed {target:g}"
  return f"does not hold here: {value:.3g} {what}, {off} (tolerance {tolerance:g})"


def happens(count: int, total: int, what: str, examples: list[str] = ()) -> str:
  if total <= 0:
    raise ValueError(f"no {what} to look at")
  shown = f" (e.g. {'; '.join(examples[:3])})" if examples else ""
  if count:
    return f"holds: {count:,} of {total:,} {what} ({100 * count / total:.1f}%){shown}"
  return f"not seen: 0 of {total:,} {what}"


def negligible(effect: float, what: str, threshold: float = 0.2) -> str:
  """`effect`: Cohen's d of the claimed-unrelated values against random pairs."""
  if abs(effect) < threshold:
    return f"holds: {what} are as related as random pairs (Cohen's d {effect:+.2f}, |d| < {threshold:g})"
  return (f"does not hold: {what} are {'more' if effect > 0 else 'less'} related than random pairs "
          f"(Cohen's d {effect:+.2f}, |d| >= {threshold:g})")


def own_entries(forms: dict[str, list[str]], unk: str = "<unk>") -> str:
  """`forms`: {word form: its tokens} under a word vocabulary."""
  known = {w: t[0] for w, t in forms.items() if len(t) == 1 and t[0] != unk}
  lost = [w for w, t in forms.items() if t == [unk]]
  split = [w for w, t in forms.items() if len(t) != 1]
  if split or len(set(known.values())) < len(known):
    return f"does not hold: {', '.join(split) or 'some forms'} share or split entries"
  return (f"holds: {len(known)} of the {len(forms)} forms are entries of their own"
          + (f", {', '.join(lost)} `<unk>` (no entry at all)" if lost else ""))


def over_budgets(ranges: list[dict], lower: str, higher: str, largest: str) -> str:
  """`ranges`: `budgets.holding_ranges` of a curve (with a `span` text per range: where it
  holds); the claim: `lower` is below `higher`."""
  for r in ranges:
    if (r["lower"], r["higher"]) == (lower, higher):
      return f"holds {r['span']}: {lower} below {higher} by {abs(r['diff']):.3g} at {largest}"
    if (r["lower"], r["higher"]) == (higher, lower):
      return f"does not hold {r['span']}: {higher} is below {lower} by {abs(r['diff']):.3g} at {largest}"
  return f"not detected at {largest}: {lower} vs {higher}"
