"""Statistics that compare tokenizers on the same text, as the tokenization literature reports them.

Words are whitespace-separated (`str.split()`), for every granularity, so tokens per word
(fertility) means the same thing for char, byte, subword, word and imported tokenizers.
Continued words (Rust et al., ACL 2021) are words whose own pieces (`Tokenizer.word_ids`) are
two or more; Rényi efficiency (Zouhar et al., ACL 2023) is the order-2.5 Rényi entropy of the
text's token distribution over log(vocabulary size), as in their scorer.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Sequence

from llm_input.tokenizers.base import Tokenizer, byte_length


@dataclasses.dataclass
class TokenizerStats:
  tokens_per_word: float
  bytes_per_token: float
  chars_per_token: float
  unk_rate: float  # share of tokens that are <unk>
  words_with_unk_rate: float  # share of words containing at least one <unk> token
  vocab_size: int
  vocab_used: int  # vocabulary entries used at least once in the text
  encode_mb_per_s: float  # MB (10^6 bytes) of UTF-8 text encoded per second
  continued_word_share: float  # share of words cut into two or more pieces
  renyi_efficiency: float  # order-2.5 Rényi entropy of the token distribution / log(vocab_size)
  vocab_use_share: float  # vocab_used / vocab_size
  round_trip_error_at: int | None  # None: decode(encode(text)) == text; else the first differing offset
  tokens: int
  words: int
  bytes: int
  chars: int

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


RENYI_ORDER = 2.5


def renyi_efficiency(counts: Sequence[int], vocab_size: int, order: float = RENYI_ORDER) -> float:
  """H_order(p) / log(vocab_size) for the token distribution p given by `counts`."""
  total = sum(counts)
  if not total or vocab_size < 2:
    return 0.0
  power_sum = sum((c / total) ** order for c in counts if c)
  return math.log(power_sum) / (1 - order) / math.log(vocab_size)


def first_difference(a: str, b: str) -> int | None:
  """The first offset where `a` and `b` differ (None when equal)."""
  if a == b:
    return None
  return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def compute(tokenizer: Tokenizer, texts: Sequence[str]) -> TokenizerStats:
  start = time.perf_counter()
  encoded = tokenizer.encode_batch(list(texts))
  seconds = max(time.perf_counter() - start, 1e-9)

  tokens = sum(len(ids) for ids in encoded)
  num_bytes = sum(byte_length(t) for t in texts)
  chars = sum(len(t) for t in texts)
  words = [w for t in texts for w in t.split()]
  counts = collections.Counter()
  for ids in encoded:
    counts.update(ids)
  used = set(counts)
  unk = tokenizer.unk_id
  unknown_tokens = counts[unk] if unk is not None else 0
  word_counts = collections.Counter(words)
  continued = sum(n for w, n in word_counts.items() if len(tokenizer.word_ids(w)) >= 2)
  round_trip = None
  offset = 0
  for text, ids in zip(texts, encoded):
    differs = first_difference(tokenizer.decode(ids), text)
    if differs is not None:
      round_trip = offset + differs
      break
    offset += len(text)

  words_with_unk = 0
  if unk is not None and unknown_tokens:
    unique = set(words)
    unknown_words = {w for w in unique if unk in tokenizer.encode(w)}
    words_with_unk = sum(1 for w in words if w in unknown_words)

  def ratio(a, b):
    return a / b if b else 0.0

  return TokenizerStats(
      tokens_per_word=ratio(tokens, len(words)),
      bytes_per_token=ratio(num_bytes, tokens),
      chars_per_token=ratio(chars, tokens),
      unk_rate=ratio(unknown_tokens, tokens),
      words_with_unk_rate=ratio(words_with_unk, len(words)),
      vocab_size=tokenizer.vocab_size,
      vocab_used=len(used),
      encode_mb_per_s=num_bytes / 1e6 / seconds,
      continued_word_share=ratio(continued, len(words)),
      renyi_efficiency=renyi_efficiency(list(counts.values()), tokenizer.vocab_size),
      vocab_use_share=ratio(len(used), tokenizer.vocab_size),
      round_trip_error_at=round_trip,
      tokens=tokens, words=len(words), bytes=num_bytes, chars=chars)


def format_table(stats: TokenizerStats) -> str:
  rows = [
      ("tokens per word (words = whitespace-separated)", f"{stats.tokens_per_word:.4f}"),
      ("words cut into 2+ pieces", f"{stats.continued_word_share:.4%}"),
      ("bytes per token (UTF-8)", f"{stats.bytes_per_token:.4f}"),
      ("characters per token", f"{stats.chars_per_token:.4f}"),
      ("unknown-token rate", f"{stats.unk_rate:.4%}"),
      ("words containing <unk>", f"{stats.words_with_unk_rate:.4%}"),
      ("vocabulary size", f"{stats.vocab_size:,}"),
      ("vocabulary entries used", f"{stats.vocab_used:,} ({stats.vocab_use_share:.2%})"),
      (f"Rényi efficiency (order {RENYI_ORDER})", f"{stats.renyi_efficiency:.4f}"),
      ("exact round trip", round_trip_text(stats.round_trip_error_at)),
      ("encode throughput", f"{stats.encode_mb_per_s:.2f} MB/s"),
      ("tokens / words / bytes / chars",
       f"{stats.tokens:,} / {stats.words:,} / {stats.bytes:,} / {stats.chars:,}"),
  ]
  width = max(len(r[0]) for r in rows)
  return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def round_trip_text(error_at: int | None) -> str:
  return "yes" if error_at is None else f"no: first difference at character {error_at:,}"


COMPARE_COLUMNS = (  # (header, field, format)
    ("tokens/word", "tokens_per_word", "{:.3f}"),
    ("words 2+ pieces", "continued_word_share", "{:.1%}"),
    ("bytes/token", "bytes_per_token", "{:.3f}"),
    ("chars/token", "chars_per_token", "{:.3f}"),
    ("Rényi eff. 2.5", "renyi_efficiency", "{:.3f}"),
    ("vocab used", "vocab_use_share", "{:.1%}"),
    ("unk rate", "unk_rate", "{:.2%}"),
    ("words with unk", "words_with_unk_rate", "{:.2%}"),
    ("round trip", "round_trip_error_at", None),
    ("encode MB/s", "encode_mb_per_s", "{:.2f}"),
)


def compare_table(rows: Sequence[dict]) -> str:
  """A markdown table: one row per (tokenizer, text) with the `COMPARE_COLUMNS`."""
  header = ["tokenizer", "kind", "vocab", "text"] + [h for h, _, _ in COMPARE_COLUMNS]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row in rows:
    stats = row["stats"]
    cells = [row["tokenizer"], row["kind"], f"{stats['vocab_size']:,}", row["text"]]
    for _, field, fmt in COMPARE_COLUMNS:
      value = stats[field]
      cells.append("yes" if field == "round_trip_error_at" and value is None else
                   f"no (at {value:,})" if field == "round_trip_error_at" else fmt.format(value))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def compare_plot(rows: Sequence[dict], path) -> None:
  """Bar charts of fertility, continued words, bytes per token and Rényi efficiency."""
  import matplotlib  # noqa: PLC0415

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  panels = [("tokens per word", "tokens_per_word"), ("words cut into 2+ pieces", "continued_word_share"),
            ("bytes per token", "bytes_per_token"), (f"Rényi efficiency ({RENYI_ORDER})", "renyi_efficiency")]
  names = list(dict.fromkeys(r["tokenizer"] for r in rows))
  texts = list(dict.fromkeys(r["text"] for r in rows))
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.2), layout="constrained")
  width = 0.8 / max(1, len(texts))
  for ax, (title, field) in zip(axes, panels):
    for j, text in enumerate(texts):
      values = [next((r["stats"][field] for r in rows if r["tokenizer"] == n and r["text"] == text), np.nan)
                for n in names]
      ax.bar(np.arange(len(names)) + j * width, values, width, label=text)
    ax.set_xticks(np.arange(len(names)) + width * (len(texts) - 1) / 2, names, rotation=30, ha="right")
    ax.set_title(title)
  axes[0].legend(fontsize="small")
  fig.savefig(path, dpi=110)
  plt.close(fig)
