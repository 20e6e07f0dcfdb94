"""A budget sweep's README figures (llm_input/analysis/budgets.py) on synthetic results with
known answers: the range of budgets where a difference holds, for each branch of the rule."""

import csv

import pytest

from llm_input.analysis import budgets

SEEDS = (0, 1, 2)
NOISE = (0.0, 0.003, -0.002)  # per seed, shared by the arms (paired)


def rows(gaps: dict[int, float], arms=("a", "b")) -> list[dict]:
  """Arm b sits `gaps[steps]` above arm a at each budget; a small per-arm jitter keeps the
  paired differences from being exactly constant."""
  out = []
  for steps, gap in gaps.items():
    for arm in arms:
      for seed, noise in zip(SEEDS, NOISE):
        jitter = 0.0005 * (seed - 1) * (arm == "b")
        out.append({"arm": arm, "steps": steps, "seed": seed, "train_flops": steps * 3.5e10,
                    "val_bits_per_byte": 3.0 - steps / 1000 + noise + (gap + jitter) * (arm == "b"),
                    "kn1_bits_per_byte": 3.2, "kn_best_bits_per_byte": 2.26, "kn_best_order": "3",
                    "train_time_s": 600.0 if steps == max(gaps) else 100.0})
  return out


@pytest.mark.parametrize("gaps,expected", [
    ({100: 0.05, 200: 0.05, 400: 0.05}, 100),    # detected at every budget: from the first
    ({100: 0.0, 200: 0.05, 400: 0.05}, 200),     # not detected at 100: from 200
    ({100: 0.05, 200: 0.0, 400: 0.05}, 400),     # a gap in the middle: only the largest counts
    ({100: -0.05, 200: 0.05, 400: 0.05}, 200),   # the other direction at 100 is not this difference
    ({100: 0.05, 200: 0.05, 400: 0.0}, None),    # not detected at the largest: no range
])
def test_a_difference_holds_from_the_first_budget_of_an_unbroken_run_up_to_the_largest(gaps, expected):
  ranges = budgets.holding_ranges(budgets.tests_by_budget(rows(gaps)))
  if expected is None:
    assert ranges == []
  else:
    (r,) = ranges
    assert (r["lower"], r["higher"], r["from_budget"]) == ("a", "b", expected)
    assert r["diff"] == pytest.approx(-0.05, abs=1e-3)


def test_the_summary_block_states_the_baselines_epochs_tests_and_range():
  data = rows({100: 0.0, 200: 0.05, 400: 0.05})
  text = budgets.summary_block(data, lambda a: f"arm {a}", tokens_per_step=4096, train_tokens=409_600,
                               validation="three plays")
  assert "Kneser-Ney on the same tokens: unigram 3.2000, best order (3) 2.2600." in text
  # by hand: noise mean 0.00033, std 0.0025 (a) and 0.0024 (b, with its jitter); 2.9003 - 2.26 = 0.6403
  assert "| 200 | 7e+12 | 2.00 | 2.8003 ± 0.0025 | 2.8503 ± 0.0024 | arm a +0.5403 (above) |" in text
  assert "- 100 steps: decided: none; not detected: 1 of 1 pairs." in text
  assert "- from 200 steps (7e+12 FLOPs) to 400 (1.4e+13), arm a is below arm b (-0.0500 bits per byte at 400 steps)" in text
  assert budgets.cpu_hours_line(data).startswith("CPU time: 1.00 core-hours in the training loops of the 6 400-step runs")


def test_one_point_of_a_curve_states_its_tests_and_no_range_and_the_cpu_time_of_its_own_seeds():
  data = rows({400: 0.05})
  text = budgets.summary_block(data, lambda a: f"arm {a}", tokens_per_step=4096, train_tokens=409_600,
                               validation="three plays")
  assert "- 400 steps: decided: arm a vs arm b -0.0500" in text
  assert "Where each difference" not in text  # no range from a budget to itself
  # two arms x seeds 1, 2 x 600 s; every seed: 6 runs
  assert budgets.seeds_cpu_line(data) == ("CPU time: 0.67 core-hours in the training loops of the 4 runs of "
                                          "seeds 1, 2 (each on one core); seed 0 is the curve's own point.")
  assert budgets.seeds_cpu_line(data, curve_seeds=()).startswith("CPU time: 1.00 core-hours in the training "
                                                                 "loops of the 6 runs of seeds 0, 1, 2 (each on one core).")
  assert budgets.seeds_cpu_line(data, curve_seeds=(0, 1)).endswith("seeds 0, 1 are the curve's own points.")


