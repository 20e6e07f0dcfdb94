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
- `saturates_with_dimension`: at unit-variance init, unscaled scores q.k have variance d_k and
  their softmax rows grow peaked with d_k, while scaled ones stay at variance 1.
- `costs_per_size`: a change claimed to hurt (e.g. training without the scale), tested per size
  (d_head) with Holm across the sizes; where it is detected, and whether it grows with the size.
- `mixes_across`: one sublayer moves other tokens' outputs, another only its own token's: the
  second's change elsewhere is float noise (below `noise` of its own change) in every model,
  the first's is not.
- `sweet_spot`: one arm claimed best of a curve: holds over the budgets where it is detected
  below every other arm; otherwise names the arms detected below it and where.
- `permutation_invariant`: shuffled inputs give shuffled outputs up to float noise (relative to
  the largest logit), checked with and without the causal mask in every model.
- `ordered`: arms claimed to improve in a sequence (e.g. more layers): each step of the
  sequence judged by its Holm-corrected pairwise test.
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


def _every(models: int) -> str:
  """'all 3 models', or 'the one model'."""
  return "the one model" if models == 1 else f"all {models} models"


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


def saturates_with_dimension(init: dict, tolerance: float = 0.2) -> str:
  """`init`: {d_k: {"sqrt": stats, "none": stats}}, stats with `score_var` and `rows_over_0.9`
  (the share of softmax rows with a weight above 0.9), for unit-variance q and k.

  Holds when the unscaled variance is d_k and the scaled one 1 (each within `tolerance`,
  relative) at every d_k, and the unscaled rows' share above 0.9 grows with d_k and ends above
  the scaled one's at the largest d_k."""
  if len(init) < 2:
    raise ValueError("need two or more d_k to see a growth with d_k")
  dims = sorted(init)
  var_none = [init[d]["none"]["score_var"] for d in dims]
  var_sqrt = [init[d]["sqrt"]["score_var"] for d in dims]
  peaked = [init[d]["none"]["rows_over_0.9"] for d in dims]
  peaked_sqrt = [init[d]["sqrt"]["rows_over_0.9"] for d in dims]
  shown = (f"unscaled score variance {' / '.join(f'{v:.3g}' for v in var_none)} at d_k "
           f"{' / '.join(map(str, dims))}, scaled {' / '.join(f'{v:.3g}' for v in var_sqrt)}; rows with a "
           f"weight > 0.9 unscaled {' / '.join(f'{100 * v:.0f}%' for v in peaked)}, scaled "
           f"{' / '.join(f'{100 * v:.0f}%' for v in peaked_sqrt)}")
  grows = all(a < b for a, b in zip(peaked, peaked[1:]))
  if (all(abs(v / d - 1) <= tolerance for v, d in zip(var_none, dims))
      and all(abs(v - 1) <= tolerance for v in var_sqrt) and grows
      and peaked[-1] > peaked_sqrt[-1]):
    return f"holds at unit-variance init: {shown}"
  return f"does not hold at unit-variance init: {shown}"


def costs_per_size(tests: dict, what: str, base: str, label=str, raises: str = "costs",
                   lowers: str = "helps by") -> str:
  """`tests`: {size: `stats.compare(changed, base, paired=True)`} of a measure the claim says the
  change raises (a loss: "costs"; a saturation: "raises it by"), the more the larger the size
  (sizes are numbers, shown by `label`). Holm across the sizes; each size holds, reverses or is
  not detected (with its power), and whether the effect grows with the size is said."""
  from llm_input.analysis import stats  # noqa: PLC0415

  if not tests:
    raise ValueError("no sizes to judge")
  sizes = sorted(tests)
  adjusted = dict(zip(sizes, stats.holm([tests[s]["p"] for s in sizes])))
  parts, raised = [], []
  for size in sizes:
    t, p, name = tests[size], adjusted[size], label(size)
    if p is None:
      parts.append(f"{name}: not tested (fewer than 2 seeds)")
    elif p < stats.ALPHA and t["diff"] > 0:
      raised.append(name)
      parts.append(f"{name}: {raises} {t['diff']:.3g} [{t['ci_low']:.3g}, {t['ci_high']:.3g}] (Holm p {p:.2g})")
    elif p < stats.ALPHA:
      parts.append(f"{name}: {lowers} {-t['diff']:.3g} [{t['ci_low']:.3g}, {t['ci_high']:.3g}] (Holm p {p:.2g})")
    else:
      power = f"; 80% power for {t['detectable']:.2g}" if t.get("detectable") else ""
      parts.append(f"{name}: not detected ({t['diff']:+.3g}, Holm p {p:.2g}{power})")
  diffs = [tests[s]["diff"] for s in sizes]
  order = ("growing with the size" if all(a < b for a, b in zip(diffs, diffs[1:]))
           else "not growing steadily with the size")
  head = ("holds at every size" if raised and len(raised) == len(sizes) else
          f"holds at {', '.join(raised)} of {', '.join(label(s) for s in sizes)}" if raised
          else "not detected at any size")
  return f"{head}: {what} vs {base}, " + "; ".join(parts) + f"; the differences {order}"


