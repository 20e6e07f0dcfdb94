"""Training options of every tokenizer kind: one typed record for the CLI and the config."""

from __future__ import annotations

import dataclasses

from llm_input.errors import TokenizerError

NORMALIZATIONS = ("identity", "nfkc", "nmt_nfkc")


@dataclasses.dataclass(frozen=True)
class TokenizerOptions:
  lowercase: bool = False  # word: lower-case before counting
  byte_fallback: bool = True  # bpe/unigram: unseen characters become UTF-8 bytes, not <unk>
  split_digits: bool = True  # bpe/unigram: every digit is its own piece
  character_coverage: float = 1.0  # bpe/unigram: share of characters kept in the vocabulary
  normalization: str = "identity"  # bpe/unigram: identity keeps the text exact
  # bpe/unigram: lines sampled for training; enough for a 50k vocabulary, bounded so a large
  # corpus cannot exhaust memory (SentencePiece holds every training sentence).
  max_sentences: int = 2_000_000
  seed: int = 0  # bpe/unigram: line sampling and SentencePiece's own randomness

  @classmethod
  def from_config(cls, tokenizer_cfg, seed: int) -> "TokenizerOptions":
    """From the config's `tokenizer` section (the run's `seed` seeds the line sampling)."""
    t = tokenizer_cfg
    return cls(lowercase=t.lowercase, byte_fallback=t.byte_fallback, split_digits=t.split_digits,
               character_coverage=t.character_coverage, normalization=t.normalization,
               max_sentences=t.max_sentences, seed=seed)

  def validate(self) -> None:
    if not 0 < self.character_coverage <= 1:
      raise TokenizerError(f"tokenizer.character_coverage must be in (0, 1], got {self.character_coverage}")
    if self.normalization not in NORMALIZATIONS:
      raise TokenizerError(f"tokenizer.normalization must be one of {', '.join(NORMALIZATIONS)}, "
                           f"got {self.normalization!r}")
    if not isinstance(self.max_sentences, int) or self.max_sentences < 1:
      raise TokenizerError(f"tokenizer.max_sentences must be a positive integer, got {self.max_sentences!r}")
