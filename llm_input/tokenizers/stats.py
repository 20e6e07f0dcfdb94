"""Statistics that compare tokenizers on the same text.

Words are whitespace-separated (`str.split()`), for every granularity, so tokens per word
means the same thing for char, byte, subword and word tokenizers.
"""

from __future__ import annotations

import dataclasses
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
  tokens: int
  words: int
  bytes: int
  chars: int

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def compute(tokenizer: Tokenizer, texts: Sequence[str]) -> TokenizerStats:
  start = time.perf_counter()
  encoded = tokenizer.encode_batch(list(texts))
  seconds = max(time.perf_counter() - start, 1e-9)

  tokens = sum(len(ids) for ids in encoded)
  num_bytes = sum(byte_length(t) for t in texts)
  chars = sum(len(t) for t in texts)
  words = [w for t in texts for w in t.split()]
  used = set()
  unk = tokenizer.unk_id
  unknown_tokens = 0
  for ids in encoded:
    used.update(ids)
    if unk is not None:
      unknown_tokens += ids.count(unk)

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
      tokens=tokens, words=len(words), bytes=num_bytes, chars=chars)


def format_table(stats: TokenizerStats) -> str:
  rows = [
      ("tokens per word (words = whitespace-separated)", f"{stats.tokens_per_word:.4f}"),
      ("bytes per token (UTF-8)", f"{stats.bytes_per_token:.4f}"),
      ("characters per token", f"{stats.chars_per_token:.4f}"),
      ("unknown-token rate", f"{stats.unk_rate:.4%}"),
      ("words containing <unk>", f"{stats.words_with_unk_rate:.4%}"),
      ("vocabulary size", f"{stats.vocab_size:,}"),
      ("vocabulary entries used", f"{stats.vocab_used:,}"),
      ("encode throughput", f"{stats.encode_mb_per_s:.2f} MB/s"),
      ("tokens / words / bytes / chars",
       f"{stats.tokens:,} / {stats.words:,} / {stats.bytes:,} / {stats.chars:,}"),
  ]
  width = max(len(r[0]) for r in rows)
  return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
