"""Tokenizer statistics across granularities and vocabulary sizes on the default corpus.

Trains bpe and unigram at 1k, 8k, 32k and 50k, and char, byte and word at a 50k cap, on the
training split of `shakespeare`; measures each on the held-out validation split; writes
tokenizer_table.md and tokenizer_table.csv next to this file.

  python experiments/vocab_size/tokenizer_sweep.py [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import tempfile
import time

from llm_input import tokenizers
from llm_input.data import pipeline
from llm_input.errors import TokenizerError
from llm_input.tokenizers import stats

RUNS = [("bpe", 1000), ("bpe", 8000), ("bpe", 32000), ("bpe", 50000),
        ("unigram", 1000), ("unigram", 8000), ("unigram", 32000), ("unigram", 50000),
        ("char", 50000), ("byte", 50000), ("word", 50000)]
COLUMNS = ["kind", "requested_vocab", "vocab_size", "train_s", "tokens_per_word", "bytes_per_token",
           "chars_per_token", "unk_rate", "words_with_unk_rate", "vocab_used", "encode_mb_per_s", "note"]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--out", default=str(pathlib.Path(__file__).parent))
  parser.add_argument("--corpus", default="shakespeare")
  args = parser.parse_args()
  cfg = pipeline.PipelineConfig(corpus=args.corpus)
  train_texts = list(pipeline.documents(cfg, "train"))
  eval_texts = list(pipeline.documents(cfg, "validation"))
  rows = []
  for kind, size in RUNS:
    start = time.perf_counter()
    try:
      tokenizer = tokenizers.train(kind, size, train_texts)
    except TokenizerError as err:
      rows.append({"kind": kind, "requested_vocab": size, "note": str(err).split(";")[0]})
      print(f"{kind:8s} {size:>6}: {err}")
      continue
    train_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:  # measure what a run folder would load
      tokenizer = tokenizers.load(tokenizer.save(pathlib.Path(folder) / "tok"))
    result = stats.compute(tokenizer, eval_texts).to_dict()
    row = {"kind": kind, "requested_vocab": size, "train_s": train_s, "note": "", **result}
    rows.append(row)
    print(f"{kind:8s} {size:>6}: vocab {row['vocab_size']:>6}  tokens/word {row['tokens_per_word']:.3f}  "
          f"bytes/token {row['bytes_per_token']:.3f}  unk {row['unk_rate']:.4%}  train {train_s:.1f} s")
  out = pathlib.Path(args.out)
  with (out / "tokenizer_table.csv").open("w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  lines = ["| kind | requested vocab | vocab | train s | tokens/word | bytes/token | chars/token | "
           "unk rate | words with unk | vocab used | encode MB/s |",
           "|" + "---|" * 11]
  for r in rows:
    if r.get("note"):
      lines.append(f"| {r['kind']} | {r['requested_vocab']:,} | n/a: {r['note']} | | | | | | | | |")
      continue
    lines.append(f"| {r['kind']} | {r['requested_vocab']:,} | {r['vocab_size']:,} | {r['train_s']:.1f} | "
                 f"{r['tokens_per_word']:.3f} | {r['bytes_per_token']:.3f} | {r['chars_per_token']:.3f} | "
                 f"{r['unk_rate']:.3%} | {r['words_with_unk_rate']:.3%} | {r['vocab_used']:,} | "
                 f"{r['encode_mb_per_s']:.1f} |")
  (out / "tokenizer_table.md").write_text("\n".join(lines) + "\n")
  print(f"wrote {out / 'tokenizer_table.md'}")


if __name__ == "__main__":
  main()