def test_results_csv_round_trip_and_the_readme_block_is_replaced_between_markers(tmp_path):
  path = tmp_path / "results.csv"
  with path.open("w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["arm", "model.num_heads", "train.steps", "seed", "val_bits_per_byte",
                                      "train_flops", "kn1_bits_per_byte", "kn_best_bits_per_byte"])
    w.writeheader()
    w.writerow({"arm": "num_heads-8_steps-400", "model.num_heads": "8", "train.steps": "400", "seed": "2",
                "val_bits_per_byte": "2.47", "train_flops": "1.4e13", "kn1_bits_per_byte": "",
                "kn_best_bits_per_byte": "2.26"})
  (r,) = budgets.read_results(path, "model.num_heads", int)
  assert (r["arm"], r["steps"], r["seed"], r["val_bits_per_byte"], r["kn1_bits_per_byte"]) == (8, 400, 2, 2.47, None)
  readme = tmp_path / "README.md"
  readme.write_text(f"intro\n{budgets.START}\nold\n{budgets.END}\nafter\n")
  budgets.rewrite_block(readme, "new")
  assert readme.read_text() == f"intro\n{budgets.START}\nnew\n{budgets.END}\nafter\n"
  # a second, named block in the same README is rewritten alone
  readme.write_text(readme.read_text() + "<!-- lr -->\nold\n<!-- /lr -->\n")
  budgets.rewrite_block(readme, "rates", "lr")
  assert readme.read_text() == f"intro\n{budgets.START}\nnew\n{budgets.END}\nafter\n<!-- lr -->\nrates\n<!-- /lr -->\n"


def test_the_documents_bundle_keeps_what_the_runs_wrote_and_regenerates_without_them(tmp_path):
  import json

  runs = tmp_path / "runs"
  record = {"step": 400, "split": "validation", "seq_len": 256, "bits_per_byte": 2.5,
            "documents": [{"index": 0, "loss_nats": 100.0, "bytes": 58, "tokens": 20, "bits_per_byte": 2.49}]}
  (runs / "a_seed-0").mkdir(parents=True)
  (runs / "a_seed-0" / "val_documents.json").write_text(json.dumps(record))
  cache = tmp_path / "documents.json"
  kept = budgets.documents_bundle(cache, runs, ["a_seed-0", "b_seed-0"])  # b has no record yet
  assert kept == {"a_seed-0": {k: record[k] for k in ("step", "split", "documents", "bits_per_byte")}}
  (runs / "a_seed-0" / "val_documents.json").unlink()
  assert budgets.documents_bundle(cache, runs, ["a_seed-0"]) == kept  # from the committed cache
  data = [{"arm": arm, "steps": 400, "seed": 0, "run": f"{arm}_seed-0"} for arm in ("a", "b")]
  assert budgets.bootstrap_block(data, kept) == ""  # b's record is missing: no half table


def granularity_rows(seeds=(0,), gap_at_small=0.5):
  """char and bpe on their own tokens at two FLOPs budgets (char takes 1.5x the steps), and word
  with `<unk>` tokens; per-document records whose bits per byte are the rows' (3 documents)."""
  import math

  data, records = [], {}
  # char misses one rare character (5e-6 `<unk>`): not marked
  arms = {"char": (1.0, 4.9, 2.1, 5, 5e-6, 3), "bpe": (2.7, 3.3, 2.3, 3, 0.0, 2), "word": (3.7, 2.9, 1.9, 2, 0.08, 1)}
  for arm, (bpt, kn1, best, order, unk, per) in arms.items():
    for budget, steps, level in ((1e12, 100, 3.0), (2e12, 200, 2.0)):
      for seed in seeds:
        value = level + {"char": (gap_at_small if budget == 1e12 else 0.4), "bpe": 0.0, "word": -0.6}[arm] + {"char": (0, 0.01, 0.02), "bpe": (0, 0.005, -0.004), "word": (0, -0.006, 0.011)}[arm][seed]
        run = f"{arm}_{budget:g}_{seed}"
        nbytes = [1000, 2000, 3000]
        # every document at the arm's level, +-0.02 around it, the same way for every arm
        docs = [{"loss_nats": (value + d) * math.log(2) * b, "bytes": b} for d, b in zip((-0.02, 0.0, 0.02 / 3), nbytes)]
        records[run] = {"documents": docs}
        data.append({"arm": arm, "run": run, "seed": seed, "steps": steps * per, "budget": budget,
                     "train_flops": budget * 1.001, "val_bits_per_byte": value, "kn1_bits_per_byte": kn1,
                     "kn_best_bits_per_byte": best, "kn_best_order": order, "bytes_per_token": bpt,
                     "unk_rate": unk, "train_time_s": 3600.0})
  return data, records