def mixes_across(across_other: list[float], across_self: list[float], within_other: list[float],
                 within_self: list[float], noise: float = 1e-6) -> str:
  """Per model, a perturbation's relative output change at other positions (`*_other`) and at
  the perturbed one (`*_self`), for the sublayer claimed to mix across tokens and the one claimed
  to work within each token."""
  if not across_other or len({len(across_other), len(across_self), len(within_other), len(within_self)}) != 1:
    raise ValueError("need one value per model for each of the four changes")
  leak = max(o / s for o, s in zip(within_other, within_self))
  reach = min(o / s for o, s in zip(across_other, across_self))
  if leak <= noise and reach > noise:
    still = "exactly 0" if leak == 0 else f"at most {leak:.1g} of its own (float noise)"
    return (f"holds in {_every(len(across_other))}: the MLP's change at other positions is {still}, "
            f"attention's is at least {reach:.2g} of its own")
  if leak > noise:
    return (f"does not hold: the MLP moves other positions by up to {leak:.2g} of its change at the "
            "perturbed one")
  return f"does not hold: attention moves other positions by only {reach:.1g} of its own change in some model"


def sweet_spot(ranges: list[dict], claimed: str, arms: list[str], largest: str) -> str:
  """`ranges`: `budgets.holding_ranges` of a curve (with a `span` text per range); the claim:
  `claimed` is below every other arm of `arms`."""
  others = [a for a in arms if a != claimed]
  if not others:
    raise ValueError("a sweet spot needs other arms to beat")
  below = {r["higher"]: r for r in ranges if r["lower"] == claimed and r["higher"] in others}
  above = [r for r in ranges if r["higher"] == claimed and r["lower"] in others]
  if len(below) == len(others):
    latest = max(below.values(), key=lambda r: r["from_budget"])
    return (f"holds {latest['span']}: {claimed} below every other arm, by "
            f"{min(abs(r['diff']) for r in below.values()):.3g} or more at {largest}")
  if above:
    return ("does not hold: " + "; ".join(f"{r['lower']} below {claimed} {r['span']} ({abs(r['diff']):.3g} at {largest})"
                                          for r in sorted(above, key=lambda r: r["diff"])))
  missing = ", ".join(a for a in others if a not in below)
  return f"not detected at {largest}: {claimed} vs {missing}"


def ordered(pairs: list[dict], sequence: list[str]) -> str:
  """`pairs`: `stats.pairwise` results (a, b, diff = mean a - mean b of a loss, p_holm,
  distinguishable); the claim: each arm of `sequence` is lower than the one before it."""
  if len(sequence) < 2:
    raise ValueError("an order needs two or more arms")
  steps, better, worse = [], 0, 0
  for before, after in zip(sequence, sequence[1:]):
    r = next((p for p in pairs if {p["a"], p["b"]} == {before, after}), None)
    if r is None or r.get("p_holm") is None:
      steps.append(f"{before} -> {after}: not tested")
      continue
    change = r["diff"] if r["a"] == after else -r["diff"]  # after - before
    if r["distinguishable"] and change < 0:
      better += 1
      steps.append(f"{before} -> {after}: {change:+.3g} (Holm p {r['p_holm']:.2g})")
    elif r["distinguishable"]:
      worse += 1
      steps.append(f"{before} -> {after}: {change:+.3g}, worse (Holm p {r['p_holm']:.2g})")
    else:
      steps.append(f"{before} -> {after}: {change:+.3g}, not detected (Holm p {r['p_holm']:.2g})")
  total = len(sequence) - 1
  head = ("holds at every step" if better == total else "does not hold: every step is worse" if worse == total
          else "does not hold at every step" if worse
          else f"holds at {better} of {total} steps" if better else "not detected at any step")
  return f"{head}: " + "; ".join(steps)


def permutation_invariant(without_mask: list[float], with_mask: list[float], scale: float,
                          noise: float = 1e-5) -> str:
  """Per model, max |logits(shuffled) - shuffled(logits)| without and with the causal mask;
  `scale`: the largest |logit|, so that float noise is judged relative to it."""
  if not without_mask or not with_mask or scale <= 0:
    raise ValueError("need each model's change with and without the mask and a positive logit scale")
  worst, least = max(without_mask), min(with_mask)
  if worst / scale > noise:
    return (f"does not hold: shuffling changes a model's logits by up to {worst:.3g} even without the causal "
            f"mask ({worst / scale:.1g} of the largest logit)")
  exact = f"by at most {worst:.1e} ({worst / scale:.0e} of the largest logit, float noise) in {_every(len(without_mask))}"
  if least / scale > noise:
    return (f"holds only without the causal mask: shuffling moves the outputs {exact}; with the mask, "
            f"by {least:.3g} or more (the mask tells each position how many tokens precede it)")
  return f"holds with and without the causal mask: shuffling moves the outputs {exact}"
