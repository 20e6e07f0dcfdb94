"""Re-tests every experiment's committed per-seed results with the paired design they have.

Arms of a sweep run the same seeds (seed i sets the initialisation and the data order of every
arm), so the per-seed differences pair them: paired t and Wilcoxon, 95% intervals, effect
sizes, Holm over the pairs, and for a difference not detected the smallest one the design
detects with 80% power (`llm_input.analysis.stats`). Reads experiments/NAME/results.csv (no
run folders needed), writes experiments/NAME/results_paired.md:

    python experiments/paired_stats.py
"""

import csv
import pathlib

from llm_input.analysis import sweep_tables

HERE = pathlib.Path(__file__).parent
EXPERIMENTS = ("granularity", "vocab_size", "positions", "width")


def rows_of(path: pathlib.Path) -> list[dict]:
  with path.open() as f:
    rows = list(csv.DictReader(f))
  for row in rows:
    row["seed"] = int(row["seed"]) if row.get("seed") not in (None, "") else None
    row["val_bits_per_byte"] = float(row["val_bits_per_byte"])
  return rows


def main() -> None:
  for name in EXPERIMENTS:
    rows = rows_of(HERE / name / "results.csv")
    text = (f"# {name}: paired re-test of results.csv ({len(rows)} runs)\n\n"
            f"`python experiments/paired_stats.py`\n\n" + sweep_tables.pairwise_markdown(rows))
    (HERE / name / "results_paired.md").write_text(text)
    print(text)


if __name__ == "__main__":
  main()