def test_the_flops_summary_block_gives_each_arm_its_own_baselines_steps_and_epochs():
  data, records = granularity_rows()
  tokens = {"char": 4_096_000, "bpe": 1_638_400, "word": 1_000_000}
  text = budgets.flops_summary_block(data, train_tokens=tokens, tokens_per_step=4096, validation="three plays",
                                     records=records, order=["char", "bpe", "word"])
  assert "| char | 1.000 | 0.0000 | 4.9000 | 2.1000 (5) |" in text  # 5e-6 <unk>: below the 0.1% tolerance
  assert "| word* | 3.700 | 0.0800 | 2.9000 | 1.9000 (2) |" in text
  # char: 300 steps x 4096 / 4,096,000 = 0.30 epochs; bpe 200 x 4096 / 1,638,400 = 0.50; word 100 -> 0.41
  # below its own KN best at 2e12: bpe 2.0 < 2.3 and word 1.4 < 1.9, char 2.4 > 2.1; the best arm
  # without <unk> is bpe, against the best KN of such arms (char's 2.1): -0.1
  assert "| 1x | 1e+12 | 3.5000 (300, 0.30) | 3.0000 (200, 0.50) | 2.4000 (100, 0.41) | none | bpe +0.9000 |" in text
  assert "| 2x | 2e+12 | 2.4000 (600, 0.60) | 2.0000 (400, 1.00) | 1.4000 (200, 0.82) | bpe, word* | bpe -0.1000 |" in text
  # one seed: decided by the bootstrap over documents, which every document agrees on
  assert "one seed, so no test over seeds" in text
  assert "- from 1e+12 FLOPs to 2e+12, word* is below char (-1.0000 bits per byte at 2e+12 FLOPs)" in text
  assert "- from 1e+12 FLOPs to 2e+12, bpe is below char (-0.4000 bits per byte at 2e+12 FLOPs)" in text
  assert "\\* `<unk>` tokens (over 0.1% of the validation tokens)" in text


def test_a_flops_range_starts_where_the_difference_is_first_detected_at_every_budget_after():
  data, records = granularity_rows(gap_at_small=0.0)  # char = bpe at 1e12 on every document
  text = budgets.flops_summary_block(data, train_tokens={"char": 1, "bpe": 1, "word": 1}, tokens_per_step=1,
                                     validation="v", records=records, order=["char", "bpe", "word"])
  assert "- at 2e+12 FLOPs only, the largest budget, bpe is below char" in text
  data3, _ = granularity_rows(seeds=(0, 1, 2))
  text3 = budgets.flops_summary_block(data3, train_tokens={"char": 1, "bpe": 1, "word": 1}, tokens_per_step=1,
                                      validation="v", order=["char", "bpe", "word"])
  assert "paired over seeds" in text3 and "mean ± std over seeds [0, 1, 2]" in text3
  assert "| 2x | 2e+12 | 2.4100 ± 0.0100 (600, 600.00) |" in text3
  assert budgets.cpu_hours_line(data3).startswith("CPU time: 9.00 core-hours in the training loops of the 9 2e+12 FLOPs runs")


