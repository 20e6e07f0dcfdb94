"""How sentences become tokens under one or several tokenizers, side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llm_input.tokenizers.base import Tokenizer

DEFAULT_SENTENCES = ("Hello world", "The bank by the river", "Helo wrold",
                     "Antidisestablishmentarianism", "hello Hello HELLO")


def compare(tokenizers: Mapping[str, Tokenizer], sentences: Sequence[str] = DEFAULT_SENTENCES) -> list[dict]:
  """One row per (sentence, tokenizer): pieces, ids, token count, tokens per word, unknowns."""
  rows = []
  for sentence in sentences:
    words = max(len(sentence.split()), 1)
    for name, tokenizer in tokenizers.items():
      pieces = tokenizer.pieces(sentence)
      unk = tokenizer.unk_id
      rows.append({"sentence": sentence, "tokenizer": name, "kind": tokenizer.kind,
                   "pieces": [p for p, _ in pieces], "ids": [i for _, i in pieces],
                   "tokens": len(pieces), "tokens_per_word": len(pieces) / words,
                   "unknown": sum(1 for _, i in pieces if unk is not None and i == unk)})
  return rows


def figure(rows: list[dict]):
  """Bar chart: tokens per word of each sentence under each tokenizer."""
  import matplotlib.pyplot as plt  # noqa: PLC0415

  sentences = list(dict.fromkeys(r["sentence"] for r in rows))
  names = list(dict.fromkeys(r["tokenizer"] for r in rows))
  fig, ax = plt.subplots(figsize=(7, 3), dpi=110)
  width = 0.8 / max(len(names), 1)
  for j, name in enumerate(names):
    values = [next(r["tokens_per_word"] for r in rows if r["sentence"] == s and r["tokenizer"] == name)
              for s in sentences]
    ax.bar([i + j * width for i in range(len(sentences))], values, width, label=name)
  ax.set_xticks([i + 0.4 - width / 2 for i in range(len(sentences))],
                [s if len(s) < 22 else s[:20] + "…" for s in sentences], rotation=20, ha="right")
  ax.set_ylabel("tokens per word")
  ax.legend(fontsize=8)
  fig.tight_layout()
  return fig
