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