def test_a_flops_block_at_one_point_of_a_curve_names_its_multiple_and_what_is_detected_there():
  data3, _ = granularity_rows(seeds=(0, 1, 2))
  at_2x = [r for r in data3 if r["budget"] == 2e12]
  text = budgets.flops_summary_block(at_2x, train_tokens={"char": 1, "bpe": 1, "word": 1}, tokens_per_step=1,
                                     validation="v", order=["char", "bpe", "word"], base_budget=1e12)
  assert "| 2x | 2e+12 | 2.4100 ± 0.0100 (600, 600.00) |" in text
  # one budget: no range from it to itself, the paired tests' verdicts at it
  assert "Detected at 2e+12 FLOPs (paired over seeds" in text and "Where each difference" not in text
  assert "- bpe is below char (-0.4097 bits per byte)" in text  # 2.4100 vs 2.0003
  assert "- word* is below char (-1.0083 bits per byte)" in text


def test_a_rate_sweep_names_each_arms_best_rate_the_grids_edge_and_whether_the_order_changes():
  """Three arms, the curve at 3e-3 (seed 0 at the sweep's budget; another seed and budget must be
  ignored) and the sweep at 1e-3 and 1e-2: one arm best at 3e-3, one at each edge of the grid."""
  def row(arm, rate, bpb, budget=1e13, seed=0):
    return {"arm": arm, "steps": 100, "seed": seed, "budget": budget, "optimizer.learning_rate": str(rate),
            "val_bits_per_byte": bpb, "kn_best_bits_per_byte": 2.4, "kn_best_order": "3", "train_time_s": 1800.0}
  curve = [row("a", 3e-3, 2.30), row("b", 3e-3, 2.50), row("c", 3e-3, 2.60),
           row("a", 3e-3, 1.00, budget=2e13), row("b", 3e-3, 1.00, seed=1)]
  sweep = [row("a", 1e-3, 2.35), row("a", 1e-2, 2.45),      # a: best at the curve's rate
           row("b", 1e-3, 2.55), row("b", 1e-2, 2.20),      # b: best at 1e-2, the grid's edge
           row("c", 1e-3, 2.58), row("c", 1e-2, 2.70),      # c: best at 1e-3, the other edge
           row("a", 3e-4, 2.40)]  # a rate only one arm tried: not the edge of the others' grids
  points = budgets.rate_points(sweep, curve, 3e-3)  # the curve's other budget and seed left out
  assert points[("a", 3e-3)] == 2.30 and points[("b", 3e-3)] == 2.50 and points[("a", 3e-4)] == 2.40
  assert len(points) == 10
  text = budgets.rate_sweep_block(sweep, curve, 3e-3, ["a", "b", "c"], lambda a: f"arm {a}")
  assert "| arm a | 100 | 2.4000 | 2.3500 | **2.3000** | 2.4500 | 0.003 | +0.0000 | 2.4000 (3) |" in text
  assert "| arm b | 100 |  | 2.5500 | 2.5000 | **2.2000** | 0.01 | -0.3000 | 2.4000 (3) |" in text
  assert ("- Best rate: 0.003 for arm a; 0.01 for arm b (-0.3000), 0.001 for arm c (-0.0200). "
          "At the grid's edge (a better rate may lie past it): arm b, arm c.") in text
  assert ("at the curve's rate: arm a < arm b < arm c; at each arm's best rate: arm b < arm a < arm c "
          "(changed).") in text
  assert "- Below their own best n-gram at their best rate: arm a, arm b." in text
  assert "- CPU time: 3.50 core-hours in the 7 runs'" in text
  assert "(1e+13 training FLOPs), seed 0, three held-out plays;" in text


def test_a_rate_sweep_over_step_budgets_states_the_flops_its_runs_trained():
  """A sweep whose budgets are steps (heads): the header gives the runs' training FLOPs, not
  the step count read as FLOPs, and the validation split it is told."""
  def row(arm, rate, bpb):
    return {"arm": arm, "steps": 200, "seed": 0, "budget": 200, "train_flops": 7.09e12,
            "optimizer.learning_rate": str(rate), "val_bits_per_byte": bpb, "kn_best_bits_per_byte": 2.4,
            "kn_best_order": "3", "train_time_s": 60.0}
  text = budgets.rate_sweep_block([row(1, 1e-3, 2.6), row(1, 1e-2, 2.5)], [row(1, 3e-3, 2.55)], 3e-3, [1],
                                  budget_name="the curve's 200-step budget", validation="the held-out play")
  assert text.startswith("Validation bits per byte at the curve's 200-step budget (7.09e+12 training FLOPs), "
                         "seed 0, the held-out play;")
